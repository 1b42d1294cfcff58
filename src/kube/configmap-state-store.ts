// Rollout state in the controller's own cluster: one ConfigMap per rollout, the state JSON under
// data["state.json"]. Every write carries the resourceVersion this store last saw, so of two
// writers (two replicas, or a stale leader) exactly one wins; the loser gets StateConflictError
// and must re-read (load or loadAll) before writing again: a conflict is never retried blindly.

import { createHash } from 'node:crypto';
import { ClustershiftError, errorMessage, StateConflictError } from '../errors.js';
import type { RolloutState, WorkloadRef } from '../rollout/types.js';
import { workloadKey } from '../rollout/types.js';
import { persistedJson, type StateStore } from '../state/state-store.js';
import type { Sleep } from '../timing.js';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from './client-node.js';
import { httpStatusOf, isNotFound, KubeCaller, type RetryPolicy, requestOptions } from './kube-call.js';

export interface ConfigMapStateStoreOptions {
  kubeConfig: KubeConfig;
  /** The controller's namespace. */
  namespace: string;
  requestTimeoutMs: number;
  /** Default 4 attempts, 200 ms base delay, 5 s cap (DEFAULT_RETRY). */
  retry?: RetryPolicy;
  sleep?: Sleep;
}

export const STATE_KEY = 'state.json';
export const STATE_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/managed-by': 'clustershift',
  'clustershift.io/rollout': 'true',
};
/** Which rollout a ConfigMap holds, so colliding or hashed names stay unambiguous. */
export const ROLLOUT_ANNOTATION = 'clustershift.io/rollout-key';

/** ConfigMap names are DNS subdomains (253); 63 keeps them readable and label-safe. */
const MAX_NAME = 63;
/** ConfigMaps hold at most 1 MiB; refuse well before the API server would. */
const MAX_STATE_BYTES = 900 * 1024;

function hashOf(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 10);
}

function dnsSafe(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9.-]+/g, '-');
}

/** The always-unique form: a readable prefix and a hash of the rollout key. */
function hashedName(ref: WorkloadRef): string {
  const prefix = dnsSafe(`clustershift-${ref.namespace}-${ref.name}`)
    .slice(0, MAX_NAME - 11)
    .replace(/[^a-z0-9]+$/, '');
  return `${prefix}-${hashOf(workloadKey(ref))}`;
}

/**
 * `clustershift-<namespace>-<name>`, or a hashed form when that is too long. Two rollouts can
 * map to one readable name (`a-b/c` and `a/b-c`); save() then falls back to the hashed form.
 */
export function stateConfigMapName(ref: WorkloadRef): string {
  const readable = dnsSafe(`clustershift-${ref.namespace}-${ref.name}`);
  return readable.length <= MAX_NAME && /[a-z0-9]$/.test(readable) ? readable : hashedName(ref);
}

export class ConfigMapStateStore implements StateStore {
  private readonly core: CoreV1Api;
  private readonly namespace: string;
  private readonly caller: KubeCaller;
  /** Per rollout key: the ConfigMap holding it and its resourceVersion as last seen. */
  private readonly seen = new Map<string, { name: string; resourceVersion: string }>();

  constructor(options: ConfigMapStateStoreOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.namespace = options.namespace;
    this.caller = new KubeCaller({
      cluster: 'controller',
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
    });
  }

  async loadAll(signal: AbortSignal): Promise<RolloutState[]> {
    const selector = Object.entries(STATE_LABELS)
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
    const list = await this.caller.call(
      { verb: 'list', object: `state ConfigMaps in namespace ${this.namespace}` },
      signal,
      (s) =>
        this.core.listNamespacedConfigMap(
          { namespace: this.namespace, labelSelector: selector },
          requestOptions(s),
        ),
    );
    return list.items.map((configMap) => this.remember(configMap));
  }

  /** One rollout's state as stored now (and remembered for the next save), for re-reading after a conflict. */
  async load(ref: WorkloadRef, signal: AbortSignal): Promise<RolloutState | undefined> {
    const key = workloadKey(ref);
    const names = [this.seen.get(key)?.name, stateConfigMapName(ref), hashedName(ref)];
    for (const name of [...new Set(names)].filter((n): n is string => n !== undefined)) {
      const configMap = await this.read(name, signal);
      if (configMap && this.keyOf(configMap) === key) return this.remember(configMap);
    }
    this.seen.delete(key);
    return undefined;
  }

