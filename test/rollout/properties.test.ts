// Property tests: random sequences of ticks, data and operator calls never break the invariants.

import fc from 'fast-check';
import t from 'tap';
import { PhaseConflictError } from '../../src/errors.js';
import { newClusterReplicas, oldClusterReplicas } from '../../src/rollout/scaling.js';
import type { OperatorCommand } from '../../src/rollout/types.js';
import { Harness, type MetricsInput } from '../fixtures/harness.js';
import { cluster, healthyReading, reading, TEST_SCALING, testPolicy } from '../fixtures/rollout.js';

const policy = testPolicy();

type Step =
  | { kind: 'tick'; data: 'healthy' | 'failing' | 'critical' | 'sparse' | 'error' | 'none'; ticks: number }
  | { kind: 'command'; command: OperatorCommand }
  | { kind: 'drift'; weight: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('tick' as const),
      data: fc.constantFrom('healthy', 'failing', 'critical', 'sparse', 'error', 'none'),
      ticks: fc.integer({ min: 1, max: 15 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      command: fc.constantFrom<OperatorCommand>(
        { type: 'start' },
        { type: 'promote', full: false },
        { type: 'promote', full: true },
        { type: 'abort', reason: 'property' },
        { type: 'pause' },
        { type: 'resume' },
        { type: 'retry' },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('drift' as const), weight: fc.integer({ min: 0, max: 100 }) }),
  },
);

function data(kind: string, weight: number): MetricsInput {
  const fresh = Math.round(10 * weight);
  const old = 1000 - fresh;
  switch (kind) {
    case 'healthy':
      return healthyReading(weight);
    case 'failing':
      return reading(cluster(old, old * 0.01), cluster(fresh, Math.round(fresh * 0.1)));
    case 'critical':
      return reading(cluster(old, old * 0.01), cluster(fresh, Math.round(fresh * 0.9)));
    case 'sparse':
      return reading(cluster(3, 0), cluster(0, 0));
    case 'error':
      return { error: 'prometheus down' };
    default:
      return undefined;
  }
}

t.test('invariants hold under any sequence of data, drift and operator calls', async (t) => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 0, max: 3 }),
      (steps, lag) => {
        const h = new Harness({ policy, readyLagTicks: lag });
        h.start();
        // A promote asks for the next raise regardless of checks; the replicas gate still applies.
        let operatorPromoted = false;
        for (const step of steps) {
          if (step.kind === 'command') {
            try {
              h.command(step.command);
              if (step.command.type === 'promote') operatorPromoted = true;
            } catch (error) {
              if (!(error instanceof PhaseConflictError)) throw error;
            }
            continue;
          }
          if (step.kind === 'drift') {
            h.routeWeight = step.weight;
            continue;
          }
          for (let i = 0; i < step.ticks; i++) {
            const before = h.state;
            const actions = h.tick(data(step.data, h.state.weight));
            const after = h.state;
            // Weight always within 0..100.
            if (after.weight < 0 || after.weight > 100) throw new Error(`weight ${after.weight}`);
            const newCheck =
              after.checks.length > 0 && after.lastCheckAt === h.now ? after.checks.at(-1) : undefined;
            for (const action of actions) {
              if (action.type !== 'setWeight' || action.reason === 'drift') continue;
              if (action.weight > before.weight) {
                // Never raised on a failing or inconclusive check, unless an operator asked.
                if (!operatorPromoted && newCheck && newCheck.verdict !== 'pass')
                  throw new Error(`raised after a ${newCheck.verdict} check`);
                // Never raised before the new cluster had the replicas for it.
                const needed = newClusterReplicas(action.weight, {
                  baseline: 10,
                  headroom: 0.2,
                  minReplicas: 1,
                });
                const readyWhenWritten =
                  h.actions.findLast((entry) => entry.action === action)?.readyNew ?? 0;
                if (readyWhenWritten < needed)
                  throw new Error(
                    `raised to ${action.weight}% with ${readyWhenWritten}/${needed} ready replicas`,
                  );
                // Promotion needs the passing checks, unless an operator asked.
                if (
                  !operatorPromoted &&
                  before.stepIndex >= 0 &&
                  before.passedChecks < policy.plan.minPassingChecks
                )
                  throw new Error(
                    `advanced from ${before.weight}% with ${before.passedChecks} passing checks`,
                  );
                operatorPromoted = false;
              }
            }
            if (after.phase === 'RolledBack' && before.phase !== 'RolledBack') {
              if (h.routeWeight !== 0) throw new Error(`rolled back with the route at ${h.routeWeight}%`);
              if (h.fresh.replicas !== 1)
                throw new Error(`rolled back with ${h.fresh.replicas} new replicas`);
            }
          }
        }
      },
    ),
    { numRuns: 300, seed: 20261125 },
  );
  t.pass('300 random runs kept every invariant');
});

