// Fault injection: the next N matching requests fail with 500, 429 or never answer.

import type { IncomingMessage } from 'node:http';
import { StatusError } from './status-error.js';
import type { FaultSpec } from './types.js';

export class FaultInjector {
  private readonly faults: FaultSpec[] = [];

  add(fault: FaultSpec): void {
    this.faults.push({ ...fault });
  }

  clear(): void {
    this.faults.length = 0;
  }

  /** The first armed fault matching the request, counted down; undefined when none matches. */
  take(method: string, path: string, headers: IncomingMessage['headers']): FaultSpec | undefined {
    const index = this.faults.findIndex(
      (fault) =>
        fault.count > 0 &&
        (fault.method === undefined || fault.method.toUpperCase() === method) &&
        (fault.pathIncludes === undefined || path.includes(fault.pathIncludes)) &&
        (fault.match === undefined || fault.match({ method, path, headers })),
    );
    const fault = this.faults[index];
    if (!fault) return undefined;
    fault.count--;
    if (fault.count <= 0) this.faults.splice(index, 1);
    return fault;
  }
}

/** The error a 500 or 429 fault answers with. */
export function faultError(fault: FaultSpec): StatusError {
  if (fault.status === 429) {
    return new StatusError(
      429,
      'TooManyRequests',
      'the server has received too many requests and has asked us to try again later',
      { retryAfterSeconds: fault.retryAfterSeconds ?? 1 },
      { 'retry-after': String(fault.retryAfterSeconds ?? 1) },
    );
  }
  return new StatusError(500, 'InternalError', 'Internal error occurred: injected fault');
}
