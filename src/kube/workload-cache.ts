// One cluster's Deployments and HPAs as the controller observes them: a watch cache per
// namespace a workload lives in (started on the first read there, closed with the cluster's
// client), so the observe path costs no request per rollout per tick. Watching per namespace,
// not cluster-wide, keeps memory and RBAC to the namespaces that migrate; one watch per
// namespace rather than per Deployment (a field selector) keeps the watch count small when a
// namespace holds many workloads.

import type { Logger } from 'pino';
import type { WorkloadRef } from '../rollout/types.js';
import type {
  AppsV1Api,
  AutoscalingV2Api,
  KubeConfig,
  V1Deployment,
  V2HorizontalPodAutoscaler,
} from './client-node.js';
import type { KubeCaller } from './kube-call.js';
import { requestOptions } from './kube-call.js';
import { WatchCache, withoutBookkeeping } from './watch-cache.js';

export interface WorkloadCacheOptions {
  /** The cluster's name, for messages. */
  cluster: string;
  kubeConfig: KubeConfig;
  apps: AppsV1Api;
  autoscaling: AutoscalingV2Api;
  /** The lists go through the client's caller: its retries and per-attempt timeout. */
  caller: KubeCaller;
  requestTimeoutMs: number;
  restartDelayMs?: number;
  logger?: Logger;
}

interface NamespaceCaches {
  deployments: WatchCache<V1Deployment>;
  hpas: WatchCache<V2HorizontalPodAutoscaler>;
  /**
   * The HPAs by the Deployment they scale, as of `hpas.version`: made again on the first read
   * after a change, where each read used to copy and scan every HPA of the namespace.
   */
  hpaIndex?: { version: number; byTarget: Map<string, V2HorizontalPodAutoscaler> };
}

/** Whether a namespace's Deployments and HPAs are both synced now (false when not watched). */
function bothSynced(caches: NamespaceCaches | undefined): boolean {
  return (caches?.deployments.synced ?? false) && (caches?.hpas.synced ?? false);
}

/** A workload's Deployment and the HPA scaling it, as its cluster's caches hold them. */
export interface CachedWorkload {
  deployment: V1Deployment | undefined;
  hpa: V2HorizontalPodAutoscaler | undefined;
}

export class WorkloadCache {
  private readonly options: WorkloadCacheOptions;
  private readonly namespaces = new Map<string, NamespaceCaches>();
  /** Workload key -> listeners to its Deployment's and HPA's changes. */
  private readonly listeners = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(options: WorkloadCacheOptions) {
    this.options = options;
  }

  /**
   * The workload's Deployment and the HPA targeting it, from the caches. Waits for a namespace's
   * first sync (bounded by `signal`); throws StaleObservationError when a cache is not synced.
   */
  async read(ref: WorkloadRef, signal: AbortSignal): Promise<CachedWorkload> {
    const caches = this.caches(ref.namespace);
    if (!bothSynced(caches))
      await Promise.all([caches.deployments.whenSynced(signal), caches.hpas.whenSynced(signal)]);
    return this.cached(caches, ref);
  }

  /**
   * The same read without waiting, when both caches are synced now (the steady state): each
   * rollout reads both clusters every tick, and the wait's promises were a tenth of what a tick
   * allocated at 1,000 rollouts. Undefined when a read would have to wait or throw.
   */
  readSynced(ref: WorkloadRef): CachedWorkload | undefined {
    const caches = this.namespaces.get(ref.namespace);
    return caches && bothSynced(caches) ? this.cached(caches, ref) : undefined;
  }

  private cached(caches: NamespaceCaches, ref: WorkloadRef): CachedWorkload {
    return {
      deployment: caches.deployments.get(ref.namespace, ref.name),
      hpa: this.hpaIndex(caches).get(ref.name),
    };
  }

  private hpaIndex(caches: NamespaceCaches): Map<string, V2HorizontalPodAutoscaler> {
    const version = caches.hpas.version;
    if (caches.hpaIndex?.version === version) return caches.hpaIndex.byTarget;
    const byTarget = hpasByTarget(caches.hpas.list());
    caches.hpaIndex = { version, byTarget };
    return byTarget;
  }

  /** The Deployment as cached, if its namespace's cache is synced now (no wait, no throw). */
  peekDeployment(ref: WorkloadRef): V1Deployment | undefined {
    const caches = this.namespaces.get(ref.namespace);
    return caches?.deployments.synced ? caches.deployments.get(ref.namespace, ref.name) : undefined;
  }

