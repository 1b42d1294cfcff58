// The rollout strategy of a workload, resolved from the file (or a custom resource) into the
// policy types, and the check that its route can carry blue-green's header phase.

import type { BlueGreenPolicy, Strategy } from '../rollout/policy.js';
import { DEFAULT_POLICY } from './defaults.js';
import type { RouteConfig, RouterType } from './schema.js';

type BlueGreenConfig = {
  bakeTime?: string;
  smokeTest?: {
    url: string | { env: string } | { file: string };
    timeout?: string;
    headers?: Record<string, string | { env: string } | { file: string }>;
  };
  headerPhase?: { header: string; value: string; duration?: string };
};

interface StrategyInput {
  strategy?: Strategy;
  blueGreen?: BlueGreenConfig;
}

/**
 * The strategy and blue-green settings: the workload's over the defaults, section by section as
 * the other policy sections merge. `dur(key, value, fallback)` resolves a duration written at
 * `blueGreen/<key>` (the workload's or the defaults').
 */
export function resolveStrategy(
  defaults: StrategyInput | undefined,
  workload: StrategyInput,
  dur: (key: string, value: string | undefined, fallback: string) => number,
): { strategy: Strategy; blueGreen: BlueGreenPolicy } {
  const B = DEFAULT_POLICY.blueGreen;
  const merged: BlueGreenConfig = { ...defaults?.blueGreen, ...workload.blueGreen };
  const smokeTest = merged.smokeTest;
  const headerPhase = merged.headerPhase;
  return {
    strategy: workload.strategy ?? defaults?.strategy ?? DEFAULT_POLICY.strategy,
    blueGreen: {
      bakeTimeMs: dur('bakeTime', merged.bakeTime, B.bakeTime),
      ...(smokeTest
        ? {
            smokeTest: {
              url: smokeTest.url,
              timeoutMs: dur('smokeTest/timeout', smokeTest.timeout, B.smokeTest.timeout),
              headers: { ...smokeTest.headers },
            },
          }
        : {}),
      ...(headerPhase
        ? {
            headerPhase: {
              name: headerPhase.header,
              value: headerPhase.value,
              durationMs: dur('headerPhase/duration', headerPhase.duration, B.headerPhase.duration),
            },
          }
        : {}),
    },
  };
}

/**
 * Which routers can send only the requests carrying a header to the new cluster, and why the
 * others cannot: told when the configuration or the custom resource is validated, never at run time.
 */
export const HEADER_ROUTING: Record<RouterType, { supported: true } | { supported: false; why: string }> = {
  istio: { supported: true },
  gatewayApi: { supported: true },
  smi: {
    supported: false,
    why: "Linkerd's SMI extension serves TrafficSplit v1alpha2, which has backend weights only (header matches came with v1alpha3); Linkerd 2.13 and later route by header through a Gateway API HTTPRoute: a gatewayApi route can",
  },
  haproxy: {
    supported: false,
    why: 'HAProxy chooses by header only through ACLs in its configuration file; the runtime API clustershift drives sets server weights',
  },
  alb: {
    supported: false,
    why: 'an ALB can match http-header conditions, but only in a listener rule of its own (its own priority); clustershift writes the weights of one existing rule and creates none',
  },
  route53: {
    supported: false,
    why: 'Route 53 answers DNS queries, which carry no HTTP headers',
  },
};

/** Why `route` cannot run blue-green's header phase, or undefined when it can. */
export function headerPhaseRefusal(route: Pick<RouteConfig, 'type'>): string | undefined {
  const support = HEADER_ROUTING[route.type];
  if (support.supported) return undefined;
  return `found a header phase with a route of type ${route.type}, which cannot send only the requests carrying a header to the new cluster: ${support.why}. Remove blueGreen.headerPhase (the smoke test and the bake still apply), or use an istio or gatewayApi route`;
}
