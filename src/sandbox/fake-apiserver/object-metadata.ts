// The rules for server-set metadata: timestamps, generation (what a bump tracks), finalizers,
// and "did this write change anything".

import type { FakeResource } from './resources.js';
import { isObject, type JsonObject, type KubeObject } from './types.js';

/** Seconds precision, the way the API server renders metav1.Time. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** JSON with sorted keys, so "did the spec change" ignores key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function withoutResourceVersion(object: JsonObject): string {
  const metadata = { ...(object.metadata as JsonObject) };
  delete metadata.resourceVersion;
  return canonical({ ...object, metadata });
}

export function finalizersOf(object: KubeObject): string[] {
  const finalizers = object.metadata.finalizers;
  return Array.isArray(finalizers)
    ? finalizers.filter((item): item is string => typeof item === 'string')
    : [];
}

/** Custom resources always carry a generation; built-in kinds when they have a spec. */
export function tracksGeneration(info: FakeResource, object: KubeObject): boolean {
  return info.custom !== undefined || 'spec' in object;
}

/**
 * What a generation bump tracks: everything but metadata and status; for a custom resource
 * without a status subresource, status changes count too (as on a real server).
 */
export function generationPart(info: FakeResource, version: string, object: KubeObject): string {
  const { metadata: _metadata, status, ...rest } = object;
  if (info.custom && info.custom.versions[version]?.status !== true) return canonical({ ...rest, status });
  return canonical(rest);
}
