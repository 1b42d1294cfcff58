// Istio router: the weights of the old and new cluster's destinations in a VirtualService's
// http route(s), written with the object's resourceVersion so no other writer is overwritten.

import type { ResolvedRouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError } from '../errors.js';
import { isRecord } from '../json.js';
import type { ClusterObjects, CustomObject, CustomObjectRef } from './kube-objects.js';
import { HEADER_ROUTE_PREFIX, isHeaderRoute, kubeRouteHandle, type WeightSlot } from './kube-route.js';
import type { RouteHandle } from './router.js';

type IstioRoute = ResolvedRouteOf<'istio'>;
type Destination = IstioRoute['oldDestination'];

const GROUP = 'networking.istio.io';
/** Istio serves v1 since 1.22; older control planes only v1beta1 (same schema for what we touch). */
const VERSIONS = ['v1', 'v1beta1'] as const;

/**
 * Bound to one VirtualService. Weights: Istio destination weights are integers; the handle
 * writes `new = w, old = 100 - w`, so the pair sums to 100 (Istio requires the destinations of a
 * route to sum to 100 when there are only these two). Istio reports no health of its own here,
 * so the split is the weights.
 *
 * Route selection: `routeName` picks the http route(s) with that name; without it every http
 * route of the VirtualService must name both destinations, and all of them are written.
 *
 * Disagreeing routes: if the selected routes carry different weights (a person edited one),
 * getSplit throws a RouterError naming each (see agreedPercent for why).
 *
 * Versions: networking.istio.io/v1 first and, when the API server answers 404 there (v1 not
 * served: Istio before 1.22), v1beta1.
 */
export function istioRoute(route: IstioRoute, clusters: ClusterObjects): RouteHandle {
  const description = `VirtualService ${route.namespace}/${route.virtualService} in the ${route.cluster} cluster`;
  return kubeRouteHandle(
    {
      description,
      refs: VERSIONS.map(
        (version): CustomObjectRef => ({
          group: GROUP,
          version,
          plural: 'virtualservices',
          kind: 'VirtualService',
          namespace: route.namespace,
          name: route.virtualService,
        }),
      ),
      locate: (object) => httpRouteSlots(route, description, object),
      setHeaderRoute: (object, header) => setIstioHeaderRoute(route, description, object, header),
      verifyMore: ({ objects, ref }, signal) =>
        verifySubsets(route, description, objects, ref.version, signal),
    },
    clusters[route.cluster],
  );
}

/**
 * When a destination names a subset, a DestinationRule in the VirtualService's namespace must
 * define it for that host; DestinationRules elsewhere (the mesh root namespace) are not looked
 * at, and when clustershift may not list DestinationRules (403) this part is skipped.
 */
async function verifySubsets(
  route: IstioRoute,
  target: string,
  objects: ClusterObjects['old'],
  version: string,
  signal: AbortSignal,
): Promise<void> {
  const withSubsets = [route.oldDestination, route.newDestination].filter((d) => d.subset !== undefined);
  if (withSubsets.length === 0) return;
  let rules: CustomObject[];
  try {
    rules = await objects.list(
      {
        group: GROUP,
        version,
        plural: 'destinationrules',
        kind: 'DestinationRule',
        namespace: route.namespace,
      },
      signal,
    );
  } catch (error) {
    if (error instanceof RouterError && httpStatusOfCause(error) === 403) return;
    throw error;
  }
  for (const destination of withSubsets) {
    const defined = rules.some((rule) => {
      const spec = rule.spec ?? {};
      return (
        typeof spec.host === 'string' &&
        sameHost(spec.host, destination.host) &&
        Array.isArray(spec.subsets) &&
        spec.subsets.some((subset) => isRecord(subset) && subset.name === destination.subset)
      );
    });
    if (!defined)
      throw new RouteNotFoundError(
        `${target}: no DestinationRule in namespace ${route.namespace} defines subset ` +
          `${destination.subset} for host ${destination.host}; add the subset (selecting the cluster's ` +
          'pods by the topology.istio.io/cluster label), see config/istio.yaml',
      );
  }
}

function httpStatusOfCause(error: Error): number | undefined {
  const cause = error.cause as { httpStatus?: unknown } | undefined;
  return typeof cause?.httpStatus === 'number' ? cause.httpStatus : undefined;
}

/** `checkout` and `checkout.shop.svc.cluster.local` are the same host. */
function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return long.startsWith(`${short}.`);
}

function matches(entry: unknown, wanted: Destination): boolean {
  if (!isRecord(entry) || !isRecord(entry.destination)) return false;
  const destination = entry.destination;
  return (
    destination.host === wanted.host && (wanted.subset === undefined || destination.subset === wanted.subset)
  );
}

function showDestination(wanted: Destination): string {
  return wanted.subset === undefined ? wanted.host : `${wanted.host} subset ${wanted.subset}`;
}

