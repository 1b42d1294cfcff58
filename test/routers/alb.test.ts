// The ALB route handle (AlbRoute) against an ELBv2 client mocked with aws-sdk-client-mock. A
// small in-memory fake of one listener, its rule and the target groups' health answers
// Describe* and applies Modify*, so read-back is real.

import {
  type Action,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTargetHealthCommand,
  type DescribeTargetHealthCommandInput,
  ElasticLoadBalancingV2Client,
  ElasticLoadBalancingV2ServiceException,
  ListenerNotFoundException,
  ModifyListenerCommand,
  type ModifyListenerCommandInput,
  ModifyRuleCommand,
  type ModifyRuleCommandInput,
  RuleNotFoundException,
  type TargetGroupTuple,
  type TargetHealthDescription,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import t, { type Test } from 'tap';
import type { RouteOf } from '../../src/config/schema.js';
import { RouteNotFoundError, RouterError, TimeoutError } from '../../src/errors.js';
import { AlbRoute } from '../../src/routers/alb.js';
import type { AwsRetryPolicy } from '../../src/routers/aws-call.js';

// ---- fixture builders ----------------------------------------------------------------------

const ACCOUNT = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012';
const LISTENER_ARN = `${ACCOUNT}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2`;
const RULE_ARN = `${ACCOUNT}:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee`;
const targetGroupArn = (name: string) => `${ACCOUNT}:targetgroup/${name}/73e2d6bc24d8a067`;
const OLD_TG = targetGroupArn('checkout-old');
const NEW_TG = targetGroupArn('checkout-new');
const MIRROR_TG = targetGroupArn('checkout-mirror');

function albRoute(overrides: Partial<RouteOf<'alb'>> = {}): RouteOf<'alb'> {
  return {
    type: 'alb',
    listenerArn: LISTENER_ARN,
    oldTargetGroupArn: OLD_TG,
    newTargetGroupArn: NEW_TG,
    ...overrides,
  };
}

const ruleRoute = (overrides: Partial<RouteOf<'alb'>> = {}) => albRoute({ ruleArn: RULE_ARN, ...overrides });

function forwardAction(options: {
  oldWeight?: number;
  newWeight?: number;
  others?: TargetGroupTuple[];
  order?: number;
  stickiness?: boolean;
  omit?: 'old' | 'new';
}): Action {
  const groups: TargetGroupTuple[] = [
    ...(options.omit === 'old' ? [] : [{ TargetGroupArn: OLD_TG, Weight: options.oldWeight ?? 100 }]),
    ...(options.omit === 'new' ? [] : [{ TargetGroupArn: NEW_TG, Weight: options.newWeight ?? 0 }]),
    ...(options.others ?? []),
  ];
  return {
    Type: 'forward',
    ...(options.order !== undefined ? { Order: options.order } : {}),
    ForwardConfig: {
      TargetGroups: groups,
      ...(options.stickiness
        ? { TargetGroupStickinessConfig: { Enabled: true, DurationSeconds: 3600 } }
        : {}),
    },
  };
}

function oidcAction(order: number): Action {
  return {
    Type: 'authenticate-oidc',
    Order: order,
    AuthenticateOidcConfig: {
      Issuer: 'https://idp.example.com',
      AuthorizationEndpoint: 'https://idp.example.com/authorize',
      TokenEndpoint: 'https://idp.example.com/token',
      UserInfoEndpoint: 'https://idp.example.com/userinfo',
      ClientId: 'shop',
      SessionCookieName: 'AWSELBAuthSessionCookie',
      Scope: 'openid',
      SessionTimeout: 604800,
      OnUnauthenticatedRequest: 'authenticate',
    },
  };
}

/** The actions a realistic rule has: OIDC first, then a sticky forward with a third group. */
function richActions(oldWeight = 100, newWeight = 0): Action[] {
  return [
    oidcAction(1),
    forwardAction({
      oldWeight,
      newWeight,
      order: 2,
      stickiness: true,
      others: [{ TargetGroupArn: MIRROR_TG, Weight: 10 }],
    }),
  ];
}

const throttling = (name = 'Throttling', httpStatusCode = 400) =>
  new ElasticLoadBalancingV2ServiceException({
    name,
    $fault: 'client',
    $metadata: { httpStatusCode },
    message: 'Rate exceeded',
  });

const clone = <T>(value: T): T => structuredClone(value);

interface FakeAlb {
  /** The handle on `route`, as the registry binds it. */
  bind(route: RouteOf<'alb'>): AlbRoute;
  mock: ReturnType<typeof mockClient>;
  /** The actions AWS holds right now (the listener's default actions or the rule's). */
  actions(): Action[];
  /** What DescribeTargetHealth answers per target group; one healthy target each by default. */
  health: Map<string, TargetHealthDescription[]>;
  sleeps: number[];
}

const target = (id: string, state: string, reason?: string): TargetHealthDescription => ({
  Target: { Id: id, Port: 8080 },
  TargetHealth: { State: state as 'healthy', ...(reason ? { Reason: reason as 'Target.Timeout' } : {}) },
});

/**
 * One listener with one rule. Describe* answer from `state`; Modify* store what they are
 * given (minus the write-only UseExistingClientSecret), as AWS does.
 */
function fakeAlb(
  t: Test,
  options: { listenerActions?: Action[]; ruleActions?: Action[]; retry?: AwsRetryPolicy } = {},
): FakeAlb {
  const client = new ElasticLoadBalancingV2Client({ region: 'eu-west-1' });
  const mock = mockClient(client);
  t.teardown(() => mock.restore());
  const state = {
    listener: clone(options.listenerActions ?? richActions()),
    rule: clone(options.ruleActions ?? richActions()),
  };
  const stored = (actions: Action[] | undefined) =>
    clone(actions ?? []).map((action) => {
      // As AWS: "You cannot specify both TargetGroupArn and ForwardConfig" unless they name one group.
      const groups = action.ForwardConfig?.TargetGroups ?? [];
      if (action.TargetGroupArn && (groups.length > 1 || groups[0]?.TargetGroupArn !== action.TargetGroupArn))
        throw new ElasticLoadBalancingV2ServiceException({
          name: 'ValidationError',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
          message: 'You cannot specify both a target group ARN and a forward config with several groups',
        });
      if (action.AuthenticateOidcConfig) delete action.AuthenticateOidcConfig.UseExistingClientSecret;
      return action;
    });
  mock.on(DescribeListenersCommand).callsFake(() => ({
    Listeners: [
      { ListenerArn: LISTENER_ARN, Port: 443, Protocol: 'HTTPS', DefaultActions: clone(state.listener) },
    ],
  }));
  mock.on(DescribeRulesCommand).callsFake(() => ({
    Rules: [{ RuleArn: RULE_ARN, Priority: '10', Conditions: [pathCondition()], Actions: clone(state.rule) }],
  }));
  mock.on(ModifyListenerCommand).callsFake((input: ModifyListenerCommandInput) => {
    state.listener = stored(input.DefaultActions);
    return { Listeners: [{ ListenerArn: LISTENER_ARN, DefaultActions: clone(state.listener) }] };
  });
  mock.on(ModifyRuleCommand).callsFake((input: ModifyRuleCommandInput) => {
    state.rule = stored(input.Actions);
    return { Rules: [{ RuleArn: RULE_ARN, Actions: clone(state.rule) }] };
  });
  const health = new Map<string, TargetHealthDescription[]>([
    [OLD_TG, [target('10.0.1.5', 'healthy')]],
    [NEW_TG, [target('10.1.1.5', 'healthy')]],
  ]);
  mock.on(DescribeTargetHealthCommand).callsFake((input: DescribeTargetHealthCommandInput) => ({
    TargetHealthDescriptions: clone(health.get(input.TargetGroupArn ?? '') ?? []),
  }));
  const sleeps: number[] = [];
  const bind = (route: RouteOf<'alb'>) =>
    new AlbRoute({
      route,
      client,
      requestTimeoutMs: 5_000,
      retry: options.retry ?? { attempts: 4, baseDelayMs: 100, maxDelayMs: 250 },
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0,
    });
  return { bind, mock, actions: () => (options.ruleActions ? state.rule : state.listener), health, sleeps };
}

function pathCondition() {
  return { Field: 'path-pattern', PathPatternConfig: { Values: ['/checkout/*'] } };
}

const signal = () => new AbortController().signal;

/** The weight a handle reads back. */
const weightOf = async (route: AlbRoute, s: AbortSignal) => (await route.getSplit(s)).weight;

/** The weights written to the clusters' groups in a Modify* input's forward action. */
function writtenWeights(actions: Action[] | undefined) {
  const groups = actions?.find((a) => a.Type === 'forward')?.ForwardConfig?.TargetGroups ?? [];
  const weightOf = (arn: string) => groups.find((g) => g.TargetGroupArn === arn)?.Weight;
  return { old: weightOf(OLD_TG), new: weightOf(NEW_TG), mirror: weightOf(MIRROR_TG) };
}

// ---- tests ---------------------------------------------------------------------------------

t.test('describe names the listener or the rule', async (t) => {
  const { bind } = fakeAlb(t);
  t.equal(bind(albRoute()).description, `ALB listener ${LISTENER_ARN} (default action)`);
  t.equal(bind(ruleRoute()).description, `ALB listener rule ${RULE_ARN}`);
});

t.test(
  'listener default action: writes the weights with ModifyListener, keeping everything else',
  async (t) => {
    const { bind, mock } = fakeAlb(t);
    t.equal(await weightOf(bind(albRoute()), signal()), 0);

    await bind(albRoute()).setWeight(25, signal());

    const calls = mock.commandCalls(ModifyListenerCommand);
    t.equal(calls.length, 1);
    const expectedOidc = oidcAction(1);
    t.strictSame(calls[0]?.args[0].input, {
      ListenerArn: LISTENER_ARN,
      DefaultActions: [
        {
          ...expectedOidc,
          AuthenticateOidcConfig: { ...expectedOidc.AuthenticateOidcConfig, UseExistingClientSecret: true },
        },
        {
          Type: 'forward',
          Order: 2,
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: OLD_TG, Weight: 75 },
              { TargetGroupArn: NEW_TG, Weight: 25 },
              { TargetGroupArn: MIRROR_TG, Weight: 10 },
            ],
            TargetGroupStickinessConfig: { Enabled: true, DurationSeconds: 3600 },
          },
        },
      ],
    });
    t.equal(
      mock.commandCalls(DescribeListenersCommand).length,
      2,
      "get, read before write (the read-back after it is the controller's)",
    );
    t.strictSame(mock.commandCalls(DescribeListenersCommand)[0]?.args[0].input, {
      ListenerArns: [LISTENER_ARN],
    });
    t.equal(mock.commandCalls(DescribeRulesCommand).length, 0);
    t.equal(mock.commandCalls(ModifyRuleCommand).length, 0);
    t.equal(await weightOf(bind(albRoute()), signal()), 25);
  },
);

