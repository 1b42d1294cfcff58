// The real kubectl talks to the fake API server: discovery, get (server-side Table), scale,
// -o json, a CRD's printer columns and validation, `get -w`, delete held by a finalizer, and
// `kubectl apply -f` of everything `helm template` renders from the chart.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { scaleWrite } from '../fixtures/kube-objects.js';
import { migrationCrd, schemalessCrd } from '../fixtures/migration-crd.js';
import { chartTools, runTool } from '../helpers/helm.js';
import { kubectlOnFakeServer, needKubectl } from '../helpers/kubectl.js';

const { path: kubectlPath, skip } = needKubectl();

t.test('kubectl against the fake API server', { skip }, async (t) => {
  const { server, url, kubectl } = await kubectlOnFakeServer(t, kubectlPath);
  const { home } = kubectl;

  server.put({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'app', image: 'registry.example/web:1.4' }] },
      },
    },
  });
  server.put({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'settings', namespace: 'shop' },
    data: { a: '1' },
  });

  await t.test('get deploy prints the Deployment columns', async (t) => {
    const run = await kubectl('get', 'deploy', '-n', 'shop');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/);
    t.match(run.stdout, /^web\s+2\/2\s+2\s+2\s+/m);
  });

  await t.test('scale deploy/web --replicas=3 goes through the scale subresource', async (t) => {
    server.clearWrites();
    const run = await kubectl('scale', 'deploy/web', '--replicas=3', '-n', 'shop');
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, 'deployment.apps/web scaled');
    t.match(server.get('apps/v1', 'Deployment', 'shop', 'web'), {
      spec: { replicas: 3 },
      status: { readyReplicas: 3 },
    });
    t.match(server.writes(), [scaleWrite('web', 3)]);
    const after = await kubectl('get', 'deploy', 'web', '-n', 'shop');
    t.match(after.stdout, /^web\s+3\/3\s+3\s+3\s+/m);
  });

  await t.test('get configmap -o json', async (t) => {
    const run = await kubectl('get', 'configmap', '-o', 'json', '-n', 'shop');
    t.equal(run.code, 0, run.stderr);
    const list = JSON.parse(run.stdout) as { items: { metadata: { name: string }; data: unknown }[] };
    t.match(list.items, [
      { kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'shop' }, data: { a: '1' } },
    ]);
  });

  await t.test('a missing object is a NotFound error', async (t) => {
    const run = await kubectl('get', 'deploy', 'absent', '-n', 'shop');
    t.not(run.code, 0);
    t.match(run.stderr, 'Error from server (NotFound): deployments.apps "absent" not found');
  });

  /** A long-running kubectl (get -w, delete that waits); `until` resolves once stdout matches. */
  const background = (...args: string[]) => {
    const child = spawn(kubectlPath, kubectl.argsFor(args), {
      env: kubectl.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
    const listeners = new Set<() => void>();
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      for (const listener of listeners) listener();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
    t.teardown(() => {
      clearTimeout(deadline);
      child.kill('SIGKILL');
    });
    const until = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout)) {
            listeners.delete(check);
            resolve();
          }
        };
        listeners.add(check);
        check();
        void exited.then(() => {
          if (!pattern.test(stdout))
            reject(new Error(`kubectl ${args.join(' ')} exited before ${pattern}:\n${stdout}\n${stderr}`));
        });
      });
    return { until, exited, stop: () => child.kill('SIGTERM'), output: () => stdout };
  };

  const WLM_STATUS = '/apis/clustershift.io/v1alpha1/namespaces/shop/workloadmigrations';
  const patchStatus = async (t: Test, name: string, status: Record<string, unknown>) => {
    const response = await fetch(`${url}${WLM_STATUS}/${name}/status`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ status }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    t.equal(response.status, 200, `status of ${name}${response.status === 200 ? '' : `: ${text}`}`);
  };
  const manifest = async (name: string, objects: unknown[]) => {
    const path = join(home, name);
    await writeFile(path, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    return path;
  };
  const workloadMigration = (name: string, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'clustershift.io/v1alpha1',
    kind: 'WorkloadMigration',
    metadata: { name, namespace: 'shop' },
    spec: { migration: 'upgrade', workload: { name }, ...spec },
  });

  await t.test(
    'apply a CRD and its objects; get shows the printer columns, by short name and category',
    async (t) => {
      const crd = await kubectl('apply', '-f', await manifest('crd.json', [migrationCrd()]));
      t.equal(crd.code, 0, crd.stderr);
      t.match(
        crd.stdout,
        'customresourcedefinition.apiextensions.k8s.io/workloadmigrations.clustershift.io created',
      );
      const objects = await kubectl(
        'apply',
        '-f',
        await manifest('wlm.json', [workloadMigration('checkout'), workloadMigration('cart')]),
      );
      t.equal(objects.code, 0, objects.stderr);
      t.match(objects.stdout, 'workloadmigration.clustershift.io/checkout created');
      await patchStatus(t, 'checkout', {
        phase: 'Progressing',
        weight: 25,
        conditions: [{ type: 'Ready', status: 'True' }],
      });
      const get = await kubectl('get', 'wlm', '-A');
      t.equal(get.code, 0, get.stderr);
      t.match(get.stdout, /NAMESPACE\s+NAME\s+PHASE\s+WEIGHT\s+READY\s+AGE\n/);
      t.match(get.stdout, /^shop\s+checkout\s+Progressing\s+25\s+True\s+\d+s$/m);
      const wide = await kubectl('get', 'workloadmigrations', '-n', 'shop', '-o', 'wide');
      t.match(wide.stdout, /MIGRATION/, 'priority-1 columns show with -o wide');
      t.match(wide.stdout, /^cart\s+\S+\s+upgrade$/m, 'a missing value prints as <none>');
      const category = await kubectl('get', 'clustershift', '-n', 'shop');
      t.equal(category.code, 0, category.stderr);
      t.match(category.stdout, /^checkout\s+Progressing\s+25/m);
      const again = await kubectl('apply', '-f', join(home, 'wlm.json'));
      t.match(again.stdout, 'workloadmigration.clustershift.io/checkout unchanged');
    },
  );

  await t.test('an invalid object is refused and kubectl says which field and why', async (t) => {
    const bad = await kubectl(
      'apply',
      '-f',
      await manifest('bad.json', [
        workloadMigration('broken', { plan: { steps: [5, 1, 50] }, strategy: 'bigBang' }),
      ]),
    );
    t.not(bad.code, 0);
    t.match(bad.stderr, 'The WorkloadMigration "broken" is invalid');
    t.match(
      bad.stderr,
      'spec.plan: Invalid value: "object": steps must rise: each weight above the one before it',
    );
    t.match(
      bad.stderr,
      'spec.strategy: Unsupported value: "bigBang": supported values: "canary", "blueGreen"',
    );
    const unknown = await kubectl(
      'apply',
      '-f',
      await manifest('unknown.json', [workloadMigration('odd', { colour: 'blue' })]),
    );
    t.not(unknown.code, 0);
    t.match(unknown.stderr, 'strict decoding error: unknown field "spec.colour"');
  });

  await t.test('get -w prints each change as it happens', async (t) => {
    const watch = background('get', 'wlm', 'checkout', '-n', 'shop', '-w');
    await watch.until(/checkout\s+Progressing\s+25\s/);
    await patchStatus(t, 'checkout', { weight: 50 });
    await watch.until(/checkout\s+Progressing\s+50\s/);
    await patchStatus(t, 'checkout', { phase: 'Promoting', weight: 100 });
    await watch.until(/checkout\s+Promoting\s+100\s/);
    t.equal(watch.output().match(/^NAME/gm)?.length, 1, 'the header is printed once');
    watch.stop();
    await watch.exited;
  });

  await t.test(
    'delete waits while a finalizer holds the object, and returns once it is removed',
    async (t) => {
      const response = await fetch(`${url}${WLM_STATUS}/checkout`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ metadata: { finalizers: ['clustershift.io/return-traffic'] } }),
        signal: AbortSignal.timeout(10_000),
      });
      t.equal(response.status, 200);
      const deletion = background('delete', 'wlm', 'checkout', '-n', 'shop');
      await deletion.until(/workloadmigration.clustershift.io "checkout" deleted/);
      const held = await kubectl(
        'get',
        'wlm',
        'checkout',
        '-n',
        'shop',
        '-o',
        'jsonpath={.metadata.deletionTimestamp}',
      );
      t.match(held.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'held, with a deletionTimestamp');
      const released = await fetch(`${url}${WLM_STATUS}/checkout`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ metadata: { finalizers: null } }),
        signal: AbortSignal.timeout(10_000),
      });
      t.equal(released.status, 200);
      t.equal(await deletion.exited, 0, 'kubectl delete returns once the object is gone');
      const gone = await kubectl('get', 'wlm', 'checkout', '-n', 'shop');
      t.match(
        gone.stderr,
        'Error from server (NotFound): workloadmigrations.clustershift.io "checkout" not found',
      );
    },
  );

  await t.test(
    'kubectl apply -f of what helm template renders from the chart',
    { skip: helmSkip() },
    async (t) => {
      const { helm } = chartTools();
      const chart = join(import.meta.dirname, '../../charts/clustershift');
      // A cluster running the Prometheus operator has the ServiceMonitor CRD the chart may render.
      const operator = await kubectl(
        'apply',
        '-f',
        await manifest('servicemonitor-crd.json', [serviceMonitorCrd()]),
      );
      t.equal(operator.code, 0, operator.stderr);
      const kinds = new Set<string>();
      for (const values of ['istio-values.yaml', 'gateway-api-values.yaml', 'alb-values.yaml']) {
        const release = values.replace('-values.yaml', '');
        const rendered = await runTool(helm, [
          'template',
          release,
          chart,
          '-n',
          release,
          '-f',
          join(chart, 'ci', values),
        ]);
        t.equal(rendered.code, 0, rendered.stderr);
        for (const match of rendered.stdout.matchAll(/^kind: (\w+)$/gm)) kinds.add(match[1]!);
        const path = join(home, `${release}.yaml`);
        await writeFile(path, rendered.stdout);
        const applied = await kubectl('apply', '-n', release, '-f', path);
        t.equal(applied.code, 0, `${values}: ${applied.stderr}`);
        // The chart's clustershift.io CRDs are cluster-scoped: one copy per cluster, whichever
        // release applied it first (and the test above applied a stand-in WorkloadMigration CRD).
        const perRelease = applied.stdout.replace(
          /^customresourcedefinition\.apiextensions\.k8s\.io\/\S+\.clustershift\.io (unchanged|configured)\n/gm,
          '',
        );
        t.notMatch(perRelease, /unchanged|configured/, 'everything is created the first time');
        const reapplied = await kubectl('apply', '-n', release, '-f', path);
        t.equal(reapplied.code, 0, reapplied.stderr);
        t.match(reapplied.stdout, /deployment.apps\/\S+ unchanged/, 'applying again changes nothing');
        // A changed chart is applied as a strategic merge patch: the Deployment's image changes in place.
        const changed = rendered.stdout.replace(/image: "([^":]+):[^"]+"/, 'image: "$1:9.9.9"');
        await writeFile(path, changed);
        const updated = await kubectl('apply', '-n', release, '-f', path);
        t.equal(updated.code, 0, updated.stderr);
        t.match(updated.stdout, /deployment.apps\/\S+ configured/);
        const images = await kubectl(
          'get',
          'deploy',
          '-n',
          release,
          '-o',
          'jsonpath={.items[*].spec.template.spec.containers[*].image}',
        );
        t.match(images.stdout, /:9\.9\.9$/);
      }
      t.ok(
        [
          'ServiceAccount',
          'ConfigMap',
          'Service',
          'Deployment',
          'Role',
          'RoleBinding',
          'ClusterRole',
          'ClusterRoleBinding',
          'CustomResourceDefinition',
        ].every((kind) => kinds.has(kind)),
        [...kinds].join(', '),
      );
      const listed = await kubectl('get', 'sa,cm,svc,deploy,role,rolebinding,pdb,netpol', '-n', 'istio');
      t.equal(listed.code, 0, listed.stderr);
    },
  );

  await t.test('what a real server refuses, kubectl is refused here too', async (t) => {
    const unknownKind = await kubectl(
      'apply',
      '-f',
      await manifest('gadget.json', [
        { apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g', namespace: 'shop' } },
      ]),
    );
    t.not(unknownKind.code, 0);
    t.match(unknownKind.stderr, /no matches for kind "Gadget" in version "example.com\/v1"/);
    const badName = await kubectl(
      'apply',
      '-f',
      await manifest('badname.json', [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'Bad_Name', namespace: 'shop' } },
      ]),
    );
    t.not(badName.code, 0);
    t.match(badName.stderr, 'ServiceAccount "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"');
    const badService = await kubectl(
      'apply',
      '-f',
      await manifest('badsvc.json', [
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: '1web', namespace: 'shop' },
          spec: { ports: [{ port: 80 }] },
        },
      ]),
    );
    t.match(badService.stderr, 'a DNS-1035 label must consist of lower case alphanumeric characters');
  });
});

function serviceMonitorCrd() {
  return schemalessCrd({
    group: 'monitoring.coreos.com',
    version: 'v1',
    kind: 'ServiceMonitor',
    plural: 'servicemonitors',
    singular: 'servicemonitor',
  });
}

/** helm from the chart tests' extraction (test/helpers/helm.ts); kubectl must be there too. */
function helmSkip(): string | false {
  return skip || chartTools().skip;
}
