// A Kubernetes label selector (matchLabels and matchExpressions) applied to an object's labels,
// as the API server applies one: every requirement must hold; an empty selector picks everything.

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: ReadonlyArray<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | string;
    values?: readonly string[];
  }>;
}

export function matchesLabelSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (have[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, key);
    const value = have[key];
    const holds =
      operator === 'In'
        ? present && values.includes(value!)
        : operator === 'NotIn'
          ? !present || !values.includes(value!)
          : operator === 'Exists'
            ? present
            : operator === 'DoesNotExist'
              ? !present
              : false;
    if (!holds) return false;
  }
  return true;
}

/** Whether the selector has no requirement at all (it then picks every object). */
export const isEmptySelector = (selector: LabelSelector): boolean =>
  Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;
