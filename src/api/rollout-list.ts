// GET /api/v1/rollouts as pollers use it: the query (phase, namespace, limit, continue), pages
// in key order with Kubernetes-style continue tokens, and answers kept between changes with a
// content ETag, so a thousand-rollout list is serialised once per change, not once per request.

import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { RolloutWorkload } from '../config/load.js';
import type { Controller, LiveView } from '../controller.js';
import { BadRequestError } from '../errors.js';
import { DNS_LABEL, isDnsLabel } from '../kube/names.js';
import { ROLLOUT_PHASES, type RolloutPhase, type RolloutState } from '../rollout/types.js';
import { RolloutSummarySchema, summarize } from './views.js';

export const MAX_LIST_LIMIT = 1000;
const QUERY_KEYS = ['phase', 'namespace', 'limit', 'continue'] as const;

/** The query as documented; parseListQuery does the actual parsing (it knows repeats and commas). */
export const ListQuerySchema = Type.Object(
  {
    phase: Type.Optional(
      Type.Array(Type.Unsafe<RolloutPhase>({ type: 'string', enum: [...ROLLOUT_PHASES] }), {
        description: 'Only rollouts in these phases; repeat the parameter or separate phases with commas.',
      }),
    ),
    namespace: Type.Optional(Type.String({ ...DNS_LABEL, description: 'Only this namespace.' })),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_LIST_LIMIT,
        description:
          'At most this many rollouts, in key order; metadata.continue then fetches the next page. ' +
          'Without limit the answer holds every matching rollout.',
      }),
    ),
    continue: Type.Optional(
      Type.String({
        description: 'metadata.continue of the previous page, with the same phase and namespace.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RolloutListSchema = Type.Object(
  {
    metadata: Type.Object({
      continue: Type.Optional(
        Type.String({
          description: 'Present when more rollouts match: pass it as ?continue= for the next page.',
        }),
      ),
      remainingItemCount: Type.Optional(
        Type.Integer({ description: 'How many matching rollouts come after this page.' }),
      ),
    }),
    rollouts: Type.Array(RolloutSummarySchema),
  },
  { $id: 'RolloutList' },
);
export type RolloutList = Static<typeof RolloutListSchema>;

export interface ListQuery {
  /** Sorted, without repeats. */
  phases?: readonly RolloutPhase[];
  namespace?: string;
  limit?: number;
  continue?: string;
}

type RawQuery = Record<string, string | string[] | undefined>;

/** The query string as Fastify parsed it (a repeated key is an array) into a ListQuery, or a 400. */
export function parseListQuery(raw: RawQuery | null | undefined): ListQuery {
  const query: ListQuery = {};
  if (!raw) return query;
  for (const key of Object.keys(raw)) {
    if (!(QUERY_KEYS as readonly string[]).includes(key))
      throw new BadRequestError(
        `unknown query parameter ${JSON.stringify(key)}; GET /api/v1/rollouts takes ${QUERY_KEYS.join(', ')}`,
      );
  }
  const once = (key: (typeof QUERY_KEYS)[number]): string | undefined => {
    const value = raw[key];
    if (Array.isArray(value)) throw new BadRequestError(`give ${key} once, not ${value.length} times`);
    return value;
  };

  if (raw.phase !== undefined) {
    const phases = new Set<RolloutPhase>();
    for (const value of [raw.phase].flat()) {
      for (const part of value.split(',')) {
        const phase = part.trim();
        if (!(ROLLOUT_PHASES as readonly string[]).includes(phase))
          throw new BadRequestError(
            `${phase === '' ? 'an empty phase' : `unknown phase ${JSON.stringify(phase)}`} in phase=${value}; ` +
              `allowed: ${ROLLOUT_PHASES.join(', ')}`,
          );
        phases.add(phase as RolloutPhase);
      }
    }
    query.phases = [...phases].sort();
  }

  const namespace = once('namespace');
  if (namespace !== undefined) {
    if (!isDnsLabel(namespace))
      throw new BadRequestError(
        `namespace=${JSON.stringify(namespace)} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)`,
      );
    query.namespace = namespace;
  }

  const limit = once('limit');
  if (limit !== undefined) {
    const value = /^[0-9]{1,7}$/.test(limit) ? Number(limit) : Number.NaN;
    if (!(value >= 1 && value <= MAX_LIST_LIMIT))
      throw new BadRequestError(
        `limit=${JSON.stringify(limit)}: expected a whole number from 1 to ${MAX_LIST_LIMIT}`,
      );
    query.limit = value;
  }

  const token = once('continue');
  if (token !== undefined) {
    if (token === '')
      throw new BadRequestError('continue is empty; pass metadata.continue of the previous page');
    query.continue = token;
  }
  return query;
}

/** The answer to one query: the exact bytes and their strong ETag. */
export interface ListAnswer {
  body: Buffer;
  etag: string;
}

interface Entry {
  key: string;
  namespace: string;
  phase: RolloutPhase;
  state: RolloutState;
  live: LiveView;
  json: string;
}

interface ContinueToken {
  v: 1;
  /** The last key the previous page held; the next page starts after it. */
  after: string;
  /** Which filter issued it: a token only continues the query it came from. */
  query: string;
  /** Which set of configured rollouts it walks: another set would skip or repeat rollouts. */
  rollouts: string;
}

/** Answers kept per distinct query; pollers repeat a handful of them. */
const MAX_CACHED_ANSWERS = 32;

export interface RolloutListOptions {
  controller: Pick<Controller, 'changes' | 'list' | 'liveView'>;
  workloads: Pick<ReadonlyMap<string, RolloutWorkload>, 'get'>;
  /** The configuration file, the source of the workloads it lists. */
  configFile: string;
}

/**
 * Keeps every rollout's summary as JSON and re-serialises one only when its state or the part
 * of its live view the summary shows has changed (controller.changes moves on every observation,
 * even when nothing shown did). `generation` moves only when some summary's JSON did, so
 * answers, and their ETags, stay the same between changes a reader could see.
 */
export class RolloutListView {
  private readonly entries = new Map<string, Entry>();
  /** Entries in key order. */
  private ordered: Entry[] = [];
  private seenChanges = -1;
  private generation = 0;
  /** A fingerprint of the configured keys, carried in continue tokens. */
  private keySet = '';
  private readonly answers = new Map<string, { generation: number; answer: ListAnswer }>();

  constructor(private readonly options: RolloutListOptions) {}

  answer(query: ListQuery): ListAnswer {
    this.refresh();
    const cacheKey = canonical(query);
    const cached = this.answers.get(cacheKey);
    if (cached?.generation === this.generation) return cached.answer;
    const answer = this.build(query);
    this.answers.delete(cacheKey);
    if (this.answers.size >= MAX_CACHED_ANSWERS) this.answers.delete(this.answers.keys().next().value!);
    this.answers.set(cacheKey, { generation: this.generation, answer });
    return answer;
  }

  private refresh(): void {
    const { controller } = this.options;
    const states = controller.list();
    // load() adds rollouts without moving `changes`, so a new count also means "look again".
    if (controller.changes === this.seenChanges && states.length === this.entries.size) return;
    this.seenChanges = controller.changes;
    let added = false;
    for (const state of states) {
      const live = controller.liveView(state.key);
      const entry = this.entries.get(state.key);
      if (entry && entry.state === state && sameShownLive(entry.live, live)) {
        entry.live = live;
        continue;
      }
      const workload = this.options.workloads.get(state.key);
      if (!workload) continue;
      const json = JSON.stringify(summarize(state, workload, live, this.options.configFile));
      if (!entry) {
        added = true;
        this.entries.set(state.key, {
          key: state.key,
          namespace: state.workload.namespace,
          phase: state.phase,
          state,
          live,
          json,
        });
        continue;
      }
      if (json !== entry.json) this.generation++;
      Object.assign(entry, { phase: state.phase, state, live, json });
    }
    // A workload whose source dropped it (a WorkloadMigration deleted) leaves the list.
    let removed = false;
    if (this.entries.size > states.length || states.some((s) => !this.entries.has(s.key))) {
      const current = new Set(states.map((state) => state.key));
      for (const key of [...this.entries.keys()])
        if (!current.has(key)) removed = this.entries.delete(key) || removed;
    }
    if (added || removed) {
      this.generation++;
      this.ordered = [...this.entries.values()].sort((a, b) => compareKeys(a.key, b.key));
      this.keySet = shortHash(this.ordered.map((e) => e.key).join('\n'));
    }
  }

  private build(query: ListQuery): ListAnswer {
    const filter = filterText(query);
    let start = 0;
    if (query.continue !== undefined) {
      const token = this.decode(query.continue, filter);
      start = firstAfter(this.ordered, token.after);
    }
    const matches = (entry: Entry) =>
      (query.phases === undefined || query.phases.includes(entry.phase)) &&
      (query.namespace === undefined || entry.namespace === query.namespace);
    const page: string[] = [];
    let last: Entry | undefined;
    let remaining = 0;
    for (let i = start; i < this.ordered.length; i++) {
      const entry = this.ordered[i]!;
      if (!matches(entry)) continue;
      if (query.limit === undefined || page.length < query.limit) {
        page.push(entry.json);
        last = entry;
      } else remaining++;
    }
    const metadata =
      remaining > 0 && last
        ? {
            continue: this.encode({ v: 1, after: last.key, query: filter, rollouts: this.keySet }),
            remainingItemCount: remaining,
          }
        : {};
    const body = Buffer.from(`{"metadata":${JSON.stringify(metadata)},"rollouts":[${page.join(',')}]}`);
    return { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
  }

  private encode(token: ContinueToken): string {
    return Buffer.from(JSON.stringify(token)).toString('base64url');
  }

  private decode(text: string, filter: string): ContinueToken {
    let token: Partial<ContinueToken> | undefined;
    try {
      token = /^[A-Za-z0-9_-]+$/.test(text)
        ? JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
        : undefined;
    } catch {
      token = undefined;
    }
    if (
      !token ||
      typeof token !== 'object' ||
      token.v !== 1 ||
      typeof token.after !== 'string' ||
      typeof token.query !== 'string' ||
      typeof token.rollouts !== 'string'
    )
      throw new BadRequestError(
        'continue is not a token this API issued; pass metadata.continue of the previous page unchanged, ' +
          'or start again without continue',
      );
    if (token.query !== filter)
      throw new BadRequestError(
        `continue was issued for ${describeFilter(token.query)}, not ${describeFilter(filter)}; ` +
          'repeat the same phase and namespace with it, or start again without continue',
      );
    if (token.rollouts !== this.keySet)
      throw new BadRequestError(
        'continue is stale: the configured rollouts changed since it was issued; start again without continue',
      );
    return token as ContinueToken;
  }
}

/** Whether an If-None-Match header names this ETag (or is `*`); weak comparison, as RFC 9110 asks. */
export function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const plain = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  return header.split(',').some((part) => {
    const tag = part.trim();
    return tag === '*' || plain(tag) === plain(etag);
  });
}

/** What the summary shows of the live view; observedAt moves on every tick and is not shown. */
function sameShownLive(a: LiveView, b: LiveView): boolean {
  return (
    a.routeWeight === b.routeWeight &&
    a.routeSplit?.effectiveWeight === b.routeSplit?.effectiveWeight &&
    a.routeSplit?.unavailable.map((side) => side.reason).join('\n') ===
      b.routeSplit?.unavailable.map((side) => side.reason).join('\n') &&
    a.lastError === b.lastError &&
    a.old?.replicas === b.old?.replicas &&
    a.old?.readyReplicas === b.old?.readyReplicas &&
    a.new?.replicas === b.new?.replicas &&
    a.new?.readyReplicas === b.new?.readyReplicas &&
    (a.old === undefined) === (b.old === undefined) &&
    (a.new === undefined) === (b.new === undefined)
  );
}

/** Code-unit order: the same on every replica, whatever its locale. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Index of the first entry whose key sorts after `key`. */
function firstAfter(ordered: readonly Entry[], key: string): number {
  let low = 0;
  let high = ordered.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(ordered[middle]!.key, key) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function filterText(query: ListQuery): string {
  return `phase=${query.phases?.join(',') ?? ''}&namespace=${query.namespace ?? ''}`;
}

function describeFilter(filter: string): string {
  const [phase = '', namespace = ''] = filter.split('&').map((part) => part.slice(part.indexOf('=') + 1));
  const parts = [phase ? `phase=${phase}` : '', namespace ? `namespace=${namespace}` : ''].filter(Boolean);
  return parts.length > 0 ? parts.join(' and ') : 'no filter';
}

function canonical(query: ListQuery): string {
  return `${filterText(query)}&limit=${query.limit ?? ''}&continue=${query.continue ?? ''}`;
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('base64url').slice(0, 12);
}
