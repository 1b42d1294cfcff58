// The one small interface every traffic router implements: a handle on one route, bound to it
// once at wiring time. Handles keep no state of their own that could drift from the router:
// the split is always read back from the router object itself.

import { RouterError } from '../errors.js';
import type { RouteSplit } from '../rollout/types.js';

export interface RouteHandle {
  /** Human-readable name of the route for errors and logs: the router object and where it is. */
  readonly description: string;
  /**
   * What the route really does: the new-cluster weight it is configured with and whether each
   * side can take traffic, as far as this router can tell.
   */
  getSplit(signal: AbortSignal): Promise<RouteSplit>;
  /**
   * Send `weight` percent (a whole percent 0..100) to the new cluster and the rest to the old
   * one. Returns once the router accepted the write; the caller reads the split back.
   */
  setWeight(weight: number, signal: AbortSignal): Promise<void>;
  /**
   * Preflight: the route object exists and names both clusters' destinations.
   * Throws RouteNotFoundError (or another RouterError) saying what is missing.
   */
  verify(signal: AbortSignal): Promise<void>;
  /**
   * Blue-green's header phase, on routers that can (Istio, Gateway API): requests carrying the
   * header go to the new cluster whatever the weights say; undefined removes that rule.
   */
  setHeaderRoute?(header: { name: string; value: string } | undefined, signal: AbortSignal): Promise<void>;
}

/** The split of a router that can tell only its weights: both sides take traffic as weighted. */
export function weightsOnly(weight: number): RouteSplit {
  return { weight, effectiveWeight: weight, unavailable: [] };
}

/**
 * The split when some side cannot take traffic: all of it reaches the other side. With neither
 * side able to, nothing reaches the new cluster (the router answers errors itself).
 */
export function splitWith(weight: number, unavailable: RouteSplit['unavailable']): RouteSplit {
  const oldDown = unavailable.some((side) => side.cluster === 'old');
  const newDown = unavailable.some((side) => side.cluster === 'new');
  const effectiveWeight = newDown ? 0 : oldDown ? 100 : weight;
  return { weight, effectiveWeight, unavailable };
}

/** Every router writes whole percents: their weights are integers and new = w, old = 100 - w. */
export function checkWholePercent(target: string, weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100)
    throw new RouterError(
      `${target}: cannot set the new cluster's weight to ${weight}, expected a whole percent 0..100`,
    );
}
