// The webhook gate against a real HTTP receiver on loopback: allow, refuse with the body,
// and fail closed when the gate does not answer or cannot be reached.

import t from 'tap';
import { webhookGate } from '../../src/notify/gate.js';
import { newRolloutState } from '../../src/rollout/state-machine.js';
import type { RolloutState } from '../../src/rollout/types.js';
import { closedPort, startReceiver } from './receiver.js';

function progressing(weight: number): RolloutState {
  return { ...newRolloutState({ namespace: 'shop', name: 'checkout' }, 0), phase: 'Progressing', weight };
}

const signal = () => AbortSignal.timeout(10_000);

t.test('a 2xx answer allows the step, and the gate is told the rollout and both weights', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, body: 'ok' }));
  const gate = webhookGate({ url: `${receiver.url}/gate`, timeoutMs: 5000 });
  t.equal(await gate(progressing(10), 50, signal()), undefined);
  const [request] = await receiver.received(1);
  t.equal(request?.method, 'POST');
  t.equal(request?.path, '/gate');
  t.match(request?.headers['content-type'], /application\/json/);
  t.same(JSON.parse(request!.body), {
    rollout: { namespace: 'shop', name: 'checkout' },
    currentWeight: 10,
    nextWeight: 50,
    phase: 'Progressing',
  });
});

t.test('a 403 refuses the step with the status and the first 200 characters of the body', async (t) => {
  const body = `change freeze until Monday ${'x'.repeat(300)}`;
  const receiver = await startReceiver(t, () => ({ status: 403, body }));
  const gate = webhookGate({ url: receiver.url, timeoutMs: 5000 });
  const refusal = await gate(progressing(10), 50, signal());
  t.equal(refusal, `gate refused (HTTP 403): ${body.slice(0, 200)}`);
});

t.test('a gate that never answers refuses the step once the timeout passes (fail closed)', async (t) => {
  const receiver = await startReceiver(t, () => 'hang');
  const gate = webhookGate({ url: receiver.url, timeoutMs: 200 });
  const refusal = await gate(progressing(10), 50, signal());
  t.match(refusal, /^gate unreachable: no answer within 200ms/);
  t.equal((await receiver.received(1)).length, 1, 'the gate was asked');
});

t.test('a refused connection refuses the step', async (t) => {
  const port = await closedPort();
  const gate = webhookGate({ url: `http://127.0.0.1:${port}/gate`, timeoutMs: 5000 });
  const refusal = await gate(progressing(10), 50, signal());
  t.match(refusal, /^gate unreachable: .*ECONNREFUSED/);
});

t.test('the gate URL may come from a secret; a missing secret names the variable, not a value', async (t) => {
  const receiver = await startReceiver(t);
  process.env.CS_TEST_GATE_URL = `${receiver.url}/gate?token=s3cr3t`;
  t.teardown(() => {
    delete process.env.CS_TEST_GATE_URL;
  });
  const gate = webhookGate({ url: { env: 'CS_TEST_GATE_URL' }, timeoutMs: 5000 });
  t.equal(await gate(progressing(10), 50, signal()), undefined);
  t.equal((await receiver.received(1))[0]?.path, '/gate?token=s3cr3t');
  t.throws(() => webhookGate({ url: { env: 'CS_TEST_GATE_MISSING' }, timeoutMs: 5000 }), {
    code: 'CS_CONFIG_INVALID',
    message: /CS_TEST_GATE_MISSING is not set/,
  });
});
