// AWS Application Load Balancer router: the weights of the two clusters' target groups in the
// forward action of a listener's default action or of one listener rule, and whether each
// target group has a healthy target to take its share.

import type {
  Action,
  ElasticLoadBalancingV2Client,
  TargetGroupTuple,
  TargetHealthDescription,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { RouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError } from '../errors.js';
import type { ClusterRole, RouteSplit } from '../rollout/types.js';
import type { Sleep } from '../timing.js';
import { AwsApiCaller, type AwsErrorShape, type AwsRetryPolicy } from './aws-call.js';
import { type Elbv2Sdk, loadElbv2Sdk, pendingClient } from './aws-sdk.js';
import { checkWholePercent, type RouteHandle, splitWith } from './router.js';

export interface AlbRouteOptions {
  route: RouteOf<'alb'>;
  /**
   * The SDK client for routers.aws.region. Build it with `maxAttempts: 1`: this router retries
   * throttling itself, and the SDK's own retries would multiply the time a call can take. A
   * promise (the registry's, which loads the SDK on first use) is awaited by the first call.
   */
  client: ElasticLoadBalancingV2Client | Promise<ElasticLoadBalancingV2Client>;
  requestTimeoutMs: number;
  retry?: AwsRetryPolicy;
  sleep?: Sleep;
  random?: () => number;
}

type AlbRouteConfig = RouteOf<'alb'>;

/** The forward action that splits traffic between the two clusters, found in a list of actions. */
interface ClusterForward {
  /** Index of the forward action in the listener's or rule's actions. */
  index: number;
  oldWeight: number;
  newWeight: number;
}

/**
 * Weights: an ALB target group weight is an integer 0..999. The router writes
 * `new = w, old = 100 - w` for w percent, so every whole percent is exact, the two always
 * sum to 100, and reading back gives w again with no rounding.
 *
 * The percent is defined between the two clusters' target groups only:
 * `new / (old + new) * 100`. Any other target group in the same forward action keeps its
 * weight untouched; it then receives `other / (100 + other)` of the listener's traffic at
 * every step (the clusters' two weights always sum to 100), and the clusters share the rest.
 *
 * Everything else in the listener or rule is written back as it was read: the stickiness
 * settings, the other target groups, the other actions (authenticate-oidc, ...) with their
 * Order; ModifyRule sends only Actions, so conditions and transforms are not touched.
 */
export class AlbRoute implements RouteHandle {
  readonly description: string;
  readonly #route: AlbRouteConfig;
  readonly #client: Promise<ElasticLoadBalancingV2Client>;
  readonly #aws: AwsApiCaller;

  constructor(options: AlbRouteOptions) {
    this.#route = options.route;
    this.description = options.route.ruleArn
      ? `ALB listener rule ${options.route.ruleArn}`
      : `ALB listener ${options.route.listenerArn} (default action)`;
    this.#client = pendingClient(options.client);
    this.#aws = new AwsApiCaller({
      requestTimeoutMs: options.requestTimeoutMs,
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
  }

  /**
   * The weights, and the health of both target groups (DescribeTargetHealth): a group with no
   * healthy target cannot take its share. (The ALB then fails open inside that group and sends
   * the share to unhealthy targets, which is not traffic served.)
   */
  async getSplit(signal: AbortSignal): Promise<RouteSplit> {
    const alb = this.#route;
    const forward = this.#findClusterForward(alb, await this.#readActions(alb, signal));
    const percent = shareOf(forward);
    if (percent === undefined)
      throw new RouterError(
        `${this.description}: the old cluster's target group ${alb.oldTargetGroupArn} and the new ` +
          `cluster's ${alb.newTargetGroupArn} both have weight 0, so the new cluster's share is undefined; ` +
          "give the old cluster's target group a weight (e.g. 100) before starting the rollout",
      );
    const unavailable: { cluster: ClusterRole; reason: string }[] = [];
    const health = await Promise.all([
      this.#unhealthyReason(alb.oldTargetGroupArn, signal),
      this.#unhealthyReason(alb.newTargetGroupArn, signal),
    ]);
    for (const [index, cluster] of (['old', 'new'] as const).entries()) {
      const reason = health[index];
      if (reason) unavailable.push({ cluster, reason });
    }
    return splitWith(percent, unavailable);
  }

  async setWeight(weight: number, signal: AbortSignal): Promise<void> {
    const alb = this.#route;
    checkWholePercent(this.description, weight);
    const actions = await this.#readActions(alb, signal);
    const forward = this.#findClusterForward(alb, actions);
    await this.#writeActions(alb, withClusterWeights(alb, actions, forward.index, weight), signal);
  }

  /**
   * The listener (and rule) exist, the rule belongs to the listener, and its forward action
   * names both clusters' target groups.
   */
  async verify(signal: AbortSignal): Promise<void> {
    const alb = this.#route;
    if (alb.ruleArn !== undefined) {
      // Rule ARNs extend their listener's ARN: arn:...:listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id>.
      const prefix = `${alb.listenerArn.replace(':listener/', ':listener-rule/')}/`;
      if (!alb.ruleArn.startsWith(prefix))
        throw new RouteNotFoundError(
          `${this.description}: the rule does not belong to listener ${alb.listenerArn}; ` +
            'check listenerArn and ruleArn in the route (aws elbv2 describe-rules --listener-arn ... lists its rules)',
        );
    }
    this.#findClusterForward(alb, await this.#readActions(alb, signal));
  }

  /** One SDK call, once the client and the SDK's commands are loaded. */
  async #call<T>(send: (client: ElasticLoadBalancingV2Client, sdk: Elbv2Sdk) => Promise<T>): Promise<T> {
    const [client, sdk] = await Promise.all([this.#client, loadElbv2Sdk()]);
    return send(client, sdk);
  }

  /** Why the target group cannot take traffic (no healthy target), or undefined when it can. */
  async #unhealthyReason(targetGroupArn: string, signal: AbortSignal): Promise<string | undefined> {
    const output = await this.#aws.send(
      {
        operation: 'DescribeTargetHealth',
        permission: 'elasticloadbalancing:DescribeTargetHealth',
        target: this.description,
        send: (abortSignal) =>
          this.#call((client, sdk) =>
            client.send(new sdk.DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }), {
              abortSignal,
            }),
          ),
        classify: (error) => notFound(this.#route, this.description, error),
      },
      signal,
    );
    const targets = output.TargetHealthDescriptions ?? [];
    if (targets.some(takesTraffic)) return undefined;
    if (targets.length === 0) return `ALB target group ${targetGroupArn} has no registered targets`;
    const states = new Map<string, number>();
    for (const target of targets) {
      const state = target.TargetHealth?.State ?? 'unknown';
      states.set(state, (states.get(state) ?? 0) + 1);
    }
    const counts = [...states].map(([state, count]) => `${count} ${state}`).join(', ');
    return `ALB target group ${targetGroupArn} has no healthy target (${counts})`;
  }

  async #readActions(alb: AlbRouteConfig, signal: AbortSignal): Promise<Action[]> {
    const target = this.description;
    if (alb.ruleArn !== undefined) {
      const ruleArn = alb.ruleArn;
      const output = await this.#aws.send(
        {
          operation: 'DescribeRules',
          permission: 'elasticloadbalancing:DescribeRules',
          target,
          send: (abortSignal) =>
            this.#call((client, sdk) =>
              client.send(new sdk.DescribeRulesCommand({ RuleArns: [ruleArn] }), { abortSignal }),
            ),
          classify: (error) => notFound(alb, target, error),
        },
        signal,
      );
      const rule = output.Rules?.find((r) => r.RuleArn === ruleArn);
      if (!rule) throw missing(alb, target, 'rule');
      return rule.Actions ?? [];
    }
    const output = await this.#aws.send(
      {
        operation: 'DescribeListeners',
        permission: 'elasticloadbalancing:DescribeListeners',
        target,
        send: (abortSignal) =>
          this.#call((client, sdk) =>
            client.send(new sdk.DescribeListenersCommand({ ListenerArns: [alb.listenerArn] }), {
              abortSignal,
            }),
          ),
        classify: (error) => notFound(alb, target, error),
      },
      signal,
    );
    const listener = output.Listeners?.find((l) => l.ListenerArn === alb.listenerArn);
    if (!listener) throw missing(alb, target, 'listener');
    return listener.DefaultActions ?? [];
  }

  async #writeActions(alb: AlbRouteConfig, actions: Action[], signal: AbortSignal): Promise<void> {
    const target = this.description;
    if (alb.ruleArn !== undefined) {
      const ruleArn = alb.ruleArn;
      await this.#aws.send(
        {
          operation: 'ModifyRule',
          permission: 'elasticloadbalancing:ModifyRule',
          target,
          send: (abortSignal) =>
            this.#call((client, sdk) =>
              client.send(new sdk.ModifyRuleCommand({ RuleArn: ruleArn, Actions: actions }), { abortSignal }),
            ),
          classify: (error) => notFound(alb, target, error),
        },
        signal,
      );
      return;
    }
    await this.#aws.send(
      {
        operation: 'ModifyListener',
        permission: 'elasticloadbalancing:ModifyListener',
        target,
        send: (abortSignal) =>
          this.#call((client, sdk) =>
            client.send(
              new sdk.ModifyListenerCommand({ ListenerArn: alb.listenerArn, DefaultActions: actions }),
              { abortSignal },
            ),
          ),
        classify: (error) => notFound(alb, target, error),
      },
      signal,
    );
  }

  #findClusterForward(alb: AlbRouteConfig, actions: Action[]): ClusterForward {
    const target = this.description;
    // An ALB rule or listener ends in at most one forward action.
    const index = actions.findIndex((action) => action.Type === 'forward');
    const action = actions[index];
    if (!action)
      throw new RouteNotFoundError(
        `${target}: has no forward action (its actions: ${actions.map((a) => a.Type).join(', ') || 'none'}); ` +
          `expected one forwarding to target groups ${alb.oldTargetGroupArn} (old cluster) and ` +
          `${alb.newTargetGroupArn} (new cluster)`,
      );
    const groups = targetGroupsOf(action);
    const oldGroup = groups.find((g) => g.TargetGroupArn === alb.oldTargetGroupArn);
    const newGroup = groups.find((g) => g.TargetGroupArn === alb.newTargetGroupArn);
    const lacking = [
      ...(oldGroup ? [] : [`the old cluster's target group ${alb.oldTargetGroupArn}`]),
      ...(newGroup ? [] : [`the new cluster's target group ${alb.newTargetGroupArn}`]),
    ];
    if (!oldGroup || !newGroup)
      throw new RouteNotFoundError(
        `${target}: the forward action names target groups ` +
          `${groups.map((g) => g.TargetGroupArn).join(', ') || 'none'} but not ${lacking.join(' nor ')}; ` +
          "add both clusters' target groups to the forward action (the new one with weight 0)",
      );
    return {
      index,
      oldWeight: weightOf(target, oldGroup, 'old'),
      newWeight: weightOf(target, newGroup, 'new'),
    };
  }
}

