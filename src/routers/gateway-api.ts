// Gateway API router: the weights of the old and new cluster's backendRefs in an HTTPRoute's
// rule(s), written with the object's resourceVersion so no other writer is overwritten.

import type { ResolvedRouteOf } from '../config/schema.js';
import { RouteNotFoundError } from '../errors.js';
import { isRecord } from '../json.js';
import type { ClusterObjects, CustomObject } from './kube-objects.js';
import { HEADER_ROUTE_PREFIX, isHeaderRoute, kubeRouteHandle, type WeightSlot } from './kube-route.js';
import type { RouteHandle } from './router.js';

type GatewayRoute = ResolvedRouteOf<'gatewayApi'>;
type Backend = GatewayRoute['oldBackend'];

/** The group a backendRef of each kind must name (Service is the core group, ''). */
const GROUP_OF_KIND: Record<'Service' | 'ServiceImport', string> = {
  Service: '',
  ServiceImport: 'multicluster.x-k8s.io',
};

/**
 * Bound to one HTTPRoute. Weights: backendRef weights are integers 0..1,000,000; the handle
 * writes `new = w, old = 100 - w`, so the pair never sums to 0 (that would send the rule's
 * traffic nowhere, a 500 from the gateway). An absent weight is 1 (the Gateway API default).
 * The route's status does not say whether a backend can take traffic, so the split is the weights.
 *
 * Rule selection: `ruleName` picks the rule(s) with that name (HTTPRoute rule names are in the
 * standard channel since v1.2); without it every rule must name both backends and all are written.
 */
export function gatewayApiRoute(route: GatewayRoute, clusters: ClusterObjects): RouteHandle {
  const description = `HTTPRoute ${route.namespace}/${route.httpRoute} in the ${route.cluster} cluster`;
  return kubeRouteHandle(
    {
      description,
      refs: [
        {
          group: 'gateway.networking.k8s.io',
          version: 'v1',
          plural: 'httproutes',
          kind: 'HTTPRoute',
          namespace: route.namespace,
          name: route.httpRoute,
        },
      ],
      locate: (object) => ruleSlots(route, description, object),
      setHeaderRoute: (object, header) => setGatewayHeaderRoute(route, description, object, header),
    },
    clusters[route.cluster],
  );
}

/** Does this backendRef (in an HTTPRoute in `routeNamespace`) point at `wanted`? */
function matches(ref: unknown, wanted: Backend, routeNamespace: string): boolean {
  if (!isRecord(ref) || ref.name !== wanted.name) return false;
  const wantedKind = wanted.kind ?? 'Service';
  if ((ref.kind ?? 'Service') !== wantedKind) return false;
  if ((ref.group ?? '') !== GROUP_OF_KIND[wantedKind]) return false;
  if ((ref.namespace ?? routeNamespace) !== (wanted.namespace ?? routeNamespace)) return false;
  return wanted.port === undefined || ref.port === wanted.port;
}

function showBackend(backend: Backend): string {
  const kind = backend.kind ?? 'Service';
  return `${kind} ${backend.namespace ? `${backend.namespace}/` : ''}${backend.name}${backend.port ? `:${backend.port}` : ''}`;
}

function showRefs(refs: unknown[]): string {
  const shown = refs.map((ref) => {
    const r = isRecord(ref) ? ref : {};
    const namespace = typeof r.namespace === 'string' ? `${r.namespace}/` : '';
    const port = typeof r.port === 'number' ? `:${r.port}` : '';
    return `${String(r.kind ?? 'Service')} ${namespace}${String(r.name)}${port}`;
  });
  return shown.join(', ') || 'none';
}

/** Gateway API: an absent backendRef weight is 1. */
function weightOf(ref: unknown): number {
  const weight = isRecord(ref) ? ref.weight : undefined;
  return typeof weight === 'number' ? weight : 1;
}

