// The one mechanism behind every Kubernetes-object route: read the object, find the two
// clusters' weights in it, write them back with the resourceVersion that was read. A router
// for a kind of object is an adapter saying where its weights are (KubeRouteAdapter).

import { RouterError } from '../errors.js';
import {
  type CustomObject,
  type CustomObjectRef,
  isMissingObject,
  type KubeObjects,
} from './kube-objects.js';
import { checkWholePercent, type RouteHandle, weightsOnly } from './router.js';

/** One place in a route object where the two clusters' weights sit (an http route, a rule). */
export interface WeightPair {
  /** e.g. `http route primary`, `rule 0`. */
  label: string;
  oldWeight: number;
  newWeight: number;
}

/** A WeightPair found in an object, which can write new weights into that same object. */
export interface WeightSlot extends WeightPair {
  set(oldWeight: number, newWeight: number): void;
}

export interface KubeRouteAdapter {
  /** e.g. `<Kind> shop/checkout in the old cluster`, for errors and logs. */
  description: string;
  /**
   * The route object at each API version the adapter can read, preferred first. While the API
   * server answers 404 the next is tried (only the next can tell "no such object" from "version
   * not served"); the first that answers is used from then on.
   */
  refs: readonly CustomObjectRef[];
  /** Where the two clusters' weights are in `object`; throws RouteNotFoundError saying what is missing. */
  locate(object: CustomObject): WeightSlot[];
  /**
   * Blue-green's header phase: adds (or, for undefined, removes) the entries that send requests
   * carrying the header to the new cluster. Their names start with HEADER_ROUTE_PREFIX, and
   * `locate` passes over them.
   */
  setHeaderRoute?(object: CustomObject, header: { name: string; value: string } | undefined): void;
  /** Preflight checks beyond the object itself, at the version that answered. */
  verifyMore?(context: { objects: KubeObjects; ref: CustomObjectRef }, signal: AbortSignal): Promise<void>;
}

/**
 * Weights: the handle writes `new = w, old = 100 - w` into every located pair, so every whole
 * percent is exact; an entry for a third destination keeps its weight, and the percent is
 * always new / (old + new). Everything else in the object is written back as read.
 */
export function kubeRouteHandle(adapter: KubeRouteAdapter, objects: KubeObjects): RouteHandle {
  const { description } = adapter;
  let served: CustomObjectRef | undefined;
  const atServedVersion = async <T>(call: (ref: CustomObjectRef) => Promise<T>): Promise<T> => {
    if (served) return call(served);
    let firstError: unknown;
    for (const ref of adapter.refs) {
      try {
        const result = await call(ref);
        served = ref;
        return result;
      } catch (error) {
        // A 404 is either "no such object" or "this version is not served": only the next
        // version can tell. Anything else (a missing destination, a 500) is the answer.
        if (!isMissingObject(error)) throw error;
        firstError ??= error;
      }
    }
    throw firstError ?? new RouterError(`${description}: no API version to read it at`);
  };
  const read = (signal: AbortSignal) => atServedVersion((ref) => objects.get(ref, signal));
  const headerRoute = adapter.setHeaderRoute?.bind(adapter);
  /** The resourceVersion our last write stored, until a watched read has caught up with it. */
  let written: string | undefined;
  const observe = async (signal: AbortSignal): Promise<CustomObject> => {
    // Before a version has answered, a GET finds it.
    if (!served) return read(signal);
    if (!objects.watched) return objects.get(served, signal);
    // Read-your-writes: the read-back after a write must see it, and the watch may not have
    // delivered it yet; until it has, the object is read afresh.
    const watched = await objects.observe(served, signal);
    if (written === undefined || watched.metadata?.resourceVersion === written) {
      written = undefined;
      return watched;
    }
    const fresh = await objects.get(served, signal);
    // Someone wrote after us (or the watch caught up): nothing of ours is still in flight.
    if (fresh.metadata?.resourceVersion !== written) written = undefined;
    return fresh;
  };
  return {
    ...(headerRoute
      ? {
          async setHeaderRoute(header: { name: string; value: string } | undefined, signal: AbortSignal) {
            const stored = await atServedVersion((ref) =>
              objects.update(ref, signal, (object) => {
                headerRoute(object, header);
                return object;
              }),
            );
            written = stored.metadata?.resourceVersion;
          },
        }
      : {}),
    description,
    async getSplit(signal) {
      return weightsOnly(agreedPercent(description, adapter.locate(await observe(signal))));
    },
    async setWeight(weight, signal) {
      checkWholePercent(description, weight);
      const stored = await atServedVersion((ref) =>
        objects.update(ref, signal, (object) => {
          for (const slot of adapter.locate(object)) slot.set(100 - weight, weight);
          return object;
        }),
      );
      written = stored.metadata?.resourceVersion;
    },
    async verify(signal) {
      adapter.locate(await read(signal));
      if (adapter.verifyMore && served) await adapter.verifyMore({ objects, ref: served }, signal);
    },
  };
}

/** The name (a prefix, then the index) of each route entry clustershift adds for the header phase. */
export const HEADER_ROUTE_PREFIX = 'clustershift-header-phase';

export function isHeaderRoute(entry: unknown): boolean {
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof (entry as { name?: unknown }).name === 'string' &&
    ((entry as { name: string }).name === HEADER_ROUTE_PREFIX ||
      (entry as { name: string }).name.startsWith(`${HEADER_ROUTE_PREFIX}-`))
  );
}

/**
 * The new cluster's percent, new / (old + new), agreed by every pair. Pairs that disagree (a
 * person edited one) are a RouterError naming each, rather than one of them reported: reporting
 * the first could hide drift in the others from the controller's drift check. The next weight
 * write (promote, abort, retry) makes them agree again.
 */
export function agreedPercent(target: string, pairs: readonly WeightPair[]): number {
  const percents = pairs.map((pair) => {
    const total = pair.oldWeight + pair.newWeight;
    if (total === 0)
      throw new RouterError(
        `${target}: in ${pair.label} both clusters have weight 0 (or none), so the new cluster's share ` +
          "is undefined; give the old cluster's entry weight 100 before starting",
      );
    // Exact for weights the router wrote (they sum to 100); others are rounded to 0.01%.
    return Math.round((10_000 * pair.newWeight) / total) / 100;
  });
  const first = percents[0];
  if (first === undefined) throw new RouterError(`${target}: no weights to read`);
  if (percents.some((percent) => percent !== first))
    throw new RouterError(
      `${target}: its entries disagree on the new cluster's weight (` +
        `${pairs.map((pair, i) => `${pair.label}: ${percents[i]}%`).join(', ')}); someone edited one of them. ` +
        'Promote, abort or retry the rollout to write one weight to all of them, or name only one in the route',
    );
  return first;
}