function showEntries(entries: unknown[]): string {
  const shown = entries.map((entry) => {
    const destination = isRecord(entry) && isRecord(entry.destination) ? entry.destination : {};
    return destination.subset === undefined
      ? String(destination.host)
      : `${String(destination.host)} subset ${String(destination.subset)}`;
  });
  return shown.join(', ') || 'none';
}

/** The selected http routes, each with both clusters' destinations; throws what is missing. */
function httpRouteSlots(istio: IstioRoute, target: string, object: CustomObject): WeightSlot[] {
  const http = object.spec?.http;
  if (!Array.isArray(http) || http.length === 0)
    throw new RouteNotFoundError(
      `${target}: has no http routes; expected one routing to ${showDestination(istio.oldDestination)} ` +
        `(old cluster) and ${showDestination(istio.newDestination)} (new cluster)`,
    );
  const selected = http
    .map((entry, httpIndex) => ({ entry, httpIndex }))
    .filter(
      ({ entry }) =>
        !isHeaderRoute(entry) &&
        (istio.routeName === undefined || (isRecord(entry) && entry.name === istio.routeName)),
    );
  if (selected.length === 0)
    throw new RouteNotFoundError(
      `${target}: has no http route named ${istio.routeName} (its routes: ` +
        `${http.map((entry) => (isRecord(entry) && typeof entry.name === 'string' ? entry.name : '(unnamed)')).join(', ')}); ` +
        'check routeName in the configuration',
    );
  return selected.map(({ entry, httpIndex }) => {
    const label =
      isRecord(entry) && typeof entry.name === 'string' ? `http route ${entry.name}` : `http[${httpIndex}]`;
    const destinations = isRecord(entry) && Array.isArray(entry.route) ? entry.route : [];
    const oldIndex = destinations.findIndex((d) => matches(d, istio.oldDestination));
    const newIndex = destinations.findIndex((d, i) => i !== oldIndex && matches(d, istio.newDestination));
    if (oldIndex < 0 || newIndex < 0) {
      const lacking = [
        ...(oldIndex < 0 ? [`the old cluster's ${showDestination(istio.oldDestination)}`] : []),
        ...(newIndex < 0 ? [`the new cluster's ${showDestination(istio.newDestination)}`] : []),
      ];
      throw new RouteNotFoundError(
        `${target}: ${label} routes to ${showEntries(destinations)} but not to ${lacking.join(' nor ')}; ` +
          'add both destinations to the route (the new one with weight 0)',
      );
    }
    const oldEntry = destinations[oldIndex] as Record<string, unknown>;
    const newEntry = destinations[newIndex] as Record<string, unknown>;
    return {
      label,
      oldWeight: weightOf(oldEntry),
      newWeight: weightOf(newEntry),
      set(oldWeight, newWeight) {
        oldEntry.weight = oldWeight;
        newEntry.weight = newWeight;
      },
    };
  });
}

/** Istio: an absent weight is 100 for a lone destination and 0 next to others (ours has two). */
function weightOf(entry: unknown): number {
  const weight = isRecord(entry) ? entry.weight : undefined;
  return typeof weight === 'number' ? weight : 0;
}

/**
 * Istio takes an http route's first match, in order: before each selected route goes a copy of
 * its match conditions with the header added, routing to the new cluster's destination alone.
 * Requests for other routes of the VirtualService are not touched.
 */
function setIstioHeaderRoute(
  istio: IstioRoute,
  target: string,
  object: CustomObject,
  header: { name: string; value: string } | undefined,
): void {
  const spec = object.spec ?? {};
  const http = (Array.isArray(spec.http) ? spec.http : []).filter((entry) => !isHeaderRoute(entry));
  if (header) {
    const selected = new Set(
      httpRouteSlots(istio, target, { ...object, spec: { ...spec, http } }).map((s) => s.label),
    );
    const withHeader: unknown[] = [];
    let added = 0;
    for (const [index, entry] of http.entries()) {
      const label =
        isRecord(entry) && typeof entry.name === 'string' ? `http route ${entry.name}` : `http[${index}]`;
      if (isRecord(entry) && selected.has(label)) {
        const destinations = Array.isArray(entry.route) ? entry.route : [];
        const fresh = destinations.find((d) => matches(d, istio.newDestination)) as Record<string, unknown>;
        const exact = { [header.name]: { exact: header.value } };
        const conditions = Array.isArray(entry.match) && entry.match.length > 0 ? entry.match : [{}];
        withHeader.push({
          name: `${HEADER_ROUTE_PREFIX}-${added++}`,
          match: conditions.map((condition) => {
            const c = isRecord(condition) ? condition : {};
            return { ...c, headers: { ...(isRecord(c.headers) ? c.headers : {}), ...exact } };
          }),
          route: [{ destination: structuredClone(fresh.destination), weight: 100 }],
        });
      }
      withHeader.push(entry);
    }
    object.spec = { ...spec, http: withHeader };
    return;
  }
  object.spec = { ...spec, http };
}
