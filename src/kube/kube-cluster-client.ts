// ClusterClient over @kubernetes/client-node 2: one per cluster, every call with a timeout and
// retries (see kube-call.ts).

import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import { KubeError } from '../errors.js';
import type { PodTemplate } from '../rollout/parity.js';
import {
  type ClusterFacts,
  type WorkloadObservation,
  type WorkloadRef,
  workloadKey,
} from '../rollout/types.js';
import { abortableSleep, type Sleep } from '../timing.js';
import {
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  PolicyV1Api,
  type V1Deployment,
  type V1PodDisruptionBudgetList,
  type V1ServiceList,
  type V2HorizontalPodAutoscaler,
  VersionApi,
} from './client-node.js';
import type { ClusterClient, KubeEvent } from './cluster-client.js';
import { isNotFound, KubeCaller, type RetryPolicy, requestOptions } from './kube-call.js';
import { KubeEventWriter } from './kube-event-writer.js';
import { buildKubeConfig } from './kubeconfig.js';
import { isEmptySelector, type LabelSelector, matchesLabelSelector } from './label-selector.js';
import { hpaFor, WorkloadCache } from './workload-cache.js';

export interface KubeClusterClientOptions {
  /** The cluster's name from the configuration. */
  name: string;
  kubeconfigPath?: string;
  context?: string;
  /** A plain http URL without auth (tests, the demo); wins over kubeconfigPath. */
  server?: string;
  /** An already built KubeConfig; wins over the three above. */
  kubeConfig?: KubeConfig;
  requestTimeoutMs: number;
  /** Default 4 attempts, 200 ms base delay, 5 s cap (DEFAULT_RETRY). */
  retry?: RetryPolicy;
  sleep?: Sleep;
  /** Event timestamps. */
  clock?: Clock;
  /**
   * Read Deployments and HPAs from watch caches (one per namespace read, see workload-cache.ts)
   * instead of a GET and a LIST per read; close() stops them. Writes read afresh either way.
   */
  watch?: { restartDelayMs?: number; logger?: Logger };
}

export class KubeClusterClient implements ClusterClient {
  readonly name: string;
  private readonly apps: AppsV1Api;
  private readonly autoscaling: AutoscalingV2Api;
  private readonly caller: KubeCaller;
  private readonly sleep: Sleep;
  private readonly events: KubeEventWriter;
  private cache: WorkloadCache | undefined;
  private readonly core: CoreV1Api;
  private readonly policy: PolicyV1Api;
  private readonly versionApi: VersionApi;
  private readonly clock: Clock;
  private readonly versions: SharedReads<string>;
  private readonly namespaceLists: SharedReads<NamespaceObjects>;