  async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    const json = persistedJson(state);
    if (Buffer.byteLength(json) > MAX_STATE_BYTES) {
      throw new ClustershiftError(
        `rollout ${state.key}: its state is ${Buffer.byteLength(json)} bytes, over the ${MAX_STATE_BYTES}-byte limit for a ConfigMap; keep fewer checks and history entries`,
      );
    }
    const seen = this.seen.get(state.key);
    if (seen) await this.replace(state, json, seen, signal);
    else await this.create(state, json, stateConfigMapName(state.workload), signal);
  }

  private async create(state: RolloutState, json: string, name: string, signal: AbortSignal): Promise<void> {
    try {
      const created = await this.caller.call(
        { verb: 'create', object: `ConfigMap ${this.namespace}/${name} for rollout ${state.key}` },
        signal,
        (s) =>
          this.core.createNamespacedConfigMap(
            { namespace: this.namespace, body: this.body(state, json, name) },
            requestOptions(s),
          ),
      );
      this.seen.set(state.key, { name, resourceVersion: created.metadata?.resourceVersion ?? '' });
    } catch (error) {
      if (httpStatusOf(error) !== 409) throw error;
      const existing = await this.read(name, signal);
      const owner = existing ? this.keyOf(existing) : undefined;
      if (existing && owner !== state.key && name !== hashedName(state.workload)) {
        // Another rollout's state already has this readable name: use the hashed one.
        await this.create(state, json, hashedName(state.workload), signal);
        return;
      }
      throw new StateConflictError(
        `rollout ${state.key}: ConfigMap ${this.namespace}/${name} was created by another writer first; re-read the state before saving`,
        { cause: error },
      );
    }
  }

  private async replace(
    state: RolloutState,
    json: string,
    seen: { name: string; resourceVersion: string },
    signal: AbortSignal,
  ): Promise<void> {
    const where = `ConfigMap ${this.namespace}/${seen.name}`;
    try {
      // A retry after a lost answer may meet its own earlier write as a 409: the caller re-reads
      // and finds its state there, which is the safe direction to be wrong in.
      const replaced = await this.caller.call(
        { verb: 'update', object: `${where} for rollout ${state.key}` },
        signal,
        (s) =>
          this.core.replaceNamespacedConfigMap(
            {
              name: seen.name,
              namespace: this.namespace,
              body: this.body(state, json, seen.name, seen.resourceVersion),
            },
            requestOptions(s),
          ),
      );
      this.seen.set(state.key, {
        name: seen.name,
        resourceVersion: replaced.metadata?.resourceVersion ?? '',
      });
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 409) {
        throw new StateConflictError(
          `rollout ${state.key}: ${where} changed after resourceVersion ${seen.resourceVersion} (another writer saved first); re-read the state before saving`,
          { cause: error },
        );
      }
      if (status === 404) {
        this.seen.delete(state.key);
        throw new StateConflictError(
          `rollout ${state.key}: ${where} was deleted after this store read it; re-read the state before saving`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  private body(state: RolloutState, json: string, name: string, resourceVersion?: string): V1ConfigMap {
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        namespace: this.namespace,
        labels: { ...STATE_LABELS },
        annotations: { [ROLLOUT_ANNOTATION]: state.key },
        ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      },
      data: { [STATE_KEY]: json },
    };
  }

  private async read(name: string, signal: AbortSignal): Promise<V1ConfigMap | undefined> {
    return this.caller.call(
      { verb: 'get', object: `ConfigMap ${this.namespace}/${name}` },
      signal,
      async (s) => {
        try {
          return await this.core.readNamespacedConfigMap(
            { name, namespace: this.namespace },
            requestOptions(s),
          );
        } catch (error) {
          if (isNotFound(error)) return undefined;
          throw error;
        }
      },
    );
  }

  private keyOf(configMap: V1ConfigMap): string | undefined {
    return configMap.metadata?.annotations?.[ROLLOUT_ANNOTATION];
  }

  /** Parse a state ConfigMap and remember its name and resourceVersion for the next save. */
  private remember(configMap: V1ConfigMap): RolloutState {
    const where = `ConfigMap ${this.namespace}/${configMap.metadata?.name}`;
    let state: RolloutState;
    try {
      state = JSON.parse(configMap.data?.[STATE_KEY] ?? '') as RolloutState;
    } catch (error) {
      throw new ClustershiftError(
        `${where} has no valid ${STATE_KEY} (${errorMessage(error)}); fix it or delete it to start that rollout over`,
        { cause: error },
      );
    }
    this.seen.set(state.key, {
      name: configMap.metadata?.name ?? '',
      resourceVersion: configMap.metadata?.resourceVersion ?? '',
    });
    return state;
  }
}
