// Gateway API router: the weights of the old and new cluster's backendRefs in an HTTPRoute's
// rule(s), written with the object's resourceVersion so no other writer is overwritten.

import type { RouteConfig, RouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError } from '../errors.js';
import {
  agreedPercent,
  type ClusterObjects,
  type CustomObject,
  type CustomObjectRef,
  checkPercent,
  isRecord,
  namespaceOf,
  type WeightPair,
} from './kube-objects.js';
import type { TrafficRouter } from './router.js';

type GatewayRoute = RouteOf<'gatewayApi'>;
type Backend = GatewayRoute['oldBackend'];

/** The group a backendRef of each kind must name (Service is the core group, ''). */
const GROUP_OF_KIND: Record<'Service' | 'ServiceImport', string> = {
  Service: '',
  ServiceImport: 'multicluster.x-k8s.io',
};

export interface GatewayApiRouterOptions {
  clusters: ClusterObjects;
}

interface RuleSplit extends WeightPair {
  ruleIndex: number;
  oldIndex: number;
  newIndex: number;
}

/**
 * Weights: backendRef weights are integers 0..1,000,000; the router writes `new = w,
 * old = 100 - w`, so every whole percent is exact. An absent weight is 1 (the Gateway API
 * default). A third backendRef in the same rule keeps its weight; the percent is always
 * new / (old + new). The pair never sums to 0 (that would send the rule's traffic nowhere, a
 * 500 from the gateway): w and 100 - w never both are, and the write asserts it.
 *
 * Rule selection: `ruleName` picks the rule(s) with that name (HTTPRoute rule names are in the
 * standard channel since v1.2); without it every rule must name both backends and all are written.
 */
export class GatewayApiRouter implements TrafficRouter {
  readonly #clusters: ClusterObjects;

  constructor(options: GatewayApiRouterOptions) {
    this.#clusters = options.clusters;
  }

  describe(route: RouteConfig): string {
    const gateway = gatewayRoute(route);
    return `HTTPRoute ${gateway.namespace ?? '(workload namespace)'}/${gateway.httpRoute} in the ${gateway.cluster ?? 'old'} cluster`;
  }

  async getWeight(route: RouteConfig, signal: AbortSignal): Promise<number> {
    const gateway = gatewayRoute(route);
    const target = this.describe(gateway);
    const object = await this.#objects(gateway).get(this.#ref(gateway), signal);
    return agreedPercent(target, ruleSplits(gateway, target, object));
  }

  async setWeight(route: RouteConfig, weight: number, signal: AbortSignal): Promise<void> {
    const gateway = gatewayRoute(route);
    const target = this.describe(gateway);
    checkPercent(target, weight);
    await this.#objects(gateway).update(this.#ref(gateway), signal, (object) =>
      withWeights(gateway, target, object, weight),
    );
  }

  /** The HTTPRoute exists and every selected rule names both clusters' backends. */
  async verify(route: RouteConfig, signal: AbortSignal): Promise<void> {
    const gateway = gatewayRoute(route);
    const target = this.describe(gateway);
    ruleSplits(gateway, target, await this.#objects(gateway).get(this.#ref(gateway), signal));
  }

  #objects(gateway: GatewayRoute) {
    return this.#clusters[gateway.cluster ?? 'old'];
  }

  #ref(gateway: GatewayRoute): CustomObjectRef {
    return {
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      plural: 'httproutes',
      kind: 'HTTPRoute',
      namespace: namespaceOf(gateway, this.describe(gateway)),
      name: gateway.httpRoute,
    };
  }
}

function gatewayRoute(route: RouteConfig): GatewayRoute {
  if (route.type !== 'gatewayApi')
    throw new RouterError(
      `the Gateway API router was given a ${route.type} route; each route type has its own router`,
    );
  return route;
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

function ruleSplits(gateway: GatewayRoute, target: string, object: CustomObject): RuleSplit[] {
  const routeNamespace = namespaceOf(gateway, target);
  const rules = object.spec?.rules;
  if (!Array.isArray(rules) || rules.length === 0)
    throw new RouteNotFoundError(
      `${target}: has no rules; expected one with backendRefs ${showBackend(gateway.oldBackend)} ` +
        `(old cluster) and ${showBackend(gateway.newBackend)} (new cluster)`,
    );
  const selected = rules
    .map((rule, ruleIndex) => ({ rule, ruleIndex }))
    .filter(
      ({ rule }) => gateway.ruleName === undefined || (isRecord(rule) && rule.name === gateway.ruleName),
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
    return {
      ruleIndex,
      label,
      oldIndex,
      newIndex,
      oldWeight: weightOf(refs[oldIndex]),
      newWeight: weightOf(refs[newIndex]),
    };
  });
}

/** `object` with only the two clusters' weights changed in every selected rule. */
function withWeights(
  gateway: GatewayRoute,
  target: string,
  object: CustomObject,
  weight: number,
): CustomObject {
  const newWeight = weight;
  const oldWeight = 100 - weight;
  if (newWeight + oldWeight === 0)
    throw new RouterError(`${target}: refusing to write weight 0 to both clusters' backendRefs`);
  const rules = object.spec?.rules as Array<{ backendRefs: Array<Record<string, unknown>> }>;
  for (const split of ruleSplits(gateway, target, object)) {
    const refs = (rules[split.ruleIndex] as { backendRefs: Array<Record<string, unknown>> }).backendRefs;
    (refs[split.newIndex] as Record<string, unknown>).weight = newWeight;
    (refs[split.oldIndex] as Record<string, unknown>).weight = oldWeight;
  }
  return object;
}
