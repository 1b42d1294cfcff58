// The old and new cluster of each ClusterMigration: clients built when the first workload of a
// migration needs them (its kubeconfig read from a Secret in clustershift's namespace in the home
// cluster, or the home cluster's own credentials), shared by its workloads, dropped when the last
// one goes. Two migrations with different pairs each get their own. A pair's clients watch what
// the rollouts observe (Deployments, HPAs, route objects); its watches stop when it is dropped.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, errorMessage } from '../errors.js';
import { type ClusterObjects, KubeObjects } from '../routers/kube-objects.js';
import type { ClusterAccess, MigrationSettings } from '../sources/workload-source.js';
import { CoreV1Api, KubeConfig } from './client-node.js';
import { KubeCaller, requestOptions } from './kube-call.js';
import { KubeClusterClient } from './kube-cluster-client.js';
import { reuseConnections } from './kubeconfig.js';

export interface ClusterPair {
  migration: string;
  clusters: MigrationSettings['clusters'];
  kube: { old: KubeConfig; new: KubeConfig };
  clients: { old: KubeClusterClient; new: KubeClusterClient };
  /** Each cluster's route objects, for the Kubernetes routers. */
  objects: ClusterObjects;
}

export interface ClusterPairsOptions {
  /** The home cluster: where the kubeconfig Secrets are, and the cluster an entry without one means. */
  home: KubeConfig;
  /** clustershift's own namespace in the home cluster. */
  namespace: string;
  requestTimeoutMs: number;
  /** Watch what the rollouts observe (default true); false reads it with a request per tick. */
  watch?: boolean;
  /** After a watch fails, list again after this long at first (default 1000 ms). */
  watchRestartDelayMs?: number;
  logger?: Logger;
}

interface Entry {
  pair: Promise<ClusterPair>;
  clusters: MigrationSettings['clusters'];
  holders: Set<string>;
}

export class ClusterPairs {
  private readonly options: ClusterPairsOptions;
  private readonly core: CoreV1Api;
  private readonly caller: KubeCaller;
  private readonly entries = new Map<string, Entry>();

  constructor(options: ClusterPairsOptions) {
    this.options = options;
    this.core = options.home.makeApiClient(CoreV1Api);
    this.caller = new KubeCaller({ cluster: 'home', requestTimeoutMs: options.requestTimeoutMs });
  }

  /**
   * The pair `migration` names, for the workload `holder`. A migration whose clusters changed
   * gets a fresh pair (the workloads still holding the old one keep it until they release it).
   */
  async acquire(migration: MigrationSettings, holder: string, signal: AbortSignal): Promise<ClusterPair> {
    const id = this.idOf(migration);
    let entry = this.entries.get(id);
    if (!entry) {
      const pair = this.build(migration, signal);
      entry = { pair, clusters: migration.clusters, holders: new Set() };
      this.entries.set(id, entry);
      // A pair that could not be built is not kept: the next acquire tries again.
      pair.catch(() => {
        if (this.entries.get(id) === entry) this.entries.delete(id);
      });
    }
    entry.holders.add(holder);
    return entry.pair;
  }

  /** `holder` no longer uses `migration`'s pair; the last holder's release drops it. */
  release(migration: MigrationSettings, holder: string): void {
    const id = this.idOf(migration);
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.holders.delete(holder);
    if (entry.holders.size > 0) return;
    this.entries.delete(id);
    void entry.pair.then(closePair, () => undefined);
  }

