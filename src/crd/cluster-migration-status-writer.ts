// Writes what the CR source reports about a ClusterMigration (its conditions and its
// WorkloadMigrations' counts by phase) into its status subresource. Nothing resumes from this
// status, so a 409 is simply read again and retried; conditions of types not named are kept.

import { isDeepStrictEqual } from 'node:util';
import { ClustershiftError, MigrationNotFoundError } from '../errors.js';
import { CustomObjectsApi, type KubeConfig, PatchStrategy } from '../kube/client-node.js';
import { isNotFound, type KubeCaller, type RetryPolicy, requestOptions } from '../kube/kube-call.js';
import { annotationPatch } from '../migration/operator-annotations.js';
import type { Sleep } from '../timing.js';
import type { ObjectConditions } from './cr-workload-source.js';
import { finalizerPatch } from './finalizer-patch.js';
import { homeClusterCaller } from './home-cluster.js';
import { CLUSTER_MIGRATION } from './manifests.js';
import {
  API_VERSION,
  type ClusterMigrationObject,
  type ClusterMigrationStatus,
  GROUP,
  VERSION,
} from './schema.js';
import { mergeConditions } from './status.js';

/** The status fields the migration's progress reporter owns. */
export const PROGRESS_FIELDS = [
  'clusters',
  'trafficOnNew',
  'estimatedCompletionTime',
  'leftovers',
  'leftoverCount',
  'decommissionReady',
  'decommissionMessage',
] as const satisfies ReadonlyArray<keyof ClusterMigrationStatus>;

export type MigrationProgressStatus = Pick<ClusterMigrationStatus, (typeof PROGRESS_FIELDS)[number]>;

export interface ClusterMigrationStatusWriterOptions {
  /** The home cluster. */
  kubeConfig: KubeConfig;
  requestTimeoutMs: number;
  retry?: RetryPolicy;
  sleep?: Sleep;
}

