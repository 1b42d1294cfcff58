// Istio router: the weights of the old and new cluster's destinations in a VirtualService's
// http route(s), written with the object's resourceVersion so no other writer is overwritten.

import type { RouteConfig, RouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError } from '../errors.js';
import {
  agreedPercent,
  type ClusterObjects,
  type CustomObject,
  type CustomObjectRef,
  checkPercent,
  isMissingObject,
  isRecord,
  namespaceOf,
  type WeightPair,
} from './kube-objects.js';
import type { TrafficRouter } from './router.js';

type IstioRoute = RouteOf<'istio'>;
type Destination = IstioRoute['oldDestination'];
type Cluster = 'old' | 'new';

const GROUP = 'networking.istio.io';
/** Istio serves v1 since 1.22; older control planes only v1beta1 (same schema for what we touch). */
const VERSIONS = ['v1', 'v1beta1'] as const;

export interface IstioRouterOptions {
  clusters: ClusterObjects;
}

/** In one http route: where the two clusters' destinations are and their weights. */
interface ClusterSplit extends WeightPair {
  httpIndex: number;
  oldIndex: number;
  newIndex: number;
}

/**
 * Weights: Istio destination weights are integers; the router writes `new = w, old = 100 - w`,
 * so every whole percent is exact and the pair sums to 100 (Istio requires the destinations of
 * a route to sum to 100 when there are only these two). A third destination in the same route
 * keeps its weight; the percent is always new / (old + new).
 *
 * Route selection: `routeName` picks the http route(s) with that name; without it every http
 * route of the VirtualService must name both destinations, and all of them are written.
 *
 * Disagreeing routes: if the selected routes carry different weights (a person edited one),
 * getWeight throws a RouterError naming each (see agreedPercent for why).
 *
 * Versions: tries networking.istio.io/v1 first and, when the API server answers 404 there
 * (v1 not served: Istio before 1.22), v1beta1; the version that worked is remembered per cluster.
 */
export class IstioRouter implements TrafficRouter {
  readonly #clusters: ClusterObjects;
  readonly #versions = new Map<Cluster, string>();

  constructor(options: IstioRouterOptions) {
    this.#clusters = options.clusters;
  }

  describe(route: RouteConfig): string {
    const istio = istioRoute(route);
    return `VirtualService ${istio.namespace ?? '(workload namespace)'}/${istio.virtualService} in the ${istio.cluster ?? 'old'} cluster`;
  }

  async getWeight(route: RouteConfig, signal: AbortSignal): Promise<number> {
    const istio = istioRoute(route);
    const target = this.describe(istio);
    const object = await this.#withVersion(istio, (ref) => this.#objects(istio).get(ref, signal));
    return agreedPercent(target, clusterSplits(istio, target, object));
  }

  async setWeight(route: RouteConfig, weight: number, signal: AbortSignal): Promise<void> {
    const istio = istioRoute(route);
    const target = this.describe(istio);
    checkPercent(target, weight);
    await this.#withVersion(istio, (ref) =>
      this.#objects(istio).update(ref, signal, (object) => withWeights(istio, target, object, weight)),
    );
  }

  /**
   * The VirtualService exists and every selected http route names both destinations. When a
   * destination names a subset, a DestinationRule in the VirtualService's namespace must define
   * it for that host; DestinationRules elsewhere (the mesh root namespace) are not looked at, and
   * when clustershift may not list DestinationRules (403) this part is skipped.
   */
  async verify(route: RouteConfig, signal: AbortSignal): Promise<void> {
    const istio = istioRoute(route);
    const target = this.describe(istio);
    const object = await this.#withVersion(istio, (ref) => this.#objects(istio).get(ref, signal));
    clusterSplits(istio, target, object);
    const withSubsets = [istio.oldDestination, istio.newDestination].filter((d) => d.subset !== undefined);
    if (withSubsets.length === 0) return;
    const version = this.#versions.get(istio.cluster ?? 'old') ?? 'v1';
    let rules: CustomObject[];
    try {
      rules = await this.#objects(istio).list(
        {
          group: GROUP,
          version,
          plural: 'destinationrules',
          kind: 'DestinationRule',
          namespace: namespaceOf(istio, target),
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
          `${target}: no DestinationRule in namespace ${namespaceOf(istio, target)} defines subset ` +
            `${destination.subset} for host ${destination.host}; add the subset (selecting the cluster's ` +
            'pods by the topology.istio.io/cluster label), see config/istio.yaml',
        );
    }
  }

  #objects(istio: IstioRoute) {
    return this.#clusters[istio.cluster ?? 'old'];
  }

  /** Runs `call` at the remembered version, or finds the served one (v1, else v1beta1). */
  async #withVersion<T>(istio: IstioRoute, call: (ref: CustomObjectRef) => Promise<T>): Promise<T> {
    const cluster = istio.cluster ?? 'old';
    const refAt = (version: string): CustomObjectRef => ({
      group: GROUP,
      version,
      plural: 'virtualservices',
      kind: 'VirtualService',
      namespace: namespaceOf(istio, this.describe(istio)),
      name: istio.virtualService,
    });
    const known = this.#versions.get(cluster);
    if (known !== undefined) return call(refAt(known));
    let firstError: unknown;
    for (const version of VERSIONS) {
      try {
        const result = await call(refAt(version));
        this.#versions.set(cluster, version);
        return result;
      } catch (error) {
        // A 404 is either "no such object" or "this version is not served": only the next
        // version can tell. Anything else (a missing destination, a 500) is the answer.
        if (!isMissingObject(error)) throw error;
        firstError ??= error;
      }
    }
    throw firstError;
  }
}

function istioRoute(route: RouteConfig): IstioRoute {
  if (route.type !== 'istio')
    throw new RouterError(
      `the Istio router was given a ${route.type} route; each route type has its own router`,
    );
  return route;
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
function clusterSplits(istio: IstioRoute, target: string, object: CustomObject): ClusterSplit[] {
  const http = object.spec?.http;
  if (!Array.isArray(http) || http.length === 0)
    throw new RouteNotFoundError(
      `${target}: has no http routes; expected one routing to ${showDestination(istio.oldDestination)} ` +
        `(old cluster) and ${showDestination(istio.newDestination)} (new cluster)`,
    );
  const selected = http
    .map((entry, httpIndex) => ({ entry, httpIndex }))
    .filter(
      ({ entry }) => istio.routeName === undefined || (isRecord(entry) && entry.name === istio.routeName),
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
    return {
      httpIndex,
      label,
      oldIndex,
      newIndex,
      oldWeight: weightOf(destinations[oldIndex]),
      newWeight: weightOf(destinations[newIndex]),
    };
  });
}

/** Istio: an absent weight is 100 for a lone destination and 0 next to others (ours has two). */
function weightOf(entry: unknown): number {
  const weight = isRecord(entry) ? entry.weight : undefined;
  return typeof weight === 'number' ? weight : 0;
}

/** `object` with only the two clusters' weights changed in every selected http route. */
function withWeights(istio: IstioRoute, target: string, object: CustomObject, weight: number): CustomObject {
  const splits = clusterSplits(istio, target, object);
  const http = object.spec?.http as Array<{ route: Array<Record<string, unknown>> }>;
  for (const split of splits) {
    const destinations = (http[split.httpIndex] as { route: Array<Record<string, unknown>> }).route;
    (destinations[split.newIndex] as Record<string, unknown>).weight = weight;
    (destinations[split.oldIndex] as Record<string, unknown>).weight = 100 - weight;
  }
  return object;
}
