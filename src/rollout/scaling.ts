// How many replicas each cluster needs for a traffic weight. The new cluster is scaled
// ahead of the traffic it is about to receive, with headroom for uneven load.

export interface ScalingInput {
  /** The old cluster's replicas (or its HPA's current replicas) when the rollout started. */
  baseline: number;
  headroom: number;
  minReplicas: number;
}

/** Replicas the new cluster needs before it may carry `weight` percent of the traffic. */
export function newClusterReplicas(weight: number, input: ScalingInput): number {
  if (weight <= 0) return input.minReplicas;
  const needed = Math.ceil(((input.baseline * weight) / 100) * (1 + input.headroom) - 1e-9);
  return Math.max(input.minReplicas, needed);
}

/**
 * Replicas the old cluster keeps while it carries `100 - weight` percent (stepwise scale-down).
 * Never below one while it carries any traffic.
 */
export function oldClusterReplicas(weight: number, input: ScalingInput): number {
  if (weight >= 100) return 0;
  const needed = Math.ceil(((input.baseline * (100 - weight)) / 100) * (1 + input.headroom) - 1e-9);
  return Math.min(input.baseline, Math.max(1, needed));
}

/**
 * Rollback: the lowest new-cluster weight at which the old cluster's ready replicas carry the
 * rest of the traffic, by the same sizing rule (`oldClusterReplicas`). 0 once the old cluster
 * has its starting replicas ready; 100 while it has none.
 */
export function lowestWeightOldCarries(readyOldReplicas: number, input: ScalingInput): number {
  for (let weight = 0; weight < 100; weight++) {
    if (oldClusterReplicas(weight, input) <= readyOldReplicas) return weight;
  }
  return 100;
}
