// Preflight: both clusters run the same application (parity.ts) with the same objects around it,
// the new cluster is not older than the old one, the route starts at 0%, the judge can see the
// workload, and the new cluster is ready for the first step before any traffic moves.

import { formatDuration } from '../duration.js';
import { beginPreValidation } from './blue-green.js';
import type { Draft } from './draft.js';
import {
  describeDifferences,
  missingRelatedObjects,
  parityDifferences,
  type RelatedObjects,
  swappedVersions,
} from './parity.js';
import type { RolloutPolicy } from './policy.js';
import { ensureNewReplicas, replicaCount, replicasFor, restoreNewCluster } from './replicas.js';
import type { ClusterFacts, MetricsCoverage, Observation, WorkloadObservation } from './types.js';

export function preflight(draft: Draft, obs: Observation, policy: RolloutPolicy): void {
  const { state, now } = draft;
  const fail = (reason: string) => {
    restoreNewCluster(draft, obs.new);
    draft.phase('Failed', `preflight: ${reason}`);
    draft.record('preflight-failed', reason);
    draft.event('PreflightFailed', reason, true);
  };
  if (!obs.old || !obs.new) return waitOrFail(draft, policy, 'the clusters could not be read', fail);
  if (!obs.old.exists) return fail(`${state.key} does not exist in the old cluster`);
  if (!obs.new.exists) return fail(`${state.key} does not exist in the new cluster`);
  const parityProblem = compareParity(obs.old, obs.new, policy);
  if (parityProblem) return fail(parityProblem);
  if (obs.clusterFacts) {
    const { old, new: fresh } = obs.clusterFacts;
    if ('error' in old || 'error' in fresh) {
      const why =
        'error' in old ? `old cluster: ${old.error}` : `new cluster: ${(fresh as { error: string }).error}`;
      return waitOrFail(
        draft,
        policy,
        `the clusters' versions and related objects could not be read (${why})`,
        fail,
      );
    }
    const swapped = swappedVersions(
      { name: old.cluster, version: old.version },
      { name: fresh.cluster, version: fresh.version },
    );
    if (swapped) return fail(swapped);
    if (policy.parity.mode !== 'off') {
      const missing = missingRelatedObjects(relatedOf(old, obs.old), relatedOf(fresh, obs.new));
      if (missing.length > 0)
        return fail(
          `the new cluster lacks what the old one runs around ${state.key}: ${missing.join(', ')} (create ${missing.length > 1 ? 'them' : 'it'} in the new cluster first)`,
        );
    }
  }
  if (obs.routeError) return fail(`route: ${obs.routeError}`);
  if (obs.routeWeight === undefined) return waitOrFail(draft, policy, 'the route could not be read', fail);
  if (obs.routeWeight !== 0 && state.stepIndex < 0) {
    return fail(
      `the route already sends ${obs.routeWeight}% to the new cluster; clustershift starts from 0% so that starting never moves traffic (set it to 0 first)`,
    );
  }
  // The judge must see the workload before any traffic moves, or every check is blind.
  const blind = blindJudge(obs.metricsCoverage);
  let waitingForBaseline: string | undefined;
  if (blind && policy.analysis.startWithoutBaseline) {
    if (state.approvalRequired === undefined) {
      const why = `started without a metrics baseline (analysis.startWithoutBaseline): ${blind.reason}`;
      draft.set('approvalRequired', why);
      draft.record('operator', `${why}; promotion waits for an operator`);
    }
  } else if (blind?.now) {
    return fail(blind.reason);
  } else if (blind) {
    waitingForBaseline = blind.reason;
  }
  if (!state.baseline) {
    draft.set('baseline', {
      oldReplicas: obs.old.hpa ? Math.max(obs.old.hpa.currentReplicas, obs.old.replicas) : obs.old.replicas,
      newReplicas: obs.new.replicas,
      ...(obs.old.hpa ? { oldHpaMinReplicas: obs.old.hpa.minReplicas } : {}),
      ...(obs.new.hpa ? { newHpaMinReplicas: obs.new.hpa.minReplicas } : {}),
    });
  }
  // Blue-green starts with the new cluster at full size.
  const first = policy.strategy === 'blueGreen' ? 100 : (policy.plan.steps[0] ?? 100);
  const target = replicasFor(draft.state, first, policy);
  if (waitingForBaseline !== undefined) {
    // Possibly only a moment after the traffic began; a workload that truly has none is refused.
    ensureNewReplicas(draft, obs.new, target);
    return waitOrFail(
      draft,
      policy,
      `${waitingForBaseline}: the judge has no baseline to compare the new cluster with`,
      (reason) =>
        fail(
          `${reason}; if the workload truly has no traffic, set analysis.startWithoutBaseline: true (promotion then waits for an operator)`,
        ),
    );
  }
  if (obs.new.readyReplicas >= target && policy.strategy === 'blueGreen') {
    beginPreValidation(draft, obs, policy);
    return;
  }
  if (obs.new.readyReplicas >= target) {
    draft.phase('Progressing');
    draft.set('pendingWeight', first);
    draft.set('pendingSince', now);
    draft.record(
      'preflight-passed',
      `${policy.parity.mode === 'strict' ? 'both clusters run the same application' : policy.parity.mode === 'images' ? 'both clusters run the same images' : 'parity not compared (parity: off)'}; new cluster ready with ${replicaCount(obs.new.readyReplicas)}`,
    );
    draft.event('Started', `canary cluster upgrade started: ${policy.plan.steps.join('% → ')}%`);
    return;
  }
  ensureNewReplicas(draft, obs.new, target);
  if (now - state.stepStartedAt > policy.scaling.readyTimeoutMs) {
    fail(
      `the new cluster's pods never got ready: ${obs.new.readyReplicas}/${target} ready after ${formatDuration(policy.scaling.readyTimeoutMs)}`,
    );
  }
}