t.test('listener rule: ModifyRule sends only the actions, conditions untouched', async (t) => {
  const { bind, mock } = fakeAlb(t, { ruleActions: richActions(90, 10) });
  t.equal(await weightOf(bind(ruleRoute()), signal()), 10);

  await bind(ruleRoute()).setWeight(50, signal());

  const calls = mock.commandCalls(ModifyRuleCommand);
  t.equal(calls.length, 1);
  const input = calls[0]?.args[0].input;
  t.strictSame(Object.keys(input ?? {}).sort(), ['Actions', 'RuleArn'], 'no Conditions, no Transforms');
  const expectedOidc = oidcAction(1);
  t.strictSame(input, {
    RuleArn: RULE_ARN,
    Actions: [
      {
        ...expectedOidc,
        AuthenticateOidcConfig: { ...expectedOidc.AuthenticateOidcConfig, UseExistingClientSecret: true },
      },
      {
        Type: 'forward',
        Order: 2,
        ForwardConfig: {
          TargetGroups: [
            { TargetGroupArn: OLD_TG, Weight: 50 },
            { TargetGroupArn: NEW_TG, Weight: 50 },
            { TargetGroupArn: MIRROR_TG, Weight: 10 },
          ],
          TargetGroupStickinessConfig: { Enabled: true, DurationSeconds: 3600 },
        },
      },
    ],
  });
  t.strictSame(mock.commandCalls(DescribeRulesCommand)[0]?.args[0].input, { RuleArns: [RULE_ARN] });
  t.equal(mock.commandCalls(ModifyListenerCommand).length, 0);
  t.equal(await weightOf(bind(ruleRoute()), signal()), 50);
});

