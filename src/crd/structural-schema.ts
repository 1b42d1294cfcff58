// TypeBox schema -> a CRD's structural openAPIV3Schema. Kubernetes wants OpenAPI v3.0 with
// every field typed outside any anyOf, so: literals become enums, [X, null] becomes nullable,
// exclusiveMinimum becomes the boolean form, closed objects lose additionalProperties (the API
// server prunes unknown fields, and kubectl's strict field validation names them), and a
// union of objects tagged by `type` becomes one object holding every member's fields with CEL
// rules that allow exactly one member's fields for each type. Anything else is refused, so a
// new TypeBox construct in the schemas fails generation instead of shipping a wrong CRD.

import { isDeepStrictEqual } from 'node:util';
import { type TSchema, TypeGuard } from '@sinclair/typebox';
import type { CelRule } from './schema.js';

export type JsonSchemaProps = { [key: string]: unknown };

const PASSED_THROUGH = ['description', 'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems', 'format'];

function common(schema: TSchema): JsonSchemaProps {
  const source = schema as Record<string, unknown>;
  const out: JsonSchemaProps = {};
  for (const key of PASSED_THROUGH) if (source[key] !== undefined) out[key] = source[key];
  for (const [key, value] of Object.entries(source)) if (key.startsWith('x-kubernetes-')) out[key] = value;
  return out;
}

function numeric(schema: TSchema, type: 'integer' | 'number'): JsonSchemaProps {
  const s = schema as Record<string, unknown>;
  const out: JsonSchemaProps = { type, ...common(schema) };
  if (typeof s.exclusiveMinimum === 'number')
    Object.assign(out, { minimum: s.exclusiveMinimum, exclusiveMinimum: true });
  else if (s.minimum !== undefined) out.minimum = s.minimum;
  if (typeof s.exclusiveMaximum === 'number')
    Object.assign(out, { maximum: s.exclusiveMaximum, exclusiveMaximum: true });
  else if (s.maximum !== undefined) out.maximum = s.maximum;
  return out;
}

const tagOf = (member: TSchema): string | undefined => {
  const tag = (member as { properties?: { type?: { const?: unknown } } }).properties?.type?.const;
  return typeof tag === 'string' ? tag : undefined;
};

const aRoute = (tag: string) => `${/^[aeiou]/i.test(tag) ? 'an' : 'a'} ${tag} route`;

const list = (words: string[]): string =>
  words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;

/** A union of closed objects tagged by a `type` literal, as one structural object. */
function taggedUnion(schema: TSchema & { anyOf: TSchema[] }, path: string): JsonSchemaProps {
  const members = schema.anyOf.map((member) => {
    const tag = tagOf(member);
    if (!TypeGuard.IsObject(member) || tag === undefined)
      throw new Error(`${path}: a union member is not an object tagged by a type literal`);
    return { tag, object: member };
  });
  const properties: Record<string, JsonSchemaProps> = {};
  for (const { tag, object } of members) {
    for (const [name, child] of Object.entries(object.properties)) {
      if (name === 'type') continue;
      const converted = toStructural(child, `${path}/${name}`);
      const known = properties[name];
      if (known && !isDeepStrictEqual(known, converted))
        throw new Error(
          `${path}/${name}: the ${tag} member types this field differently from another member`,
        );
      properties[name] = converted;
    }
  }
  const tags = members.map((m) => m.tag);
  const rules: CelRule[] = [];
  for (const { tag, object } of members) {
    const own = Object.keys(object.properties).filter((name) => name !== 'type');
    const needed = (object.required ?? []).filter((name) => name !== 'type');
    const foreign = Object.keys(properties).filter((name) => !own.includes(name));
    if (needed.length > 0)
      rules.push({
        rule: `self.type != '${tag}' || (${needed.map((name) => `has(self.${name})`).join(' && ')})`,
        message: `${aRoute(tag)} needs ${list(needed)}`,
      });
    if (foreign.length > 0)
      rules.push({
        rule: `self.type != '${tag}' || !(${foreign.map((name) => `has(self.${name})`).join(' || ')})`,
        message: `${aRoute(tag)} takes only ${list(own)}; it has a field of another route type`,
      });
  }
  const description = (schema as { description?: string }).description;
  return {
    type: 'object',
    ...(description ? { description } : {}),
    required: ['type'],
    properties: { type: { type: 'string', enum: tags, description: 'the router' }, ...properties },
    'x-kubernetes-validations': rules,
  };
}

export function toStructural(schema: TSchema, path = ''): JsonSchemaProps {
  if (TypeGuard.IsLiteral(schema)) {
    return {
      type: typeof schema.const === 'number' ? 'number' : typeof schema.const,
      enum: [schema.const],
      ...common(schema),
    };
  }
  if (TypeGuard.IsString(schema)) return { type: 'string', ...common(schema) };
  if (TypeGuard.IsInteger(schema)) return numeric(schema, 'integer');
  if (TypeGuard.IsNumber(schema)) return numeric(schema, 'number');
  if (TypeGuard.IsBoolean(schema)) return { type: 'boolean', ...common(schema) };
  if (TypeGuard.IsArray(schema))
    return { type: 'array', ...common(schema), items: toStructural(schema.items, `${path}/*`) };
  if (TypeGuard.IsRecord(schema)) {
    const values = Object.values(schema.patternProperties);
    if (values.length !== 1 || !values[0])
      throw new Error(`${path}: a record needs exactly one value schema`);
    return { type: 'object', ...common(schema), additionalProperties: toStructural(values[0], `${path}/*`) };
  }
  if (TypeGuard.IsObject(schema)) {
    const properties = Object.fromEntries(
      Object.entries(schema.properties).map(([name, child]) => [
        name,
        toStructural(child, `${path}/${name}`),
      ]),
    );
    const required = schema.required ?? [];
    return {
      type: 'object',
      ...common(schema),
      ...(required.length > 0 ? { required: [...required] } : {}),
      ...(Object.keys(properties).length > 0 ? { properties } : {}),
    };
  }
  if (TypeGuard.IsUnion(schema)) {
    const members = schema.anyOf;
    if (members.every((m) => TypeGuard.IsLiteral(m))) {
      const values = members.map((m) => m.const);
      const types = new Set(values.map((v) => typeof v));
      if (types.size !== 1) throw new Error(`${path}: a union of literals of different types`);
      return { type: [...types][0], enum: values, ...common(schema) };
    }
    const nonNull = members.filter((m) => !TypeGuard.IsNull(m));
    if (nonNull.length === 1 && members.length === 2 && nonNull[0]) {
      return { ...toStructural(nonNull[0], path), ...common(schema), nullable: true };
    }
    if (members.every((m) => tagOf(m) !== undefined)) return taggedUnion(schema, path);
  }
  throw new Error(
    `${path || '/'}: no structural form for a ${String((schema as { type?: unknown }).type ?? 'schema')} here`,
  );
}
