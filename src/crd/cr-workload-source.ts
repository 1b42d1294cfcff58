// The workloads defined as WorkloadMigrations in the home cluster, watched with client-node's
// informers (list, then watch from that resourceVersion; a 410 Gone re-lists). Each object is
// validated and resolved against its ClusterMigration (src/crd/resolve.ts); what cannot run
// becomes conditions for the caller to write on the object, never an exception. The set of
// workloads and its changes are what the configuration file gives too (WorkloadSource).

import { setTimeout as delay } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { errorMessage, KubeError } from '../errors.js';
import {
  CustomObjectsApi,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  ListWatch,
  type ObjectCache,
  Watch,
} from '../kube/client-node.js';
import { requestOptions } from '../kube/kube-call.js';
import { withoutBookkeeping } from '../kube/watch-cache.js';
import { SetIndex } from '../set-index.js';
import type {
  MigrationSettings,
  SourcedWorkload,
  WorkloadChange,
  WorkloadSource,
} from '../sources/workload-source.js';
import { abortableSleep, timeoutSignal } from '../timing.js';
import { isDiscoveredByAny } from './discovery-plan.js';
import { CLUSTER_MIGRATION, WORKLOAD_MIGRATION } from './manifests.js';
import {
  decide,
  type MigrationResolution,
  migrationConditions,
  type ResolveOptions,
  resolveClusterMigration,
  resolveWorkloadMigration,
  type SourceCondition,
  type WorkloadResolution,
} from './resolve.js';
import {
  type ClusterMigrationObject,
  GROUP,
  type PhaseCounts,
  phaseCounts,
  VERSION,
  type WorkloadMigrationObject,
} from './schema.js';

/** Conditions the caller should write on one object (WorkloadMigrationStateStore.writeConditions for a WorkloadMigration). */
export interface ObjectConditions {
  kind: 'ClusterMigration' | 'WorkloadMigration';
  /** Absent for a ClusterMigration (cluster-scoped). */
  namespace?: string;
  name: string;
  /** The metadata.generation the conditions speak about. */
  observedGeneration?: number;
  conditions: SourceCondition[];
  /** ClusterMigration only: its WorkloadMigrations by phase, from their status. */
  counts?: PhaseCounts;
  /** WorkloadMigration only: the wave it moves in (status.wave), when its migration has waves. */
  wave?: string;
}

export interface CrWorkloadSourceOptions extends ResolveOptions {
  /** The home cluster. */
  kubeConfig: KubeConfig;
  /** Whether a workload's rollout is active: its migration, workload and route then stay fixed. */
  isActive: (key: string) => boolean;
  logger?: Logger;
  /** After a watch or list fails, wait this long before listing again (default 2000 ms). */
  restartDelayMs?: number;
  /** Per list call (default 30 s). */
  requestTimeoutMs?: number;
}

