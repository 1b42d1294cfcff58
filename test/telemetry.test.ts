// clustershift's own metrics: the phase gauge is one series per rollout (the phase it is in),
// so its cardinality grows with the rollouts, not with rollouts x phases; a rollout no longer
// run here leaves no series behind.

import t from 'tap';
import { newRolloutState } from '../src/rollout/state-machine.js';
import type { RolloutState } from '../src/rollout/types.js';
import { Telemetry } from '../src/telemetry.js';

const T0 = Date.parse('2026-12-01T08:00:00.000Z');

async function series(telemetry: Telemetry, name: string): Promise<string[]> {
  const text = await telemetry.registry.metrics();
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

t.test('the phase gauge holds the phase a rollout is in, one series each', async (t) => {
  const telemetry = new Telemetry({ processMetrics: false });
  const pending = newRolloutState({ namespace: 'shop', name: 'checkout' }, T0);
  telemetry.observe(undefined, pending);
  telemetry.observe(undefined, newRolloutState({ namespace: 'shop', name: 'cart' }, T0));
  t.same(await series(telemetry, 'clustershift_rollout_phase'), [
    'clustershift_rollout_phase{namespace="shop",workload="checkout",phase="Pending"} 1',
    'clustershift_rollout_phase{namespace="shop",workload="cart",phase="Pending"} 1',
  ]);
  const progressing: RolloutState = { ...pending, phase: 'Progressing', weight: 5, revision: 1 };
  telemetry.observe(pending, progressing);
  t.same(await series(telemetry, 'clustershift_rollout_phase'), [
    'clustershift_rollout_phase{namespace="shop",workload="cart",phase="Pending"} 1',
    'clustershift_rollout_phase{namespace="shop",workload="checkout",phase="Progressing"} 1',
  ]);
  t.same(await series(telemetry, 'clustershift_rollout_weight'), [
    'clustershift_rollout_weight{namespace="shop",workload="checkout"} 5',
    'clustershift_rollout_weight{namespace="shop",workload="cart"} 0',
  ]);
  telemetry.observe(progressing, { ...progressing, phase: 'RollingBack', revision: 2 });
  t.match(
    await telemetry.registry.metrics(),
    /clustershift_rollbacks_total\{namespace="shop",workload="checkout"\} 1/,
  );

  telemetry.forget({ ...progressing, phase: 'RollingBack' });
  t.same(
    await series(telemetry, 'clustershift_rollout_phase'),
    ['clustershift_rollout_phase{namespace="shop",workload="cart",phase="Pending"} 1'],
    'a forgotten rollout leaves no phase series',
  );
  t.same(await series(telemetry, 'clustershift_rollout_weight'), [
    'clustershift_rollout_weight{namespace="shop",workload="cart"} 0',
  ]);
});