t.test('every AWS call carries an AbortSignal', async (t) => {
  const { bind, mock } = fakeAlb(t, { ruleActions: richActions() });
  await bind(ruleRoute()).setWeight(5, signal());
  for (const call of mock.calls()) {
    const options = (call.args as unknown[])[1] as { abortSignal?: unknown } | undefined;
    t.ok(options?.abortSignal instanceof AbortSignal, `${call.args[0].constructor.name} has abortSignal`);
  }
});

t.test('a forward action without stickiness or other groups is written with just the two', async (t) => {
  const { bind, mock } = fakeAlb(t, { listenerActions: [forwardAction({ oldWeight: 1, newWeight: 0 })] });
  await bind(albRoute()).setWeight(1, signal());
  t.strictSame(mock.commandCalls(ModifyListenerCommand)[0]?.args[0].input.DefaultActions, [
    {
      Type: 'forward',
      ForwardConfig: {
        TargetGroups: [
          { TargetGroupArn: OLD_TG, Weight: 99 },
          { TargetGroupArn: NEW_TG, Weight: 1 },
        ],
      },
    },
  ]);
});

t.test('a forward action read with TargetGroupArn beside ForwardConfig is written without it', async (t) => {
  // Describe* can answer both fields; ModifyRule rejects both when ForwardConfig has several groups.
  const { bind, mock } = fakeAlb(t, { ruleActions: [{ ...forwardAction({}), TargetGroupArn: OLD_TG }] });
  await bind(ruleRoute()).setWeight(10, signal());
  const written = mock.commandCalls(ModifyRuleCommand)[0]?.args[0].input.Actions?.[0];
  t.notOk(written && 'TargetGroupArn' in written);
  t.equal(await weightOf(bind(ruleRoute()), signal()), 10);
});

