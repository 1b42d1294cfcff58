// Which router serves a route: one explicit factory per router type, each router built once
// (routers keep no state) and only when a configured route needs it.

import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { Route53Client } from '@aws-sdk/client-route-53';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/load.js';
import type { RouteConfig, RouterType } from '../config/schema.js';
import { RouterError } from '../errors.js';
import type { RetryPolicy, Sleep } from '../kube/kube-call.js';
import { AlbRouter } from './alb.js';
import { GatewayApiRouter } from './gateway-api.js';
import { HaproxyRouter } from './haproxy.js';
import { IstioRouter } from './istio.js';
import { type ClusterObjects, KubeObjects } from './kube-objects.js';
import { Route53Router } from './route53.js';
import type { TrafficRouter } from './router.js';
import { SmiRouter } from './smi.js';

export interface RouterRegistryDeps {
  config: Pick<Config, 'workloads' | 'routers'>;
  /** Both clusters' credentials; Kubernetes route objects live in one of them. */
  kube: { old: KubeConfig; new: KubeConfig };
  requestTimeoutMs: number;
  /** The embedded simulator's router (npm run demo); required only for sandbox routes. */
  sandbox?: TrafficRouter;
  /** Prebuilt AWS SDK clients (tests); by default built for routers.aws.region. */
  aws?: { elbv2?: ElasticLoadBalancingV2Client; route53?: Route53Client };
  /** For the Kubernetes-based routers' retries (tests). */
  kubeRetry?: RetryPolicy;
  sleep?: Sleep;
}

export type RouterFor = (route: RouteConfig) => TrafficRouter;

/** One line per router type: adding a router is a new file and a line here. */
const FACTORIES: Record<RouterType, (deps: RouterRegistryDeps, kube: () => ClusterObjects) => TrafficRouter> =
  {
    sandbox: (deps) => {
      if (!deps.sandbox)
        throw new RouterError(
          'a workload uses a sandbox route, which only the embedded simulator (npm run demo) provides',
        );
      return deps.sandbox;
    },
    haproxy: (deps) => {
      const haproxy = deps.config.routers.haproxy;
      if (!haproxy)
        throw new RouterError(
          'a workload uses an haproxy route but routers.haproxy.socket is not configured',
        );
      return new HaproxyRouter({ socket: haproxy.socket, timeoutMs: deps.requestTimeoutMs });
    },
    istio: (_deps, kube) => new IstioRouter({ clusters: kube() }),
    gatewayApi: (_deps, kube) => new GatewayApiRouter({ clusters: kube() }),
    smi: (_deps, kube) => new SmiRouter({ clusters: kube() }),
    // maxAttempts 1: the AWS routers retry throttling themselves; SDK retries would multiply the time.
    alb: (deps) =>
      new AlbRouter({
        client:
          deps.aws?.elbv2 ?? new ElasticLoadBalancingV2Client({ region: awsRegion(deps), maxAttempts: 1 }),
        requestTimeoutMs: deps.requestTimeoutMs,
      }),
    route53: (deps) =>
      new Route53Router({
        client: deps.aws?.route53 ?? new Route53Client({ region: awsRegion(deps), maxAttempts: 1 }),
        requestTimeoutMs: deps.requestTimeoutMs,
      }),
  };

function awsRegion(deps: RouterRegistryDeps): string {
  const region = deps.config.routers.aws?.region;
  if (!region)
    throw new RouterError(
      'a workload uses an AWS route (alb, route53) but routers.aws.region is not configured',
    );
  return region;
}

/**
 * Builds every router the configured workloads use, eagerly (a missing dependency is an error at
 * start, not at the first tick), and returns the lookup the controller calls with a workload's
 * route.
 *
 * The workload's namespace: a Kubernetes route's `namespace` defaults to its workload's, but
 * TrafficRouter methods receive only the route. The lookup returns, for a configured route
 * object, a thin wrapper that passes the route on with `namespace` filled in
 * (bindWorkloadNamespace); routes are matched by identity with `config.workloads[i].route`,
 * which is what the controller hands in.
 */
export function createRouterRegistry(deps: RouterRegistryDeps): RouterFor {
  let clusters: ClusterObjects | undefined;
  const kube = (): ClusterObjects => {
    clusters ??= {
      old: kubeObjects(deps, 'old'),
      new: kubeObjects(deps, 'new'),
    };
    return clusters;
  };
  const routers = new Map<RouterType, TrafficRouter>();
  const routerOf = (type: RouterType): TrafficRouter => {
    let router = routers.get(type);
    if (!router) {
      const factory = FACTORIES[type];
      if (!factory)
        throw new RouterError(
          `unknown router type ${JSON.stringify(type)}; known: ${Object.keys(FACTORIES).join(', ')}`,
        );
      router = factory(deps, kube);
      routers.set(type, router);
    }
    return router;
  };
  const bound = new Map<RouteConfig, TrafficRouter>();
  for (const workload of deps.config.workloads)
    bound.set(workload.route, forNamespace(routerOf(workload.route.type), workload.ref.namespace));
  return (route) => bound.get(route) ?? routerOf(route.type);
}

/** The route with the workload's namespace filled in when the route names none (Kubernetes routes only). */
export function bindWorkloadNamespace(route: RouteConfig, namespace: string): RouteConfig {
  if (route.type !== 'istio' && route.type !== 'gatewayApi' && route.type !== 'smi') return route;
  return route.namespace === undefined ? { ...route, namespace } : route;
}

function forNamespace(router: TrafficRouter, namespace: string): TrafficRouter {
  return {
    describe: (route) => router.describe(bindWorkloadNamespace(route, namespace)),
    getWeight: (route, signal) => router.getWeight(bindWorkloadNamespace(route, namespace), signal),
    setWeight: (route, weight, signal) =>
      router.setWeight(bindWorkloadNamespace(route, namespace), weight, signal),
    verify: (route, signal) => router.verify(bindWorkloadNamespace(route, namespace), signal),
  };
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