export class ClusterMigrationStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly caller: KubeCaller;

  constructor(options: ClusterMigrationStatusWriterOptions) {
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.caller = homeClusterCaller(options);
  }

  /** Returns false when the status already says this (no write). */
  async write(update: ObjectConditions, now: number, signal: AbortSignal): Promise<boolean> {
    const name = update.name;
    const where = `ClusterMigration ${name}`;
    return this.readThenWrite(
      name,
      { verb: 'update', object: `status of ${where}` },
      signal,
      async (object, s) => {
        if (!object)
          throw new ClustershiftError(`${where} does not exist (deleted?); its status was not written`);
        const before: ClusterMigrationStatus = object.status ?? {};
        const generation = update.observedGeneration;
        const status: ClusterMigrationStatus = {
          ...before,
          ...(generation !== undefined ? { observedGeneration: generation } : {}),
          ...(update.counts ? { counts: update.counts } : {}),
          conditions: mergeConditions(
            before.conditions,
            update.conditions.map((c) =>
              generation !== undefined ? { ...c, observedGeneration: generation } : c,
            ),
            new Date(now).toISOString(),
          ),
        };
        if (isDeepStrictEqual(status, before)) return false;
        await this.replaceStatus(name, object, status, s);
        return true;
      },
    );
  }

  /**
   * Writes a migration's progress figures (src/migration/progress-reporter.ts): each field of
   * PROGRESS_FIELDS is set as given or removed when absent (an estimate without basis goes);
   * everything else in the status is kept, and so are the clusters' versions when the names
   * still match. Returns false when the status already says this (no write).
   */
  async writeProgress(
    name: string,
    progress: MigrationProgressStatus,
    signal: AbortSignal,
  ): Promise<boolean> {
    const where = `ClusterMigration ${name}`;
    const target = { group: GROUP, version: VERSION, plural: CLUSTER_MIGRATION.plural, name };
    return this.caller.call(
      { verb: 'update', object: `progress in the status of ${where}`, retryConflicts: true },
      signal,
      async (s) => {
        let object: ClusterMigrationObject;
        try {
          object = (await this.api.getClusterCustomObject(
            target,
            requestOptions(s),
          )) as ClusterMigrationObject;
        } catch (error) {
          if (isNotFound(error))
            throw new ClustershiftError(`${where} does not exist (deleted?); its progress was not written`);
          throw error;
        }
        const before: ClusterMigrationStatus = object.status ?? {};
        const status: ClusterMigrationStatus = { ...before };
        // The clusters are only ever renamed here, never removed (their versions are another's).
        for (const field of PROGRESS_FIELDS) if (field !== 'clusters') delete status[field];
        Object.assign(status, { ...progress, clusters: before.clusters });
        if (status.clusters === undefined) delete status.clusters;
        if (progress.clusters) {
          const keepVersion = (role: 'old' | 'new') => {
            const known = before.clusters?.[role];
            const named = progress.clusters![role];
            return known?.name === named.name && known.version !== undefined
              ? { ...named, version: known.version }
              : named;
          };
          status.clusters = { old: keepVersion('old'), new: keepVersion('new') };
        }
        if (isDeepStrictEqual(status, before)) return false;
        await this.api.replaceClusterCustomObjectStatus(
          {
            ...target,
            body: {
              apiVersion: API_VERSION,
              kind: CLUSTER_MIGRATION.kind,
              metadata: { name, resourceVersion: object.metadata?.resourceVersion ?? '' },
              status,
            },
          },
          requestOptions(s),
        );
        return true;
      },
    );
  }

  /**
   * Sets some of the whole-cluster fields of a ClusterMigration's status (`fields`: a field set
   * to undefined is removed) and merges `conditions`, keeping everything else as it is. Returns
   * false when the status already says this (no write).
   */
  async writeFields(
    name: string,
    fields: Partial<ClusterMigrationStatus>,
    conditions: ObjectConditions['conditions'],
    now: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const where = `ClusterMigration ${name}`;
    return this.readThenWrite(
      name,
      { verb: 'update', object: `status of ${where}` },
      signal,
      async (object, s) => {
        if (!object) return false;
        const before: ClusterMigrationStatus = object.status ?? {};
        const status: Record<string, unknown> = { ...before };
        for (const [key, value] of Object.entries(fields)) {
          if (value === undefined) delete status[key];
          else status[key] = value;
        }
        if (conditions.length > 0)
          status.conditions = mergeConditions(before.conditions, conditions, new Date(now).toISOString());
        if (isDeepStrictEqual(status, before)) return false;
        await this.replaceStatus(name, object, status, s);
        return true;
      },
    );
  }

  /**
   * Changes annotations of a ClusterMigration: `change` gets them as they are and answers the
   * values to set (undefined removes one), or throws to refuse. A merge patch guarded by the
   * resourceVersion read, retried on a conflict with a fresh read. Returns the object as read.
   */
  async changeAnnotations(
    name: string,
    change: (annotations: Readonly<Record<string, string>>) => Record<string, string | undefined>,
    signal: AbortSignal,
  ): Promise<ClusterMigrationObject> {
    const target = migrationTarget(name);
    return this.readThenWrite(
      name,
      { verb: 'patch', object: `annotations of ClusterMigration ${name}` },
      signal,
      async (object, s) => {
        if (!object) throw new MigrationNotFoundError(name);
        const before = object.metadata?.annotations;
        const patch = annotationPatch(object.metadata?.resourceVersion, before, change(before ?? {}));
        if (patch === undefined) return object;
        return (await this.api.patchClusterCustomObject(
          { ...target, body: patch },
          requestOptions(s, PatchStrategy.MergePatch),
        )) as ClusterMigrationObject;
      },
    );
  }

  /**
   * Adds or removes `finalizer` on a ClusterMigration (a GET, and a PUT only when it changes).
   * Returns whether it is now present; false also when the object is gone.
   */
  async setFinalizer(
    name: string,
    finalizer: string,
    present: boolean,
    signal: AbortSignal,
  ): Promise<boolean> {
    const target = migrationTarget(name);
    return this.readThenWrite(
      name,
      { verb: 'update', object: `finalizers of ClusterMigration ${name}` },
      signal,
      async (object, s) => {
        if (!object) return false;
        const finalizers = object.metadata?.finalizers ?? [];
        if (finalizers.includes(finalizer) === present) return present;
        const next = present ? [...finalizers, finalizer] : finalizers.filter((f) => f !== finalizer);
        await this.api.patchClusterCustomObject(
          { ...target, body: finalizerPatch(object.metadata?.resourceVersion, next) },
          requestOptions(s, PatchStrategy.JsonPatch),
        );
        return present;
      },
    );
  }

  /** One PUT of the status, guarded by the resourceVersion `object` was read at. */
  private async replaceStatus(
    name: string,
    object: ClusterMigrationObject,
    status: ClusterMigrationStatus | Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<void> {
    await this.api.replaceClusterCustomObjectStatus(
      {
        ...migrationTarget(name),
        body: {
          apiVersion: API_VERSION,
          kind: CLUSTER_MIGRATION.kind,
          metadata: { name, resourceVersion: object.metadata?.resourceVersion ?? '' },
          status,
        },
      },
      requestOptions(signal),
    );
  }

  /**
   * One read of ClusterMigration `name` and the write `change` makes of it (given undefined when
   * the object is gone), retried with a fresh read when the write meets a conflict.
   */
  private readThenWrite<T>(
    name: string,
    call: { verb: 'update' | 'patch'; object: string },
    signal: AbortSignal,
    change: (object: ClusterMigrationObject | undefined, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return this.caller.call({ ...call, retryConflicts: true }, signal, async (s) =>
      change(await this.read(name, s), s),
    );
  }

  /** One GET of the ClusterMigration (each try reads afresh: a 409 means it moved on); undefined when gone. */
  private async read(name: string, signal: AbortSignal): Promise<ClusterMigrationObject | undefined> {
    try {
      return (await this.api.getClusterCustomObject(
        migrationTarget(name),
        requestOptions(signal),
      )) as ClusterMigrationObject;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}

function migrationTarget(name: string) {
  return { group: GROUP, version: VERSION, plural: CLUSTER_MIGRATION.plural, name };
}
