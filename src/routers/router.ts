// The one small interface every traffic router implements. Routers keep no state of their
// own: the weight is always read back from the router object itself.

import type { RouteConfig } from '../config/schema.js';

export interface TrafficRouter {
  /** Human-readable name of the route for errors and logs, e.g. `VirtualService shop/checkout`. */
  describe(route: RouteConfig): string;
  /** Percent of the workload's traffic the route sends to the new cluster, 0..100. */
  getWeight(route: RouteConfig, signal: AbortSignal): Promise<number>;
  /** Send `weight` percent to the new cluster and the rest to the old one. */
  setWeight(route: RouteConfig, weight: number, signal: AbortSignal): Promise<void>;
  /**
   * Preflight: the route object exists and names both clusters' destinations.
   * Throws RouteNotFoundError (or another RouterError) saying what is missing.
   */
  verify(route: RouteConfig, signal: AbortSignal): Promise<void>;
}
