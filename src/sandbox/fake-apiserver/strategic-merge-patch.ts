// Strategic merge patch, the subset `kubectl apply` and `kubectl patch` send for built-in kinds:
// maps merge as in a merge patch; lists of objects merge by their key (the key named by the
// patch's own `$setElementOrder/<field>`, else the usual one for the field: containers by name,
// volumeMounts by mountPath, ...); `$patch: replace | delete | merge`, `$retainKeys`,
// `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>` are applied. Without the Go
// types' patch strategies, a list neither named by the patch nor in the table below is replaced,
// which is what the real server does for lists whose strategy is "replace".

import { PatchError } from './json-patch.js';
import { isObject, type JsonObject } from './types.js';

/** Lists that merge by a key in the built-in types (patchMergeKey), as far as charts use them. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  conditions: 'type',
  ownerReferences: 'uid',
};

const DIRECTIVE = /^\$(patch|retainKeys|setElementOrder\/.+|deleteFromPrimitiveList\/.+)$/;

function mergeKeyFor(field: string, patchItems: unknown[], order: unknown): string | undefined {
  if (Array.isArray(order) && isObject(order[0])) {
    const keys = Object.keys(order[0]);
    if (keys.length === 1) return keys[0];
  }
  if (field === 'ports') {
    // containers[].ports merge by containerPort; a Service's ports by port.
    return patchItems.some((item) => isObject(item) && 'containerPort' in item) ? 'containerPort' : 'port';
  }
  return MERGE_KEYS[field];
}

function withoutDirectives(value: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(value).filter(([key]) => !DIRECTIVE.test(key)));
}

function orderBy(items: unknown[], order: unknown[], identity: (item: unknown) => string): unknown[] {
  const rank = new Map(order.map((item, index) => [identity(item), index]));
  return items
    .map((item, index) => ({ item, index, rank: rank.get(identity(item)) ?? order.length + index }))
    .sort((a, b) => a.rank - b.rank)
    .map((entry) => entry.item);
}

function mergeList(current: unknown, patchItems: unknown[], mergeKey: string, order: unknown): unknown[] {
  const keyOf = (item: unknown) => JSON.stringify(isObject(item) ? item[mergeKey] : item);
  if (patchItems.some((item) => isObject(item) && item.$patch === 'replace')) {
    return patchItems
      .filter((item) => !(isObject(item) && item.$patch === 'replace'))
      .map((item) => (isObject(item) ? withoutDirectives(item) : item));
  }
  const result: unknown[] = Array.isArray(current) ? [...current] : [];
  for (const item of patchItems) {
    if (!isObject(item)) {
      result.push(item);
      continue;
    }
    const index = result.findIndex((existing) => keyOf(existing) === keyOf(item));
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) result[index] = applyStrategicMergePatch(result[index], item);
    else result.push(applyStrategicMergePatch(undefined, item));
  }
  return Array.isArray(order) ? orderBy(result, order, keyOf) : result;
}

/** The patched value; undefined means "delete this value" (a `$patch: delete`). */
export function applyStrategicMergePatch(current: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return structuredClone(withoutDirectives(patch));
  if (directive !== undefined && directive !== 'merge') {
    throw new PatchError(`unknown patch type: ${JSON.stringify(directive)} in map`);
  }
  const result: JsonObject = isObject(current) ? { ...current } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (DIRECTIVE.test(key)) continue;
    if (value === null) {
      delete result[key];
      continue;
    }
    if (Array.isArray(value)) {
      const order = patch[`$setElementOrder/${key}`];
      const mergeKey = mergeKeyFor(key, value, order);
      const objects = value.every(isObject);
      if (mergeKey !== undefined && objects) result[key] = mergeList(result[key], value, mergeKey, order);
      else if (Array.isArray(order) && !objects) {
        // A primitive list with merge strategy (finalizers): union, in the patch's order.
        const merged = [...(Array.isArray(result[key]) ? (result[key] as unknown[]) : [])];
        for (const item of value) if (!merged.includes(item)) merged.push(item);
        result[key] = orderBy(merged, order, (item) => JSON.stringify(item));
      } else result[key] = structuredClone(value);
      continue;
    }
    const next = applyStrategicMergePatch(result[key], value);
    if (next === undefined) delete result[key];
    else result[key] = next;
  }
  for (const [key, value] of Object.entries(patch)) {
    const deleteFrom = /^\$deleteFromPrimitiveList\/(.+)$/.exec(key)?.[1];
    if (deleteFrom !== undefined && Array.isArray(value) && Array.isArray(result[deleteFrom])) {
      result[deleteFrom] = (result[deleteFrom] as unknown[]).filter((item) => !value.includes(item));
    }
    const reorder = /^\$setElementOrder\/(.+)$/.exec(key)?.[1];
    if (
      reorder !== undefined &&
      Array.isArray(value) &&
      !(reorder in patch) &&
      Array.isArray(result[reorder])
    ) {
      const mergeKey = mergeKeyFor(reorder, [], value);
      const keyOf = (item: unknown) => JSON.stringify(isObject(item) && mergeKey ? item[mergeKey] : item);
      result[reorder] = orderBy(result[reorder] as unknown[], value, keyOf);
    }
  }
  if (Array.isArray(patch.$retainKeys)) {
    const retained = new Set(patch.$retainKeys.filter((key): key is string => typeof key === 'string'));
    for (const key of Object.keys(result)) if (!retained.has(key)) delete result[key];
  }
  return result;
}
