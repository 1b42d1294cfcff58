// Resolves a workload's rollout policy from the file (its own sections over `defaults` over the
// built-in policy) into the pure rollout/ types, and checks a plan's steps.

import type { RolloutPolicy } from '../rollout/policy.js';
import { DEFAULT_POLICY } from './defaults.js';
import type { EmbeddedRawConfig, RawConfig } from './schema.js';
import { resolveStrategy } from './strategy.js';

type RawWorkload = EmbeddedRawConfig['workloads'][number];

/** What a policy is resolved from besides the workload's own sections. */
export interface PolicySources {
  defaults: EmbeddedRawConfig['defaults'];
  /** The file's custom metrics (`metrics.custom`), checked for every workload. */
  customMetrics: RawConfig['metrics']['custom'];
  /** A duration in ms: `value`, else the built-in `fallback`; `path` is where `value` was written. */
  dur: (value: string | undefined, fallback: string, path: string) => number;
}

type PolicySection = 'plan' | 'analysis' | 'scaling';

/**
 * A workload's policy: its own plan, analysis and scaling over the file's `defaults` over the
 * built-in DEFAULT_POLICY, durations in ms. A bad duration is reported where it was written.
 */
export function resolvePolicy(r: PolicySources, workload: RawWorkload, workloadPath: string): RolloutPolicy {
  const d = r.defaults ?? {};
  const plan = { ...d.plan, ...workload.plan };
  const analysis = { ...d.analysis, ...workload.analysis };
  const scaling = { ...d.scaling, ...workload.scaling };
  // Where a merged setting was written: the workload's own section wins over `defaults`.
  const writtenAt = (section: PolicySection, key: string): string =>
    (workload[section] as Record<string, unknown> | undefined)?.[key] !== undefined
      ? `${workloadPath}/${section}/${key}`
      : `/defaults/${section}/${key}`;
  const dur = (section: PolicySection, key: string, value: string | undefined, fallback: string) =>
    r.dur(value, fallback, writtenAt(section, key));
  const P = DEFAULT_POLICY;
  const errorRate = { ...P.analysis.errorRate, ...d.analysis?.errorRate, ...workload.analysis?.errorRate };
  const latency = { ...P.analysis.latency, ...d.analysis?.latency, ...workload.analysis?.latency };
  const custom = (r.customMetrics ?? []).map((m) => ({
    name: m.name,
    query: m.query,
    max: m.max,
    maxRatio: m.maxRatio,
  }));
  return {
    plan: {
      steps: [...(plan.steps ?? P.plan.steps)],
      holdTimeMs: dur('plan', 'holdTime', plan.holdTime, P.plan.holdTime),
      minPassingChecks: plan.minPassingChecks ?? P.plan.minPassingChecks,
      requireApproval: plan.requireApproval ?? P.plan.requireApproval,
    },
    analysis: {
      intervalMs: dur('analysis', 'interval', analysis.interval, P.analysis.interval),
      latencyWindowMs: dur('analysis', 'latencyWindow', analysis.latencyWindow, P.analysis.latencyWindow),
      failureLimit: analysis.failureLimit ?? P.analysis.failureLimit,
      inconclusiveLimit: analysis.inconclusiveLimit ?? P.analysis.inconclusiveLimit,
      minRequests: analysis.minRequests ?? P.analysis.minRequests,
      errorRate,
      latency: { maxRatio: latency.maxRatio, maxP99Ms: latency.maxP99Ms, minDeltaMs: latency.minDeltaMs },
      trafficShareTolerance: analysis.trafficShareTolerance ?? P.analysis.trafficShareTolerance,
      startWithoutBaseline: analysis.startWithoutBaseline ?? P.analysis.startWithoutBaseline,
      custom,
    },
    scaling: {
      headroom: scaling.headroom ?? P.scaling.headroom,
      minReplicas: scaling.minReplicas ?? P.scaling.minReplicas,
      readyTimeoutMs: dur('scaling', 'readyTimeout', scaling.readyTimeout, P.scaling.readyTimeout),
      drainDelayMs: dur('scaling', 'drainDelay', scaling.drainDelay, P.scaling.drainDelay),
      oldScaleDown: scaling.oldScaleDown ?? P.scaling.oldScaleDown,
      oldScaleDownDelayMs: dur(
        'scaling',
        'oldScaleDownDelay',
        scaling.oldScaleDownDelay,
        P.scaling.oldScaleDownDelay,
      ),
    },
    ...resolveStrategy(d, workload, (key, value, fallback) =>
      r.dur(
        value,
        fallback,
        workload.blueGreen !== undefined && pathIn(workload.blueGreen, key) !== undefined
          ? `${workloadPath}/blueGreen/${key}`
          : `/defaults/blueGreen/${key}`,
      ),
    ),
    // A workload's parity replaces the defaults' as a whole: an allow list is one decision.
    parity: {
      mode: workload.parity?.mode ?? d.parity?.mode ?? P.parity.mode,
      allow: [...(workload.parity?.allow ?? d.parity?.allow ?? P.parity.allow)],
    },
  };
}

/** The value at `a/b` in `object`, for telling where a merged setting was written. */
function pathIn(object: object, path: string): unknown {
  let value: unknown = object;
  for (const key of path.split('/')) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}

/** A plan's weights rise and end at 100; `path` is where the list is written. */
export function checkSteps(
  steps: readonly number[],
  path: string,
  fail: (p: string, m: string) => never,
): void {
  for (let i = 1; i < steps.length; i++) {
    if ((steps[i] ?? 0) <= (steps[i - 1] ?? 0))
      fail(`${path}/${i}`, `found ${steps[i]} after ${steps[i - 1]}, expected steps that rise`);
  }
  if (steps[steps.length - 1] !== 100)
    fail(path, `found a last step of ${steps[steps.length - 1]}, expected the last step to be 100`);
}
