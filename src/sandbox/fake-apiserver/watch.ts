// Watch (`?watch=1`): a chunked stream of ADDED / MODIFIED / DELETED events from a
// resourceVersion on, BOOKMARKs when asked for, 410 Gone for a version the history no longer
// holds, label and field selectors (an object leaving the selector is DELETED for that watch,
// one entering it ADDED), and Table events for kubectl's `get -w`.

import type { ServerResponse } from 'node:http';
import type { Clock } from '../../clock.js';
import type { StoreEvent } from './change-history.js';
import { matchesSelectors, type QuerySelectors, querySelectors } from './label-selector.js';
import type { ObjectStore } from './object-store.js';
import type { ResourcePath } from './resource-handlers.js';
import { groupVersion } from './resources.js';
import { StatusError, statusBody } from './status-error.js';
import { toTable } from './table.js';
import type { JsonObject, KubeObject } from './types.js';
import type { OpenWatch } from './watch-faults.js';

export interface WatchRequest {
  target: ResourcePath;
  query: URLSearchParams;
  /** The Accept header: `as=Table` makes every event object a one-row Table. */
  accept: string | undefined;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export class WatchHub {
  private readonly store: ObjectStore;
  private readonly clock: Clock;
  private readonly bookmarkIntervalMs: number;
  private readonly open = new Map<ServerResponse, OpenWatch>();

  constructor(options: { store: ObjectStore; clock: Clock; bookmarkIntervalMs: number }) {
    this.store = options.store;
    this.clock = options.clock;
    this.bookmarkIntervalMs = options.bookmarkIntervalMs;
  }

  /** How many watch streams are open now. */
  openCount(): number {
    return this.open.size;
  }

  /** End every open watch (as an API server restart or a load balancer would); clients re-watch. */
  closeAll(): void {
    for (const response of this.open.keys()) response.end();
    this.open.clear();
  }

  /** The open watch streams (for watch-faults.ts to break). */
  streams(): IterableIterator<OpenWatch> {
    return this.open.values();
  }

  /**
   * Check the request and return the function that streams it; throws a StatusError (answered as
   * a plain response) for a bad selector or resourceVersion.
   */
  prepare(request: WatchRequest): (response: ServerResponse) => void {
    const watch = watchParameters(request);
    return (response) => this.stream(response, watch);
  }

  private stream(response: ServerResponse, watch: WatchParameters): void {
    const { info, version, namespace, from } = watch;
    response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // Headers now, not with the first event: a client waits for them before it counts as watching.
    response.flushHeaders();
    const send = this.eventWriter(response, watch);
    const selected = (object: KubeObject | undefined): boolean =>
      object !== undefined &&
      (namespace === undefined || object.metadata.namespace === namespace) &&
      matchesSelectors(watch.selectors, object);
    const present = (object: KubeObject) => this.store.present(info, version, object);
    const bookmark = (annotations?: Record<string, string>) =>
      send('BOOKMARK', {
        kind: info.kind,
        apiVersion: groupVersion(info.group, version),
        metadata: {
          resourceVersion: this.store.currentResourceVersion(),
          ...(annotations ? { annotations } : {}),
        },
      });
    const deliver = (event: StoreEvent) => {
      if (event.info.group !== info.group || event.info.resource !== info.resource) return;
      const now = selected(event.object);
      const before = event.type === 'MODIFIED' && selected(event.previous);
      if (event.type === 'ADDED' && now) send('ADDED', present(event.object));
      else if (event.type === 'DELETED' && selected(event.object)) send('DELETED', present(event.object));
      else if (event.type === 'MODIFIED') {
        if (now && before) send('MODIFIED', present(event.object));
        else if (now) send('ADDED', present(event.object));
        else if (before) send('DELETED', present(event.object));
      }
    };
    const fail = (error: StatusError) => {
      send('ERROR', statusBody(error));
      response.end();
    };

    if (from !== undefined && !watch.sendInitialEvents) {
      const changes = this.store.changesSince(from);
      if (changes === undefined) {
        const current = this.store.currentResourceVersion();
        fail(new StatusError(410, 'Expired', `too old resource version: ${from} (${current})`));
        return;
      }
      for (const change of changes) deliver(change);
    } else {
      for (const object of this.store.select(info, namespace)) {
        if (selected(object)) send('ADDED', present(object));
      }
      if (watch.sendInitialEvents && watch.bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
    }
    this.follow(response, watch, { deliver, bookmark, fail });
  }

  /** Writes one event a line; with `as=Table`, objects as one-row Tables (columns with the first). */
  private eventWriter(response: ServerResponse, watch: WatchParameters) {
    let headerSent = false;
    return (type: EventType, object: unknown) => {
      if (response.writableEnded) return;
      let shown = object;
      if (watch.asTable && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED')) {
        const table = toTable(watch.info, watch.version, object as JsonObject, {
          now: this.clock.now(),
          resourceVersion: this.store.currentResourceVersion(),
          includeObject: watch.includeObject,
        });
        // Like the real server: the column definitions come once, with the first event.
        if (headerSent) table.columnDefinitions = [];
        headerSent = true;
        shown = table;
      }
      response.write(`${JSON.stringify({ type, object: shown })}\n`);
    };
  }

  /** After the initial events: every later change, bookmarks and the timeout until the stream closes. */
  private follow(
    response: ServerResponse,
    watch: WatchParameters,
    on: {
      deliver: (event: StoreEvent) => void;
      bookmark: () => void;
      fail: (error: StatusError) => void;
    },
  ): void {
    const unsubscribe = this.store.subscribe(on.deliver);
    this.open.set(response, { group: watch.info.group, resource: watch.info.resource, fail: on.fail });
    const timers: NodeJS.Timeout[] = [];
    if (watch.bookmarks) timers.push(setInterval(() => on.bookmark(), this.bookmarkIntervalMs));
    if (watch.timeoutSeconds > 0) timers.push(setTimeout(() => response.end(), watch.timeoutSeconds * 1000));
    for (const timer of timers) timer.unref();
    response.on('close', () => {
      unsubscribe();
      for (const timer of timers) clearTimeout(timer);
      this.open.delete(response);
    });
  }
}

/** What a watch request asks for, checked before the stream starts. */
interface WatchParameters {
  info: ResourcePath['info'];
  version: string;
  namespace: string | undefined;
  selectors: QuerySelectors;
  /** The resourceVersion to replay changes from; undefined for "now" (a list of what exists). */
  from: number | undefined;
  sendInitialEvents: boolean;
  bookmarks: boolean;
  timeoutSeconds: number;
  asTable: boolean;
  includeObject: string | null;
}

function watchParameters(request: WatchRequest): WatchParameters {
  const { target, query } = request;
  const selectors = querySelectors(query);
  if (target.name !== undefined)
    selectors.fields.push({ key: 'metadata.name', op: 'eq', value: target.name });
  const fromParameter = query.get('resourceVersion') ?? '';
  const from = fromParameter === '' || fromParameter === '0' ? undefined : Number(fromParameter);
  if (from !== undefined && !Number.isSafeInteger(from)) {
    throw new StatusError(400, 'BadRequest', `invalid resource version "${fromParameter}"`);
  }
  return {
    info: target.info,
    version: target.version,
    namespace: target.namespace,
    selectors,
    from,
    sendInitialEvents: query.get('sendInitialEvents') === 'true',
    bookmarks: query.get('allowWatchBookmarks') === 'true' || query.get('allowWatchBookmarks') === '1',
    timeoutSeconds: Number(query.get('timeoutSeconds') ?? '0'),
    asTable: /as=Table/.test(request.accept ?? ''),
    includeObject: query.get('includeObject'),
  };
}