t.test('every whole percent 0..100 is written exactly and reads back, never all-zero', async (t) => {
  const { bind, mock } = fakeAlb(t, { ruleActions: richActions() });
  for (let percent = 0; percent <= 100; percent++) {
    await bind(ruleRoute()).setWeight(percent, signal());
    const input = mock.commandCalls(ModifyRuleCommand).at(-1)?.args[0].input;
    const written = writtenWeights(input?.Actions);
    t.strictSame(written, { new: percent, old: 100 - percent, mirror: 10 }, `${percent}% written`);
    t.ok((written.new ?? 0) + (written.old ?? 0) > 0, `${percent}%: not both zero`);
    t.ok((written.new ?? 0) <= 999 && (written.old ?? 0) <= 999, `${percent}%: within ALB's 0..999`);
    t.equal(await weightOf(bind(ruleRoute()), signal()), percent, `${percent}% reads back`);
  }
  t.equal(mock.commandCalls(ModifyRuleCommand).length, 101);
});

t.test('weights someone else wrote are read as the share between the two groups', async (t) => {
  const { bind } = fakeAlb(t, { ruleActions: [forwardAction({ oldWeight: 300, newWeight: 100 })] });
  t.equal(await weightOf(bind(ruleRoute()), signal()), 25);
});

t.test('both clusters at weight 0 has no defined share: RouterError, and setWeight repairs it', async (t) => {
  const actions = [
    forwardAction({ oldWeight: 0, newWeight: 0, others: [{ TargetGroupArn: MIRROR_TG, Weight: 1 }] }),
  ];
  const { bind } = fakeAlb(t, { ruleActions: actions });
  const error = await weightOf(bind(ruleRoute()), signal()).catch((e: unknown) => e);
  t.type(error, RouterError);
  t.notOk(error instanceof RouteNotFoundError);
  t.match((error as Error).message, /both have weight 0/);
  await bind(ruleRoute()).setWeight(0, signal());
  t.equal(await weightOf(bind(ruleRoute()), signal()), 0);
});

t.test('a missing listener is RouteNotFoundError naming it', async (t) => {
  const { bind, mock } = fakeAlb(t);
  mock
    .on(DescribeListenersCommand)
    .rejects(new ListenerNotFoundException({ message: 'gone', $metadata: {} }));
  for (const call of [
    () => weightOf(bind(albRoute()), signal()),
    () => bind(albRoute()).setWeight(10, signal()),
    () => bind(albRoute()).verify(signal()),
  ]) {
    const error = await call().catch((e: unknown) => e);
    t.type(error, RouteNotFoundError);
    t.match((error as Error).message, `the listener ${LISTENER_ARN} does not exist`);
  }
  t.equal(mock.commandCalls(ModifyListenerCommand).length, 0);
});

t.test('a listener missing from an answer without an exception is RouteNotFoundError too', async (t) => {
  const { bind, mock } = fakeAlb(t);
  mock.on(DescribeListenersCommand).resolves({ Listeners: [] });
  await t.rejects(weightOf(bind(albRoute()), signal()), RouteNotFoundError);
});

