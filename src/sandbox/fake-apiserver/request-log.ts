// What the fake API server was asked: every write as received (for tests asserting the exact
// calls a component made).

import type { WriteRecord } from './types.js';

export class WriteLog {
  private readonly records: WriteRecord[] = [];

  add(record: WriteRecord): void {
    this.records.push(record);
  }

  /** Oldest first, as copies. */
  all(): WriteRecord[] {
    return this.records.map((record) => structuredClone(record));
  }

  clear(): void {
    this.records.length = 0;
  }
}

/** The verbs the real API server counts requests by (apiserver_request_total). */
export type ApiVerb =
  | 'get'
  | 'list'
  | 'watch'
  | 'create'
  | 'update'
  | 'patch'
  | 'delete'
  | 'deletecollection';

export interface RequestCount {
  verb: ApiVerb;
  /** '' for the core group. */
  group: string;
  /** The plural; '' for discovery and other non-resource paths. */
  resource: string;
  /** `status` or `scale`, when the request was to a subresource. */
  subresource?: string;
  count: number;
}

export type RequestFilter = Partial<Omit<RequestCount, 'count'>>;

/** Requests per verb and resource, so tests and benchmarks can count what a component costs. */
export class RequestCounter {
  private readonly counts = new Map<string, RequestCount>();

  add(verb: ApiVerb, group: string, resource: string, subresource: string | undefined): void {
    const key = `${verb}|${group}|${resource}|${subresource ?? ''}`;
    const entry = this.counts.get(key);
    if (entry) entry.count++;
    else this.counts.set(key, { verb, group, resource, ...(subresource ? { subresource } : {}), count: 1 });
  }

  /** Every (verb, resource) seen, sorted by resource then verb. */
  all(): RequestCount[] {
    return [...this.counts.values()]
      .map((entry) => ({ ...entry }))
      .sort((a, b) =>
        `${a.group}/${a.resource}/${a.subresource ?? ''}/${a.verb}`.localeCompare(
          `${b.group}/${b.resource}/${b.subresource ?? ''}/${b.verb}`,
        ),
      );
  }

  /** The number of requests matching every given field (all requests with no filter). */
  total(filter: RequestFilter = {}): number {
    let total = 0;
    for (const entry of this.counts.values()) {
      if (filter.verb !== undefined && entry.verb !== filter.verb) continue;
      if (filter.group !== undefined && entry.group !== filter.group) continue;
      if (filter.resource !== undefined && entry.resource !== filter.resource) continue;
      if (filter.subresource !== undefined && entry.subresource !== filter.subresource) continue;
      total += entry.count;
    }
    return total;
  }

  reset(): void {
    this.counts.clear();
  }
}
