// The Kubernetes-native way, the hard way: two replicas of the production process as the image
// runs it (dist/main.js from build/build.mjs, client-node bundled) with crds.enabled, three fake API servers (home, old, new), the chart's CRDs applied with real
// `kubectl apply -f`, and the ClusterMigration, its kubeconfig Secrets and a WorkloadMigration
// applied with kubectl too. The rollout starts, `kubectl get wlm -A` shows it, only the leader
// writes; the leader is SIGKILLed at a step and started again: whoever leads next resumes from
// the WorkloadMigration's status at the same step and weight without writing the route; then
// `kubectl delete wlm` returns the traffic to the old cluster before the object goes.
// Who wrote what is read from the servers' write logs: every kubeconfig a replica uses (its own
// for the home cluster, the Secrets' for old and new, through an exec credential plugin reading
// the replica's environment) sends the replica's own bearer token.
// One shared stack and one rollout for the whole file: this is the only such test of the CRDs.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FakeApiServer, type WriteRecord } from '../../src/sandbox/fake-apiserver.js';
import {
  CLUSTER_NAMES,
  ControllerProcess,
  HOST,
  isLeaseWrite,
  isScaleWrite,
  isVirtualServiceWrite,
  kubeconfig,
  LEASE,
  NAMESPACE,
  NEW_REPLICAS_AT_START,
  newWeightOf,
  STEPS,
  scrapedTraffic,
  seedClusters,
  startGate,
  WORKLOAD,
} from '../fixtures/stack.js';
import { locateBinary, needBinary } from '../helpers/binaries.js';
import { buildController } from '../helpers/build.js';
import { PollAbort, pollUntil } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';

// Three child processes, one after the other, each loading the whole controller: on a loaded
// machine that alone can pass the suite's two-minute default.
t.setTimeout(300_000);

const prometheus = needBinary('prometheus');
const kubectlPath = locateBinary('kubectl');
if (!kubectlPath && process.env.CI === 'true')
  throw new Error('kubectl is not installed (apt-get install kubectl); under CI=true that fails the suite');
const skip = prometheus.skip || (kubectlPath ? false : 'kubectl is not installed (apt-get install kubectl)');

const CRDS = join(import.meta.dirname, '../../charts/clustershift/files/crds');
const API = 'clustershift.io/v1alpha1';
const CONTROLLER_NAMESPACE = 'clustershift';
/** The step the leader is killed at (25%); the gate holds the raise to the next one. */
const KILL_STEP = 1;
const WLM_PATH = `/apis/clustershift.io/v1alpha1/namespaces/${NAMESPACE}/workloadmigrations/${WORKLOAD}`;
/** The replica's token, as its environment gives it to the Secrets' exec credential plugin. */
const TOKEN_ENV = 'CLUSTERSHIFT_TEST_TOKEN';

type Cluster = 'home' | 'old' | 'new';
type Write = WriteRecord & { cluster: Cluster };

interface WlmStatus {
  phase?: string;
  weight?: number;
  step?: number;
}

/** A kubeconfig whose user gets its token from an exec plugin: the replica's $CLUSTERSHIFT_TEST_TOKEN. */
function execKubeconfig(cluster: string, server: string): string {
  const credential =
    'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\' ' +
    `"$${TOKEN_ENV}"`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [
      {
        name: 'replica',
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: 'sh',
            args: ['-c', credential],
            interactiveMode: 'Never',
          },
        },
      },
    ],
    contexts: [{ name: cluster, context: { cluster, user: 'replica' } }],
    'current-context': cluster,
  });
}