function waitOrFail(draft: Draft, policy: RolloutPolicy, what: string, fail: (reason: string) => void): void {
  if (draft.now - draft.state.stepStartedAt > policy.scaling.readyTimeoutMs)
    fail(`${what} for ${formatDuration(policy.scaling.readyTimeoutMs)}`);
}

/**
 * Why the judge would be blind, from preflight's look at the metrics: `now` when waiting cannot
 * help (no series at all: a template, label or scrape problem), otherwise it may be only that
 * the traffic began a moment ago.
 */
function blindJudge(
  coverage: MetricsCoverage | { error: string } | undefined,
): { reason: string; now: boolean } | undefined {
  if (coverage === undefined) return { reason: 'the metrics were not looked at yet', now: false };
  if ('error' in coverage) return { reason: `the metrics could not be read: ${coverage.error}`, now: false };
  const window = formatDuration(coverage.windowMs);
  for (const side of [coverage.old, coverage.new]) {
    if (side && !side.present)
      return {
        reason: `no ${side.series} in the last ${window}: check metrics.template and the scrape config`,
        now: true,
      };
  }
  if (!coverage.old.requests)
    return { reason: `${coverage.old.series} counted no requests in the last ${window}`, now: false };
  return undefined;
}

/**
 * The application must not change during a cluster upgrade. With both pod templates observed,
 * they are compared as the policy says (parity.mode, parity.allow); a client that reads only
 * images gets those compared, unless parity is off.
 */
export function compareParity(
  old: WorkloadObservation,
  fresh: WorkloadObservation,
  policy: RolloutPolicy,
): string | undefined {
  if (policy.parity.mode === 'off') return undefined;
  if (!old.podTemplate || !fresh.podTemplate) return compareImages(old, fresh);
  const differences = parityDifferences(old.podTemplate, fresh.podTemplate, policy.parity);
  return differences.length > 0 ? describeDifferences(differences, policy.parity.mode) : undefined;
}

function relatedOf(facts: ClusterFacts, workload: WorkloadObservation): RelatedObjects {
  return {
    services: facts.services,
    podDisruptionBudgets: facts.podDisruptionBudgets,
    ...(workload.hpa ? { horizontalPodAutoscaler: workload.hpa.name } : {}),
  };
}

/** Every container's image must match. */
export function compareImages(old: WorkloadObservation, fresh: WorkloadObservation): string | undefined {
  const names = new Set([...Object.keys(old.images), ...Object.keys(fresh.images)]);
  for (const name of [...names].sort()) {
    const a = old.images[name];
    const b = fresh.images[name];
    if (a === undefined) return `container ${name} exists only in the new cluster (image ${b})`;
    if (b === undefined) return `container ${name} exists only in the old cluster (image ${a})`;
    if (a !== b) return `container ${name} runs ${a} in the old cluster but ${b} in the new one`;
  }
  return undefined;
}
