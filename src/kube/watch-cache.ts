// One watched collection (the Deployments of a namespace, its HPAs, its route objects) kept in
// memory: listed, then followed by a watch from that list's resourceVersion (client-node's
// Watch; bookmarks keep a quiet watch's connection busy). A watch that errors, closes or answers
// 410 Gone makes the cache unsynced until it has listed and is watching again; readers must not
// act on what it holds meanwhile (StaleObservationError says why).

import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errorMessage, KubeError, StaleObservationError } from '../errors.js';
import { backoffDelayMs } from '../timing.js';
import { type KubeConfig, type KubernetesObject, Watch } from './client-node.js';
import { httpStatusOf } from './kube-call.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A change the cache applied: from a watch event, or found by comparing a fresh list with the cache. */
export interface CacheChange<T> {
  type: WatchEventType;
  object: T;
  /** The object as the cache held it before (MODIFIED, and DELETED of an object it held). */
  previous?: T;
}

export interface WatchCacheOptions<T> {
  /** What is watched, for messages: `deployments in namespace shop of cluster "prod-v1-32"`. */
  description: string;
  kubeConfig: KubeConfig;
  /** The collection's path, e.g. `/apis/apps/v1/namespaces/shop/deployments`. */
  path: string;
  /** One list of the collection (bounded by `signal`); its resourceVersion is where the watch starts. */
  list: (signal: AbortSignal) => Promise<{ items?: T[]; metadata?: { resourceVersion?: string } }>;
  /** Per list call; also how long a watch may wait for its first answer. */
  requestTimeoutMs: number;
  /** After a failed list or watch, the first wait before trying again (default 1000 ms), doubled up to maxRestartDelayMs (default 30 s). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** A watch with no data (not even a bookmark) for this long is presumed dead and watched again (default 5 min). */
  idleTimeoutMs?: number;
  /** What the cache keeps of each object listed or watched (client-go's SetTransform); all of it by default. */
  keep?: (object: T) => T;
  logger?: Logger;
}

type Health = { synced: true } | { synced: false; reason: string };