t.test(
  'WorkloadMigrations in two controller processes: kubectl starts, SIGKILL resumes from status, delete returns traffic',
  { skip },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'clustershift-crd-process-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const servers = { home: new FakeApiServer(), old: new FakeApiServer(), new: new FakeApiServer() };
    const urls = {} as Record<Cluster, string>;
    for (const cluster of ['home', 'old', 'new'] as const) {
      urls[cluster] = (await servers[cluster].start()).url;
      t.teardown(() => servers[cluster].stop());
    }
    seedClusters(servers.old, servers.new);
    const entry = await buildController(t);

    const { prometheus: running } = await scrapedTraffic(t, servers.old, prometheus.path);
    // The gate lets the rollout raise to the kill step only: it parks there with the next raise
    // asked for, so "killed at step k" does not depend on how fast anything runs.
    const gate = await startGate(t, STEPS[KILL_STEP]);

    const kubectl = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          kubectlPath!,
          ['--server', urls.home, '--cache-dir', join(dir, 'cache'), '--request-timeout=20s', ...args],
          {
            env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: join(dir, 'none') },
            timeout: 60_000,
          },
          (error, stdout, stderr) =>
            resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
        );
      });
    const crds = await kubectl('apply', '-f', CRDS);
    t.equal(crds.code, 0, `the chart's CRDs apply: ${crds.stderr}`);
    await running.waitForTargetsUp();

    const started: ControllerProcess[] = [];
    const startReplica = async (identity: string, token: string) => {
      const port = await freePort();
      // Installed in the home cluster: its own credentials there (the chart's in-cluster
      // clusters.old) hold the Lease and read the custom resources; the file lists no workloads.
      const homeKubeconfig = join(dir, `kubeconfig-home-${token}.yaml`);
      await writeFile(homeKubeconfig, kubeconfig({ cluster: 'home', server: urls.home, user: token, token }));
      const configPath = join(dir, `config-${token}.yaml`);
      const config = {
        clusters: {
          old: { name: 'home', kubeconfig: homeKubeconfig },
          new: { name: 'home-unused', kubeconfig: homeKubeconfig },
        },
        controller: {
          namespace: CONTROLLER_NAMESPACE,
          interval: '250ms',
          // A bound, not a target: a process just started on a loaded machine is slow to answer.
          requestTimeout: '10s',
          leaderElection: {
            enabled: true,
            leaseDuration: `${LEASE.durationMs}ms`,
            renewDeadline: `${LEASE.renewDeadlineMs}ms`,
            retryPeriod: `${LEASE.retryPeriodMs}ms`,
          },
        },
        crds: { enabled: true },
        api: { host: '127.0.0.1', port, auth: { enabled: false } },
        metrics: { type: 'prometheus', address: running.url, template: 'istio', minWindow: '3s' },
        gates: { webhook: { url: gate.url, timeout: '1s' } },
        defaults: {
          plan: { steps: [...STEPS], holdTime: '2s', minPassingChecks: 1 },
          analysis: { interval: '1s', latencyWindow: '3s', minRequests: 20 },
          scaling: { oldScaleDownDelay: '1s', drainDelay: '1s', readyTimeout: '1m' },
        },
        workloads: [],
      };
      await writeFile(configPath, JSON.stringify(config, null, 2));
      const replica = new ControllerProcess({
        identity,
        token,
        url: `http://127.0.0.1:${port}`,
        configPath,
        env: { [TOKEN_ENV]: token },
        entry,
      });
      t.teardown(() => replica.stop());
      started.push(replica);
      // Generous: on a loaded machine loading the process alone can take half a minute.
      await replica.waitForApi(120_000);
      return replica;
    };
    const leaderOf = (replicas: ControllerProcess[], what: string) =>
      pollUntil(
        async () => {
          const answers = await Promise.all(
            replicas.filter((r) => r.running).map(async (r) => ({ r, readyz: await r.readyz() })),
          );
          const leaders = answers.filter((a) => a.readyz.leader.isLeader);
          if (leaders.length !== 1) return undefined;
          const holder = leaders[0]!.r.identity;
          return answers.every((a) => a.readyz.leader.holder === holder) ? leaders[0]!.r : undefined;
        },
        { what, timeoutMs: 60_000 },
      );

    const writes = (): Write[] =>
      (['home', 'old', 'new'] as const)
        .flatMap((cluster) => servers[cluster].writes().map((write) => ({ ...write, cluster })))
        .sort((a, b) => a.at - b.at);
    const status = () =>
      (servers.home.get(API, 'WorkloadMigration', NAMESPACE, WORKLOAD) as { status?: WlmStatus } | undefined)
        ?.status;
    const routeWeight = () =>
      newWeightOf(servers.old.get('networking.istio.io/v1', 'VirtualService', NAMESPACE, WORKLOAD));
    const newReplicas = () =>
      (
        servers.new.get('apps/v1', 'Deployment', NAMESPACE, WORKLOAD)?.spec as
          | { replicas?: number }
          | undefined
      )?.replicas;
    const routeWrites = (list: Write[]) =>
      list.filter((w) => w.cluster === 'old' && isVirtualServiceWrite(w) && w.status === 200);

    /** pollUntil, with the object's status and the replicas' recent output in the failure. */
    const waitFor = async <T>(what: string, attempt: () => Promise<T | undefined>, timeoutMs: number) => {
      try {
        return await pollUntil(attempt, { what, timeoutMs, intervalMs: 100 });
      } catch (error) {
        const object = servers.home.get(API, 'WorkloadMigration', NAMESPACE, WORKLOAD);
        const outputs = started.map((r) => `--- ${r.identity} (${r.token}) ---\n${r.output.slice(-4000)}`);
        throw new Error(
          `${(error as Error).message}\n--- WorkloadMigration ---\n${JSON.stringify(object?.status ?? object)}\n${outputs.join('\n')}`,
        );
      }
    };

    const [a, b] = await Promise.all([
      startReplica('clustershift-a', 'a-1'),
      startReplica('clustershift-b', 'b-1'),
    ]);
    const leader = await leaderOf([a, b], 'one leader that both replicas name');
    const follower = leader === a ? b : a;

    // What a platform team applies: the migration, its clusters' kubeconfigs, one team's workload.
    const secret = (name: string, cluster: string, server: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: CONTROLLER_NAMESPACE },
      stringData: { kubeconfig: execKubeconfig(cluster, server) },
    });
    const objects = join(dir, 'migration.json');
    await writeFile(
      objects,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          secret('old-kubeconfig', CLUSTER_NAMES.old, urls.old),
          secret('new-kubeconfig', CLUSTER_NAMES.new, urls.new),
          {
            apiVersion: API,
            kind: 'ClusterMigration',
            metadata: { name: 'upgrade' },
            spec: {
              clusters: {
                old: { name: CLUSTER_NAMES.old, kubeconfigSecret: { name: 'old-kubeconfig' } },
                new: { name: CLUSTER_NAMES.new, kubeconfigSecret: { name: 'new-kubeconfig' } },
              },
            },
          },
          {
            apiVersion: API,
            kind: 'WorkloadMigration',
            metadata: { name: WORKLOAD, namespace: NAMESPACE },
            spec: {
              migration: 'upgrade',
              workload: { name: WORKLOAD },
              route: {
                type: 'istio',
                virtualService: WORKLOAD,
                routeName: 'primary',
                oldDestination: { host: HOST, subset: CLUSTER_NAMES.old },
                newDestination: { host: HOST, subset: CLUSTER_NAMES.new },
              },
            },
          },
        ],
      }),
    );
    const applied = await kubectl('apply', '-f', objects);
    t.equal(applied.code, 0, applied.stderr);
    t.match(applied.stdout, `workloadmigration.clustershift.io/${WORKLOAD} created`);

    await waitFor(
      `the rollout to reach step ${KILL_STEP + 1} and ask the gate for the next`,
      async () => {
        if (!leader.running) throw new PollAbort(`the leader exited; its output:\n${leader.output}`);
        const now = status();
        return now?.step === KILL_STEP + 1 && gate.asked.includes(STEPS[KILL_STEP + 1]!) ? now : undefined;
      },
      90_000,
    );
    const listed = await kubectl('get', 'wlm', '-A');
    t.equal(listed.code, 0, listed.stderr);
    t.match(listed.stdout, /^NAMESPACE\s+NAME\s+PHASE\s+WEIGHT\s+STEP\s+VERDICT\s+AGE\n/);
    t.match(
      listed.stdout,
      new RegExp(
        `^${NAMESPACE}\\s+${WORKLOAD}\\s+Progressing\\s+${STEPS[KILL_STEP]}\\s+${KILL_STEP + 1}\\s`,
        'm',
      ),
      'kubectl get wlm -A shows the phase, weight and step',
    );
    t.match(
      await leader.rollout(),
      { phase: 'Progressing', weight: STEPS[KILL_STEP] },
      'the leader serves it',
    );
    // A follower re-reads the status now and then: it serves reads that catch up.
    const followed = await waitFor(
      'the follower to serve the same step',
      async () => {
        const view = await follower.rollout();
        return view.weight === STEPS[KILL_STEP] ? view : undefined;
      },
      30_000,
    );
    t.match(followed, { phase: 'Progressing', step: { index: KILL_STEP + 1 } }, 'so does the follower');
    // kubectl sends no token over plain http: the operator's writes (apply, delete) carry none.
    const byReplicas = (list: Write[]) => list.filter((w) => w.user !== undefined && !isLeaseWrite(w));

    const beforeKill = writes();
    t.same(
      [...new Set(byReplicas(beforeKill).map((w) => w.user))],
      [leader.token],
      'only the leader wrote status, conditions, finalizers, events, the route and scales',
    );
    t.same(
      beforeKill.filter((w) => isLeaseWrite(w) && w.user !== leader.token && w.status !== 409),
      [],
      'every Lease write of the follower was refused',
    );
    t.same(
      (['home', 'old', 'new'] as const).filter((c) => beforeKill.some((w) => w.cluster === c)),
      ['home', 'old', 'new'],
      'the leader wrote to all three clusters (the route in old, a scale in new, status at home)',
    );

    await leader.kill();
    const killedAt = Date.now();
    const atKill = {
      status: status()!,
      routeWeight: routeWeight(),
      newReplicas: newReplicas() ?? 0,
      writes: writes().length,
      askedGate: gate.asked.length,
    };
    t.equal(atKill.status.phase, 'Progressing');
    t.equal(atKill.status.step, KILL_STEP + 1, 'the status holds the kill step');
    t.equal(atKill.status.weight, STEPS[KILL_STEP], 'and its weight');
    t.equal(atKill.routeWeight, STEPS[KILL_STEP], 'the route carries the kill step weight');
    t.ok(atKill.newReplicas > NEW_REPLICAS_AT_START, `the new cluster was scaled up (${atKill.newReplicas})`);

    // The killed pod comes back under its own name, with a new token; it and the survivor race
    // for the Lease. Whichever wins must carry on from the status, not from the start.
    const restarted = await startReplica(leader.identity, `${leader.token.split('-')[0]}-2`);
    t.match(
      await restarted.rollout(),
      { phase: 'Progressing', weight: STEPS[KILL_STEP], step: { index: KILL_STEP + 1 } },
      'the restarted process loads the step and weight it was killed at from the status',
    );
    const next = await leaderOf([restarted, follower], 'a leader after the SIGKILL');
    await pollUntil(
      async () => {
        const { checks } = await next.get<{ checks: Array<{ at: string }> }>(
          `/api/v1/rollouts/${NAMESPACE}/${WORKLOAD}`,
        );
        const checked = checks.some((check) => Date.parse(check.at) > killedAt);
        return checked && gate.asked.length >= atKill.askedGate + 3 ? true : undefined;
      },
      { what: 'the new leader to run a check and ask the gate again', timeoutMs: 45_000 },
    );
    const afterKill = writes().slice(atKill.writes);
    t.same(routeWrites(afterKill), [], 'the restart wrote no route weight while the next step is held');
    t.equal(routeWeight(), STEPS[KILL_STEP], 'the route weight did not change across the restart');
    t.match(status(), { phase: 'Progressing', step: KILL_STEP + 1, weight: STEPS[KILL_STEP] });
    t.ok(
      afterKill
        .filter(isScaleWrite)
        .every((w) => (w.body as { spec: { replicas: number } }).spec.replicas >= atKill.newReplicas),
      'the new cluster was not scaled down by the restart',
    );

    // Deleting the object mid-rollout: the finalizer holds it until traffic is back on old.
    const deleted = await kubectl('delete', 'wlm', WORKLOAD, '-n', NAMESPACE, '--wait=false');
    t.equal(deleted.code, 0, deleted.stderr);
    let sawDeleting = false;
    await pollUntil(
      async () => {
        const object = servers.home.get(API, 'WorkloadMigration', NAMESPACE, WORKLOAD) as
          | { metadata?: { deletionTimestamp?: string } }
          | undefined;
        if (!object) return true;
        if (object.metadata?.deletionTimestamp) sawDeleting = true;
        return undefined;
      },
      { what: 'the WorkloadMigration to be released', timeoutMs: 60_000, intervalMs: 50 },
    );
    t.ok(sawDeleting, 'the finalizer held the object while its traffic came back');
    t.equal(routeWeight(), 0, 'all traffic is back on the old cluster');
    t.equal(newReplicas(), NEW_REPLICAS_AT_START, 'and the new cluster is scaled back');
    const all = writes();
    const sinceKill = all.slice(atKill.writes);
    const routeBack = routeWrites(sinceKill).map((w) => newWeightOf(w.body));
    t.equal(routeBack.at(-1), 0, `the route was written back to 0 (${routeBack.join(', ')})`);
    t.ok(
      routeBack.every(
        (weight, i) => weight !== undefined && weight <= (routeBack[i - 1] ?? STEPS[KILL_STEP]),
      ),
      'and never raised on the way back',
    );
    const lastRouteWrite = routeWrites(sinceKill).at(-1)!;
    const released = sinceKill.filter((w) => w.cluster === 'home' && w.path === WLM_PATH).at(-1);
    t.ok(
      released && released.at >= lastRouteWrite.at,
      'the finalizer came off only after the route was back',
    );
    t.same(
      [...new Set(byReplicas(sinceKill).map((w) => w.user))],
      [next.token],
      `after the SIGKILL only the new leader (${next.identity}) wrote`,
    );
  },
);
