// Watch faults: watch requests refused (500, 403 ...) before they stream, and open watches
// broken with an ERROR event, as an API server under trouble does. Tests use them to show that
// a watch cache that cannot watch makes its readers hold, and that it recovers by itself.

import { StatusError } from './status-error.js';

export interface WatchFaultSpec {
  /** How many watch requests to refuse. */
  count: number;
  /** Only watches of this resource (plural), e.g. `deployments`; any when absent. */
  resource?: string;
  /** The HTTP status answered (default 500). */
  status?: number;
}

/** An open watch stream, as WatchHub registers it. */
export interface OpenWatch {
  group: string;
  resource: string;
  /** Sends an ERROR event carrying this status, then ends the stream. */
  fail(error: StatusError): void;
}

export class WatchFaults {
  private readonly refusals: WatchFaultSpec[] = [];

  refuse(spec: WatchFaultSpec): void {
    this.refusals.push({ ...spec });
  }

  clear(): void {
    this.refusals.length = 0;
  }

  /** The error to answer a watch of `resource` with, counted down; undefined when none is armed. */
  take(resource: string): StatusError | undefined {
    const index = this.refusals.findIndex(
      (spec) => spec.count > 0 && (spec.resource === undefined || spec.resource === resource),
    );
    const spec = this.refusals[index];
    if (!spec) return undefined;
    spec.count--;
    if (spec.count <= 0) this.refusals.splice(index, 1);
    return watchError(spec.status ?? 500);
  }
}

/** Ends every open watch of `resource` (every one when absent) with an ERROR event; returns how many. */
export function breakWatches(open: Iterable<OpenWatch>, resource?: string, status = 500): number {
  let broken = 0;
  for (const watch of [...open]) {
    if (resource !== undefined && watch.resource !== resource) continue;
    watch.fail(watchError(status));
    broken++;
  }
  return broken;
}

function watchError(status: number): StatusError {
  if (status === 403)
    return new StatusError(403, 'Forbidden', 'watch is forbidden: injected fault (RBAC denies watch)');
  if (status === 410) return new StatusError(410, 'Expired', 'too old resource version: injected fault');
  return new StatusError(status, 'InternalError', 'Internal error occurred: injected watch fault');
}
