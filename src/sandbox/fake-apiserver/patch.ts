// PATCH bodies by content type: JSON patch (RFC 6902), merge patch (RFC 7386) and the subset of
// strategic merge patch that kubectl sends (./strategic-merge-patch.ts).

import { applyJsonPatch, applyMergePatch, PatchError } from './json-patch.js';
import { StatusError } from './status-error.js';
import { applyStrategicMergePatch } from './strategic-merge-patch.js';
import { isObject, type KubeObject } from './types.js';

const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
];

export function applyPatch(
  current: KubeObject,
  rawBody: string,
  contentType: string | undefined,
): KubeObject {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (!PATCH_TYPES.includes(type)) {
    throw new StatusError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
    );
  }
  let patch: unknown;
  try {
    patch = JSON.parse(rawBody);
  } catch (error) {
    throw new StatusError(400, 'BadRequest', `the patch is not valid JSON: ${(error as Error).message}`);
  }
  let result: unknown;
  try {
    if (type === 'application/json-patch+json') result = applyJsonPatch(current, patch);
    else if (type === 'application/merge-patch+json') result = applyMergePatch(current, patch);
    else {
      if (!isObject(patch)) throw new PatchError('a strategic merge patch must be a JSON object');
      result = applyStrategicMergePatch(current, patch);
    }
  } catch (error) {
    if (error instanceof PatchError)
      throw new StatusError(422, 'Invalid', `the patch could not be applied: ${error.message}`);
    throw error;
  }
  if (!isObject(result) || !isObject(result.metadata)) {
    throw new StatusError(422, 'Invalid', 'the patched object must be a JSON object with metadata');
  }
  return result as KubeObject;
}
