// Which router serves a route: one explicit factory per route type, each binding one route to
// a RouteHandle at wiring time. The shared clients (the Kubernetes custom-object clients, the
// HAProxy runtime API, the AWS SDK clients) are built once, and only when a route needs them.

import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Route53Client } from '@aws-sdk/client-route-53';
import type { Config } from '../config/load.js';
import type { ResolvedRoute, ResolvedRouteOf, RouterType } from '../config/schema.js';
import { RouterError } from '../errors.js';
import type { KubeConfig } from '../kube/client-node.js';
import type { RetryPolicy } from '../kube/kube-call.js';
import type { Sleep } from '../timing.js';
import { AlbRoute } from './alb.js';
import { loadElbv2Sdk, loadRoute53Sdk } from './aws-sdk.js';
import { gatewayApiRoute } from './gateway-api.js';
import { HaproxyRuntimeApi, haproxyRoute } from './haproxy.js';
import { istioRoute } from './istio.js';
import { type ClusterObjects, KubeObjects } from './kube-objects.js';
import { Route53Route } from './route53.js';
import type { RouteHandle } from './router.js';
import { smiRoute } from './smi.js';

export interface RouterRegistryDeps {
  config: Pick<Config, 'workloads' | 'routers'>;
  /** Both clusters' credentials; Kubernetes route objects live in one of them. */
  kube: { old: KubeConfig; new: KubeConfig };
  /** The route-object clients to use (e.g. a cluster pair's, watching); built from `kube` when absent. */
  objects?: ClusterObjects;
  requestTimeoutMs: number;
  /** Prebuilt AWS SDK clients (tests); by default built for routers.aws.region. */
  aws?: { elbv2?: ElasticLoadBalancingV2Client; route53?: Route53Client };
  /** For the Kubernetes-based routers' retries (tests). */
  kubeRetry?: RetryPolicy;
  sleep?: Sleep;
}

/** The clients the factories share, each built on first use. */
export interface RouterClients {
  kube(): ClusterObjects;
  haproxy(): HaproxyRuntimeApi;
  /** The AWS clients: the region is checked at once; the SDK is imported then, in the background. */
  elbv2(): ElasticLoadBalancingV2Client | Promise<ElasticLoadBalancingV2Client>;
  route53(): Route53Client | Promise<Route53Client>;
  requestTimeoutMs: number;
}

export type RouteFactory<T extends RouterType> = (
  route: ResolvedRouteOf<T>,
  clients: RouterClients,
) => RouteHandle;

/** One line per route type: adding a router is a new file and a line here. */
const FACTORIES: { [T in RouterType]: RouteFactory<T> } = {
  haproxy: (route, clients) => haproxyRoute(route, clients.haproxy()),
  istio: (route, clients) => istioRoute(route, clients.kube()),
  gatewayApi: (route, clients) => gatewayApiRoute(route, clients.kube()),
  smi: (route, clients) => smiRoute(route, clients.kube()),
  alb: (route, clients) =>
    new AlbRoute({ route, client: clients.elbv2(), requestTimeoutMs: clients.requestTimeoutMs }),
  route53: (route, clients) =>
    new Route53Route({ route, client: clients.route53(), requestTimeoutMs: clients.requestTimeoutMs }),
};

/** Binds `route` to its router. */
export function bindRoute(route: ResolvedRoute, clients: RouterClients): RouteHandle {
  // The map's type pairs each type with its factory; TypeScript cannot follow that pairing
  // through a union-typed key, so the one lookup is widened here.
  const factory = FACTORIES[route.type] as RouteFactory<RouterType>;
  return factory(route, clients);
}

/**
 * A RouteHandle for every configured workload, by workload key, built eagerly: a missing
 * dependency (no routers.haproxy.socket, no AWS region) is an error at start, not at the first tick.
 */
export function createRouteHandles(deps: RouterRegistryDeps): Map<string, RouteHandle> {
  const clients = routerClients(deps);
  return new Map(deps.config.workloads.map((workload) => [workload.key, bindRoute(workload.route, clients)]));
}

export function routerClients(deps: RouterRegistryDeps): RouterClients {
  const once = <T>(build: () => T): (() => T) => {
    let built: T | undefined;
    return () => {
      built ??= build();
      return built;
    };
  };
  return {
    requestTimeoutMs: deps.requestTimeoutMs,
    kube: once(() => deps.objects ?? { old: kubeObjects(deps, 'old'), new: kubeObjects(deps, 'new') }),
    haproxy: once(() => {
      const haproxy = deps.config.routers.haproxy;
      if (!haproxy)
        throw new RouterError(
          'a workload uses an haproxy route but routers.haproxy.socket is not configured',
        );
      return new HaproxyRuntimeApi({ socket: haproxy.socket, timeoutMs: deps.requestTimeoutMs });
    }),
    // maxAttempts 1: the AWS routers retry throttling themselves; SDK retries would multiply the time.
    elbv2: once(() => {
      if (deps.aws?.elbv2) return deps.aws.elbv2;
      const region = awsRegion(deps);
      return loadElbv2Sdk().then((sdk) => new sdk.ElasticLoadBalancingV2Client({ region, maxAttempts: 1 }));
    }),
    route53: once(() => {
      if (deps.aws?.route53) return deps.aws.route53;
      const region = awsRegion(deps);
      return loadRoute53Sdk().then((sdk) => new sdk.Route53Client({ region, maxAttempts: 1 }));
    }),
  };
}

function awsRegion(deps: RouterRegistryDeps): string {
  const region = deps.config.routers.aws?.region;
  if (!region)
    throw new RouterError(
      'a workload uses an AWS route (alb, route53) but routers.aws.region is not configured',
    );
  return region;
}

function kubeObjects(deps: RouterRegistryDeps, cluster: 'old' | 'new'): KubeObjects {
  return new KubeObjects({
    cluster,
    kubeConfig: deps.kube[cluster],
    requestTimeoutMs: deps.requestTimeoutMs,
    ...(deps.kubeRetry ? { retry: deps.kubeRetry } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });
}
