// The JSONPath subset CRD printer columns use: `.status.phase`, `.spec.steps[0]`,
// `.status.conditions[?(@.type=="Ready")].status`.

import { isObject } from './types.js';

type Step = { field: string } | { index: number } | { filterKey: string; filterValue: string };

function parse(path: string): Step[] {
  const steps: Step[] = [];
  const pattern =
    /\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_-]+)\s*==\s*["']([^"']*)["']\)\]|\['([^']+)'\]/gy;
  const text = path.startsWith('{') && path.endsWith('}') ? path.slice(1, -1) : path;
  let match: RegExpExecArray | null = pattern.exec(text);
  while (match !== null) {
    if (match[1] !== undefined) steps.push({ field: match[1] });
    else if (match[2] !== undefined) steps.push({ index: Number(match[2]) });
    else if (match[3] !== undefined) steps.push({ filterKey: match[3], filterValue: match[4]! });
    else steps.push({ field: match[5]! });
    if (pattern.lastIndex === text.length) return steps;
    match = pattern.exec(text);
  }
  if (text === '' || pattern.lastIndex !== 0) return steps;
  throw new Error(`unsupported JSONPath "${path}"`);
}

/** The value at the path, or undefined when any step is missing. */
export function evaluateJsonPath(document: unknown, path: string): unknown {
  let steps: Step[];
  try {
    steps = parse(path);
  } catch {
    return undefined;
  }
  let current: unknown = document;
  for (const step of steps) {
    if ('field' in step) current = isObject(current) ? current[step.field] : undefined;
    else if ('index' in step) current = Array.isArray(current) ? current[step.index] : undefined;
    else {
      current = Array.isArray(current)
        ? current.find((item) => isObject(item) && String(item[step.filterKey]) === step.filterValue)
        : undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}
