// Kubernetes label selectors (`a=b,c!=d,e in (x,y),!f`) and simple field selectors, for LIST.

import { StatusError } from './status-error.js';
import type { KubeObject } from './types.js';

/** A selector the fake API server cannot parse; it answers 400 BadRequest, like the real one. */
export class SelectorError extends Error {}

type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

/** Split on commas that are not inside `( )`, so `a in (x,y),b=c` is two requirements. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += char;
  }
  terms.push(current);
  return terms.map((term) => term.trim()).filter((term) => term !== '');
}

function parseTerm(term: string): Requirement {
  const setMatch = /^([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (setMatch) {
    const values = setMatch[3]!.split(',').map((value) => value.trim());
    return { key: setMatch[1]!, op: setMatch[2] as 'in' | 'notin', values };
  }
  const inequality = /^([^\s!=]+)\s*!=\s*(\S*)$/.exec(term);
  if (inequality) return { key: inequality[1]!, op: 'neq', value: inequality[2]! };
  const equality = /^([^\s!=]+)\s*==?\s*(\S*)$/.exec(term);
  if (equality) return { key: equality[1]!, op: 'eq', value: equality[2]! };
  const absent = /^!\s*([^\s!=]+)$/.exec(term);
  if (absent) return { key: absent[1]!, op: 'notexists' };
  if (/^[^\s!=(),]+$/.test(term)) return { key: term, op: 'exists' };
  throw new SelectorError(`unable to parse requirement "${term}"`);
}

export function parseSelector(selector: string): Requirement[] {
  return splitTerms(selector).map(parseTerm);
}

function satisfies(requirement: Requirement, actual: string | undefined): boolean {
  switch (requirement.op) {
    case 'eq':
      return actual === requirement.value;
    case 'neq':
      return actual !== requirement.value;
    case 'in':
      return actual !== undefined && requirement.values.includes(actual);
    case 'notin':
      return actual === undefined || !requirement.values.includes(actual);
    case 'exists':
      return actual !== undefined;
    case 'notexists':
      return actual === undefined;
  }
}

/** Does a key -> value lookup satisfy every requirement of the selector? */
export function matchesSelector(
  requirements: Requirement[],
  lookup: (key: string) => string | undefined,
): boolean {
  return requirements.every((requirement) => satisfies(requirement, lookup(requirement.key)));
}

/**
 * Field selectors name a dotted path (`metadata.name`, `involvedObject.uid`); values compare as
 * strings and a missing field reads as '' (so `metadata.namespace=` matches cluster-scoped objects).
 */
export function fieldLookup(object: unknown): (path: string) => string {
  return (path) => {
    let current: unknown = object;
    for (const part of path.split('.')) {
      if (typeof current !== 'object' || current === null) return '';
      current = (current as Record<string, unknown>)[part];
    }
    if (current === undefined || current === null) return '';
    return typeof current === 'object' ? JSON.stringify(current) : String(current);
  };
}

/** A request's label and field selectors. */
export interface QuerySelectors {
  labels: Requirement[];
  fields: Requirement[];
}

/** The `labelSelector` and `fieldSelector` of a LIST or watch; 400 BadRequest when one does not parse. */
export function querySelectors(query: URLSearchParams): QuerySelectors {
  try {
    return {
      labels: parseSelector(query.get('labelSelector') ?? ''),
      fields: parseSelector(query.get('fieldSelector') ?? ''),
    };
  } catch (error) {
    throw new StatusError(400, 'BadRequest', `unable to parse selector: ${(error as SelectorError).message}`);
  }
}

export function matchesSelectors(selectors: QuerySelectors, object: KubeObject): boolean {
  return (
    matchesSelector(selectors.labels, (key) => object.metadata.labels?.[key]) &&
    matchesSelector(selectors.fields, fieldLookup(object))
  );
}
