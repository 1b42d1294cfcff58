// The demo's home cluster: a third fake API server holding the clustershift.io CRDs, the
// ClusterMigrations and WorkloadMigrations, and the Secrets with each cluster's kubeconfig (a
// plain http URL: the fake servers need no credentials).

import { stringify } from 'yaml';
import type { Clock } from '../clock.js';
import { clusterMigrationCrd, workloadMigrationCrd } from '../crd/manifests.js';
import { API_VERSION } from '../crd/schema.js';
import { FakeApiServer, type KubeObject } from './fake-apiserver.js';

/** A ClusterMigration from `old` to `new`, each reached through its `<name>-kubeconfig` Secret. */
export function clusterMigrationObject(
  name: string,
  clusters: { old: string; new: string },
  spec: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterMigration',
    metadata: { name },
    spec: {
      clusters: {
        old: { name: clusters.old, kubeconfigSecret: { name: `${clusters.old}-kubeconfig` } },
        new: { name: clusters.new, kubeconfigSecret: { name: `${clusters.new}-kubeconfig` } },
      },
      ...spec,
    },
  };
}

export class SandboxHome {
  private constructor(
    readonly server: FakeApiServer,
    readonly url: string,
    /** clustershift's namespace here: where the kubeconfig Secrets are. */
    readonly namespace: string,
  ) {}

  /** `installCrds: false` leaves installing the CRDs to the caller (e.g. kubectl apply of the chart's). */
  static async start(options: {
    namespace: string;
    installCrds?: boolean;
    /** A virtual clock (the benchmarks); default the system's. */
    clock?: Clock;
  }): Promise<SandboxHome> {
    const server = new FakeApiServer(options.clock ? { clock: options.clock } : {});
    if (options.installCrds ?? true) {
      server.put(clusterMigrationCrd() as KubeObject);
      server.put(workloadMigrationCrd() as KubeObject);
    }
    const { url } = await server.start();
    return new SandboxHome(server, url, options.namespace);
  }

  /** A Secret `name` whose `kubeconfig` key reaches the API server at `url`. */
  putKubeconfigSecret(name: string, cluster: string, url: string): void {
    const kubeconfig = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster, cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'anonymous', user: {} }],
      contexts: [{ name: cluster, context: { cluster, user: 'anonymous' } }],
      'current-context': cluster,
    });
    this.server.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: this.namespace },
      type: 'Opaque',
      data: { kubeconfig: Buffer.from(kubeconfig).toString('base64') },
    } as KubeObject);
  }

  /** A ClusterMigration from `old` to `new`, each reached through its kubeconfig Secret. */
  putMigration(
    name: string,
    clusters: { old: string; new: string },
    spec: Record<string, unknown> = {},
  ): void {
    this.server.put(clusterMigrationObject(name, clusters, spec));
  }

  putWorkloadMigration(
    namespace: string,
    name: string,
    migration: string,
    spec: Record<string, unknown> = {},
    annotations: Record<string, string> = {},
  ): void {
    this.server.put({
      apiVersion: API_VERSION,
      kind: 'WorkloadMigration',
      metadata: { name, namespace, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
      spec: {
        migration,
        workload: { name },
        // The demo binds its own simulated route; the object still names a real route type.
        route: { type: 'haproxy', backend: `${namespace}-${name}`, oldServer: 'old', newServer: 'new' },
        ...spec,
      },
    } as KubeObject);
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}