const keyOf = (object: KubernetesObject) =>
  `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

export class WatchCache<T extends KubernetesObject> {
  readonly description: string;
  private readonly options: WatchCacheOptions<T>;
  private readonly objects = new Map<string, T>();
  private readonly listeners = new Set<(change: CacheChange<T>) => void>();
  private readonly syncListeners = new Set<(synced: boolean) => void>();
  private readonly syncWaiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  private readonly stopping = new AbortController();
  private health: Health = { synced: false, reason: 'not listed yet' };
  /** Whether the first attempt is over (synced once, or failed): readers stop waiting for it then. */
  private firstAttemptOver = false;
  private resourceVersion: string | undefined;
  /** Bumped on every change to the objects, so a reader can keep what it derived from them. */
  private changes = 0;
  private request: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(options: WatchCacheOptions<T>) {
    this.options = options;
    this.description = options.description;
  }

  /** Lists and watches in the background until stop(); idempotent. */
  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.request?.abort();
    this.markStale('the cache is closed');
    await this.running;
  }

  get synced(): boolean {
    return this.health.synced;
  }

  /** Throws StaleObservationError saying why, unless the cache is synced. */
  assertSynced(): void {
    if (!this.health.synced)
      throw new StaleObservationError(
        `the watch of ${this.description} is not synced: ${this.health.reason}`,
      );
  }

  /**
   * Resolves once synced. While the cache is still on its first attempt (just started) this
   * waits for it, bounded by `signal`; after that an unsynced cache throws StaleObservationError
   * at once, so a broken watch holds its readers instead of making each wait out its timeout.
   */
  async whenSynced(signal: AbortSignal): Promise<void> {
    if (this.health.synced) return;
    if (this.firstAttemptOver || this.stopping.signal.aborted) this.assertSynced();
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.syncWaiters.delete(waiter);
        reject(
          new StaleObservationError(
            `the watch of ${this.description} did not sync in time: ${this.health.synced ? 'synced' : this.health.reason}`,
          ),
        );
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.add(waiter);
    });
  }

  /** The object `namespace/name`, as last seen (check `synced` first: see assertSynced). */
  get(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  /** A number that changes whenever the objects do (a watched change, a list). */
  get version(): number {
    return this.changes;
  }

  /** `listener` hears every change applied from now on; the returned function stops that. */
  onChange(listener: (change: CacheChange<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** `listener` hears each turn from synced to not synced and back. */
  onSyncChange(listener: (synced: boolean) => void): () => void {
    this.syncListeners.add(listener);
    return () => this.syncListeners.delete(listener);
  }

  private async run(): Promise<void> {
    let failures = 0;
    const { restartDelayMs = 1000, maxRestartDelayMs = 30_000 } = this.options;
    while (!this.stopping.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        const started = Date.now();
        const end = await this.watchOnce();
        if (this.stopping.signal.aborted) return;
        // Every watch starts from a fresh list: a watch resumed from an older resourceVersion
        // answers 200 before it can answer 410 Gone, and readers would take the cache for
        // synced in between, on data as old as the break.
        this.resourceVersion = undefined;
        this.markStale(
          end === 'gone'
            ? 'the watch answered 410 Gone (resourceVersion too old); listing again'
            : 'the watch closed; listing and watching again',
        );
        // A server that ends every watch at once must not be asked again in a tight loop.
        if (end === 'gone' || Date.now() - started >= restartDelayMs) {
          failures = 0;
          continue;
        }
        failures++;
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        failures++;
        this.resourceVersion = undefined;
        this.markStale(errorMessage(error));
        this.options.logger?.warn(
          { err: error, watch: this.description },
          `watch of ${this.description} failed; trying again`,
        );
      }
      const wait = backoffDelayMs(
        { baseDelayMs: restartDelayMs, maxDelayMs: maxRestartDelayMs, jitter: 'equal' },
        failures,
      );
      // Does not keep the process alive: a cache nobody stopped must not hold it open.
      await delay(wait, undefined, { signal: this.stopping.signal, ref: false }).catch(() => undefined);
    }
  }

  /** A full list replaces the cache; what differs from before is told as changes. */
  private async relist(): Promise<void> {
    const signal = AbortSignal.any([
      this.stopping.signal,
      AbortSignal.timeout(this.options.requestTimeoutMs),
    ]);
    const list = await this.options.list(signal);
    const fresh = new Map<string, T>();
    const keep = this.options.keep;
    for (const item of list.items ?? []) fresh.set(keyOf(item), keep ? keep(item) : item);
    const changes: CacheChange<T>[] = [];
    for (const [key, object] of this.objects) if (!fresh.has(key)) changes.push({ type: 'DELETED', object });
    for (const [key, object] of fresh) {
      const before = this.objects.get(key);
      if (!before) changes.push({ type: 'ADDED', object });
      else if (before.metadata?.resourceVersion !== object.metadata?.resourceVersion)
        changes.push({ type: 'MODIFIED', object, previous: before });
    }
    this.objects.clear();
    for (const [key, object] of fresh) this.objects.set(key, object);
    this.changes++;
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    for (const change of changes) this.emit(change);
  }

  /** One watch from resourceVersion; synced once the server answers it; resolves when it ends. */
  private watchOnce(): Promise<'closed' | 'gone'> {
    const watch = new Watch(this.options.kubeConfig);
    // client-node's Watch treats this as its connect timeout and then as an inactivity timeout.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = Math.max(
      this.options.requestTimeoutMs,
      this.options.idleTimeoutMs ?? 5 * 60_000,
    );
    return new Promise((resolve, reject) => {
      let ended = false;
      let gone = false;
      let failure: Error | undefined;
      const onEvent = (type: string, object: unknown) => {
        const meta = (object as KubernetesObject | undefined)?.metadata;
        if (type === 'ERROR') {
          const status = object as { code?: number; message?: string; reason?: string } | undefined;
          if (status?.code === 410) gone = true;
          else
            failure = new KubeError(
              `the watch of ${this.description} answered an error: ${status?.message ?? status?.reason ?? 'unknown'}`,
              status?.code,
            );
          return;
        }
        if (meta?.resourceVersion) this.resourceVersion = meta.resourceVersion;
        if (type === 'BOOKMARK') return;
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
        const item = this.options.keep ? this.options.keep(object as T) : (object as T);
        const key = keyOf(item);
        const previous = this.objects.get(key);
        if (type === 'DELETED') this.objects.delete(key);
        else this.objects.set(key, item);
        this.changes++;
        this.emit(previous ? { type, object: item, previous } : { type, object: item });
      };
      const onDone = (error: unknown) => {
        ended = true;
        this.request = undefined;
        if (this.stopping.signal.aborted) return resolve('closed');
        if (gone || httpStatusOf(error) === 410 || (error as { statusCode?: number })?.statusCode === 410)
          return resolve('gone');
        if (failure) return reject(failure);
        if (error) {
          const status = (error as { statusCode?: number }).statusCode;
          return reject(
            new KubeError(`the watch of ${this.description} failed: ${errorMessage(error)}`, status, {
              cause: error,
            }),
          );
        }
        resolve('closed');
      };
      watch
        .watch(
          this.options.path,
          { resourceVersion: this.resourceVersion ?? '', allowWatchBookmarks: true },
          onEvent,
          onDone,
        )
        .then(
          (request) => {
            if (ended) return;
            this.request = request;
            if (this.stopping.signal.aborted) request.abort();
            else this.markSynced();
          },
          (error: unknown) => {
            if (!ended) onDone(error ?? new Error('watch failed'));
          },
        );
    });
  }

  private markSynced(): void {
    const was = this.health.synced;
    this.health = { synced: true };
    this.firstAttemptOver = true;
    for (const waiter of this.syncWaiters) waiter.resolve();
    this.syncWaiters.clear();
    if (was) return;
    this.options.logger?.debug({ watch: this.description }, `watch of ${this.description} synced`);
    this.tellSync(true);
  }

  private markStale(reason: string): void {
    const was = this.health.synced;
    this.health = { synced: false, reason };
    if (was) this.tellSync(false);
    this.firstAttemptOver = true;
    const error = new StaleObservationError(`the watch of ${this.description} is not synced: ${reason}`);
    for (const waiter of this.syncWaiters) waiter.reject(error);
    this.syncWaiters.clear();
  }

  private tellSync(synced: boolean): void {
    for (const listener of this.syncListeners) {
      try {
        listener(synced);
      } catch (error) {
        this.options.logger?.error({ err: error, watch: this.description }, 'a watch listener failed');
      }
    }
  }

  private emit(change: CacheChange<T>): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.options.logger?.error({ err: error, watch: this.description }, 'a watch listener failed');
      }
    }
  }
}

/** kubectl apply's copy of the whole object, in an annotation. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

interface Bookkept {
  managedFields?: unknown;
  annotations?: Record<string, string>;
}

/**
 * An object's metadata without what a real API server and kubectl apply keep for themselves:
 * managedFields and the last-applied copy of the whole object (kilobytes each, often more than
 * the rest of the object). For watch caches (client-go's SetTransform does the same), which
 * read neither; the same metadata when there is nothing to drop.
 */
export function withoutBookkeeping<M extends Bookkept>(metadata: M): M {
  if (metadata.managedFields === undefined && metadata.annotations?.[LAST_APPLIED] === undefined)
    return metadata;
  const { managedFields: _managedFields, annotations, ...rest } = metadata;
  const kept = rest as M;
  if (annotations) {
    const { [LAST_APPLIED]: _lastApplied, ...others } = annotations;
    if (Object.keys(others).length > 0) kept.annotations = others;
  }
  return kept;
}
