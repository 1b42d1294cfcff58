// Rollout state of CR-defined workloads, kept in each WorkloadMigration's status subresource:
// `kubectl get wlm` shows what the controller resumes from. Every write is a PUT of /status
// carrying the resourceVersion this store last saw, so of two writers exactly one wins; the
// loser gets StateConflictError and must re-read (load or loadAll) before writing again, as
// with the ConfigMap store. The CR source's conditions go through the same store (writeConditions)
// so its writes never make the rollout's next save look like another writer's.

import { isDeepStrictEqual } from 'node:util';
import { ClustershiftError, KubeError, StateConflictError } from '../errors.js';
import { CustomObjectsApi, type KubeConfig, PatchStrategy } from '../kube/client-node.js';
import {
  httpStatusOf,
  isNotFound,
  type KubeCaller,
  type RetryPolicy,
  requestOptions,
} from '../kube/kube-call.js';
import type { RolloutState } from '../rollout/types.js';
import type { StateStore } from '../state/state-store.js';
import type { Sleep } from '../timing.js';
import { finalizerPatch } from './finalizer-patch.js';
import { homeClusterCaller } from './home-cluster.js';
import { WORKLOAD_MIGRATION } from './manifests.js';
import {
  API_VERSION,
  type Condition,
  GROUP,
  VERSION,
  type WorkloadMigrationObject,
  type WorkloadMigrationStatus,
} from './schema.js';
import { fromStatus, mergeConditions, toStatus } from './status.js';

export interface ObjectRef {
  namespace: string;
  name: string;
}

/** A WorkloadMigration as this store last saw it. */
export interface SeenObject extends ObjectRef {
  uid?: string;
  resourceVersion: string;
  /** As read, or as this store last wrote it (what it sent; the server stores that as JSON). */
  status: WorkloadMigrationStatus;
}

/**
 * A status as the API server stores it: its JSON. What this store sent can hold values JSON
 * leaves out (an undefined field); compared as stored, only another writer's status differs.
 */
const asStored = (status: WorkloadMigrationStatus): unknown => JSON.parse(JSON.stringify(status));

export interface WorkloadMigrationStateStoreOptions {
  /** The home cluster, where the WorkloadMigrations live. */
  kubeConfig: KubeConfig;
  requestTimeoutMs: number;
  /**
   * The WorkloadMigration holding a rollout that has no state yet (the CR source knows). By
   * default the one in the workload's namespace named like its Deployment.
   */
  objectFor?: (rolloutKey: string, state: RolloutState) => ObjectRef | undefined;
  /** Default 4 attempts, 200 ms base delay, 5 s cap (DEFAULT_RETRY). */
  retry?: RetryPolicy;
  sleep?: Sleep;
}

export interface ConditionUpdate {
  /** The metadata.generation the conditions speak about; also written as status.observedGeneration. */
  observedGeneration?: number;
  conditions: Array<Omit<Condition, 'lastTransitionTime'>>;
  /** The migration's wave it moves in (status.wave); absent: none (the migration has no waves). */
  wave?: string;
}

const PLURAL = WORKLOAD_MIGRATION.plural;
const where = (ref: ObjectRef) => `WorkloadMigration ${ref.namespace}/${ref.name}`;
const objectKey = (ref: ObjectRef) => `${ref.namespace}/${ref.name}`;

export class WorkloadMigrationStateStore implements StateStore {
  private readonly api: CustomObjectsApi;
  private readonly caller: KubeCaller;
  private readonly objectFor: (rolloutKey: string, state: RolloutState) => ObjectRef | undefined;
  /** Per rollout key: the object holding its state, as last read or written. */
  private readonly seen = new Map<string, SeenObject>();
  /** Object key (namespace/name) -> rollout key, for the CR source's condition writes. */
  private readonly rolloutOf = new Map<string, string>();

  constructor(options: WorkloadMigrationStateStoreOptions) {
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.caller = homeClusterCaller(options);
    this.objectFor =
      options.objectFor ??
      ((_key, state) => ({ namespace: state.workload.namespace, name: state.workload.name }));
  }