function ruleSlots(gateway: GatewayRoute, target: string, object: CustomObject): WeightSlot[] {
  const routeNamespace = gateway.namespace;
  const rules = object.spec?.rules;
  if (!Array.isArray(rules) || rules.length === 0)
    throw new RouteNotFoundError(
      `${target}: has no rules; expected one with backendRefs ${showBackend(gateway.oldBackend)} ` +
        `(old cluster) and ${showBackend(gateway.newBackend)} (new cluster)`,
    );
  const selected = rules
    .map((rule, ruleIndex) => ({ rule, ruleIndex }))
    .filter(
      ({ rule }) =>
        !isHeaderRoute(rule) &&
        (gateway.ruleName === undefined || (isRecord(rule) && rule.name === gateway.ruleName)),
    );
  if (selected.length === 0)
    throw new RouteNotFoundError(
      `${target}: has no rule named ${gateway.ruleName} (its rules: ` +
        `${rules.map((rule) => (isRecord(rule) && typeof rule.name === 'string' ? rule.name : '(unnamed)')).join(', ')}); ` +
        'check ruleName in the configuration',
    );
  return selected.map(({ rule, ruleIndex }) => {
    const label =
      isRecord(rule) && typeof rule.name === 'string' ? `rule ${rule.name}` : `rules[${ruleIndex}]`;
    const refs = isRecord(rule) && Array.isArray(rule.backendRefs) ? rule.backendRefs : [];
    const oldIndex = refs.findIndex((ref) => matches(ref, gateway.oldBackend, routeNamespace));
    const newIndex = refs.findIndex(
      (ref, i) => i !== oldIndex && matches(ref, gateway.newBackend, routeNamespace),
    );
    if (oldIndex < 0 || newIndex < 0) {
      const lacking = [
        ...(oldIndex < 0 ? [`the old cluster's ${showBackend(gateway.oldBackend)}`] : []),
        ...(newIndex < 0 ? [`the new cluster's ${showBackend(gateway.newBackend)}`] : []),
      ];
      throw new RouteNotFoundError(
        `${target}: ${label} has backendRefs ${showRefs(refs)} but not ${lacking.join(' nor ')}; ` +
          'add both backendRefs to the rule (the new one with weight 0)',
      );
    }
    const oldRef = refs[oldIndex] as Record<string, unknown>;
    const newRef = refs[newIndex] as Record<string, unknown>;
    return {
      label,
      oldWeight: weightOf(oldRef),
      newWeight: weightOf(newRef),
      set(oldWeight, newWeight) {
        oldRef.weight = oldWeight;
        newRef.weight = newWeight;
      },
    };
  });
}

/**
 * Gateway API prefers, among matches for the same path, the one with more header matches: for
 * each selected rule a rule with the same matches plus the header, its filters, and only the new
 * cluster's backendRef. Other rules of the HTTPRoute are not touched.
 */
function setGatewayHeaderRoute(
  gateway: GatewayRoute,
  target: string,
  object: CustomObject,
  header: { name: string; value: string } | undefined,
): void {
  const spec = object.spec ?? {};
  const rules = (Array.isArray(spec.rules) ? spec.rules : []).filter((rule) => !isHeaderRoute(rule));
  if (!header) {
    object.spec = { ...spec, rules };
    return;
  }
  const selected = new Set(
    ruleSlots(gateway, target, { ...object, spec: { ...spec, rules } }).map((s) => s.label),
  );
  const added: unknown[] = [];
  for (const [index, rule] of rules.entries()) {
    const label = isRecord(rule) && typeof rule.name === 'string' ? `rule ${rule.name}` : `rules[${index}]`;
    if (!isRecord(rule) || !selected.has(label)) continue;
    const refs = Array.isArray(rule.backendRefs) ? rule.backendRefs : [];
    const fresh = refs.find((ref) => matches(ref, gateway.newBackend, gateway.namespace));
    const exact = { type: 'Exact', name: header.name, value: header.value };
    const conditions = Array.isArray(rule.matches) && rule.matches.length > 0 ? rule.matches : [{}];
    added.push({
      name: `${HEADER_ROUTE_PREFIX}-${added.length}`,
      matches: conditions.map((condition) => {
        const c = isRecord(condition) ? condition : {};
        return { ...c, headers: [...(Array.isArray(c.headers) ? c.headers : []), exact] };
      }),
      ...(Array.isArray(rule.filters) ? { filters: structuredClone(rule.filters) } : {}),
      backendRefs: [{ ...structuredClone(fresh as Record<string, unknown>), weight: 1 }],
    });
  }
  object.spec = { ...spec, rules: [...rules, ...added] };
}
