// Where a cluster's credentials come from: a kubeconfig file and context, the pod's service
// account, or (tests, the demo) a bare http URL with no auth.

import { createHash } from 'node:crypto';
import type { AgentOptions } from 'node:https';
import { type Cluster, KubeConfig } from '@kubernetes/client-node';
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
  const kubeConfig = reuseConnections(new KubeConfig());
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

/** What client-node's (private) KubeConfig.createDispatcher returns: an undici Agent, or none. */
type Dispatcher = { close(): Promise<void> } | undefined;
type DispatcherFactory = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher;

const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** The TLS settings a dispatcher is built from (file contents as read for this request). */
function tlsFingerprint(cluster: Cluster | null, options: AgentOptions): string {
  const hash = createHash('sha256');
  hash.update(`${cluster?.server ?? ''}\u0000${cluster?.proxyUrl ?? ''}`);
  for (const field of TLS_FIELDS) {
    const value = options[field];
    hash.update(`\u0000${field}=`);
    if (value === undefined) continue;
    for (const part of Array.isArray(value) ? value : [value])
      hash.update(typeof part === 'string' || Buffer.isBuffer(part) ? part : JSON.stringify(part));
  }
  return hash.digest('hex');
}

/**
 * client-node 2.0 builds a new undici Agent, a connection pool of its own, for every request to a
 * cluster with any TLS setting (a CA, a client certificate, skipTLSVerify: every real cluster,
 * and the fake ones over http), so no connection is ever reused: each call pays a TCP (and
 * TLS) handshake and leaves its socket open until it idles out. Measured in bench:scale at 50
 * WorkloadMigrations over 10 cluster pairs: ~300 ms CPU per tick and 420 MiB RSS. This keeps one
 * Agent per cluster and user while its TLS settings stay the same; a rotated certificate or CA
 * gets a new Agent, and the old one closes once its requests are done.
 */
export function reuseConnections(kubeConfig: KubeConfig): KubeConfig {
  const target = kubeConfig as unknown as { createDispatcher?: DispatcherFactory };
  const create = target.createDispatcher;
  // test/kube/kubeconfig.test.ts fails if a client-node upgrade renames it.
  if (typeof create !== 'function') return kubeConfig;
  const agents = new Map<string, { fingerprint: string; dispatcher: Dispatcher }>();
  target.createDispatcher = (cluster, agentOptions) => {
    const id = `${cluster?.name ?? ''}\u0000${kubeConfig.getCurrentUser()?.name ?? ''}`;
    const fingerprint = tlsFingerprint(cluster, agentOptions);
    const known = agents.get(id);
    if (known?.fingerprint === fingerprint) return known.dispatcher;
    const dispatcher = create.call(kubeConfig, cluster, agentOptions);
    agents.set(id, { fingerprint, dispatcher });
    void known?.dispatcher?.close().catch(() => undefined);
    return dispatcher;
  };
  return kubeConfig;
}