  async loadAll(signal: AbortSignal): Promise<RolloutState[]> {
    const list = (await this.crdCall(
      { verb: 'list', object: 'WorkloadMigrations in every namespace' },
      signal,
      (s) =>
        this.api.listClusterCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL },
          requestOptions(s),
        ),
    )) as { items?: WorkloadMigrationObject[] };
    this.seen.clear();
    this.rolloutOf.clear();
    // Two objects can hold a state for one Deployment (one was pointed at another Deployment
    // after it finished, and a second object took the first one's over): the one the CR source
    // says runs it wins, else the later revision.
    const byKey = new Map<string, { state: RolloutState; object: WorkloadMigrationObject }>();
    for (const object of list.items ?? []) {
      const state = fromStatus(object.status, where(this.seenOf(object)));
      if (!state) continue;
      const other = byKey.get(state.key);
      if (other && !this.preferred(state, object, other)) continue;
      byKey.set(state.key, { state, object });
    }
    for (const { state, object } of byKey.values()) this.keep(state.key, this.seenOf(object));
    return [...byKey.values()].map(({ state }) => state);
  }

  private preferred(
    state: RolloutState,
    object: WorkloadMigrationObject,
    other: { state: RolloutState; object: WorkloadMigrationObject },
  ): boolean {
    const owner = this.objectFor(state.key, state);
    const isOwner = (candidate: WorkloadMigrationObject) =>
      owner !== undefined &&
      candidate.metadata?.namespace === owner.namespace &&
      candidate.metadata?.name === owner.name;
    if (isOwner(object) !== isOwner(other.object)) return isOwner(object);
    return state.revision > other.state.revision;
  }

  /** One rollout's state as stored now (and remembered for the next save), for re-reading after a conflict. */
  async load(ref: ObjectRef, signal: AbortSignal): Promise<RolloutState | undefined> {
    const object = await this.read(ref, signal);
    if (!object) return undefined;
    return this.remember(object);
  }

  async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    const seen = this.seen.get(state.key) ?? (await this.firstSave(state, signal));
    const status = toStatus(state, seen.status);
    const resourceVersion = await this.putStatus(seen, status, `rollout ${state.key}`, signal);
    this.keep(state.key, { ...seen, resourceVersion, status });
  }

  /**
   * Merge the CR source's conditions into a WorkloadMigration's status. Returns false when
   * nothing would change (no write). On an object holding a rollout this store saved, a 409 is
   * a StateConflictError as for save; on any other, the write is re-read and retried.
   */
  async writeConditions(
    ref: ObjectRef,
    update: ConditionUpdate,
    now: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const merge = (status: WorkloadMigrationStatus | undefined): WorkloadMigrationStatus => {
      const conditions = update.conditions.map((c) =>
        update.observedGeneration !== undefined ? { ...c, observedGeneration: update.observedGeneration } : c,
      );
      const { wave: _wave, ...rest } = status ?? {};
      return {
        ...rest,
        ...(update.observedGeneration !== undefined ? { observedGeneration: update.observedGeneration } : {}),
        ...(update.wave !== undefined ? { wave: update.wave } : {}),
        conditions: mergeConditions(status?.conditions, conditions, new Date(now).toISOString()),
      };
    };
    const rolloutKey = this.rolloutOf.get(objectKey(ref));
    const seen = rolloutKey !== undefined ? this.seen.get(rolloutKey) : undefined;
    if (rolloutKey !== undefined && seen) {
      const status = merge(seen.status);
      if (isDeepStrictEqual(status, seen.status)) return false;
      const resourceVersion = await this.putStatus(seen, status, `rollout ${rolloutKey}`, signal);
      this.keep(rolloutKey, { ...seen, resourceVersion, status });
      return true;
    }
    // Nobody here holds this object's rollout: read it fresh, and on a 409 read it again.
    return this.crdCall(
      { verb: 'update', object: `status of ${where(ref)}`, retryConflicts: true },
      signal,
      async (s) => {
        const object = await this.getObject(ref, s);
        if (!object)
          throw new ClustershiftError(
            `${where(ref)} does not exist (deleted?); its conditions were not written`,
          );
        const before = object.status ?? {};
        const status = merge(before);
        if (isDeepStrictEqual(status, before)) return false;
        await this.api.replaceNamespacedCustomObjectStatus(
          {
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            ...ref,
            body: this.body(ref, object.metadata?.resourceVersion ?? '', status),
          },
          requestOptions(s),
        );
        return true;
      },
    );
  }

  /**
   * Adds or removes `finalizer` on a WorkloadMigration (a GET, and a PUT only when it changes).
   * Returns whether it is now present; false also when the object is gone. The write bumps the
   * object's resourceVersion: when this store's last save is what the GET shows, the new
   * resourceVersion is kept for the next save; otherwise (another writer) the next save still
   * conflicts, as it must.
   */
  async setFinalizer(
    ref: ObjectRef,
    finalizer: string,
    present: boolean,
    signal: AbortSignal,
  ): Promise<boolean> {
    return this.crdCall(
      { verb: 'update', object: `finalizers of ${where(ref)}`, retryConflicts: true },
      signal,
      async (s) => {
        const object = await this.getObject(ref, s);
        if (!object) return false;
        const finalizers = object.metadata?.finalizers ?? [];
        if (finalizers.includes(finalizer) === present) return present;
        const next = present ? [...finalizers, finalizer] : finalizers.filter((f) => f !== finalizer);
        // A patch (the controller's RBAC has patch, not update, on the objects), guarded by the
        // resourceVersion read: finalizers others added meanwhile are not dropped.
        const written = (await this.api.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            ...ref,
            body: finalizerPatch(object.metadata?.resourceVersion, next),
          },
          requestOptions(s, PatchStrategy.JsonPatch),
        )) as WorkloadMigrationObject | undefined;
        const rolloutKey = this.rolloutOf.get(objectKey(ref));
        const seen = rolloutKey !== undefined ? this.seen.get(rolloutKey) : undefined;
        const resourceVersion = written?.metadata?.resourceVersion;
        if (
          rolloutKey !== undefined &&
          seen &&
          resourceVersion &&
          seen.resourceVersion === object.metadata?.resourceVersion
        )
          this.keep(rolloutKey, { ...seen, resourceVersion });
        return present;
      },
    );
  }

  /** The object holding a rollout, for Events against it (its uid makes `kubectl describe` find them). */
  objectOf(rolloutKey: string): SeenObject | undefined {
    return this.seen.get(rolloutKey);
  }

  private async firstSave(state: RolloutState, signal: AbortSignal): Promise<SeenObject> {
    const ref = this.objectFor(state.key, state);
    if (!ref)
      throw new ClustershiftError(
        `rollout ${state.key}: no WorkloadMigration holds it; nothing to save into`,
      );
    const object = await this.read(ref, signal);
    if (!object)
      throw new StateConflictError(
        `rollout ${state.key}: ${where(ref)} does not exist (deleted?); re-read the workloads before saving`,
      );
    const existing = fromStatus(object.status, where(ref));
    if (existing)
      throw new StateConflictError(
        `rollout ${state.key}: ${where(ref)} already holds rollout state revision ${existing.revision} written by another writer; re-read the state before saving`,
      );
    return this.seenOf(object);
  }

  private async putStatus(
    seen: SeenObject,
    status: WorkloadMigrationStatus,
    what: string,
    signal: AbortSignal,
  ): Promise<string> {
    try {
      return await this.putStatusOnce(seen, status, what, signal);
    } catch (error) {
      if (!(error instanceof StateConflictError) || httpStatusOf(error.cause) !== 409) throw error;
      // A write to the object's metadata (a finalizer, `kubectl delete` setting
      // deletionTimestamp, a label) moves resourceVersion too. Only a status other than the one
      // this store last wrote means another writer: then the conflict stands.
      const current = await this.getObject(seen, signal);
      if (!current || !isDeepStrictEqual(current.status ?? {}, asStored(seen.status))) throw error;
      if (seen.uid && current.metadata?.uid && current.metadata.uid !== seen.uid) throw error;
      return this.putStatusOnce(
        { ...seen, resourceVersion: current.metadata?.resourceVersion ?? '' },
        status,
        what,
        signal,
      );
    }
  }

  private async putStatusOnce(
    seen: SeenObject,
    status: WorkloadMigrationStatus,
    what: string,
    signal: AbortSignal,
  ): Promise<string> {
    try {
      const written = (await this.caller.call(
        { verb: 'update', object: `status of ${where(seen)} for ${what}` },
        signal,
        (s) =>
          this.api.replaceNamespacedCustomObjectStatus(
            {
              group: GROUP,
              version: VERSION,
              plural: PLURAL,
              namespace: seen.namespace,
              name: seen.name,
              body: this.body(seen, seen.resourceVersion, status, seen.uid),
            },
            requestOptions(s),
          ),
      )) as WorkloadMigrationObject;
      // The server's echo of the status is dropped: kept until the next write (a minute or so),
      // the parsed echoes were 9.5 MiB at 1,000 rollouts, all promoted to the old generation.
      // What was sent is kept instead (3 MiB): its entries are the ones toStatus shares.
      return written.metadata?.resourceVersion ?? '';
    } catch (error) {
      const code = httpStatusOf(error);
      if (code === 409)
        throw new StateConflictError(
          `${what}: ${where(seen)} changed after resourceVersion ${seen.resourceVersion} (another writer saved first); re-read the state before saving`,
          { cause: error },
        );
      if (code === 404) {
        this.forget(seen);
        throw new StateConflictError(
          `${what}: ${where(seen)} was deleted after this store read it; re-read the state before saving`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  // Only status counts on a /status write; metadata names the object and guards the write.
  private body(
    ref: ObjectRef,
    resourceVersion: string,
    status: WorkloadMigrationStatus,
    uid?: string,
  ): WorkloadMigrationObject {
    return {
      apiVersion: API_VERSION,
      kind: WORKLOAD_MIGRATION.kind,
      metadata: { name: ref.name, namespace: ref.namespace, resourceVersion, ...(uid ? { uid } : {}) },
      status,
    };
  }

  private async read(ref: ObjectRef, signal: AbortSignal): Promise<WorkloadMigrationObject | undefined> {
    return this.crdCall({ verb: 'get', object: where(ref) }, signal, (s) => this.getObject(ref, s));
  }

  private async getObject(ref: ObjectRef, signal: AbortSignal): Promise<WorkloadMigrationObject | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject(
        { group: GROUP, version: VERSION, plural: PLURAL, ...ref },
        requestOptions(signal),
      )) as WorkloadMigrationObject;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** A call whose 404 means the CRD itself is missing, which deserves its own hint. */
  private async crdCall<T>(
    what: { verb: string; object: string; retryConflicts?: boolean },
    signal: AbortSignal,
    attempt: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.caller.call(what, signal, attempt);
    } catch (error) {
      if (error instanceof KubeError && error.httpStatus === 404)
        throw new KubeError(
          `${error.message} (is the WorkloadMigration CRD installed in the home cluster? kubectl apply -f charts/clustershift/files/crds/)`,
          404,
          { cause: error },
        );
      throw error;
    }
  }

  private seenOf(object: WorkloadMigrationObject): SeenObject {
    const meta = object.metadata ?? {};
    return {
      namespace: meta.namespace ?? '',
      name: meta.name ?? '',
      ...(meta.uid ? { uid: meta.uid } : {}),
      resourceVersion: meta.resourceVersion ?? '',
      status: object.status ?? {},
    };
  }

  /** Parse an object's status and, when it holds a rollout, remember it for the next save. */
  private remember(object: WorkloadMigrationObject): RolloutState | undefined {
    const seen = this.seenOf(object);
    const state = fromStatus(object.status, where(seen));
    if (state) this.keep(state.key, seen);
    return state;
  }

  private keep(rolloutKey: string, seen: SeenObject): void {
    this.seen.set(rolloutKey, seen);
    this.rolloutOf.set(objectKey(seen), rolloutKey);
  }

  private forget(seen: SeenObject): void {
    const rolloutKey = this.rolloutOf.get(objectKey(seen));
    this.rolloutOf.delete(objectKey(seen));
    if (rolloutKey !== undefined) this.seen.delete(rolloutKey);
  }
}
