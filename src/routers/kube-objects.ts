// Reads and read-modify-writes one namespaced custom object (a route object) for the
// Kubernetes-based routers. The retries, timeouts and backoff are
// KubeCaller's (src/kube/kube-call.ts); this file adds the custom-object calls and turns its
// KubeErrors into router errors: 404 -> RouteNotFoundError, anything else -> RouterError.

import type { Logger } from 'pino';
import { ClustershiftError, KubeError, RouteNotFoundError, RouterError } from '../errors.js';
import { CustomObjectsApi, type KubeConfig } from '../kube/client-node.js';
import { KubeCaller, type RetryPolicy, requestOptions } from '../kube/kube-call.js';
import { WatchCache } from '../kube/watch-cache.js';
import type { Sleep } from '../timing.js';

/** Which object: the group/version/plural of its resource, its kind (for messages), where it is. */
export interface CustomObjectRef {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespace: string;
  name: string;
}

/** A custom object as the API server returns it; routers look inside `spec` only. */
export interface CustomObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface KubeObjectsOptions {
  /** `old` or `new`: which cluster of the configuration, for messages. */
  cluster: string;
  kubeConfig: KubeConfig;
  requestTimeoutMs: number;
  retry?: RetryPolicy;
  sleep?: Sleep;
  random?: () => number;
  /**
   * observe() reads from a watch cache per resource, version and namespace (started on its
   * first read, stopped by close()) instead of a GET per read. Writes read afresh either way.
   */
  watch?: { restartDelayMs?: number; logger?: Logger };
}

export class KubeObjects {
  readonly cluster: string;
  readonly #api: CustomObjectsApi;
  readonly #caller: KubeCaller;
  readonly #options: KubeObjectsOptions;
  readonly #caches = new Map<string, WatchCache<CustomObject & { metadata?: { name?: string } }>>();
  #closed = false;

  constructor(options: KubeObjectsOptions) {
    this.cluster = options.cluster;
    this.#options = options;
    this.#api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#caller = new KubeCaller({
      cluster: options.cluster,
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
  }

