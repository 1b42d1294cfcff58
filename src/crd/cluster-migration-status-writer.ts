// Writes what the CR source reports about a ClusterMigration (its conditions and its
// WorkloadMigrations' counts by phase) into its status subresource. Nothing resumes from this
// status, so a 409 is simply read again and retried; conditions of types not named are kept.

import { isDeepStrictEqual } from 'node:util';
import { CustomObjectsApi, type KubeConfig, PatchStrategy } from '@kubernetes/client-node';
import { ClustershiftError } from '../errors.js';
import { isNotFound, type KubeCaller, type RetryPolicy, requestOptions } from '../kube/kube-call.js';
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
    const target = migrationTarget(name);
    return this.caller.call(
      { verb: 'update', object: `status of ${where}`, retryConflicts: true },
      signal,
      async (s) => {
        const object = await this.read(name, s);
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
    return this.caller.call(
      { verb: 'update', object: `finalizers of ClusterMigration ${name}`, retryConflicts: true },
      signal,
      async (s) => {
        const object = await this.read(name, s);
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
