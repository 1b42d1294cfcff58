// SMI router (Linkerd multicluster): the weights of the local service and the new cluster's
// mirrored service (`<service>-<cluster>`) in a TrafficSplit, written with the object's
// resourceVersion so no other writer is overwritten.

import type { RouteConfig, RouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError } from '../errors.js';
import {
  agreedPercent,
  type ClusterObjects,
  type CustomObject,
  type CustomObjectRef,
  checkPercent,
  isRecord,
  namespaceOf,
} from './kube-objects.js';
import type { TrafficRouter } from './router.js';

type SmiRoute = RouteOf<'smi'>;

export interface SmiRouterOptions {
  clusters: ClusterObjects;
}

/**
 * Weights: split.smi-spec.io/v1alpha2 backend weights are integers; the router writes
 * `new = w, old = 100 - w`, so every whole percent is exact. A third backend keeps its weight;
 * the percent is always new / (old + new). Everything but the two weights is written back as read.
 */
export class SmiRouter implements TrafficRouter {
  readonly #clusters: ClusterObjects;

  constructor(options: SmiRouterOptions) {
    this.#clusters = options.clusters;
  }

  describe(route: RouteConfig): string {
    const smi = smiRoute(route);
    return `TrafficSplit ${smi.namespace ?? '(workload namespace)'}/${smi.trafficSplit} in the ${smi.cluster ?? 'old'} cluster`;
  }

  async getWeight(route: RouteConfig, signal: AbortSignal): Promise<number> {
    const smi = smiRoute(route);
    const target = this.describe(smi);
    const object = await this.#objects(smi).get(this.#ref(smi), signal);
    return agreedPercent(target, [backendSplit(smi, target, object)]);
  }

  async setWeight(route: RouteConfig, weight: number, signal: AbortSignal): Promise<void> {
    const smi = smiRoute(route);
    const target = this.describe(smi);
    checkPercent(target, weight);
    await this.#objects(smi).update(this.#ref(smi), signal, (object) => {
      const split = backendSplit(smi, target, object);
      const backends = object.spec?.backends as Array<Record<string, unknown>>;
      (backends[split.newIndex] as Record<string, unknown>).weight = weight;
      (backends[split.oldIndex] as Record<string, unknown>).weight = 100 - weight;
      return object;
    });
  }

  /** The TrafficSplit exists and lists both services as backends. */
  async verify(route: RouteConfig, signal: AbortSignal): Promise<void> {
    const smi = smiRoute(route);
    const target = this.describe(smi);
    backendSplit(smi, target, await this.#objects(smi).get(this.#ref(smi), signal));
  }

  #objects(smi: SmiRoute) {
    return this.#clusters[smi.cluster ?? 'old'];
  }

  #ref(smi: SmiRoute): CustomObjectRef {
    return {
      group: 'split.smi-spec.io',
      version: 'v1alpha2',
      plural: 'trafficsplits',
      kind: 'TrafficSplit',
      namespace: namespaceOf(smi, this.describe(smi)),
      name: smi.trafficSplit,
    };
  }
}

function smiRoute(route: RouteConfig): SmiRoute {
  if (route.type !== 'smi')
    throw new RouterError(
      `the SMI router was given a ${route.type} route; each route type has its own router`,
    );
  return route;
}

/** v1alpha2 weights are integers; v1alpha1-style quantity strings ("500m") are not accepted. */
function weightOf(target: string, backend: Record<string, unknown>): number {
  const { weight } = backend;
  if (weight === undefined) return 0;
  if (typeof weight === 'number' && Number.isInteger(weight) && weight >= 0) return weight;
  throw new RouterError(
    `${target}: backend ${String(backend.service)} has weight ${JSON.stringify(weight)}, expected an integer ` +
      '(split.smi-spec.io/v1alpha2)',
  );
}

function backendSplit(smi: SmiRoute, target: string, object: CustomObject) {
  const backends = Array.isArray(object.spec?.backends) ? object.spec.backends : [];
  const oldIndex = backends.findIndex((b) => isRecord(b) && b.service === smi.oldService);
  const newIndex = backends.findIndex(
    (b, i) => i !== oldIndex && isRecord(b) && b.service === smi.newService,
  );
  if (oldIndex < 0 || newIndex < 0) {
    const lacking = [
      ...(oldIndex < 0 ? [`the old cluster's service ${smi.oldService}`] : []),
      ...(newIndex < 0 ? [`the new cluster's mirrored service ${smi.newService}`] : []),
    ];
    const present = backends.map((b) => (isRecord(b) ? String(b.service) : '?')).join(', ') || 'none';
    throw new RouteNotFoundError(
      `${target}: has backends ${present} but not ${lacking.join(' nor ')}; add both to spec.backends ` +
        '(the mirrored one appears once the new cluster is linked: linkerd multicluster link)',
    );
  }
  return {
    label: 'spec.backends',
    oldIndex,
    newIndex,
    oldWeight: weightOf(target, backends[oldIndex] as Record<string, unknown>),
    newWeight: weightOf(target, backends[newIndex] as Record<string, unknown>),
  };
}
