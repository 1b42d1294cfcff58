// A custom resource against its CRD's structural schema, in the order the API server works:
// drop nulls and unknown fields (pruning; under fieldValidation=Strict an unknown field is an
// error), apply defaults, then validate types, required, enum, string length and pattern,
// number bounds, item counts, list-type uniqueness and x-kubernetes-validations (CEL) rules.
// Errors are worded like the real server's, each naming its field (`spec.weight: ...`).

import { CelProgram, CelRuntimeError, CelUnsupported } from './cel.js';
import { isObject, type JsonObject } from './types.js';

export interface FieldError {
  field: string;
  reason: string;
  /** The message without the field, as in a Status cause. */
  message: string;
}

export interface SchemaCheck {
  errors: FieldError[];
  /** Unknown fields found (pruned; errors under Strict). */
  unknownFields: string[];
  /** CEL rules this fake could not evaluate (accepted unchecked). */
  uncheckedRules: string[];
}

type Schema = JsonObject;

const programs = new Map<string, CelProgram | Error>();

function program(rule: string): CelProgram | Error {
  let compiled = programs.get(rule);
  if (!compiled) {
    try {
      compiled = new CelProgram(rule);
    } catch (error) {
      compiled = error as Error;
    }
    programs.set(rule, compiled);
  }
  return compiled;
}

function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Drop nulls (unless nullable) and unknown fields (unless preserved), then apply defaults, in place. */
function pruneAndDefault(schema: Schema, value: unknown, path: string, check: SchemaCheck): void {
  if (schema['x-kubernetes-preserve-unknown-fields'] === true && schema.properties === undefined) return;
  if (isObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const additional = schema.additionalProperties;
    for (const key of Object.keys(value)) {
      const property = properties[key] ?? (isObject(additional) ? additional : undefined);
      if (value[key] === null && property?.nullable !== true) {
        delete value[key];
        continue;
      }
      if (property) pruneAndDefault(property, value[key], child(path, key), check);
      else if (additional !== true && schema['x-kubernetes-preserve-unknown-fields'] !== true) {
        check.unknownFields.push(child(path, key));
        delete value[key];
      }
    }
    for (const [key, property] of Object.entries(properties)) {
      if (value[key] === undefined && property.default !== undefined) {
        value[key] = structuredClone(property.default);
        pruneAndDefault(property, value[key], child(path, key), check);
      }
    }
  } else if (Array.isArray(value) && isObject(schema.items)) {
    value.forEach((item, index) => {
      pruneAndDefault(schema.items as Schema, item, `${path}[${index}]`, check);
    });
  }
}

function typeMatches(schema: Schema, value: unknown): boolean {
  if (schema['x-kubernetes-int-or-string'] === true) {
    return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
  }
  switch (schema.type) {
    case undefined:
      return true;
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

function validateNode(schema: Schema, value: unknown, old: unknown, path: string, check: SchemaCheck): void {
  const before = check.errors.length;
  const fail: Fail = (reason, message, field = path) => check.errors.push({ field, reason, message });
  if (value === null) {
    if (schema.nullable !== true)
      fail(
        'FieldValueInvalid',
        `Invalid value: "null": ${path} in body must be of type ${schema.type}: "null"`,
      );
    return;
  }
  if (!typeMatches(schema, value)) {
    fail(
      'FieldValueInvalid',
      `Invalid value: "${typeName(value)}": ${path} in body must be of type ${schema.type}: "${typeName(value)}"`,
    );
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((allowed) => allowed === value)) {
    fail(
      'FieldValueNotSupported',
      `Unsupported value: ${shown(value)}: supported values: ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`,
    );
  }
  if (typeof value === 'string') validateString(schema, value, path, fail);
  if (typeof value === 'number') validateNumber(schema, value, path, fail);
  if (Array.isArray(value)) validateArray(schema, value, old, path, check, fail);
  if (isObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const oldObject = isObject(old) ? old : undefined;
    for (const key of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (value[key] === undefined) fail('FieldValueRequired', 'Required value', child(path, key));
    }
    for (const [key, item] of Object.entries(value)) {
      const property =
        properties[key] ?? (isObject(schema.additionalProperties) ? schema.additionalProperties : undefined);
      if (property) validateNode(property, item, oldObject?.[key], child(path, key), check);
    }
  }
  // Like the real server, rules run on a value whose own schema checks passed.
  if (check.errors.length === before) validateRules(schema, value, old, path, check);
}

/** Records one field error; `field` defaults to the value's own path. */
type Fail = (reason: string, message: string, field?: string) => void;

function validateString(schema: Schema, value: string, path: string, fail: Fail): void {
  const length = [...value].length;
  if (typeof schema.minLength === 'number' && length < schema.minLength) {
    fail(
      'FieldValueInvalid',
      `Invalid value: ${JSON.stringify(value)}: ${path} in body should be at least ${schema.minLength} chars long`,
    );
  }
  if (typeof schema.maxLength === 'number' && length > schema.maxLength) {
    fail('FieldValueTooLong', `Too long: may not be longer than ${schema.maxLength}`);
  }
  if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
    fail(
      'FieldValueInvalid',
      `Invalid value: ${JSON.stringify(value)}: ${path} in body should match '${schema.pattern}'`,
    );
  }
}

function validateNumber(schema: Schema, value: number, path: string, fail: Fail): void {
  const exclusiveMin = schema.exclusiveMinimum === true;
  const exclusiveMax = schema.exclusiveMaximum === true;
  if (
    typeof schema.minimum === 'number' &&
    (exclusiveMin ? value <= schema.minimum : value < schema.minimum)
  ) {
    fail(
      'FieldValueInvalid',
      `Invalid value: ${value}: ${path} in body should be greater than ${exclusiveMin ? '' : 'or equal to '}${schema.minimum}`,
    );
  }
  if (
    typeof schema.maximum === 'number' &&
    (exclusiveMax ? value >= schema.maximum : value > schema.maximum)
  ) {
    fail(
      'FieldValueInvalid',
      `Invalid value: ${value}: ${path} in body should be less than ${exclusiveMax ? '' : 'or equal to '}${schema.maximum}`,
    );
  }
  if (typeof schema.multipleOf === 'number' && value % schema.multipleOf !== 0) {
    fail(
      'FieldValueInvalid',
      `Invalid value: ${value}: ${path} in body should be a multiple of ${schema.multipleOf}`,
    );
  }
}

function validateArray(
  schema: Schema,
  value: unknown[],
  old: unknown,
  path: string,
  check: SchemaCheck,
  fail: Fail,
): void {
  if (typeof schema.minItems === 'number' && value.length < schema.minItems) {
    fail(
      'FieldValueInvalid',
      `Invalid value: ${value.length}: ${path} in body should have at least ${schema.minItems} items`,
    );
  }
  if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
    fail('FieldValueTooMany', `Too many: ${value.length}: must have at most ${schema.maxItems} items`);
  }
  const listType = schema['x-kubernetes-list-type'];
  const mapKeys = schema['x-kubernetes-list-map-keys'];
  if (listType === 'set' || (listType === 'map' && Array.isArray(mapKeys))) {
    const seen = new Set<string>();
    value.forEach((item, index) => {
      const identity =
        listType === 'set'
          ? JSON.stringify(item)
          : JSON.stringify((mapKeys as string[]).map((key) => (isObject(item) ? item[key] : undefined)));
      if (seen.has(identity))
        fail('FieldValueDuplicate', `Duplicate value: ${identity}`, `${path}[${index}]`);
      seen.add(identity);
    });
  }
  if (isObject(schema.items)) {
    const oldItems = Array.isArray(old) ? old : [];
    value.forEach((item, index) => {
      validateNode(schema.items as Schema, item, oldItems[index], `${path}[${index}]`, check);
    });
  }
}

