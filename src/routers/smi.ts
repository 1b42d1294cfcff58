// SMI router (Linkerd multicluster): the weights of the local service and the new cluster's
// mirrored service (`<service>-<cluster>`) in a TrafficSplit, written with the object's
// resourceVersion so no other writer is overwritten.

import type { ResolvedRouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError } from '../errors.js';
import { isRecord } from '../json.js';
import type { ClusterObjects, CustomObject } from './kube-objects.js';
import { kubeRouteHandle, type WeightSlot } from './kube-route.js';
import type { RouteHandle } from './router.js';

type SmiRoute = ResolvedRouteOf<'smi'>;

/**
 * Bound to one TrafficSplit. Weights: split.smi-spec.io/v1alpha2 backend weights are integers;
 * the handle writes `new = w, old = 100 - w`. A TrafficSplit says nothing about its backends'
 * health, so the split is the weights.
 */
export function smiRoute(route: SmiRoute, clusters: ClusterObjects): RouteHandle {
  const description = `TrafficSplit ${route.namespace}/${route.trafficSplit} in the ${route.cluster} cluster`;
  return kubeRouteHandle(
    {
      description,
      refs: [
        {
          group: 'split.smi-spec.io',
          version: 'v1alpha2',
          plural: 'trafficsplits',
          kind: 'TrafficSplit',
          namespace: route.namespace,
          name: route.trafficSplit,
        },
      ],
      locate: (object) => [backendSlot(route, description, object)],
    },
    clusters[route.cluster],
  );
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

function backendSlot(smi: SmiRoute, target: string, object: CustomObject): WeightSlot {
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
  const oldBackend = backends[oldIndex] as Record<string, unknown>;
  const newBackend = backends[newIndex] as Record<string, unknown>;
  return {
    label: 'spec.backends',
    oldWeight: weightOf(target, oldBackend),
    newWeight: weightOf(target, newBackend),
    set(oldWeight, newWeight) {
      oldBackend.weight = oldWeight;
      newBackend.weight = newWeight;
    },
  };
}