t.test('a missing rule is RouteNotFoundError naming it', async (t) => {
  const { bind, mock } = fakeAlb(t);
  mock.on(DescribeRulesCommand).rejects(new RuleNotFoundException({ message: 'gone', $metadata: {} }));
  const error = await bind(ruleRoute())
    .setWeight(10, signal())
    .catch((e: unknown) => e);
  t.type(error, RouteNotFoundError);
  t.match((error as Error).message, `the rule ${RULE_ARN} does not exist`);
  t.equal(mock.commandCalls(ModifyRuleCommand).length, 0);
});

t.test('a forward action lacking one cluster is RouteNotFoundError saying which', async (t) => {
  for (const omit of ['old', 'new'] as const) {
    const { bind, mock } = fakeAlb(t, { ruleActions: [oidcAction(1), forwardAction({ omit, order: 2 })] });
    const lacking = omit === 'old' ? OLD_TG : NEW_TG;
    const present = omit === 'old' ? NEW_TG : OLD_TG;
    for (const call of [
      () => bind(ruleRoute()).verify(signal()),
      () => bind(ruleRoute()).setWeight(10, signal()),
    ]) {
      const error = await call().catch((e: unknown) => e);
      t.type(error, RouteNotFoundError, `${omit} missing`);
      t.match((error as Error).message, `not the ${omit} cluster's target group ${lacking}`);
      t.notMatch((error as Error).message, `not the ${omit === 'old' ? 'new' : 'old'} cluster's`);
      t.match((error as Error).message, present, 'lists the groups it does name');
    }
    t.equal(mock.commandCalls(ModifyRuleCommand).length, 0, 'nothing written');
  }
});

t.test('a single-target forward or no forward action at all is RouteNotFoundError', async (t) => {
  const single: Action = { Type: 'forward', TargetGroupArn: OLD_TG };
  const fixed: Action = { Type: 'fixed-response', FixedResponseConfig: { StatusCode: '503' } };
  for (const [label, actions, pattern] of [
    ['single target group', [single], /but not the new cluster's target group/],
    ['fixed response', [fixed], /has no forward action \(its actions: fixed-response\)/],
  ] as const) {
    const { bind } = fakeAlb(t, { ruleActions: [...actions] });
    const error = await bind(ruleRoute())
      .verify(signal())
      .catch((e: unknown) => e);
    t.type(error, RouteNotFoundError, label);
    t.match((error as Error).message, pattern, label);
  }
});

t.test('verify passes for a good route and rejects a rule of another listener without a call', async (t) => {
  const { bind, mock } = fakeAlb(t, { ruleActions: richActions() });
  await bind(ruleRoute()).verify(signal());
  await bind(albRoute()).verify(signal());
  const before = mock.calls().length;
  const otherListener = `${ACCOUNT}:listener/app/shop/50dc6c495c0c9188/0000000000000000`;
  const error = await bind(ruleRoute({ listenerArn: otherListener }))
    .verify(signal())
    .catch((e: unknown) => e);
  t.type(error, RouteNotFoundError);
  t.match((error as Error).message, 'does not belong to listener');
  t.equal(mock.calls().length, before);
});

t.test('throttling then success is retried with growing delays', async (t) => {
  const cases = [
    ['Throttling (HTTP 400)', throttling('Throttling', 400)],
    ['ThrottlingException', throttling('ThrottlingException', 400)],
    ['HTTP 429', throttling('SlowDown', 429)],
    ['HTTP 503', throttling('ServiceUnavailable', 503)],
    [
      '$retryable',
      Object.assign(throttling('SomethingTransient', 400), { $retryable: { throttling: false } }),
    ],
  ] as const;
  for (const [label, error] of cases) {
    const { bind, mock, sleeps } = fakeAlb(t, { ruleActions: richActions(80, 20) });
    mock
      .on(DescribeRulesCommand)
      .rejectsOnce(error)
      .rejectsOnce(error)
      .resolves({ Rules: [{ RuleArn: RULE_ARN, Actions: richActions(80, 20) }] });
    t.equal(await weightOf(bind(ruleRoute()), signal()), 20, label);
    t.equal(mock.commandCalls(DescribeRulesCommand).length, 3, `${label}: two retries`);
    t.strictSame(sleeps, [50, 100], `${label}: equal-jitter backoff, half of 100 then of 200`);
  }
});

t.test('a throttled write is retried and written once', async (t) => {
  const { bind, mock, actions } = fakeAlb(t, { ruleActions: richActions() });
  const apply = (input: ModifyRuleCommandInput) => {
    actions().splice(0, actions().length, ...clone(input.Actions ?? []));
    return {};
  };
  mock.on(ModifyRuleCommand).rejectsOnce(throttling()).callsFake(apply);
  await bind(ruleRoute()).setWeight(40, signal());
  t.equal(mock.commandCalls(ModifyRuleCommand).length, 2);
  t.equal(await weightOf(bind(ruleRoute()), signal()), 40);
});

t.test('throttling forever is a RouterError after the attempt limit', async (t) => {
  const { bind, mock, sleeps } = fakeAlb(t, { retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 250 } });
  mock.on(DescribeListenersCommand).rejects(throttling());
  const error = await weightOf(bind(albRoute()), signal()).catch((e: unknown) => e);
  t.type(error, RouterError);
  t.equal((error as RouterError).code, 'CS_ROUTER_FAILED');
  t.match((error as Error).message, /DescribeListeners was throttled 4 times in a row/);
  t.equal(mock.commandCalls(DescribeListenersCommand).length, 4);
  t.strictSame(sleeps, [50, 100, 125], 'capped at maxDelayMs (250 / 2 with no jitter)');
});

