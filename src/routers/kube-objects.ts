// Reads and read-modify-writes one namespaced custom object (a VirtualService, an HTTPRoute, a
// TrafficSplit) for the Kubernetes-based routers. The retries, timeouts and backoff are
// KubeCaller's (src/kube/kube-call.ts); this file adds the custom-object calls and turns its
// KubeErrors into router errors: 404 -> RouteNotFoundError, anything else -> RouterError.

import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { ClustershiftError, KubeError, RouteNotFoundError, RouterError } from '../errors.js';
import { KubeCaller, type RetryPolicy, requestOptions, type Sleep } from '../kube/kube-call.js';

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

/** A weight the two Kubernetes-based routers can write: a whole percent. */
export function checkPercent(target: string, weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100)
    throw new RouterError(
      `${target}: cannot set the new cluster's weight to ${weight}, expected a whole percent 0..100`,
    );
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One KubeObjects per cluster; a route's `cluster` picks which holds its object. */
export interface ClusterObjects {
  old: KubeObjects;
  new: KubeObjects;
}

/**
 * The namespace of a Kubernetes route object. The configuration lets it default to the
 * workload's namespace, which the route itself does not carry: the router registry fills it in
 * (bindWorkloadNamespace), so a route arriving here without one is a wiring mistake.
 */
export function namespaceOf(route: { namespace?: string | undefined }, target: string): string {
  if (route.namespace === undefined)
    throw new RouterError(
      `${target}: the route has no namespace; routes must be bound to their workload's namespace ` +
        '(createRouterRegistry().forWorkload) before they reach a Kubernetes router',
    );
  return route.namespace;
}

/** One place in a route object where the two clusters' weights sit (an http route, a rule). */
export interface WeightPair {
  /** e.g. `http route primary`, `rule 0`. */
  label: string;
  oldWeight: number;
  newWeight: number;
}

/**
 * The new cluster's percent, new / (old + new), agreed by every pair. Pairs that disagree (a
 * person edited one) are a RouterError naming each, rather than one of them reported: reporting
 * the first could hide drift in the others from the controller's drift check. The next weight
 * write (promote, abort, retry) makes them agree again.
 */
export function agreedPercent(target: string, pairs: readonly WeightPair[]): number {
  const percents = pairs.map((pair) => {
    const total = pair.oldWeight + pair.newWeight;
    if (total === 0)
      throw new RouterError(
        `${target}: in ${pair.label} both clusters have weight 0 (or none), so the new cluster's share ` +
          "is undefined; give the old cluster's entry weight 100 before starting",
      );
    // Exact for weights the router wrote (they sum to 100); others are rounded to 0.01%.
    return Math.round((10_000 * pair.newWeight) / total) / 100;
  });
  const first = percents[0];
  if (first === undefined) throw new RouterError(`${target}: no weights to read`);
  if (percents.some((percent) => percent !== first))
    throw new RouterError(
      `${target}: its entries disagree on the new cluster's weight (` +
        `${pairs.map((pair, i) => `${pair.label}: ${percents[i]}%`).join(', ')}); someone edited one of them. ` +
        'Promote, abort or retry the rollout to write one weight to all of them, or name only one in the route',
    );
  return first;
}
