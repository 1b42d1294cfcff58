// Where a cluster's credentials come from: a kubeconfig file and context, the pod's service
// account, or (tests, the demo) a bare http URL with no auth.

import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../errors.js';

export interface KubeConfigSource {
  /** The cluster's name, for error messages. */
  name: string;
  kubeconfigPath?: string;
  context?: string;
  /** A plain API server URL without credentials (the fake API server); wins over the rest. */
  server?: string;
}

/** A KubeConfig for one cluster; a wrong path, context or environment is a ConfigError. */
export function buildKubeConfig(source: KubeConfigSource): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (source.server !== undefined) {
    // client-node refuses plain http unless TLS verification is off, though there is no TLS to verify.
    kubeConfig.loadFromOptions({
      clusters: [{ name: source.name, server: source.server, skipTLSVerify: true }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: source.name, cluster: source.name, user: 'anonymous' }],
      currentContext: source.name,
    });
    return kubeConfig;
  }
  if (source.kubeconfigPath !== undefined) {
    try {
      kubeConfig.loadFromFile(source.kubeconfigPath);
    } catch (error) {
      throw new ConfigError(
        `cluster "${source.name}": cannot load kubeconfig ${source.kubeconfigPath}: ${errorMessage(error)}; check clusters.*.kubeconfig`,
        { cause: error },
      );
    }
    if (source.context !== undefined) {
      const known = kubeConfig.getContexts().map((context) => context.name);
      if (!known.includes(source.context)) {
        throw new ConfigError(
          `cluster "${source.name}": context "${source.context}" is not in ${source.kubeconfigPath} (it has: ${known.join(', ') || 'none'})`,
        );
      }
      kubeConfig.setCurrentContext(source.context);
    }
    if (!kubeConfig.getCurrentCluster()) {
      throw new ConfigError(
        `cluster "${source.name}": ${source.kubeconfigPath} has no current context with a cluster; set clusters.*.context`,
      );
    }
    return kubeConfig;
  }
  if (!process.env.KUBERNETES_SERVICE_HOST) {
    throw new ConfigError(
      `cluster "${source.name}" has no kubeconfig and clustershift is not running in a pod (KUBERNETES_SERVICE_HOST is unset): set clusters.*.kubeconfig`,
    );
  }
  kubeConfig.loadFromCluster();
  return kubeConfig;
}
