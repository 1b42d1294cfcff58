// JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902), as the fake API server applies them.

/** A patch that cannot be applied; the fake API server answers 422 Invalid, like the real one. */
export class PatchError extends Error {}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386: objects merge key by key, null deletes a key, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`JSON pointer "${pointer}" must start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function arrayIndex(array: unknown[], token: string, forInsert: boolean, pointer: string): number {
  if (forInsert && token === '-') return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw new PatchError(`"${token}" in "${pointer}" is not an array index`);
  const index = Number(token);
  if (index > array.length || (!forInsert && index === array.length)) {
    throw new PatchError(`index ${index} in "${pointer}" is out of bounds`);
  }
  return index;
}

/** The container holding the pointer's last token, so operations can read or change that slot. */
function resolveParent(document: unknown, pointer: string): { parent: unknown; token: string } {
  const tokens = parsePointer(pointer);
  const token = tokens.pop();
  if (token === undefined) throw new PatchError('the whole document cannot be the target here');
  let current = document;
  for (const step of tokens) {
    if (Array.isArray(current)) current = current[arrayIndex(current, step, false, pointer)];
    else if (isObject(current) && Object.hasOwn(current, step)) current = current[step];
    else throw new PatchError(`path "${pointer}" does not exist`);
  }
  return { parent: current, token };
}

function getAt(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  const { parent, token } = resolveParent(document, pointer);
  if (Array.isArray(parent)) return parent[arrayIndex(parent, token, false, pointer)];
  if (isObject(parent) && Object.hasOwn(parent, token)) return parent[token];
  throw new PatchError(`path "${pointer}" does not exist`);
}

function addAt(document: unknown, pointer: string, value: unknown): unknown {
  if (pointer === '') return value;
  const { parent, token } = resolveParent(document, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, true, pointer), 0, value);
  else if (isObject(parent)) parent[token] = value;
  else throw new PatchError(`path "${pointer}" does not name a member of an object or array`);
  return document;
}

function removeAt(document: unknown, pointer: string): unknown {
  const { parent, token } = resolveParent(document, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, false, pointer), 1);
  else if (isObject(parent) && Object.hasOwn(parent, token)) delete parent[token];
  else throw new PatchError(`path "${pointer}" does not exist`);
  return document;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}

function requireValue(operation: JsonPatchOperation): unknown {
  if (!('value' in operation)) throw new PatchError(`operation "${operation.op}" needs a "value"`);
  return structuredClone(operation.value as Json);
}

/** RFC 6902, all six operations; a failed `test` or a missing path rejects the whole patch. */
export function applyJsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new PatchError('a JSON patch must be an array of operations');
  let document = structuredClone(target);
  for (const raw of operations) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError(`malformed JSON patch operation ${JSON.stringify(raw)}`);
    }
    const operation = raw as unknown as JsonPatchOperation;
    switch (operation.op) {
      case 'add':
        document = addAt(document, operation.path, requireValue(operation));
        break;
      case 'remove':
        document = removeAt(document, operation.path);
        break;
      case 'replace':
        getAt(document, operation.path);
        document =
          operation.path === ''
            ? requireValue(operation)
            : addAt(removeAt(document, operation.path), operation.path, requireValue(operation));
        break;
      case 'move': {
        if (typeof operation.from !== 'string') throw new PatchError('operation "move" needs a "from"');
        if (operation.path.startsWith(`${operation.from}/`)) {
          throw new PatchError(`cannot move "${operation.from}" into its own child "${operation.path}"`);
        }
        const value = getAt(document, operation.from);
        document = addAt(removeAt(document, operation.from), operation.path, value);
        break;
      }
      case 'copy': {
        if (typeof operation.from !== 'string') throw new PatchError('operation "copy" needs a "from"');
        document = addAt(document, operation.path, structuredClone(getAt(document, operation.from)));
        break;
      }
      case 'test': {
        const actual = getAt(document, operation.path);
        if (!deepEqual(actual, operation.value)) {
          throw new PatchError(
            `test failed at "${operation.path}": expected ${JSON.stringify(operation.value)}, found ${JSON.stringify(actual)}`,
          );
        }
        break;
      }
      default:
        throw new PatchError(`unknown JSON patch operation "${String((raw as { op: unknown }).op)}"`);
    }
  }
  return document;
}
