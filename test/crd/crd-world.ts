// What the CRD controller tests share: kubectl against a fake home cluster, the demo runtime
// on fast timings, and object builders. The controller, CR source, status store, cluster
// clients and fake API servers are real; only the router and the metrics are simulated.

import { join } from 'node:path';
import type { Test } from 'tap';
import { type DemoRuntime, startDemoRuntime } from '../../src/sandbox/demo-runtime.js';
import type { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { SandboxClusters } from '../../src/sandbox/sandbox-clusters.js';
import { clusterMigrationObject, type SandboxHome } from '../../src/sandbox/sandbox-home.js';
import { type Kubectl, kubectlFor as kubectlAt, needKubectl } from '../helpers/kubectl.js';
import { pollUntil } from '../helpers/poll.js';

export const { path: kubectlPath, skip } = needKubectl();

export const CRDS = join(import.meta.dirname, '../../charts/clustershift/files/crds');
export const API = 'clustershift.io/v1alpha1';

export const FAST = {
  interval: '50ms',
  holdTime: '400ms',
  analysisInterval: '200ms',
  drainDelay: '200ms',
  oldScaleDownDelay: '200ms',
  readyDelayMs: 150,
};

export const WORKLOADS = [
  { name: 'frontend', rps: 4000 },
  { name: 'search', rps: 3000 },
  { name: 'catalog', rps: 2500 },
];

/** kubectl against `url`, with a private HOME that `t`'s teardown removes (helpers/kubectl.ts). */
export const kubectlFor = (t: Pick<Test, 'teardown'>, url: string): Promise<Kubectl> =>
  kubectlAt(t, kubectlPath, url);

export const migration = clusterMigrationObject;

export const wlm = (namespace: string, name: string, migrationName: string) => ({
  apiVersion: API,
  kind: 'WorkloadMigration',
  metadata: { name, namespace },
  spec: {
    migration: migrationName,
    workload: { name },
    route: { type: 'haproxy', backend: `${namespace}-${name}`, oldServer: 'old', newServer: 'new' },
  },
});

export const replicas = (server: FakeApiServer, namespace: string, name: string) =>
  (server.get('apps/v1', 'Deployment', namespace, name)?.spec as { replicas?: number } | undefined)?.replicas;

export const wlmObject = (home: SandboxHome, namespace: string, name: string) =>
  home.server.get(API, 'WorkloadMigration', namespace, name) as
    | { metadata?: { finalizers?: string[]; deletionTimestamp?: string }; status?: unknown }
    | undefined;

export const waitFor = <T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
) => pollUntil(async () => check(), { what, timeoutMs, intervalMs: 50 });

/**
 * Waits (90 s at most) until `read` finds the object gone; resolves whether it was seen with a
 * deletionTimestamp meanwhile (a finalizer held it).
 */
export async function waitUntilGone(
  what: string,
  read: () => { metadata?: { deletionTimestamp?: string } } | undefined,
): Promise<boolean> {
  let sawDeleting = false;
  await waitFor(
    what,
    () => {
      const object = read();
      if (!object) return true;
      if (object.metadata?.deletionTimestamp) sawDeleting = true;
      return undefined;
    },
    90_000,
  );
  return sawDeleting;
}

export const stateOf = (demo: DemoRuntime, key: string) => {
  try {
    return demo.runtime.controller.get(key);
  } catch {
    return undefined;
  }
};

/** The demo (its own pair runs shop/frontend) and a second, empty cluster pair: eu-v1-30 -> eu-v1-32. */
export async function demoWithSecondPair(t: Test) {
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 3000 }],
    timings: FAST,
    crds: true,
  });
  t.teardown(() => demo.stop());
  const eu = await SandboxClusters.start({
    names: { old: 'eu-v1-30', new: 'eu-v1-32' },
    readyDelayMs: FAST.readyDelayMs,
    requestTimeoutMs: 5000,
  });
  t.teardown(() => eu.stop());
  return { demo, home: demo.home!, eu };
}

/**
 * The demo with one workload, shop/checkout, on a replica that follows (lists, watches, writes
 * nothing) until `lead()`.
 */
export async function followerDemo(t: Test) {
  let leading = false;
  const demo = await startDemoRuntime({
    workloads: [{ name: 'checkout', rps: 3000 }],
    timings: FAST,
    crds: true,
    isLeader: () => leading,
  });
  t.teardown(() => demo.stop());
  const lead = () => {
    leading = true;
  };
  return { demo, home: demo.home!, lead };
}