  /**
   * `listener` hears each change of the workload's Deployment or of an HPA naming it, and each
   * time its namespace's caches turn stale or synced; starts the namespace's caches.
   */
  onChange(ref: WorkloadRef, listener: () => void): () => void {
    const key = `${ref.namespace}/${ref.name}`;
    const set = this.listeners.get(key) ?? new Set();
    set.add(listener);
    this.listeners.set(key, set);
    this.caches(ref.namespace);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  /** Whether the namespace's caches are both synced now. */
  synced(namespace: string): boolean {
    return bothSynced(this.namespaces.get(namespace));
  }

  /** Namespaces watched now (tests, the benchmark). */
  watchedNamespaces(): string[] {
    return [...this.namespaces.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.namespaces.values()];
    this.namespaces.clear();
    await Promise.all(all.flatMap((caches) => [caches.deployments.stop(), caches.hpas.stop()]));
  }

  private caches(namespace: string): NamespaceCaches {
    let caches = this.namespaces.get(namespace);
    if (caches) return caches;
    const { cluster, caller, apps, autoscaling } = this.options;
    const common = {
      kubeConfig: this.options.kubeConfig,
      requestTimeoutMs: this.options.requestTimeoutMs,
      ...(this.options.restartDelayMs !== undefined ? { restartDelayMs: this.options.restartDelayMs } : {}),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
    };
    caches = {
      deployments: new WatchCache<V1Deployment>({
        ...common,
        keep: keptDeployment,
        description: `deployments in namespace ${namespace} of cluster "${cluster}"`,
        path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
        list: (signal) =>
          caller.call({ verb: 'list', object: `deployments in namespace ${namespace}` }, signal, (s) =>
            apps.listNamespacedDeployment({ namespace }, requestOptions(s)),
          ),
      }),
      hpas: new WatchCache<V2HorizontalPodAutoscaler>({
        ...common,
        description: `HPAs in namespace ${namespace} of cluster "${cluster}"`,
        path: `/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers`,
        list: (signal) =>
          caller.call({ verb: 'list', object: `HPAs in namespace ${namespace}` }, signal, (s) =>
            autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace }, requestOptions(s)),
          ),
      }),
    };
    caches.deployments.onChange(({ object }) => this.tell(namespace, object.metadata?.name));
    caches.hpas.onChange(({ object, previous }) => {
      const target = object.spec?.scaleTargetRef?.name;
      this.tell(namespace, target);
      // Retargeted: the Deployment it scaled before has lost it.
      const before = previous?.spec?.scaleTargetRef?.name;
      if (before !== target) this.tell(namespace, before);
    });
    // A cache turning stale or synced again changes what every workload there may act on.
    for (const cache of [caches.deployments, caches.hpas])
      cache.onSyncChange(() => this.tellNamespace(namespace));
    this.namespaces.set(namespace, caches);
    if (!this.closed) {
      caches.deployments.start();
      caches.hpas.start();
    }
    return caches;
  }

  private tellNamespace(namespace: string): void {
    for (const [key, listeners] of this.listeners)
      if (key.startsWith(`${namespace}/`)) for (const listener of listeners) listener();
  }

  private tell(namespace: string, name: string | undefined): void {
    if (name === undefined) return;
    for (const listener of this.listeners.get(`${namespace}/${name}`) ?? []) listener();
  }
}

/** The HPA whose scaleTargetRef is this Deployment; the first by name if several claim it. */
export function hpaFor(
  ref: WorkloadRef,
  hpas: readonly V2HorizontalPodAutoscaler[],
): V2HorizontalPodAutoscaler | undefined {
  return hpasByTarget(hpas).get(ref.name);
}

/** Each Deployment's HPA (see hpaFor), by the Deployment's name. */
function hpasByTarget(hpas: readonly V2HorizontalPodAutoscaler[]): Map<string, V2HorizontalPodAutoscaler> {
  const byTarget = new Map<string, V2HorizontalPodAutoscaler>();
  for (const hpa of hpas) {
    const target = hpa.spec?.scaleTargetRef;
    const group = target?.apiVersion?.split('/')[0];
    if (target?.kind !== 'Deployment' || (group !== undefined && group !== 'apps')) continue;
    const held = byTarget.get(target.name);
    if (!held || (hpa.metadata?.name ?? '').localeCompare(held.metadata?.name ?? '') < 0)
      byTarget.set(target.name, hpa);
  }
  return byTarget;
}

/**
 * What the cache keeps of a Deployment: all but its bookkeeping (withoutBookkeeping), sent with
 * every Deployment of two clusters: observations, events and preflight read the spec, status,
 * labels, uid and resourceVersion.
 */
export function keptDeployment(deployment: V1Deployment): V1Deployment {
  const metadata = deployment.metadata && withoutBookkeeping(deployment.metadata);
  return metadata === deployment.metadata ? deployment : { ...deployment, metadata };
}
