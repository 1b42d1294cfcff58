// The replica actions of a decision: the new cluster scaled ahead of the traffic, each cluster
// restored to its starting size, the old one shrunk stepwise as traffic leaves it.

import type { Draft } from './draft.js';
import type { RolloutPolicy } from './policy.js';
import { newClusterReplicas, oldClusterReplicas } from './scaling.js';
import type { Action, ClusterRole, Observation, RolloutState, WorkloadObservation } from './types.js';

/** "1 replica", "3 replicas": what the history and the Events say. */
export function replicaCount(n: number): string {
  return `${n} ${n === 1 ? 'replica' : 'replicas'}`;
}

export function replicasFor(state: RolloutState, weight: number, policy: RolloutPolicy): number {
  return newClusterReplicas(weight, {
    baseline: state.baseline?.oldReplicas ?? 1,
    headroom: policy.scaling.headroom,
    minReplicas: Math.max(policy.scaling.minReplicas, weight > 0 ? 1 : 0),
  });
}

/** Ask the new cluster for `target` replicas (through its HPA when it has one). Idempotent. */
export function ensureNewReplicas(draft: Draft, fresh: WorkloadObservation, target: number): void {
  const current = fresh.hpa ? fresh.hpa.minReplicas : fresh.replicas;
  if (current < target) {
    draft.act(scaleAction('new', fresh, target));
    if (draft.state.newReplicasTarget !== target)
      draft.record('scaled', `new cluster scaled to ${replicaCount(target)} ahead of the traffic`);
  }
  draft.set('newReplicasTarget', target);
}

function scaleAction(cluster: ClusterRole, workload: WorkloadObservation, replicas: number): Action {
  return workload.hpa
    ? { type: 'setHpaMinReplicas', cluster, minReplicas: Math.max(1, replicas) }
    : { type: 'scale', cluster, replicas };
}

export function restoreNewCluster(draft: Draft, fresh: WorkloadObservation | undefined): void {
  const baseline = draft.state.baseline;
  if (!baseline || !fresh?.exists) return;
  if (fresh.hpa && baseline.newHpaMinReplicas !== undefined) {
    if (fresh.hpa.minReplicas !== baseline.newHpaMinReplicas)
      draft.act({ type: 'setHpaMinReplicas', cluster: 'new', minReplicas: baseline.newHpaMinReplicas });
  } else if (fresh.replicas !== baseline.newReplicas) {
    draft.act({ type: 'scale', cluster: 'new', replicas: baseline.newReplicas });
  }
  draft.unset('newReplicasTarget');
  draft.record('scaled', `new cluster restored to its starting size (${replicaCount(baseline.newReplicas)})`);
}

/**
 * Rollback: ask the old cluster for its starting replicas (through its HPA's minReplicas when it
 * has one: an HPA may have shrunk it while traffic was away). Without an observation (an abort)
 * it asks when clustershift itself may have taken replicas away.
 */
export function restoreOldCluster(
  draft: Draft,
  old: WorkloadObservation | undefined,
  policy: RolloutPolicy,
): void {
  const baseline = draft.state.baseline;
  if (!baseline) return;
  const wanted = baseline.oldReplicas;
  if (old === undefined) {
    if (baseline.oldHpaMinReplicas !== undefined && baseline.oldHpaMinReplicas < wanted)
      draft.act({ type: 'setHpaMinReplicas', cluster: 'old', minReplicas: wanted });
    else if (baseline.oldHpaMinReplicas === undefined && policy.scaling.oldScaleDown === 'stepwise')
      draft.act({ type: 'scale', cluster: 'old', replicas: wanted });
    return;
  }
  if (!old.exists) return;
  if (old.hpa) {
    if (old.hpa.minReplicas < wanted) {
      draft.act({ type: 'setHpaMinReplicas', cluster: 'old', minReplicas: wanted });
      draft.record(
        'scaled',
        `old cluster's HPA minReplicas raised to ${wanted} while the traffic comes back`,
      );
    }
  } else if (old.replicas < wanted) {
    draft.act({ type: 'scale', cluster: 'old', replicas: wanted });
    draft.record('scaled', `old cluster restored to ${replicaCount(wanted)}`);
  }
}

export function restoreHpa(
  draft: Draft,
  cluster: ClusterRole,
  workload: WorkloadObservation | undefined,
): void {
  const original =
    cluster === 'new' ? draft.state.baseline?.newHpaMinReplicas : draft.state.baseline?.oldHpaMinReplicas;
  if (workload?.hpa && original !== undefined && workload.hpa.minReplicas !== original) {
    draft.act({ type: 'setHpaMinReplicas', cluster, minReplicas: original });
  }
}

/** Stepwise mode: shrink the old cluster as traffic leaves it, after the weight is read back. */
export function stepWiseOldScaleDown(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  if (policy.scaling.oldScaleDown !== 'stepwise' || !obs.old?.exists || obs.old.hpa || !state.baseline)
    return;
  if (obs.routeWeight !== state.weight || state.stepIndex < 0) return;
  const target = oldClusterReplicas(state.weight, {
    baseline: state.baseline.oldReplicas,
    headroom: policy.scaling.headroom,
    minReplicas: 1,
  });
  if (obs.old.replicas > target) {
    draft.act({ type: 'scale', cluster: 'old', replicas: target });
    draft.record('scaled', `old cluster scaled to ${replicaCount(target)} as traffic left it`);
  }
}
