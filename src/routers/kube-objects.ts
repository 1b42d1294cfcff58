// Reads and read-modify-writes one namespaced custom object (a route object) for the
// Kubernetes-based routers. The retries, timeouts and backoff are
// KubeCaller's (src/kube/kube-call.ts); this file adds the custom-object calls and turns its
// KubeErrors into router errors: 404 -> RouteNotFoundError, anything else -> RouterError.

import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { ClustershiftError, KubeError, RouteNotFoundError, RouterError } from '../errors.js';
import { KubeCaller, type RetryPolicy, requestOptions } from '../kube/kube-call.js';
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
}

export class KubeObjects {
  readonly cluster: string;
  readonly #api: CustomObjectsApi;
  readonly #caller: KubeCaller;

  constructor(options: KubeObjectsOptions) {
    this.cluster = options.cluster;
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