  async get(ref: CustomObjectRef, signal: AbortSignal): Promise<CustomObject> {
    return this.#translate(ref, () =>
      this.#caller.call({ verb: 'get', object: describeRef(ref) }, signal, (s) => this.#read(ref, s)),
    );
  }

  /**
   * The object as the observe path reads it: from the watch cache with `watch` (waiting for its
   * first sync, bounded by `signal`; StaleObservationError while it is not synced), else a GET.
   */
  async observe(ref: CustomObjectRef, signal: AbortSignal): Promise<CustomObject> {
    if (!this.#options.watch || this.#closed) return this.get(ref, signal);
    const cache = this.#cacheFor(ref);
    await cache.whenSynced(signal);
    const object = cache.get(ref.namespace, ref.name);
    if (!object)
      return this.#translate(ref, async () => {
        throw new KubeError(`${describeRef(ref)} not found (watched)`, 404);
      });
    // The cache's copy is shared: a caller changing what it got must not change the cache.
    return structuredClone(object);
  }

  /** Whether observe() reads from watch caches. */
  get watched(): boolean {
    return this.#options.watch !== undefined && !this.#closed;
  }

  /** Stops the watch caches; observe() then reads with a GET. */
  async close(): Promise<void> {
    this.#closed = true;
    const caches = [...this.#caches.values()];
    this.#caches.clear();
    await Promise.all(caches.map((cache) => cache.stop()));
  }

  #cacheFor(ref: CustomObjectRef) {
    const id = `${ref.group}/${ref.version}/${ref.plural}/${ref.namespace}`;
    let cache = this.#caches.get(id);
    if (cache) return cache;
    const { watch } = this.#options;
    const what = `${ref.kind} objects in namespace ${ref.namespace} of the ${this.cluster} cluster`;
    cache = new WatchCache<CustomObject & { metadata?: { name?: string } }>({
      description: what,
      kubeConfig: this.#options.kubeConfig,
      path: `/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      ...(watch?.restartDelayMs !== undefined ? { restartDelayMs: watch.restartDelayMs } : {}),
      ...(watch?.logger ? { logger: watch.logger } : {}),
      list: async (signal) =>
        (await this.#caller.call({ verb: 'list', object: what }, signal, (s) =>
          this.#api.listNamespacedCustomObject(
            { group: ref.group, version: ref.version, plural: ref.plural, namespace: ref.namespace },
            requestOptions(s),
          ),
        )) as { items?: CustomObject[]; metadata?: { resourceVersion?: string } },
    });
    this.#caches.set(id, cache);
    cache.start();
    return cache;
  }

  /** Every object of a resource in a namespace (`ref.name` is ignored). */
  async list(ref: Omit<CustomObjectRef, 'name'>, signal: AbortSignal): Promise<CustomObject[]> {
    const what = `${ref.kind} objects in namespace ${ref.namespace}`;
    const list = (await this.#translate({ ...ref, name: '*' }, () =>
      this.#caller.call({ verb: 'list', object: what }, signal, (s) =>
        this.#api.listNamespacedCustomObject(
          { group: ref.group, version: ref.version, plural: ref.plural, namespace: ref.namespace },
          requestOptions(s),
        ),
      ),
    )) as { items?: CustomObject[] };
    return list.items ?? [];
  }

  /**
   * Read, apply `change` to a copy, and replace (PUT) with the resourceVersion that was read, so
   * a concurrent writer's change is never overwritten: on 409 the whole read-change-write runs
   * again against the fresh object. `change` may throw a ClustershiftError, which is final.
   * Returns the object as stored.
   */
  async update(
    ref: CustomObjectRef,
    signal: AbortSignal,
    change: (object: CustomObject) => CustomObject,
  ): Promise<CustomObject> {
    return this.#translate(ref, () =>
      this.#caller.call(
        { verb: 'update', object: describeRef(ref), retryConflicts: true },
        signal,
        async (s) => {
          const current = await this.#read(ref, s);
          const resourceVersion = current.metadata?.resourceVersion;
          if (resourceVersion === undefined)
            throw new RouterError(
              `${describeRef(ref)} in the ${this.cluster} cluster came back without a resourceVersion; ` +
                'refusing to write it without one (another writer could be overwritten)',
            );
          const next = change(structuredClone(current));
          next.metadata = { ...next.metadata, resourceVersion };
          return (await this.#api.replaceNamespacedCustomObject(
            {
              group: ref.group,
              version: ref.version,
              plural: ref.plural,
              namespace: ref.namespace,
              name: ref.name,
              body: next,
            },
            requestOptions(s, 'application/json'),
          )) as CustomObject;
        },
      ),
    );
  }

  async #read(ref: CustomObjectRef, signal: AbortSignal): Promise<CustomObject> {
    return (await this.#api.getNamespacedCustomObject(
      {
        group: ref.group,
        version: ref.version,
        plural: ref.plural,
        namespace: ref.namespace,
        name: ref.name,
      },
      requestOptions(signal),
    )) as CustomObject;
  }

  async #translate<T>(ref: CustomObjectRef, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof KubeError)) {
        if (error instanceof ClustershiftError) throw error;
        throw new RouterError(`${describeRef(ref)} in the ${this.cluster} cluster: ${String(error)}`, {
          cause: error,
        });
      }
      if (error.httpStatus === 404)
        throw new RouteNotFoundError(
          `${describeRef(ref)} does not exist in the ${this.cluster} cluster (${ref.group}/${ref.version}); ` +
            "check the route's name, namespace and cluster in the configuration, and that the resource's " +
            'CRD is installed there',
          { cause: error },
        );
      throw new RouterError(`${describeRef(ref)}: ${error.message}`, { cause: error });
    }
  }
}

export function describeRef(ref: Pick<CustomObjectRef, 'kind' | 'namespace' | 'name'>): string {
  return `${ref.kind} ${ref.namespace}/${ref.name}`;
}

/** The RouteNotFoundError was a 404 from the API server (not a missing destination inside the object). */
export function isMissingObject(error: unknown): boolean {
  return (
    error instanceof RouteNotFoundError && error.cause instanceof KubeError && error.cause.httpStatus === 404
  );
}

/** One KubeObjects per cluster; a route's `cluster` picks which holds its object. */
export interface ClusterObjects {
  old: KubeObjects;
  new: KubeObjects;
}