  constructor(options: KubeClusterClientOptions) {
    this.name = options.name;
    const kubeConfig = options.kubeConfig ?? buildKubeConfig(options);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.autoscaling = kubeConfig.makeApiClient(AutoscalingV2Api);
    this.sleep = options.sleep ?? abortableSleep;
    this.caller = new KubeCaller({
      cluster: options.name,
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.retry ? { retry: options.retry } : {}),
      sleep: this.sleep,
    });
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.policy = kubeConfig.makeApiClient(PolicyV1Api);
    this.versionApi = kubeConfig.makeApiClient(VersionApi);
    this.clock = options.clock ?? systemClock;
    this.versions = new SharedReads({ clock: this.clock, ttlMs: VERSION_TTL_MS });
    this.namespaceLists = new SharedReads({ clock: this.clock, ttlMs: NAMESPACE_OBJECTS_TTL_MS });
    this.events = new KubeEventWriter({ core: this.core, caller: this.caller, clock: this.clock });
    this.cache = options.watch
      ? new WorkloadCache({
          cluster: options.name,
          kubeConfig,
          apps: this.apps,
          autoscaling: this.autoscaling,
          caller: this.caller,
          requestTimeoutMs: options.requestTimeoutMs,
          ...(options.watch.restartDelayMs !== undefined
            ? { restartDelayMs: options.watch.restartDelayMs }
            : {}),
          ...(options.watch.logger ? { logger: options.watch.logger } : {}),
        })
      : undefined;
  }

  async getWorkload(ref: WorkloadRef, signal: AbortSignal): Promise<WorkloadObservation> {
    if (this.cache) {
      const { deployment, hpa } = await this.cache.read(ref, signal);
      return observationOf(deployment, hpa);
    }
    const deployment = await this.readDeployment(ref, signal);
    if (!deployment) return observationOf(undefined, undefined);
    return observationOf(deployment, await this.findHpa(ref, signal));
  }

  peekWorkload(ref: WorkloadRef): WorkloadObservation | undefined {
    const cached = this.cache?.readSynced(ref);
    return cached && cachedObservationOf(cached.deployment, cached.hpa);
  }

  /** With `watch`: `listener` hears each change of the workload's Deployment or HPA in this cluster. */
  onWorkloadChange(ref: WorkloadRef, listener: () => void): () => void {
    return this.cache?.onChange(ref, listener) ?? (() => {});
  }

  /** Stops the watch caches (a cluster pair that is gone); the client still answers uncached. */
  async close(): Promise<void> {
    const cache = this.cache;
    this.cache = undefined;
    await cache?.close();
  }

  /** The Deployment as the watch last delivered it (tests: has the cache caught up?). */
  cachedDeployment(ref: WorkloadRef): V1Deployment | undefined {
    return this.cache?.peekDeployment(ref);
  }

  /** Whether the namespace's Deployments and HPAs are watched and synced now. */
  watchSynced(namespace: string): boolean {
    return this.cache?.synced(namespace) ?? false;
  }

  /** Namespaces whose Deployments and HPAs are watched (tests, the benchmark). */
  watchedNamespaces(): string[] {
    return this.cache?.watchedNamespaces() ?? [];
  }

  async scale(ref: WorkloadRef, replicas: number, signal: AbortSignal): Promise<void> {
    // A merge patch without a resourceVersion is idempotent, so retrying it is safe.
    await this.caller.call(
      { verb: 'scale', object: `deployment ${workloadKey(ref)} to ${replicas}` },
      signal,
      (s) =>
        this.apps.patchNamespacedDeploymentScale(
          { name: ref.name, namespace: ref.namespace, body: { spec: { replicas } } },
          requestOptions(s, PatchStrategy.MergePatch),
        ),
    );
  }

  async setHpaMinReplicas(ref: WorkloadRef, minReplicas: number, signal: AbortSignal): Promise<void> {
    // Read-modify-write: the patch carries the resourceVersion it was computed from, so a
    // concurrent change of maxReplicas is a 409 and the whole attempt runs again on fresh data.
    await this.caller.call(
      { verb: 'patch', object: `the HPA of deployment ${workloadKey(ref)}`, retryConflicts: true },
      signal,
      async (s) => {
        const hpa = await this.listHpaFor(ref, s);
        if (!hpa?.metadata?.name) {
          throw new KubeError(
            `cluster "${this.name}": no HorizontalPodAutoscaler (autoscaling/v2) in namespace ${ref.namespace} targets deployment ${ref.name}; scale the deployment instead`,
            404,
          );
        }
        const spec: { minReplicas: number; maxReplicas?: number } = { minReplicas };
        if ((hpa.spec?.maxReplicas ?? 0) < minReplicas) spec.maxReplicas = minReplicas;
        await this.autoscaling.patchNamespacedHorizontalPodAutoscaler(
          {
            name: hpa.metadata.name,
            namespace: ref.namespace,
            body: { metadata: { resourceVersion: hpa.metadata.resourceVersion }, spec },
          },
          requestOptions(s, PatchStrategy.MergePatch),
        );
      },
    );
  }

  async recordEvent(ref: WorkloadRef, event: KubeEvent, signal: AbortSignal): Promise<void> {
    // A missing workload still gets its event (e.g. "preflight failed: not found"), without a uid.
    // The watched copy names it as well as a GET would (an event's uid is informational).
    const deployment = this.cache?.peekDeployment(ref) ?? (await this.readDeployment(ref, signal));
    await this.events.create(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: ref.name,
        namespace: ref.namespace,
        ...(deployment?.metadata?.uid ? { uid: deployment.metadata.uid } : {}),
        ...(deployment?.metadata?.resourceVersion
          ? { resourceVersion: deployment.metadata.resourceVersion }
          : {}),
      },
      event,
      `deployment ${workloadKey(ref)}`,
      signal,
    );
  }

  async readClusterFacts(ref: WorkloadRef, signal: AbortSignal): Promise<ClusterFacts> {
    const [version, deployment, { services, budgets }] = await Promise.all([
      this.gitVersion(signal),
      this.cache
        ? this.cache.read(ref, signal).then(({ deployment }) => deployment)
        : this.readDeployment(ref, signal),
      this.namespaceObjects(ref.namespace, signal),
    ]);
    const labels = deployment?.spec?.template?.metadata?.labels ?? {};
    // A Service without a selector is not the workload's (its endpoints are managed by hand);
    // an empty PDB selector picks every pod of the namespace, so it is not this workload's either.
    const picks = (selector: LabelSelector | undefined) =>
      selector !== undefined && !isEmptySelector(selector) && matchesLabelSelector(selector, labels);
    const names = (items: Array<{ metadata?: { name?: string } }>) =>
      items.map((item) => item.metadata?.name ?? '').sort();
    return {
      cluster: this.name,
      version,
      services: names(
        services.items.filter((service) =>
          picks(service.spec?.selector ? { matchLabels: service.spec.selector } : undefined),
        ),
      ),
      podDisruptionBudgets: names(budgets.items.filter((budget) => picks(budget.spec?.selector))),
    };
  }

  /**
   * The Services and PodDisruptionBudgets of a namespace, listed once for every preflight of
   * that namespace within NAMESPACE_OBJECTS_TTL_MS (a migration's workloads start together, and
   * a preflight reads them on each of its ticks): one list a namespace, not one a workload.
   */
  private namespaceObjects(namespace: string, signal: AbortSignal): Promise<NamespaceObjects> {
    return this.namespaceLists.get(namespace, () =>
      Promise.all([
        this.caller.call({ verb: 'list', object: `Services in namespace ${namespace}` }, signal, (s) =>
          this.core.listNamespacedService({ namespace }, requestOptions(s)),
        ),
        this.caller.call(
          { verb: 'list', object: `PodDisruptionBudgets in namespace ${namespace}` },
          signal,
          (s) => this.policy.listNamespacedPodDisruptionBudget({ namespace }, requestOptions(s)),
        ),
      ]).then(([services, budgets]) => ({ services, budgets })),
    );
  }

  /**
   * The API server's gitVersion, read at most once a minute (it changes only with an upgrade);
   * the preflights of a tick share one read.
   */
  private gitVersion(signal: AbortSignal): Promise<string> {
    return this.versions.get('', () =>
      this.caller
        .call({ verb: 'get', object: 'the API server version' }, signal, (s) =>
          this.versionApi.getCode(requestOptions(s)),
        )
        .then((info) => info.gitVersion),
    );
  }

  private readDeployment(ref: WorkloadRef, signal: AbortSignal): Promise<V1Deployment | undefined> {
    return this.caller.call({ verb: 'get', object: `deployment ${workloadKey(ref)}` }, signal, async (s) => {
      try {
        return await this.apps.readNamespacedDeployment(
          { name: ref.name, namespace: ref.namespace },
          requestOptions(s),
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    });
  }

  private findHpa(ref: WorkloadRef, signal: AbortSignal): Promise<V2HorizontalPodAutoscaler | undefined> {
    return this.caller.call({ verb: 'list', object: `HPAs in namespace ${ref.namespace}` }, signal, (s) =>
      this.listHpaFor(ref, s),
    );
  }

  /** The HPA whose scaleTargetRef is this Deployment; the first by name if several claim it. */
  private async listHpaFor(
    ref: WorkloadRef,
    signal: AbortSignal,
  ): Promise<V2HorizontalPodAutoscaler | undefined> {
    const list = await this.autoscaling.listNamespacedHorizontalPodAutoscaler(
      { namespace: ref.namespace },
      requestOptions(signal),
    );
    return hpaFor(ref, list.items);
  }
}

/** What the controller sees of a Deployment (absent: `exists: false`) and the HPA targeting it. */
/**
 * Per watched Deployment object (a watch event replaces it, never changes it), its observation
 * with the HPA it was made with: every tick peeks every rollout's workload in both clusters, and
 * made afresh each time they were a good share of a tick's garbage. Frozen: shared by every read.
 */
const observed = new WeakMap<
  V1Deployment,
  { hpa: V2HorizontalPodAutoscaler | undefined; observation: WorkloadObservation }
>();
const MISSING: WorkloadObservation = Object.freeze(observationOf(undefined, undefined));

function cachedObservationOf(
  deployment: V1Deployment | undefined,
  hpa: V2HorizontalPodAutoscaler | undefined,
): WorkloadObservation {
  if (!deployment) return MISSING;
  const known = observed.get(deployment);
  if (known && known.hpa === hpa) return known.observation;
  const observation = observationOf(deployment, hpa);
  Object.freeze(observation.images);
  if (observation.hpa) Object.freeze(observation.hpa);
  Object.freeze(observation);
  observed.set(deployment, { hpa, observation });
  return observation;
}

function observationOf(
  deployment: V1Deployment | undefined,
  hpa: V2HorizontalPodAutoscaler | undefined,
): WorkloadObservation {
  if (!deployment) return { exists: false, replicas: 0, readyReplicas: 0, images: {} };
  const podSpec = deployment.spec?.template?.spec;
  // Init containers count too: a changed init image changes the application. Names are unique
  // across both lists within a pod, so one map holds them all.
  const images: Record<string, string> = {};
  for (const container of [...(podSpec?.initContainers ?? []), ...(podSpec?.containers ?? [])]) {
    images[container.name] = container.image ?? '';
  }
  return {
    exists: true,
    replicas: deployment.spec?.replicas ?? 1,
    readyReplicas: deployment.status?.readyReplicas ?? 0,
    images,
    ...(deployment.spec?.template ? { podTemplate: deployment.spec.template as PodTemplate } : {}),
    ...(hpa
      ? {
          hpa: {
            name: hpa.metadata?.name ?? '',
            minReplicas: hpa.spec?.minReplicas ?? 1,
            maxReplicas: hpa.spec?.maxReplicas ?? 0,
            currentReplicas: hpa.status?.currentReplicas ?? 0,
          },
        }
      : {}),
  };
}

const VERSION_TTL_MS = 60_000;
/** About one tick: a preflight sees a Service or PDB created since within seconds. */
const NAMESPACE_OBJECTS_TTL_MS = 5_000;

interface NamespaceObjects {
  services: V1ServiceList;
  budgets: V1PodDisruptionBudgetList;
}

/**
 * Reads shared by their callers for `ttlMs` on the clock: the first caller's load runs and the
 * others get its promise, in flight or answered; a failed load is forgotten, so the next caller
 * reads again.
 */
class SharedReads<V> {
  readonly #reads = new Map<string, { readAt: number; value: Promise<V> }>();

  constructor(private readonly options: { clock: Clock; ttlMs: number }) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const now = this.options.clock.now();
    const known = this.#reads.get(key);
    if (known && now - known.readAt < this.options.ttlMs) return known.value;
    const value = load();
    this.#reads.set(key, { readAt: now, value });
    value.catch(() => {
      if (this.#reads.get(key)?.value === value) this.#reads.delete(key);
    });
    return value;
  }
}
