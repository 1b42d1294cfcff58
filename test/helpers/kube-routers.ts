// For the Kubernetes-based router tests: a real FakeApiServer per cluster on loopback and the
// KubeObjects that reach it through @kubernetes/client-node, with backoff sleeps recorded
// instead of waited.

import type { Test } from 'tap';
import type { Config } from '../../src/config/load.js';
import type { ResolvedRouteOf } from '../../src/config/schema.js';
import type { RetryPolicy } from '../../src/kube/kube-call.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { type ClusterObjects, KubeObjects } from '../../src/routers/kube-objects.js';
import { createRouteHandles } from '../../src/routers/registry.js';
import type { RouteHandle } from '../../src/routers/router.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';

export interface KubeRouterFixture {
  /** The API server of the `old` cluster, where routes live by default. */
  server: FakeApiServer;
  newServer: FakeApiServer;
  clusters: ClusterObjects;
  /** Every backoff the callers asked to sleep, in ms. */
  sleeps: number[];
}

export const TEST_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 1000 };

export async function startKubeRouterFixture(
  t: Test,
  options: { oldUrl?: (url: string) => Promise<string> } = {},
): Promise<KubeRouterFixture> {
  const server = new FakeApiServer();
  const newServer = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const { url: newUrl } = await newServer.start();
  t.teardown(() => newServer.stop());
  const sleeps: number[] = [];
  const objectsFor = (cluster: 'old' | 'new', serverUrl: string) =>
    new KubeObjects({
      cluster,
      kubeConfig: buildKubeConfig({ name: cluster, server: serverUrl }),
      requestTimeoutMs: 5_000,
      retry: TEST_RETRY,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
  const oldUrl = options.oldUrl ? await options.oldUrl(url) : url;
  return {
    server,
    newServer,
    clusters: { old: objectsFor('old', oldUrl), new: objectsFor('new', newUrl) },
    sleeps,
  };
}

/** A signal for one call of a route handle's. */
/** `config`'s routes bound to one fake API server at `url` playing both clusters; retries not waited. */
export function routesOnOneServer(config: Config, url: string) {
  const kubeConfig = buildKubeConfig({ name: 'east-1', server: url });
  return createRouteHandles({
    config,
    kube: { old: kubeConfig, new: kubeConfig },
    requestTimeoutMs: 5000,
    kubeRetry: TEST_RETRY,
    sleep: async () => {},
  });
}

/** shop/checkout's HTTPRoute rule `main`: the old Service and the new cluster's ServiceImport. */
export const checkoutGatewayRoute = (
  extra: Partial<ResolvedRouteOf<'gatewayApi'>> = {},
): ResolvedRouteOf<'gatewayApi'> => ({
  type: 'gatewayApi',
  cluster: 'old',
  namespace: 'shop',
  httpRoute: 'checkout',
  ruleName: 'main',
  oldBackend: { name: 'checkout', port: 8080 },
  newBackend: { name: 'checkout', kind: 'ServiceImport', port: 8080 },
  ...extra,
});

export const routeSignal = () => AbortSignal.timeout(20_000);

/** The weight a handle reads back. */
export const weightOf = async (route: RouteHandle, signal: AbortSignal) =>
  (await route.getSplit(signal)).weight;

export interface RouteFixture<Route> extends KubeRouterFixture {
  /** The handle for `route`: one per distinct route, as the wiring binds each configured route once. */
  bind(route: Route): RouteHandle;
  /** The route object as the old cluster's API server holds it now. */
  stored(): KubeObject | undefined;
  /** Another writer changes the stored route object just before the next PUT to `pathIncludes`. */
  otherWriterBeforeNextPut(pathIncludes: string, change: (current: KubeObject) => void): void;
  /** The new-cluster weight `route`'s handle reads back. */
  readWeight(route: Route): Promise<number>;
  /** Each write the old cluster's server saw, as [method, status]. */
  writeStatuses(): unknown[][];
}

/** What a write met: after otherWriterBeforeNextPut, a 409 and then the retried PUT's 200. */
export const CONFLICT_THEN_RETRIED = [
  ['PUT', 409],
  ['PUT', 200],
];

/** Each write the server saw, as [method, status]. */
export const writeStatuses = (server: FakeApiServer) => server.writes().map((w) => [w.method, w.status]);

/** startKubeRouterFixture with `object` (the router's route object) stored in the old cluster. */
export async function startRouteFixture<Route>(
  t: Test,
  options: {
    object: KubeObject;
    handleFor: (route: Route, clusters: ClusterObjects) => RouteHandle;
    oldUrl?: (url: string) => Promise<string>;
  },
): Promise<RouteFixture<Route>> {
  const fixture = await startKubeRouterFixture(t, options.oldUrl ? { oldUrl: options.oldUrl } : {});
  const { apiVersion, kind, metadata } = options.object;
  fixture.server.put(options.object);
  const handles = new Map<string, RouteHandle>();
  const bind = (route: Route): RouteHandle => {
    const key = JSON.stringify(route);
    const bound = handles.get(key) ?? options.handleFor(route, fixture.clusters);
    handles.set(key, bound);
    return bound;
  };
  const stored = () => fixture.server.get(apiVersion, kind, metadata.namespace ?? '', metadata.name);
  const otherWriterBeforeNextPut = (pathIncludes: string, change: (current: KubeObject) => void) =>
    bumpBeforeNextPut(fixture.server, pathIncludes, () => {
      const current = stored()!;
      change(current);
      fixture.server.put(current);
    });
  const readWeight = (route: Route) => weightOf(bind(route), routeSignal());
  return {
    ...fixture,
    bind,
    stored,
    otherWriterBeforeNextPut,
    readWeight,
    writeStatuses: () => writeStatuses(fixture.server),
  };
}

/** Everything of an object except what the API server maintains. */
export function withoutServerFields(object: KubeObject | undefined): unknown {
  if (!object) return undefined;
  const {
    resourceVersion: _rv,
    generation: _g,
    uid: _uid,
    creationTimestamp: _ct,
    ...metadata
  } = object.metadata;
  return { ...object, metadata };
}

/**
 * Arms a second writer on `server`: the next PUT to a path containing `pathIncludes` is
 * preceded by `bump()` (a real change through the server's store), so it meets a 409.
 */
export function bumpBeforeNextPut(server: FakeApiServer, pathIncludes: string, bump: () => void): void {
  let armed = true;
  server.injectFault({
    status: 500,
    count: 1,
    method: 'PUT',
    pathIncludes,
    // Never matches: used as a hook that runs as the PUT arrives, before the server handles it.
    match: () => {
      if (armed) {
        armed = false;
        bump();
      }
      return false;
    },
  });
}