t.test('jitter stays within [step/2, step]', async (t) => {
  for (const random of [0, 0.5, 0.999]) {
    const client = new ElasticLoadBalancingV2Client({ region: 'eu-west-1' });
    const mock = mockClient(client);
    t.teardown(() => mock.restore());
    mock.on(DescribeListenersCommand).rejects(throttling());
    const sleeps: number[] = [];
    const route = new AlbRoute({
      route: albRoute(),
      client,
      requestTimeoutMs: 1_000,
      retry: { attempts: 3, baseDelayMs: 1_000, maxDelayMs: 10_000 },
      sleep: async (ms) => void sleeps.push(ms),
      random: () => random,
    });
    await t.rejects(route.getSplit(signal()), RouterError);
    t.equal(sleeps.length, 2);
    t.ok(sleeps[0]! >= 500 && sleeps[0]! <= 1_000, `random ${random}: first ${sleeps[0]}`);
    t.ok(sleeps[1]! >= 1_000 && sleeps[1]! <= 2_000, `random ${random}: second ${sleeps[1]}`);
  }
});

t.test('other AWS errors are not retried and name the IAM permission', async (t) => {
  const { bind, mock, sleeps } = fakeAlb(t, { ruleActions: richActions() });
  mock.on(ModifyRuleCommand).rejects(
    new ElasticLoadBalancingV2ServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'User is not authorized',
    }),
  );
  const error = await bind(ruleRoute())
    .setWeight(10, signal())
    .catch((e: unknown) => e);
  t.type(error, RouterError);
  t.match((error as Error).message, /ModifyRule failed: AccessDenied \(HTTP 403\)/);
  t.match((error as Error).message, 'needs the permission elasticloadbalancing:ModifyRule');
  t.equal(mock.commandCalls(ModifyRuleCommand).length, 1);
  t.strictSame(sleeps, []);
});

// The read-back after a write (and its WeightMismatchError) is the controller's, one place for
// every router (test/routers/controller-kube-routers.test.ts); the handle reads what AWS holds.
t.test('after a write another writer won: the split reads what AWS holds', async (t) => {
  const { bind, mock, actions } = fakeAlb(t, { ruleActions: richActions() });
  // Another writer (a person in the console) wins the race right after our write.
  mock.on(ModifyRuleCommand).callsFake(() => {
    actions().splice(0, actions().length, ...richActions(90, 10));
    return {};
  });
  await bind(ruleRoute()).setWeight(30, signal());
  t.equal(mock.commandCalls(ModifyRuleCommand).length, 1, 'one write, no read-back inside the handle');
  t.equal(await weightOf(bind(ruleRoute()), signal()), 10);
});

t.test('only whole percents 0..100 are accepted, before any call', async (t) => {
  const { bind, mock } = fakeAlb(t);
  for (const weight of [-1, 101, 12.5, Number.NaN]) {
    await t.rejects(bind(albRoute()).setWeight(weight, signal()), RouterError, `${weight}`);
  }
  t.equal(mock.calls().length, 0);
});

