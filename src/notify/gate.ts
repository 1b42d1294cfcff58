// A traffic gate asked over HTTP before each traffic increase (a change-freeze calendar, a
// ticketing system, a person's approval service). It fails closed: when the gate cannot answer,
// the step is held, because raising traffic nobody approved is worse than waiting a tick.

import type { Logger } from 'pino';
import { request } from 'undici';
import type { SecretRef } from '../config/schema.js';
import { readSecret } from '../config/secrets.js';
import type { TrafficGate } from '../controller.js';
import { ConfigError, errorMessage } from '../errors.js';
import type { RolloutState } from '../rollout/types.js';
import { deadline } from '../timing.js';

export interface WebhookGateOptions {
  /** The gate URL, inline or as a secret reference (it may carry a token). */
  url: string | SecretRef;
  /** Per-call timeout; no answer in time refuses the step. */
  timeoutMs: number;
  logger?: Logger;
}

/** The JSON body POSTed to the gate. */
export interface GateRequest {
  rollout: { namespace: string; name: string };
  currentWeight: number;
  nextWeight: number;
  phase: RolloutState['phase'];
}

/**
 * A TrafficGate for `ControllerOptions.gate`: 2xx allows the step; any other status refuses
 * it with the status and the start of the body; a timeout or network error refuses it as
 * "gate unreachable: ...". Never throws.
 */
export function webhookGate(options: WebhookGateOptions): TrafficGate {
  const url = typeof options.url === 'string' ? options.url : readSecret(options.url, 'gates.webhook.url');
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    throw new ConfigError('gates.webhook.url: not a URL; expected http(s)://host/path');
  }
  const log = options.logger?.child({ gate: 'webhook', host });
  const scrub = (message: string) => message.split(url).join(`<${host}>`);

  return async (state, weight, signal) => {
    const body: GateRequest = {
      rollout: { namespace: state.workload.namespace, name: state.workload.name },
      currentWeight: state.weight,
      nextWeight: weight,
      phase: state.phase,
    };
    const timeout = deadline(options.timeoutMs, { parent: signal });
    try {
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: timeout.signal,
      });
      const text = await response.body.text();
      if (response.statusCode >= 200 && response.statusCode < 300) return undefined;
      const refusal = `gate refused (HTTP ${response.statusCode}): ${text.slice(0, 200)}`;
      log?.info(
        { rollout: state.key, nextWeight: weight, status: response.statusCode },
        'gate refused the step',
      );
      return refusal;
    } catch (error) {
      const why = timeout.expired
        ? `no answer within ${options.timeoutMs}ms`
        : signal.aborted
          ? 'the call was cancelled'
          : scrub(errorMessage(error));
      log?.warn({ rollout: state.key, nextWeight: weight, error: why }, 'gate unreachable; holding the step');
      return `gate unreachable: ${why} (${host})`;
    } finally {
      timeout.dispose();
    }
  };
}
