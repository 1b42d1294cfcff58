// The changes the store made, kept for watches: replayed from a resourceVersion, forgotten
// past a limit or on compaction (then a watch from before is 410 Gone), and pushed to open watches.

import type { FakeResource } from './resources.js';
import type { KubeObject } from './types.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  resourceVersion: number;
  info: FakeResource;
  /** The object after the change (for DELETED: its last state, at the deletion's resourceVersion). */
  object: KubeObject;
  /** The object before the change, for MODIFIED: a selector watch turns it into ADDED or DELETED. */
  previous: KubeObject | undefined;
}

export type StoreListener = (event: StoreEvent) => void;

export class ChangeHistory {
  private readonly limit: number;
  private readonly events: StoreEvent[] = [];
  /** A watch from a resourceVersion below this has missed changes: 410 Gone. */
  private oldestWatchable = 1;
  private readonly listeners = new Set<StoreListener>();

  constructor(options: { limit: number }) {
    this.limit = options.limit;
  }

  record(event: StoreEvent): void {
    this.events.push(event);
    if (this.events.length > this.limit) {
      const dropped = this.events.splice(0, this.events.length - this.limit);
      this.oldestWatchable = dropped[dropped.length - 1]!.resourceVersion;
    }
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The changes after `resourceVersion`, oldest first; undefined when they are no longer kept. */
  since(resourceVersion: number): StoreEvent[] | undefined {
    if (resourceVersion < this.oldestWatchable) return undefined;
    return this.events.filter((event) => event.resourceVersion > resourceVersion);
  }

  /** Forget everything up to `resourceVersion` (an etcd compaction). */
  compact(resourceVersion: number): void {
    this.events.length = 0;
    this.oldestWatchable = resourceVersion;
  }
}