/** Healthy, or health checks disabled (Lambda targets): the ALB sends it traffic as weighted. */
function takesTraffic(target: TargetHealthDescription): boolean {
  const health = target.TargetHealth;
  return (
    health?.State === 'healthy' ||
    (health?.State === 'unavailable' && health.Reason === 'Target.HealthCheckDisabled')
  );
}

/** A forward action lists its target groups in ForwardConfig, or (the short form) one in TargetGroupArn. */
function targetGroupsOf(action: Action): TargetGroupTuple[] {
  if (action.ForwardConfig?.TargetGroups) return action.ForwardConfig.TargetGroups;
  return action.TargetGroupArn ? [{ TargetGroupArn: action.TargetGroupArn, Weight: 1 }] : [];
}

function weightOf(target: string, group: TargetGroupTuple, cluster: 'old' | 'new'): number {
  if (group.Weight === undefined)
    throw new RouterError(
      `${target}: the ${cluster} cluster's target group ${group.TargetGroupArn} has no weight in the ` +
        'forward action; set an explicit weight on every target group of the forward action',
    );
  return group.Weight;
}

/** The new cluster's percent between the two clusters' groups, or undefined when both are 0. */
function shareOf(forward: ClusterForward): number | undefined {
  const total = forward.oldWeight + forward.newWeight;
  if (total === 0) return undefined;
  // Exact for weights the router wrote (they sum to 100); others are rounded to 0.01%.
  return Math.round((10_000 * forward.newWeight) / total) / 100;
}