  /** Drops every pair and stops their watches (the process stopping). */
  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((entry) => entry.pair.then(closePair, () => undefined)));
  }

  /** Pairs in use now (for the API and tests). */
  size(): number {
    return this.entries.size;
  }

  private idOf(migration: MigrationSettings): string {
    return `${migration.name}\u0000${JSON.stringify(migration.clusters)}`;
  }

  private async build(migration: MigrationSettings, signal: AbortSignal): Promise<ClusterPair> {
    const [oldKube, newKube] = await Promise.all([
      this.kubeConfigOf(migration.name, 'old', migration.clusters.old, signal),
      this.kubeConfigOf(migration.name, 'new', migration.clusters.new, signal),
    ]);
    const { requestTimeoutMs, logger } = this.options;
    const watch =
      this.options.watch === false
        ? undefined
        : {
            ...(this.options.watchRestartDelayMs !== undefined
              ? { restartDelayMs: this.options.watchRestartDelayMs }
              : {}),
            ...(logger ? { logger } : {}),
          };
    const client = (access: ClusterAccess, kubeConfig: KubeConfig) =>
      new KubeClusterClient({ name: access.name, kubeConfig, requestTimeoutMs, ...(watch ? { watch } : {}) });
    const objects = (cluster: 'old' | 'new', kubeConfig: KubeConfig) =>
      new KubeObjects({ cluster, kubeConfig, requestTimeoutMs, ...(watch ? { watch } : {}) });
    return {
      migration: migration.name,
      clusters: migration.clusters,
      kube: { old: oldKube, new: newKube },
      clients: { old: client(migration.clusters.old, oldKube), new: client(migration.clusters.new, newKube) },
      objects: { old: objects('old', oldKube), new: objects('new', newKube) },
    };
  }

  private async kubeConfigOf(
    migration: string,
    role: 'old' | 'new',
    access: ClusterAccess,
    signal: AbortSignal,
  ): Promise<KubeConfig> {
    const where = `ClusterMigration ${migration} spec.clusters.${role}`;
    if (!access.kubeconfigSecret) {
      if (access.context === undefined) return this.options.home;
      const kubeConfig = reuseConnections(new KubeConfig());
      kubeConfig.loadFromString(this.options.home.exportConfig());
      return withContext(kubeConfig, access.context, where);
    }
    const { name, key } = access.kubeconfigSecret;
    const secret = await this.caller.call(
      { verb: 'get', object: `Secret ${this.options.namespace}/${name} (${where})` },
      signal,
      (s) => this.core.readNamespacedSecret({ name, namespace: this.options.namespace }, requestOptions(s)),
    );
    const encoded = secret.data?.[key];
    if (encoded === undefined)
      throw new ConfigError(
        `${where}: Secret ${this.options.namespace}/${name} has no key "${key}" (it has: ${Object.keys(secret.data ?? {}).join(', ') || 'none'})`,
      );
    const kubeConfig = reuseConnections(new KubeConfig());
    try {
      kubeConfig.loadFromString(Buffer.from(encoded, 'base64').toString('utf8'));
    } catch (error) {
      // The Secret's text is credentials: say what is wrong, never echo it.
      throw new ConfigError(
        `${where}: Secret ${this.options.namespace}/${name} key "${key}" is not a kubeconfig: ${errorMessage(error).split('\n')[0]}`,
      );
    }
    if (access.context !== undefined) return withContext(kubeConfig, access.context, where);
    if (!kubeConfig.getCurrentCluster())
      throw new ConfigError(
        `${where}: the kubeconfig in Secret ${this.options.namespace}/${name} has no current context with a cluster; set spec.clusters.${role}.context`,
      );
    return kubeConfig;
  }
}

async function closePair(pair: ClusterPair): Promise<void> {
  await Promise.all([
    pair.clients.old.close(),
    pair.clients.new.close(),
    pair.objects.old.close(),
    pair.objects.new.close(),
  ]);
}

function withContext(kubeConfig: KubeConfig, context: string, where: string): KubeConfig {
  const known = kubeConfig.getContexts().map((c) => c.name);
  if (!known.includes(context))
    throw new ConfigError(
      `${where}: context "${context}" is not in the kubeconfig (it has: ${known.join(', ') || 'none'})`,
    );
  kubeConfig.setCurrentContext(context);
  return kubeConfig;
}

/** Whether two migrations' cluster pairs are the same. */
export const samePair = (a: MigrationSettings | undefined, b: MigrationSettings | undefined): boolean =>
  a?.name === b?.name && isDeepStrictEqual(a?.clusters, b?.clusters);
