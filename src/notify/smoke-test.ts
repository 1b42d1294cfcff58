// Blue-green's smoke test: a webhook asked once the new cluster is ready at full size, before any
// traffic moves. It fails closed: anything but a 2xx, after bounded retries for answers that may
// pass on a second try, fails the rollout in pre-validation. The URL may carry a token: messages
// name its host only.

import type { Logger } from 'pino';
import { request } from 'undici';
import { readSecret } from '../config/secrets.js';
import { errorMessage } from '../errors.js';
import type { BlueGreenPolicy } from '../rollout/policy.js';
import type { RolloutState, SmokeTestResult } from '../rollout/types.js';
import { abortableSleep, type Backoff, backoffDelayMs, deadline, type Sleep } from '../timing.js';

export type SmokeTestSettings = NonNullable<BlueGreenPolicy['smokeTest']>;

/** Asks the smoke test about one rollout. Never throws: a failure to ask is a refusal. */
export type SmokeTester = (
  state: RolloutState,
  test: SmokeTestSettings,
  signal: AbortSignal,
) => Promise<SmokeTestResult>;

/** The JSON body POSTed to the smoke test. */
export interface SmokeTestRequest {
  rollout: { namespace: string; name: string };
  phase: RolloutState['phase'];
  stage: 'smokeTest';
}

export interface WebhookSmokeTesterOptions {
  logger?: Logger;
  /** Attempts in all (default 3): an answer that may pass on a second try is asked again. */
  attempts?: number;
  backoff?: Backoff;
  /** Injected so tests need not wait for real. */
  sleep?: Sleep;
  random?: () => number;
}

/** A refusal shows this many bytes of the answer. */
export const SMOKE_TEST_BODY_BYTES = 200;

const DEFAULT_BACKOFF: Backoff = { baseDelayMs: 500, maxDelayMs: 5000, jitter: 'equal' };

/**
 * A 2xx passes. A 4xx (but 408 and 429) refuses at once: the test ran and said no. No answer in
 * time, a connection error, a 408, 429 or 5xx is asked again, up to `attempts` in all; the last
 * one's answer is the verdict.
 */
export function webhookSmokeTester(options: WebhookSmokeTesterOptions = {}): SmokeTester {
  const attempts = Math.max(1, options.attempts ?? 3);
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const sleep = options.sleep ?? abortableSleep;
  return async (state, test, signal) => {
    let url: string;
    let headers: Record<string, string>;
    try {
      url = typeof test.url === 'string' ? test.url : readSecret(test.url, 'blueGreen.smokeTest.url');
      headers = Object.fromEntries(
        Object.entries(test.headers).map(([name, value]) => [
          name.toLowerCase(),
          typeof value === 'string' ? value : readSecret(value, `blueGreen.smokeTest.headers.${name}`),
        ]),
      );
    } catch (error) {
      return { passed: false, detail: `cannot read its settings: ${errorMessage(error)}` };
    }
    let host: string;
    try {
      host = new URL(url).host;
    } catch {
      return { passed: false, detail: 'its URL is not a URL; expected http(s)://host/path' };
    }
    const log = options.logger?.child({ smokeTest: host, rollout: state.key });
    const scrub = (message: string) => message.split(url).join(`<${host}>`);
    const body: SmokeTestRequest = {
      rollout: { namespace: state.workload.namespace, name: state.workload.name },
      phase: state.phase,
      stage: 'smokeTest',
    };
    let last: SmokeTestResult = { passed: false, detail: 'not asked' };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        try {
          await sleep(backoffDelayMs(backoff, attempt - 1, options.random), signal);
        } catch {
          return { passed: false, detail: `the call was cancelled (${host})` };
        }
      }
      const timeout = deadline(test.timeoutMs, { parent: signal });
      let retry: boolean;
      try {
        const response = await request(url, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: timeout.signal,
        });
        const status = response.statusCode;
        if (status >= 200 && status < 300) {
          await response.body.dump();
          log?.info({ status, attempt }, 'smoke test passed');
          return { passed: true, detail: `HTTP ${status}` };
        }
        const text = await firstBytes(response.body, SMOKE_TEST_BODY_BYTES);
        last = { passed: false, detail: `HTTP ${status}: ${text}` };
        retry = status >= 500 || status === 408 || status === 429;
      } catch (error) {
        if (signal.aborted && !timeout.expired)
          return { passed: false, detail: `the call was cancelled (${host})` };
        const why = timeout.expired ? `no answer within ${test.timeoutMs}ms` : scrub(errorMessage(error));
        last = { passed: false, detail: `unreachable: ${why} (${host})` };
        retry = true;
      } finally {
        timeout.dispose();
      }
      log?.warn({ attempt, attempts, detail: last.detail }, 'smoke test did not pass');
      if (!retry) return last;
    }
    return attempts > 1 ? { passed: false, detail: `${last.detail} (after ${attempts} attempts)` } : last;
  };
}

/** The first `limit` bytes of a body as text; the rest is discarded unread. */
async function firstBytes(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  limit: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  body.destroy();
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8').trim();
}

/**
 * What the controller hands the state machine while a blue-green rollout waits for its smoke
 * test: the tester's answer, or a refusal when this process was built without one.
 */
export async function askSmokeTest(
  tester: SmokeTester | undefined,
  state: RolloutState,
  test: SmokeTestSettings | undefined,
  signal: AbortSignal,
): Promise<SmokeTestResult | undefined> {
  if (state.phase !== 'Progressing' || state.blueGreen?.stage !== 'smokeTest' || !test) return undefined;
  if (!tester) return { passed: false, detail: 'this clustershift process has no smoke tester wired' };
  return tester(state, test, signal);
}