/** The actions to write: `actions` with only the two clusters' weights changed. */
function withClusterWeights(alb: AlbRouteConfig, actions: Action[], index: number, weight: number): Action[] {
  const newWeight = weight;
  const oldWeight = 100 - weight;
  // With 0 on both, the clusters would get no traffic at all (or, with no other group, the
  // rule would be rejected); w and 100 - w cannot both be 0, and this keeps it that way.
  if (newWeight + oldWeight === 0)
    throw new RouterError(`refusing to write weight 0 to both clusters' target groups of ${alb.listenerArn}`);
  return actions.map((action, i) => {
    const writable = writableAction(action);
    if (i !== index) return writable;
    // ModifyListener/ModifyRule reject TargetGroupArn next to a ForwardConfig with several groups.
    const { TargetGroupArn: _single, ...forward } = writable;
    return {
      ...forward,
      ForwardConfig: {
        ...forward.ForwardConfig,
        TargetGroups: targetGroupsOf(action).map((group) => {
          if (group.TargetGroupArn === alb.newTargetGroupArn) return { ...group, Weight: newWeight };
          if (group.TargetGroupArn === alb.oldTargetGroupArn) return { ...group, Weight: oldWeight };
          return { ...group };
        }),
      },
    };
  });
}

/**
 * An action as read, made fit to write back. Describe never returns an OIDC client secret,
 * and ModifyListener/ModifyRule then need UseExistingClientSecret to keep the stored one.
 */
