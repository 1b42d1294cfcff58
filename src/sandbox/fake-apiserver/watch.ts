// Watch (`?watch=1`): a chunked stream of ADDED / MODIFIED / DELETED events from a
// resourceVersion on, BOOKMARKs when asked for, 410 Gone for a version the history no longer
// holds, label and field selectors (an object leaving the selector is DELETED for that watch,
// one entering it ADDED), and Table events for kubectl's `get -w`.

import type { ServerResponse } from 'node:http';
import type { Clock } from '../../clock.js';
import type { StoreEvent } from './change-history.js';
import { fieldLookup, matchesSelector, parseSelector, type SelectorError } from './label-selector.js';
import type { ObjectStore } from './object-store.js';
import type { ResourcePath } from './resource-handlers.js';
import { groupVersion } from './resources.js';
import { StatusError } from './status-error.js';
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
    const { target, query } = request;
    const { info, version, namespace } = target;
    let labels: ReturnType<typeof parseSelector>;
    let fields: ReturnType<typeof parseSelector>;
    try {
      labels = parseSelector(query.get('labelSelector') ?? '');
      fields = parseSelector(query.get('fieldSelector') ?? '');
    } catch (error) {
      throw new StatusError(
        400,
        'BadRequest',
        `unable to parse selector: ${(error as SelectorError).message}`,
      );
    }
    if (target.name !== undefined) fields.push({ key: 'metadata.name', op: 'eq', value: target.name });
    const fromParameter = query.get('resourceVersion') ?? '';
    const from = fromParameter === '' || fromParameter === '0' ? undefined : Number(fromParameter);
    if (from !== undefined && !Number.isSafeInteger(from)) {
      throw new StatusError(400, 'BadRequest', `invalid resource version "${fromParameter}"`);
    }
    const sendInitialEvents = query.get('sendInitialEvents') === 'true';
    const bookmarks = query.get('allowWatchBookmarks') === 'true' || query.get('allowWatchBookmarks') === '1';
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
    const asTable = /as=Table/.test(request.accept ?? '');

    const selected = (object: KubeObject | undefined): boolean =>
      object !== undefined &&
      (namespace === undefined || object.metadata.namespace === namespace) &&
      matchesSelector(labels, (key) => object.metadata.labels?.[key]) &&
      matchesSelector(fields, fieldLookup(object));

    return (response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      // Headers now, not with the first event: a client waits for them before it counts as watching.
      response.flushHeaders();
      let headerSent = false;
      const send = (type: EventType, object: unknown) => {
        if (response.writableEnded) return;
        let shown = object;
        if (asTable && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED')) {
          const table = toTable(info, version, object as JsonObject, {
            now: this.clock.now(),
            resourceVersion: this.store.currentResourceVersion(),
            includeObject: query.get('includeObject'),
          });
          // Like the real server: the column definitions come once, with the first event.
          if (headerSent) table.columnDefinitions = [];
          headerSent = true;
          shown = table;
        }
        response.write(`${JSON.stringify({ type, object: shown })}\n`);
      };
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

      if (from !== undefined && !sendInitialEvents) {
        const changes = this.store.changesSince(from);
        if (changes === undefined) {
          send('ERROR', {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: `too old resource version: ${from} (${this.store.currentResourceVersion()})`,
            reason: 'Expired',
            code: 410,
          });
          response.end();
          return;
        }
        for (const change of changes) deliver(change);
      } else {
        for (const object of this.store.select(info, namespace)) {
          if (selected(object)) send('ADDED', present(object));
        }
        if (sendInitialEvents && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
      }

      const unsubscribe = this.store.subscribe(deliver);
      this.open.set(response, {
        group: info.group,
        resource: info.resource,
        fail: (error) => {
          send('ERROR', {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: error.message,
            reason: error.reason,
            code: error.code,
          });
          response.end();
        },
      });
      const timers: NodeJS.Timeout[] = [];
      if (bookmarks) timers.push(setInterval(() => bookmark(), this.bookmarkIntervalMs));
      if (timeoutSeconds > 0) timers.push(setTimeout(() => response.end(), timeoutSeconds * 1000));
      for (const timer of timers) timer.unref();
      response.on('close', () => {
        unsubscribe();
        for (const timer of timers) clearTimeout(timer);
        this.open.delete(response);
      });
    };
  }
}
