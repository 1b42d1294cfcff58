// The watch side of discovery: a list-and-watch of one cluster's objects that lists again
// after a failure, and the views of Deployments and WorkloadMigrations the plan is made from.

import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import {
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  type ObjectCache,
  type V1Deployment,
} from '../kube/client-node.js';
import type { PodTemplate } from '../rollout/parity.js';
import type { DeploymentView, WorkloadMigrationView } from './discovery-plan.js';
import type { WorkloadMigrationObject } from './schema.js';

type Watched = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

/** One list-and-watch of a cluster's objects, listed again after a failure. */
export class WatchedList {
  readonly informer: Watched;
  listed = false;
  broken: string | undefined;
  private stopped = false;

  constructor(
    kubeConfig: KubeConfig,
    path: string,
    list: () => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>,
    private readonly onChange: () => void,
    private readonly restartDelayMs: number,
    private readonly logger: Logger | undefined,
    private readonly what: string,
  ) {
    this.informer = makeInformer<KubernetesObject>(kubeConfig, path, list);
    for (const event of ['add', 'update', 'delete'] as const) this.informer.on(event, () => this.onChange());
    this.informer.on('error', (error) => {
      if (this.stopped) return;
      this.broken = errorMessage(error);
      this.logger?.warn({ err: error }, `discovery: the watch of ${this.what} failed; listing again`);
      this.onChange();
      void delay(this.restartDelayMs, undefined, { ref: false }).then(() => this.begin());
    });
  }

  async begin(): Promise<void> {
    if (this.stopped) return;
    const before = this.broken;
    await this.informer.start();
    // A failed list reports through 'error' (which schedules the next try).
    if (this.broken === before) {
      this.listed = true;
      this.broken = undefined;
      this.onChange();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }
}

export const deploymentView = (object: KubernetesObject): DeploymentView => {
  const deployment = object as V1Deployment;
  return {
    namespace: deployment.metadata?.namespace ?? '',
    name: deployment.metadata?.name ?? '',
    ...(deployment.metadata?.labels ? { labels: deployment.metadata.labels } : {}),
    ...(deployment.metadata?.annotations ? { annotations: deployment.metadata.annotations } : {}),
    ...(deployment.spec?.template ? { template: deployment.spec.template as PodTemplate } : {}),
  };
};

export const workloadMigrationView = (object: WorkloadMigrationObject): WorkloadMigrationView => {
  const meta = object.metadata ?? {};
  const workload = (object.spec as { workload?: { name?: unknown } } | undefined)?.workload?.name;
  return {
    namespace: meta.namespace ?? '',
    name: meta.name ?? '',
    ...(typeof workload === 'string' ? { workload } : {}),
    ...(meta.labels ? { labels: meta.labels } : {}),
    ...(meta.annotations ? { annotations: meta.annotations } : {}),
    ...(meta.ownerReferences ? { ownerReferences: meta.ownerReferences } : {}),
    ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
    spec: object.spec,
    ...(object.status?.phase ? { phase: object.status.phase } : {}),
    ...(object.status?.weight !== undefined ? { weight: object.status.weight } : {}),
  };
};