function writableAction(action: Action): Action {
  const oidc = action.AuthenticateOidcConfig;
  if (oidc && oidc.ClientSecret === undefined)
    return { ...action, AuthenticateOidcConfig: { ...oidc, UseExistingClientSecret: true } };
  return { ...action };
}

function missing(
  alb: AlbRouteConfig,
  target: string,
  what: 'listener' | 'rule',
  cause?: unknown,
): RouteNotFoundError {
  const arn = what === 'rule' ? alb.ruleArn : alb.listenerArn;
  return new RouteNotFoundError(
    `${target}: the ${what} ${arn} does not exist; check ${what === 'rule' ? 'ruleArn' : 'listenerArn'} ` +
      "in the route and that routers.aws.region is the load balancer's region",
    cause === undefined ? undefined : { cause },
  );
}

function notFound(alb: AlbRouteConfig, target: string, error: AwsErrorShape): RouteNotFoundError | undefined {
  if (error.name === 'ListenerNotFoundException') return missing(alb, target, 'listener', error);
  if (error.name === 'RuleNotFoundException') return missing(alb, target, 'rule', error);
  if (error.name === 'TargetGroupNotFoundException')
    return new RouteNotFoundError(
      `${target}: AWS says a target group of the forward action does not exist (${error.message ?? ''}); ` +
        'check oldTargetGroupArn and newTargetGroupArn in the route',
      { cause: error },
    );
  return undefined;
}