function validateRules(schema: Schema, value: unknown, old: unknown, path: string, check: SchemaCheck): void {
  const rules = schema['x-kubernetes-validations'];
  if (!Array.isArray(rules)) return;
  for (const rule of rules) {
    if (!isObject(rule) || typeof rule.rule !== 'string') continue;
    const compiled = program(rule.rule);
    if (compiled instanceof Error) {
      check.uncheckedRules.push(rule.rule);
      continue;
    }
    if (compiled.usesOldSelf && old === undefined) continue;
    const field = typeof rule.fieldPath === 'string' ? `${path}${rule.fieldPath}` : path;
    const reason = typeof rule.reason === 'string' ? rule.reason : 'FieldValueInvalid';
    const what = `"${typeof schema.type === 'string' ? schema.type : typeName(value)}"`;
    let passed: boolean;
    let message = typeof rule.message === 'string' ? rule.message : `failed rule: ${rule.rule}`;
    try {
      passed = compiled.evaluate(value, old);
    } catch (error) {
      if (error instanceof CelUnsupported) {
        check.uncheckedRules.push(rule.rule);
        continue;
      }
      if (!(error instanceof CelRuntimeError)) throw error;
      passed = false;
      message = `${error.message} evaluating rule: ${rule.rule}`;
    }
    if (passed) continue;
    const prefix =
      reason === 'FieldValueForbidden'
        ? 'Forbidden'
        : reason === 'FieldValueRequired'
          ? 'Required value'
          : reason === 'FieldValueDuplicate'
            ? 'Duplicate value'
            : `Invalid value: ${what}`;
    check.errors.push({ field, reason, message: `${prefix}: ${message}` });
  }
}

/**
 * Prune and default `object` in place, then validate it. `old` is the stored object on an
 * update, for transition rules (oldSelf).
 */
export function checkAgainstSchema(
  schema: Schema,
  object: JsonObject,
  old: JsonObject | undefined,
): SchemaCheck {
  const check: SchemaCheck = { errors: [], unknownFields: [], uncheckedRules: [] };
  // metadata is the server's, not the schema's: only apiVersion, kind and metadata are kept as is.
  const { apiVersion: _apiVersion, kind: _kind, metadata: _metadata, ...body } = object;
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const bodySchema: Schema = { ...schema, properties: { ...properties } };
  delete (bodySchema.properties as Record<string, Schema>).metadata;
  delete (bodySchema.properties as Record<string, Schema>).apiVersion;
  delete (bodySchema.properties as Record<string, Schema>).kind;
  pruneAndDefault(bodySchema, body, '', check);
  for (const key of Object.keys(object)) {
    if (key !== 'apiVersion' && key !== 'kind' && key !== 'metadata' && !(key in body)) delete object[key];
  }
  Object.assign(object, body);
  const oldBody = old ? (({ apiVersion: _a, kind: _k, metadata: _m, ...rest }) => rest)(old) : undefined;
  validateNode(bodySchema, body, oldBody, '', check);
  return check;
}
