// Promotion: 100% to the new cluster, then the old cluster scaled down only once the new one
// carries everything at full size.

import { block, type Draft } from './draft.js';
import type { RolloutPolicy } from './policy.js';
import { replicasFor, restoreHpa } from './replicas.js';
import { raiseWhenReady } from './step-advance.js';
import type { Observation } from './types.js';

export function promote(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const state = draft.state;
  if (state.pendingWeight !== undefined) {
    raiseWhenReady(draft, obs, policy);
    if (draft.state.phase === 'Paused') return;
    if (draft.state.pendingWeight !== undefined) return;
  }
  if (draft.state.weight !== 100) return;
  if (draft.state.oldScaleDownAt === undefined) {
    draft.set('oldScaleDownAt', draft.now + policy.scaling.oldScaleDownDelayMs);
    draft.record('promoted', 'the new cluster receives 100% of the traffic');
    draft.event('Promoted', 'the new cluster receives 100% of the traffic');
    return;
  }
  if (draft.now < draft.state.oldScaleDownAt) return;
  // The old cluster goes only once the new one carries everything (read back, every server in
  // service) with its full size ready.
  const fullSize = replicasFor(draft.state, 100, policy);
  const newSideDown = obs.routeSplit?.unavailable.filter((side) => side.cluster === 'new') ?? [];
  let short: string | undefined;
  if (obs.routeWeight !== 100) short = `the route shows ${obs.routeWeight ?? 'no weight'} instead of 100%`;
  else if (newSideDown.length > 0) short = newSideDown.map((side) => side.reason).join('; ');
  else if (!obs.new || obs.new.readyReplicas < fullSize)
    short = `the new cluster has ${obs.new?.readyReplicas ?? 'an unknown number of'}/${fullSize} ready replicas at 100%`;
  if (short !== undefined) {
    if (draft.now - draft.state.oldScaleDownAt > policy.scaling.readyTimeoutMs)
      block(
        draft,
        `${short}; the old cluster keeps its replicas until the new one carries everything at full size`,
      );
    return;
  }
  draft.unset('blocker');
  if (policy.scaling.oldScaleDown !== 'never' && obs.old && obs.old.replicas > 0) {
    draft.act({ type: 'scale', cluster: 'old', replicas: 0 });
    draft.record('scaled', 'old cluster scaled to 0 replicas');
  }
  restoreHpa(draft, 'new', obs.new);
  // Blue-green raised the old cluster's HPA floor for the bake.
  if (draft.state.blueGreen) restoreHpa(draft, 'old', obs.old);
  draft.unset('oldScaleDownAt');
  draft.unset('blocker');
  draft.phase('Succeeded');
  draft.record('succeeded', 'the workload now runs on the new cluster');
  draft.event('Succeeded', `${draft.state.blueGreen ? 'blue/green' : 'canary'} cluster upgrade succeeded`);
}
