// Explains why a value does not match the configuration schema: the single most useful problem,
// at its path, saying what was found and what was expected, never a secret's value.

import { type TObject, type TSchema, type TUnion, TypeGuard } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isRecord } from '../json.js';
import { DURATION_PATTERN } from './schema.js';

export interface Problem {
  path: string;
  value: unknown;
  expected: string;
  /** The value sits in a field marked secret: say what kind of value it is, never the value. */
  secret?: boolean;
  /** A duration field: say what a duration looks like. */
  duration?: boolean;
}

/** The message after the path: what was found and what was expected there. */
export function explain(problem: Problem): string {
  const found = problem.secret ? describeSecretValue(problem.value) : describeValue(problem.value);
  if (problem.duration)
    return `expected a duration like 2m (found ${found}): a number and a unit, one of ms, s, m, h`;
  return `found ${found}, expected ${problem.expected}`;
}

/**
 * The most useful single error for `value` against `schema`. For tagged unions the member
 * named by `type` is followed, so the message is about that member's fields, not the union.
 * Anything found under a schema marked `secret` is reported without its value.
 */
export function firstProblem(schema: TSchema, value: unknown, path: string): Problem | undefined {
  const problem = problemIn(schema, value, path);
  return problem && (schema as { secret?: unknown }).secret === true ? { ...problem, secret: true } : problem;
}

function problemIn(schema: TSchema, value: unknown, path: string): Problem | undefined {
  if (TypeGuard.IsUnion(schema)) return unionProblem(schema, value, path);
  if (TypeGuard.IsObject(schema)) return objectProblem(schema, value, path);
  if (TypeGuard.IsRecord(schema) && isRecord(value)) {
    const [valueSchema] = Object.values(schema.patternProperties);
    for (const [key, item] of Object.entries(value)) {
      const problem = valueSchema && firstProblem(valueSchema, item, `${path}/${key}`);
      if (problem) return problem;
    }
  }
  if (TypeGuard.IsArray(schema)) {
    if (!Array.isArray(value)) return { path, value, expected: 'a list' };
    if (schema.minItems !== undefined && value.length < schema.minItems)
      return { path, value, expected: `a list of at least ${schema.minItems}` };
    for (const [index, item] of value.entries()) {
      const problem = firstProblem(schema.items, item, `${path}/${index}`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (matches(schema, value)) return undefined;
  const duration = TypeGuard.IsString(schema) && schema.pattern === DURATION_PATTERN;
  return { path, value, expected: describeSchema(schema), ...(duration ? { duration } : {}) };
}

function unionProblem(schema: TUnion, value: unknown, path: string): Problem | undefined {
  if (matches(schema, value)) return undefined;
  const members = schema.anyOf;
  const tagOf = (m: TSchema): unknown =>
    (m as { properties?: { type?: { const?: unknown } } }).properties?.type?.const;
  const tagged = members.every((m) => TypeGuard.IsObject(m) && tagOf(m) !== undefined);
  if (tagged && isRecord(value)) {
    const match = members.find((m) => tagOf(m) === value.type);
    if (!match) {
      return {
        path: `${path}/type`,
        value: value.type,
        expected: `one of ${members.map((m) => JSON.stringify(tagOf(m))).join(', ')}`,
      };
    }
    return firstProblem(match, value, path);
  }
  if (members.every((m) => TypeGuard.IsLiteral(m)))
    return { path, value, expected: `one of ${members.map((m) => JSON.stringify(m.const)).join(', ')}` };
  // An untagged union (e.g. a secret reference): report the closest member's problem.
  const best = members
    .map((m) => firstProblem(m, value, path))
    .filter((p): p is Problem => p !== undefined)
    .sort((a, b) => b.path.length - a.path.length)[0];
  return (
    best && { ...best, expected: `${best.expected} (${schema.description ?? 'one of the allowed forms'})` }
  );
}

/** An unknown key first (a typo is the likeliest mistake), then each known field in order. */
function objectProblem(schema: TObject, value: unknown, path: string): Problem | undefined {
  if (!isRecord(value))
    return { path, value, expected: schema.description ? `an object: ${schema.description}` : 'an object' };
  for (const key of Object.keys(value)) {
    if (!(key in schema.properties)) {
      return {
        path: `${path}/${key}`,
        value: value[key],
        expected: `no such key; allowed keys here: ${Object.keys(schema.properties).join(', ')}`,
      };
    }
  }
  for (const [key, child] of Object.entries(schema.properties)) {
    const required = schema.required?.includes(key) ?? false;
    if (value[key] === undefined) {
      if (required) return { path: `${path}/${key}`, value: undefined, expected: describeSchema(child) };
      continue;
    }
    const problem = firstProblem(child, value[key], `${path}/${key}`);
    if (problem) return problem;
  }
  return undefined;
}

/** Value.Check without its type narrowing, which would make `value` unusable afterwards. */
function matches(schema: TSchema, value: unknown): boolean {
  return Value.Check(schema, value);
}

function describeSchema(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  const parts: string[] = [];
  if (TypeGuard.IsLiteral(schema)) return JSON.stringify(schema.const);
  if (TypeGuard.IsString(schema)) {
    parts.push('a string');
    if (s.pattern === '^https?://') parts.push('starting with http:// or https://');
    else if (typeof s.pattern === 'string' && !String(s.description ?? '').includes('duration'))
      parts.push(`matching ${s.pattern}`);
  } else if (TypeGuard.IsInteger(schema)) parts.push('a whole number');
  else if (TypeGuard.IsNumber(schema)) parts.push('a number');
  else if (TypeGuard.IsBoolean(schema)) parts.push('true or false');
  else if (TypeGuard.IsUnion(schema)) parts.push(schema.anyOf.map(describeSchema).join(' or '));
  else if (TypeGuard.IsObject(schema)) {
    const required = schema.required ?? [];
    parts.push(required.length > 0 ? `an object with ${required.join(', ')}` : 'an object');
  } else if (TypeGuard.IsArray(schema)) parts.push('a list');
  if (typeof s.minimum === 'number') parts.push(`>= ${s.minimum}`);
  if (typeof s.exclusiveMinimum === 'number') parts.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === 'number') parts.push(`<= ${s.maximum}`);
  if (typeof s.description === 'string') parts.push(`(${s.description})`);
  return parts.join(' ');
}

/**
 * A scalar as written; a list or an object by its shape only, since its contents may hold
 * a secret the schema could not mark (an inline URL in a list given where an object belongs).
 */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value))
    return value.length === 0 ? '[]' : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (isRecord(value)) {
    const keys = Object.keys(value);
    return keys.length === 0 ? '{}' : `an object with ${keys.join(', ')}`;
  }
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeSecretValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const kind =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'a list'
        : typeof value === 'object'
          ? 'an object'
          : `a ${typeof value}`;
  return `${kind} (not shown: the field holds a secret)`;
}