t.test('a call that never answers is a TimeoutError after requestTimeoutMs', async (t) => {
  const client = new ElasticLoadBalancingV2Client({ region: 'eu-west-1' });
  const mock = mockClient(client);
  t.teardown(() => mock.restore());
  mock.on(DescribeListenersCommand).callsFake(() => new Promise(() => {}));
  const route = new AlbRoute({ route: albRoute(), client, requestTimeoutMs: 20, sleep: async () => {} });
  const error = await route.getSplit(signal()).catch((e: unknown) => e);
  t.type(error, TimeoutError);
  t.match((error as Error).message, /DescribeListeners did not answer within 20ms/);
  t.equal(mock.commandCalls(DescribeListenersCommand).length, 1, 'a timeout is not retried');
});

t.test("the caller's abort stops the call and the backoff", async (t) => {
  const { bind, mock } = fakeAlb(t);
  const aborted = AbortSignal.abort(new Error('shutting down'));
  await t.rejects(weightOf(bind(albRoute()), aborted), { message: 'shutting down' });
  t.equal(mock.calls().length, 0);

  const controller = new AbortController();
  const client = new ElasticLoadBalancingV2Client({ region: 'eu-west-1' });
  const mock2 = mockClient(client);
  t.teardown(() => mock2.restore());
  mock2.on(DescribeListenersCommand).rejects(throttling());
  const abortingRoute = new AlbRoute({
    route: albRoute(),
    client,
    requestTimeoutMs: 1_000,
    retry: { attempts: 10, baseDelayMs: 1, maxDelayMs: 1 },
    sleep: async () => controller.abort(new Error('leader lost')),
  });
  await t.rejects(abortingRoute.getSplit(controller.signal), { message: 'leader lost' });
  t.equal(mock2.commandCalls(DescribeListenersCommand).length, 1, 'no attempt after the abort');
});

t.test(
  'a target group with no healthy target cannot take traffic: the effective split says so',
  async (t) => {
    const { bind, health, mock } = fakeAlb(t, { ruleActions: richActions(90, 10) });
    t.same(await bind(ruleRoute()).getSplit(signal()), { weight: 10, effectiveWeight: 10, unavailable: [] });
    t.same(
      mock.commandCalls(DescribeTargetHealthCommand).map((call) => call.args[0].input.TargetGroupArn),
      [OLD_TG, NEW_TG],
      "both clusters' groups are asked, nothing else",
    );

    health.set(NEW_TG, [target('10.1.1.5', 'unhealthy', 'Target.Timeout'), target('10.1.1.6', 'draining')]);
    t.same(await bind(ruleRoute()).getSplit(signal()), {
      weight: 10,
      effectiveWeight: 0,
      unavailable: [
        {
          cluster: 'new',
          reason: `ALB target group ${NEW_TG} has no healthy target (1 unhealthy, 1 draining)`,
        },
      ],
    });

    health.set(NEW_TG, [target('10.1.1.5', 'unhealthy'), target('10.1.1.6', 'healthy')]);
    t.match(
      await bind(ruleRoute()).getSplit(signal()),
      { effectiveWeight: 10 },
      'one healthy target is enough',
    );

    health.set(OLD_TG, []);
    t.same(await bind(ruleRoute()).getSplit(signal()), {
      weight: 10,
      effectiveWeight: 100,
      unavailable: [{ cluster: 'old', reason: `ALB target group ${OLD_TG} has no registered targets` }],
    });

    // Lambda targets without health checks are "unavailable" by name but take traffic as weighted.
    health.set(OLD_TG, [
      target(
        'arn:aws:lambda:eu-west-1:123456789012:function:old',
        'unavailable',
        'Target.HealthCheckDisabled',
      ),
    ]);
    t.same(await bind(ruleRoute()).getSplit(signal()), { weight: 10, effectiveWeight: 10, unavailable: [] });
  },
);

t.test('target health that cannot be read is a RouterError naming the IAM permission', async (t) => {
  const { bind, mock } = fakeAlb(t, { ruleActions: richActions(90, 10) });
  mock.on(DescribeTargetHealthCommand).rejects(
    new ElasticLoadBalancingV2ServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'User is not authorized',
    }),
  );
  await t.rejects(bind(ruleRoute()).getSplit(signal()), {
    name: 'RouterError',
    message:
      /DescribeTargetHealth failed: AccessDenied \(HTTP 403\).*elasticloadbalancing:DescribeTargetHealth/,
  });
});