const stepwisePolicy = testPolicy({ scaling: { ...TEST_SCALING, oldScaleDown: 'stepwise' } });

type SafetyStep =
  | Step
  | { kind: 'old-ready-cap'; cap: number }
  | { kind: 'old-pods-ready' }
  | { kind: 'new-pods-crash'; ready: number }
  | { kind: 'server'; side: 'old' | 'new' | 'none' };

const safetyStepArb: fc.Arbitrary<SafetyStep> = fc.oneof(
  { weight: 8, arbitrary: stepArb },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('old-ready-cap' as const),
      cap: fc.integer({ min: 1, max: 10 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('old-pods-ready' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('new-pods-crash' as const),
      ready: fc.integer({ min: 0, max: 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('server' as const),
      side: fc.constantFrom('old', 'new', 'none'),
    }),
  },
);

t.test(
  'the old ready capacity covers its share during a rollback unless the breach is critical, and nothing finishes short',
  async (t) => {
    const sizing = { baseline: 10, headroom: 0.2, minReplicas: 1 };
    fc.assert(
      fc.property(
        fc.array(safetyStepArb, { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 6 }),
        (steps, lag, oldLag) => {
          const h = new Harness({ policy: stepwisePolicy, readyLagTicks: lag, oldReadyLagTicks: oldLag });
          h.start();
          const run = (before: typeof h.state, actions: ReturnType<typeof h.tick>) => {
            const after = h.state;
            for (const action of actions) {
              if (action.type === 'setWeight' && action.reason === 'rollback' && !after.rollbackCritical) {
                // What was ready when the weight was written must carry the old cluster's share.
                const needed = oldClusterReplicas(action.weight, sizing);
                if (h.old.readyReplicas < needed && action.weight < before.weight)
                  throw new Error(
                    `rollback lowered to ${action.weight}% with ${h.old.readyReplicas}/${needed} old replicas ready`,
                  );
              }
              if (action.type === 'scale' && action.cluster === 'new' && after.phase === 'RollingBack')
                throw new Error(`new cluster scaled to ${action.replicas} while still rolling back`);
              if (action.type === 'scale' && action.cluster === 'old' && action.replicas === 0) {
                const full = newClusterReplicas(100, sizing);
                if (h.routeWeight !== 100 || h.fresh.readyReplicas < full)
                  throw new Error(
                    `old scaled to 0 with the route at ${h.routeWeight}% and ${h.fresh.readyReplicas}/${full} new ready`,
                  );
              }
            }
            if (after.phase === 'RolledBack' && before.phase !== 'RolledBack') {
              if (h.old.readyReplicas < 10)
                throw new Error(`RolledBack with ${h.old.readyReplicas}/10 old replicas ready`);
              if (h.unavailable.some((side) => side.cluster === 'old'))
                throw new Error('RolledBack while the old server was out of service');
            }
            if (after.weight > before.weight && h.unavailable.length > 0 && before.phase !== 'Promoting')
              throw new Error(`raised to ${after.weight}% with a server out of service`);
          };
          for (const step of steps) {
            switch (step.kind) {
              case 'command':
                try {
                  const before = h.state;
                  run(before, h.command(step.command));
                } catch (error) {
                  if (!(error instanceof PhaseConflictError)) throw error;
                }
                break;
              case 'drift':
                h.routeWeight = step.weight;
                break;
              case 'old-ready-cap':
                h.oldReadyCap = step.cap;
                break;
              case 'old-pods-ready':
                h.oldReadyCap = Number.POSITIVE_INFINITY;
                h.old.readyReplicas = h.old.replicas;
                break;
              case 'new-pods-crash':
                h.fresh.readyReplicas = Math.min(step.ready, h.fresh.replicas);
                break;
              case 'server':
                h.unavailable =
                  step.side === 'none' ? [] : [{ cluster: step.side, reason: `${step.side} in maint` }];
                break;
              case 'tick':
                for (let i = 0; i < step.ticks; i++) {
                  const before = h.state;
                  run(before, h.tick(data(step.data, h.state.weight)));
                }
                break;
            }
          }
        },
      ),
      { numRuns: 300, seed: 20261201 },
    );
    t.pass('300 random runs kept every rollback and promotion invariant');
  },
);
