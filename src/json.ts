// Narrowing values parsed from JSON or YAML: configuration files, Kubernetes objects, API answers.

/** A plain object (not null, not a list), whose keys can be read one by one. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