const objectKey = (object: { metadata?: { namespace?: string; name?: string } }) =>
  `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

const createdAt = (object: WorkloadMigrationObject | undefined): string => {
  const time = object?.metadata?.creationTimestamp;
  return time instanceof Date ? time.toISOString() : String(time ?? '');
};

type Watched = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

const migrationOf = (object: WorkloadMigrationObject | undefined): string | undefined => {
  const name = (object?.spec as { migration?: unknown } | undefined)?.migration;
  return typeof name === 'string' ? name : undefined;
};

const discovered = (object: WorkloadMigrationObject | undefined): boolean =>
  object !== undefined &&
  isDiscoveredByAny({
    namespace: object.metadata?.namespace ?? '',
    name: object.metadata?.name ?? '',
    ...(object.metadata?.labels ? { labels: object.metadata.labels } : {}),
    ...(object.metadata?.ownerReferences ? { ownerReferences: object.metadata.ownerReferences } : {}),
  });

export class CrWorkloadSource implements WorkloadSource {
  private readonly options: CrWorkloadSourceOptions;
  private readonly api: CustomObjectsApi;
  private readonly listeners = new Set<(change: WorkloadChange) => void>();
  private readonly conditionListeners = new Set<(update: ObjectConditions) => void>();
  private readonly migrationListeners = new Set<(name: string) => void>();
  private readonly migrationObjects = new Map<string, ClusterMigrationObject>();
  private readonly objectListeners = new Set<() => void>();
  private readonly migrations = new Map<string, MigrationResolution>();
  private readonly migrationGeneration = new Map<string, number>();
  private readonly objects = new Map<string, WorkloadMigrationObject>();
  /** ClusterMigration name -> the keys of the objects in `objects` naming it. */
  private readonly objectsByMigration = new SetIndex();
  private readonly resolutions = new Map<string, WorkloadResolution>();
  /** Rollout key (namespace/Deployment) -> what runs now, and the object (namespace/name) it comes from. */
  private readonly running = new Map<string, SourcedWorkload>();
  private readonly ownerOf = new Map<string, string>();
  /** The reverse of ownerOf: object key -> the rollout key it runs. */
  private readonly owns = new Map<string, string>();
  /** Rollout key -> the objects whose spec resolves to it. */
  private readonly claims = new SetIndex();
  /** Informers that listed once: an error after that restarts them in the background. */
  private readonly listed = new Set<Watched>();
  /** Kinds whose watch failed and has not listed again yet: what they hold may be stale. */
  private readonly broken = new Set<string>();
  /** Object key -> the conditions last reported, so an unchanged object reports nothing. */
  private readonly reported = new Map<string, ObjectConditions>();
  private migrationInformer?: Watched;
  private workloadInformer?: Watched;
  private synced = false;
  private stopped = false;

  constructor(options: CrWorkloadSourceOptions) {
    this.options = options;
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  workloads(): ReadonlyMap<string, SourcedWorkload> {
    return this.running;
  }

  subscribe(listener: (change: WorkloadChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** `listener` hears every object whose conditions should change, from the first full lists on. */
  onConditions(listener: (update: ObjectConditions) => void): () => void {
    this.conditionListeners.add(listener);
    return () => this.conditionListeners.delete(listener);
  }

  /** `listener` hears the name of every ClusterMigration that changed or went (e.g. its annotations). */
  onMigrationChange(listener: (name: string) => void): () => void {
    this.migrationListeners.add(listener);
    return () => this.migrationListeners.delete(listener);
  }

  /** A ClusterMigration as last listed or watched, and how it resolved. */
  migration(name: string): { object: ClusterMigrationObject; resolution: MigrationResolution } | undefined {
    const object = this.migrationObjects.get(name);
    const resolution = this.migrations.get(name);
    return object && resolution ? { object, resolution } : undefined;
  }

  /** Every WorkloadMigration in the home cluster, as last listed or watched (for discovery). */
  workloadMigrations(): Iterable<WorkloadMigrationObject> {
    return this.objects.values();
  }

  /** Every ClusterMigration by name, resolved (for discovery). */
  migrationResolutions(): ReadonlyMap<string, MigrationResolution> {
    return this.migrations;
  }

  /** `listener` hears that some ClusterMigration or WorkloadMigration changed, after the first lists. */
  onObjectsChanged(listener: () => void): () => void {
    this.objectListeners.add(listener);
    return () => this.objectListeners.delete(listener);
  }

  /** The WorkloadMigration a rollout comes from (for the status store and Events). */
  objectFor(key: string): { namespace: string; name: string; uid?: string } | undefined {
    const origin = this.running.get(key)?.origin;
    return origin?.kind === 'WorkloadMigration'
      ? { namespace: origin.namespace, name: origin.name, ...(origin.uid ? { uid: origin.uid } : {}) }
      : undefined;
  }

  /** The ClusterMigrations as last listed or watched, status included (what the API shows). */
  clusterMigrations(): ClusterMigrationObject[] {
    return (this.migrationInformer?.list() ?? []) as ClusterMigrationObject[];
  }

  /** Each ClusterMigration that resolves: its cluster pair and pacing. */
  migrationSettings(): MigrationSettings[] {
    return [...this.migrations.values()].flatMap((resolution) =>
      resolution.ok ? [resolution.settings] : [],
    );
  }

  /**
   * Lists both kinds and watches them. Migrations come first, so no WorkloadMigration is
   * reported as naming a missing one only because its migration was not listed yet. A failed
   * list is retried every restartDelayMs until `signal` aborts.
   */
  async start(signal: AbortSignal): Promise<void> {
    this.stopped = false;
    this.migrationInformer = this.informer<ClusterMigrationObject>(CLUSTER_MIGRATION.plural, {
      upsert: (object) => this.migrationChanged(object),
      remove: (object) => this.migrationGone(object),
    });
    await this.startUntilListed(this.migrationInformer, CLUSTER_MIGRATION.kind, signal);
    this.workloadInformer = this.informer<WorkloadMigrationObject>(WORKLOAD_MIGRATION.plural, {
      upsert: (object) => this.workloadChanged(object),
      remove: (object) => this.workloadGone(object),
    });
    await this.startUntilListed(this.workloadInformer, WORKLOAD_MIGRATION.kind, signal);
    this.synced = true;
    for (const name of this.migrations.keys()) this.reportMigration(name);
    for (const key of this.objects.keys()) this.resolve(key);
    for (const listener of this.objectListeners) this.guard(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.migrationInformer?.stop(), this.workloadInformer?.stop()]);
  }

  /**
   * False while a watch is down and not yet listed again: the workloads may be stale. The
   * controller can hold changes to them until it is true again.
   */
  watchesHealthy(): boolean {
    return this.broken.size === 0;
  }

  /** Resolve every object again (e.g. when the workloadExists lookup learned something new). */
  recheck(): void {
    for (const key of [...this.objects.keys()]) this.resolve(key);
  }

  // ---- the informers --------------------------------------------------------------------

  private informer<T extends ClusterMigrationObject | WorkloadMigrationObject>(
    plural: string,
    /** `upsert` returns false when discovery need not hear of the change (see onObjectsChanged). */
    handlers: { upsert: (object: T) => boolean; remove: (object: T) => void },
  ): Watched {
    const timeoutMs = this.options.requestTimeoutMs ?? 30_000;
    // WorkloadMigrations are cached trimmed (see cachedWorkloadMigration); ClusterMigrations
    // whole, their status being what the API shows.
    const keep = plural === WORKLOAD_MIGRATION.plural ? cachedWorkloadMigration : undefined;
    const list = async () => {
      const listed = (await this.api.listClusterCustomObject(
        { group: GROUP, version: VERSION, plural },
        requestOptions(timeoutSignal(timeoutMs)),
      )) as { items: KubernetesObject[]; metadata?: { resourceVersion?: string } };
      return keep ? { ...listed, items: listed.items.map(keep) } : listed;
    };
    const watch = keep ? new KeepingWatch(this.options.kubeConfig, keep) : new Watch(this.options.kubeConfig);
    const informer = new ListWatch<KubernetesObject>(
      `/apis/${GROUP}/${VERSION}/${plural}`,
      watch,
      list,
      false,
    );
    const changed = () => {
      if (this.synced) for (const listener of this.objectListeners) this.guard(listener);
    };
    const upsert = (object: KubernetesObject) => {
      let relevant = true;
      this.guard(() => {
        relevant = handlers.upsert(object as T);
      });
      if (relevant) changed();
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (object) => this.guard(() => handlers.remove(object as T), changed));
    // The informer stops on an error other than 410 Gone and a watch timeout: list again later.
    let failures = 0;
    informer.on('error', (error) => {
      if (this.stopped || !this.listed.has(informer)) return;
      failures++;
      this.broken.add(plural);
      this.options.logger?.warn({ err: error, plural }, `watch of ${plural} failed; listing again`);
      // A timer that does not keep the process alive: a stopped source must not hold it open.
      void delay(this.options.restartDelayMs ?? 2_000, undefined, { ref: false }).then(async () => {
        if (this.stopped) return;
        const before = failures;
        await informer.start();
        // A failed list reports through 'error' again (which schedules the next try): only a
        // start without a new failure has listed everything afresh.
        if (failures === before) this.broken.delete(plural);
      });
    });
    return informer;
  }

  /** One object's trouble must not stop the watch of all the others. */
  private guard(handle: () => void, then?: () => void): void {
    try {
      handle();
    } catch (error) {
      this.options.logger?.error({ err: error }, 'a migration object could not be handled');
    }
    then?.();
  }

  private async startUntilListed(informer: Watched, kind: string, signal: AbortSignal) {
    for (;;) {
      let failure: unknown;
      const onError = (error: unknown) => {
        failure = error;
      };
      informer.on('error', onError);
      try {
        await informer.start();
      } finally {
        informer.off('error', onError);
      }
      if (failure === undefined) {
        this.listed.add(informer);
        return;
      }
      if (signal.aborted)
        throw new KubeError(`home cluster: listing ${kind}s failed: ${errorMessage(failure)}`, undefined, {
          cause: failure,
        });
      // The start waits for this list: say why, or a stuck start looks like a hang.
      this.options.logger?.warn(
        { err: failure, kind },
        `home cluster: listing ${kind}s failed: ${errorMessage(failure)}; listing again in ${this.options.restartDelayMs ?? 2_000} ms`,
      );
      await abortableSleep(this.options.restartDelayMs ?? 2_000, signal).catch(() => {});
      if (signal.aborted)
        throw new KubeError(`home cluster: listing ${kind}s failed: ${errorMessage(failure)}`, undefined, {
          cause: failure,
        });
    }
  }

  // ---- ClusterMigrations ----------------------------------------------------------------

  /** Always of interest to discovery: a migration's spec is what it follows. */
  private migrationChanged(object: ClusterMigrationObject): boolean {
    const name = object.metadata?.name ?? '';
    const resolution = resolveClusterMigration(object);
    const before = this.migrations.get(name);
    this.migrations.set(name, resolution);
    this.migrationObjects.set(name, object);
    this.reportMigration(name, object.metadata?.generation);
    if (!isDeepStrictEqual(before, resolution)) this.resolveMigrationsWorkloads(name);
    for (const listener of this.migrationListeners) listener(name);
    return true;
  }

  private migrationGone(object: ClusterMigrationObject): void {
    const name = object.metadata?.name ?? '';
    this.migrations.delete(name);
    this.migrationObjects.delete(name);
    this.reported.delete(`/${name}`);
    this.resolveMigrationsWorkloads(name);
    for (const listener of this.migrationListeners) listener(name);
  }

  private resolveMigrationsWorkloads(migration: string): void {
    for (const key of [...this.objectsByMigration.get(migration)]) this.resolve(key);
  }

  /** `objects` and its index by migration, changed together. */
  private setObject(key: string, object: WorkloadMigrationObject | undefined): void {
    const before = migrationOf(this.objects.get(key));
    const after = migrationOf(object);
    if (before !== after && before !== undefined) this.objectsByMigration.delete(before, key);
    if (object) this.objects.set(key, object);
    else this.objects.delete(key);
    if (after !== undefined && object) this.objectsByMigration.add(after, key);
  }

  private reportMigration(name: string, generation?: number): void {
    const resolution = this.migrations.get(name);
    if (!resolution) return;
    const observed =
      generation ?? (resolution.ok ? resolution.settings.generation : this.migrationGeneration.get(name));
    if (generation !== undefined) this.migrationGeneration.set(name, generation);
    // Only this migration's objects: every status write of every WorkloadMigration comes here.
    const statuses: Array<WorkloadMigrationObject['status']> = [];
    for (const key of this.objectsByMigration.get(name)) statuses.push(this.objects.get(key)?.status);
    this.report({
      kind: 'ClusterMigration',
      name,
      ...(observed !== undefined ? { observedGeneration: observed } : {}),
      conditions: migrationConditions(resolution),
      counts: phaseCounts(statuses),
    });
  }

  // ---- WorkloadMigrations ---------------------------------------------------------------

  /** Returns whether anything discovery reads changed (not a status write within a step). */
  private workloadChanged(object: WorkloadMigrationObject): boolean {
    const key = objectKey(object);
    const before = this.objects.get(key);
    this.setObject(key, object);
    // A status write (ours) bumps resourceVersion, not generation: nothing to resolve again.
    const sameSpec =
      before !== undefined &&
      before.metadata?.generation === object.metadata?.generation &&
      before.metadata?.deletionTimestamp === object.metadata?.deletionTimestamp &&
      isDeepStrictEqual(before.spec, object.spec) &&
      // The wave comes from the labels and the clustershift.io/wave annotation.
      isDeepStrictEqual(before.metadata?.labels, object.metadata?.labels) &&
      isDeepStrictEqual(before.metadata?.annotations, object.metadata?.annotations);
    if (!sameSpec || !this.synced) this.resolve(key);
    // Its phase may have changed (a status write): the migration's counts follow. Most writes
    // are a check within a step, which leaves the counts as they are.
    if (migrationOf(before) !== migrationOf(object) || before?.status?.phase !== object.status?.phase)
      this.recount(before, object);
    return (
      !sameSpec ||
      before?.status?.phase !== object.status?.phase ||
      before?.status?.weight !== object.status?.weight ||
      !isDeepStrictEqual(before?.metadata?.labels, object.metadata?.labels) ||
      !isDeepStrictEqual(before?.metadata?.ownerReferences, object.metadata?.ownerReferences)
    );
  }

  private recount(...objects: Array<WorkloadMigrationObject | undefined>): void {
    const names = new Set(objects.map(migrationOf).filter((name): name is string => name !== undefined));
    for (const name of names) this.reportMigration(name);
  }

  private workloadGone(object: WorkloadMigrationObject): void {
    const key = objectKey(object);
    this.setObject(key, undefined);
    this.reported.delete(key);
    this.resolve(key);
    this.recount(object);
  }

  /** The rollout key an object runs now, if any. */
  private ownedKey(objectKey: string): string | undefined {
    return this.owns.get(objectKey);
  }

  private setOwner(rolloutKey: string, objectKey: string, workload: SourcedWorkload): void {
    const before = this.ownerOf.get(rolloutKey);
    if (before !== undefined && before !== objectKey) this.owns.delete(before);
    this.ownerOf.set(rolloutKey, objectKey);
    this.owns.set(objectKey, rolloutKey);
    this.running.set(rolloutKey, workload);
  }

  private clearOwner(rolloutKey: string): SourcedWorkload | undefined {
    const owner = this.ownerOf.get(rolloutKey);
    if (owner !== undefined) this.owns.delete(owner);
    this.ownerOf.delete(rolloutKey);
    const previous = this.running.get(rolloutKey);
    this.running.delete(rolloutKey);
    return previous;
  }

  private setResolution(objectKey: string, resolution: WorkloadResolution | undefined): void {
    const before = this.resolutions.get(objectKey);
    if (before?.ok) this.claims.delete(before.workload.key, objectKey);
    if (!resolution) {
      this.resolutions.delete(objectKey);
      return;
    }
    this.resolutions.set(objectKey, resolution);
    if (resolution.ok) this.claims.add(resolution.workload.key, objectKey);
  }

  /** Resolve one WorkloadMigration again and settle the Deployments it did or does name. */
  private resolve(key: string): void {
    const object = this.objects.get(key);
    const touched = new Set<string>();
    const owned = this.ownedKey(key);
    if (owned !== undefined) touched.add(owned);
    const before = this.resolutions.get(key);
    if (before?.ok) touched.add(before.workload.key);
    if (!object) {
      this.setResolution(key, undefined);
    } else {
      const migrationName = (object.spec as { migration?: unknown } | undefined)?.migration;
      const migration = typeof migrationName === 'string' ? this.migrations.get(migrationName) : undefined;
      const resolution = resolveWorkloadMigration(object, migration, this.options);
      this.setResolution(key, resolution);
      if (resolution.ok) touched.add(resolution.workload.key);
      else if (owned === undefined)
        this.reportWorkload(object, decide(undefined, resolution, false).conditions);
    }
    for (const rolloutKey of touched) this.settle(rolloutKey);
  }

  /**
   * Which WorkloadMigration runs one Deployment's rollout, and with what. An active rollout
   * stays with the object it started from; otherwise the oldest object naming the Deployment
   * runs it (creationTimestamp, then namespace/name: the same answer after every restart, which
   * matters because that object's status holds the rollout) and any other is told it is a
   * duplicate.
   */
  private settle(rolloutKey: string): void {
    const owner = this.ownerOf.get(rolloutKey);
    const active = this.options.isActive(rolloutKey);
    const claimants = [...this.claims.get(rolloutKey)]
      .filter((objectKey) => {
        // An object holding another Deployment's active rollout does not take a second one.
        const other = this.ownedKey(objectKey);
        return other === undefined || other === rolloutKey || !this.options.isActive(other);
      })
      .sort((a, b) => {
        // A team's own WorkloadMigration wins over one discovery created for the same Deployment.
        const byAuthor = Number(discovered(this.objects.get(a))) - Number(discovered(this.objects.get(b)));
        if (byAuthor !== 0) return byAuthor;
        const byAge = createdAt(this.objects.get(a)).localeCompare(createdAt(this.objects.get(b)));
        return byAge !== 0 ? byAge : a.localeCompare(b);
      });
    const winner = owner !== undefined && active && this.objects.has(owner) ? owner : claimants[0];
    if (owner !== undefined && owner !== winner) {
      const previous = this.clearOwner(rolloutKey);
      if (previous) this.emit({ type: 'remove', key: rolloutKey, previous });
      const lost = this.objects.get(owner);
      const resolution = this.resolutions.get(owner);
      if (lost && resolution && !resolution.ok)
        this.reportWorkload(lost, decide(undefined, resolution, false).conditions);
    }
    if (winner !== undefined) {
      const object = this.objects.get(winner);
      const resolution = this.resolutions.get(winner);
      if (!object || !resolution) return;
      const previous = owner === winner ? this.running.get(rolloutKey) : undefined;
      const decision = decide(previous, resolution, active);
      if (decision.run) {
        const before = this.running.get(rolloutKey);
        this.setOwner(rolloutKey, winner, decision.run);
        if (!isDeepStrictEqual(before, decision.run))
          this.emit({ type: 'upsert', workload: decision.run, ...(before ? { previous: before } : {}) });
      } else if (owner === winner) {
        const before = this.clearOwner(rolloutKey);
        if (before) this.emit({ type: 'remove', key: rolloutKey, previous: before });
      }
      this.reportWorkload(object, decision.conditions);
    }
    for (const loser of claimants) {
      const object = this.objects.get(loser);
      if (loser === winner || !object) continue;
      this.reportWorkload(object, [
        {
          type: 'Accepted',
          status: 'False',
          reason: 'Duplicate',
          message: `WorkloadMigration ${winner} already migrates Deployment ${rolloutKey}; delete one of them`,
        },
        {
          type: 'ResolvedRefs',
          status: 'True',
          reason: 'ResolvedRefs',
          message: 'the migration and route resolve',
        },
      ]);
    }
  }

  private reportWorkload(object: WorkloadMigrationObject, conditions: SourceCondition[]): void {
    const generation = object.metadata?.generation;
    const resolution = this.resolutions.get(objectKey(object));
    const wave = resolution?.ok ? resolution.workload.wave : undefined;
    this.report({
      kind: 'WorkloadMigration',
      namespace: object.metadata?.namespace ?? '',
      name: object.metadata?.name ?? '',
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      conditions,
      ...(wave !== undefined ? { wave } : {}),
    });
  }

  private report(update: ObjectConditions): void {
    const key = `${update.namespace ?? ''}/${update.name}`;
    if (isDeepStrictEqual(this.reported.get(key), update)) return;
    if (!this.synced) return;
    this.reported.set(key, update);
    for (const listener of this.conditionListeners) listener(update);
  }

  private emit(change: WorkloadChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/**
 * What the cache keeps of a WorkloadMigration: its metadata (without managedFields and kubectl
 * apply's copy of the object), its spec,
 * and of its status only the phase and weight (a migration's counts, discovery's view). The
 * rollout in the status belongs to the state store, which lists and reads it itself: a copy of
 * every object's checks, history and conditions here cost kilobytes per WorkloadMigration.
 */
export function cachedWorkloadMigration(object: KubernetesObject): KubernetesObject {
  const { metadata, status, ...rest } = object as WorkloadMigrationObject;
  const meta = withoutBookkeeping(
    (metadata ?? {}) as NonNullable<WorkloadMigrationObject['metadata']> & {
      managedFields?: unknown;
    },
  );
  const kept: Partial<NonNullable<WorkloadMigrationObject['status']>> = {};
  if (status?.phase !== undefined) kept.phase = status.phase;
  if (status?.weight !== undefined) kept.weight = status.weight;
  return {
    ...rest,
    ...(metadata ? { metadata: meta } : {}),
    ...(status ? { status: kept } : {}),
  } as KubernetesObject;
}

/** A watch whose objects are passed through `keep` before the informer caches them. */
class KeepingWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly keep: (object: KubernetesObject) => KubernetesObject,
  ) {
    super(config);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, object, watchObj) =>
        callback(
          phase,
          // ERROR carries a Status, BOOKMARK only a resourceVersion: nothing to trim.
          phase === 'ERROR' || phase === 'BOOKMARK' ? object : this.keep(object as KubernetesObject),
          watchObj,
        ),
      done,
    );
  }
}
