// Parity: each kind of pod template difference with both values, the allowance list and the
// modes, the related objects, swapped versions; then preflight refusing on each (pure, no I/O).

import t from 'tap';
import {
  DEFAULT_PARITY_ALLOW,
  missingRelatedObjects,
  type ParityPolicy,
  type PodTemplate,
  parityDifferences,
  quantityValue,
  swappedVersions,
} from '../../src/rollout/parity.js';
import type { ClusterFacts } from '../../src/rollout/types.js';
import { Harness } from '../fixtures/harness.js';
import { testPolicy } from '../fixtures/rollout.js';

const STRICT: ParityPolicy = { mode: 'strict', allow: DEFAULT_PARITY_ALLOW };

/** A checkout pod template; `change` edits a deep copy. */
function template(change: (template: Required<PodTemplate>) => void = () => {}): PodTemplate {
  const base = {
    metadata: { labels: { app: 'checkout' }, annotations: { 'prometheus.io/scrape': 'true' } },
    spec: {
      serviceAccountName: 'checkout',
      securityContext: { runAsNonRoot: true },
      nodeSelector: { pool: 'blue' },
      volumes: [
        { name: 'config', configMap: { name: 'checkout-config' } },
        { name: 'cache', emptyDir: {} },
      ],
      initContainers: [{ name: 'migrate', image: 'shop/migrate:3' }],
      containers: [
        {
          name: 'app',
          image: 'shop/checkout:1.0',
          command: ['/checkout'],
          args: ['--port=8080'],
          env: [
            { name: 'LOG_LEVEL', value: 'info' },
            { name: 'DB_PASSWORD', value: 'hunter2' },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          ],
          envFrom: [{ configMapRef: { name: 'checkout-env' } }],
          resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '512Mi' } },
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: '/live', port: 8080 } },
          securityContext: { readOnlyRootFilesystem: true },
        },
      ],
    },
  };
  const copy = structuredClone(base) as unknown as Required<PodTemplate>;
  change(copy);
  return copy;
}

type Spec = NonNullable<PodTemplate['spec']>;
const app = (tpl: Required<PodTemplate>) =>
  (tpl.spec as Spec).containers![0]! as unknown as Record<string, unknown>;

t.test('the same template has no differences; key order, {} and [] do not count', async (t) => {
  t.same(parityDifferences(template(), template(), STRICT), []);
  const reordered = template((tpl) => {
    const spec = tpl.spec as Spec & Record<string, unknown>;
    spec.tolerations = [];
    app(tpl).readinessProbe = { periodSeconds: 5, httpGet: { port: 8080, path: '/ready' } };
    app(tpl).resources = { requests: { cpu: '0.5', memory: '256Mi' }, limits: { memory: '512Mi' } };
  });
  t.same(parityDifferences(template(), reordered, STRICT), [], '0.5 cpu is 500m');
});

t.test('each kind of difference, with its field and both values', async (t) => {
  const cases: Array<
    [string, (tpl: Required<PodTemplate>) => void, { field: string; old: string; new: string }]
  > = [
    [
      'image',
      (tpl) => {
        app(tpl).image = 'shop/checkout:1.1';
      },
      { field: 'containers[app].image', old: 'shop/checkout:1.0', new: 'shop/checkout:1.1' },
    ],
    [
      'init container image',
      (tpl) => {
        (tpl.spec as Spec).initContainers![0]!.image = 'shop/migrate:4';
      },
      { field: 'initContainers[migrate].image', old: 'shop/migrate:3', new: 'shop/migrate:4' },
    ],
    [
      'env value',
      (tpl) => {
        (app(tpl).env as Array<{ value?: string }>)[0]!.value = 'debug';
      },
      { field: 'containers[app].env[LOG_LEVEL]', old: 'info', new: 'debug' },
    ],
    [
      'env only in old',
      (tpl) => {
        app(tpl).env = (app(tpl).env as Array<{ name: string }>).filter((e) => e.name !== 'LOG_LEVEL');
      },
      { field: 'containers[app].env[LOG_LEVEL]', old: 'info', new: '(none)' },
    ],
    [
      'env valueFrom',
      (tpl) => {
        (app(tpl).env as Array<{ valueFrom?: unknown }>)[2]!.valueFrom = {
          fieldRef: { fieldPath: 'status.hostIP' },
        };
      },
      {
        field: 'containers[app].env[POD_IP]',
        old: '{"valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}',
        new: '{"valueFrom":{"fieldRef":{"fieldPath":"status.hostIP"}}}',
      },
    ],
    [
      'envFrom',
      (tpl) => {
        app(tpl).envFrom = [{ secretRef: { name: 'checkout-env' } }];
      },
      {
        field: 'containers[app].envFrom',
        old: '[{"configMapRef":{"name":"checkout-env"}}]',
        new: '[{"secretRef":{"name":"checkout-env"}}]',
      },
    ],
    [
      'command',
      (tpl) => {
        app(tpl).command = ['/checkout', '--debug'];
      },
      { field: 'containers[app].command', old: '["/checkout"]', new: '["/checkout","--debug"]' },
    ],
    [
      'args',
      (tpl) => void delete app(tpl).args,
      { field: 'containers[app].args', old: '["--port=8080"]', new: '(none)' },
    ],
    [
      'resources',
      (tpl) => {
        (app(tpl).resources as { limits: Record<string, string> }).limits.memory = '1Gi';
      },
      { field: 'containers[app].resources.limits.memory', old: '512Mi', new: '1Gi' },
    ],
    [
      'a probe',
      (tpl) => {
        app(tpl).readinessProbe = { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 5 };
      },
      {
        field: 'containers[app].readinessProbe',
        old: '{"httpGet":{"path":"/ready","port":8080},"periodSeconds":5}',
        new: '{"httpGet":{"path":"/healthz","port":8080},"periodSeconds":5}',
      },
    ],
    [
      'startup probe added',
      (tpl) => {
        app(tpl).startupProbe = { tcpSocket: { port: 8080 } };
      },
      { field: 'containers[app].startupProbe', old: '(none)', new: '{"tcpSocket":{"port":8080}}' },
    ],
    [
      "a volume's source",
      (tpl) => {
        (tpl.spec as Spec).volumes = [
          { name: 'config', secret: { secretName: 'checkout-config' } } as { name: string },
          { name: 'cache', emptyDir: {} } as { name: string },
        ];
      },
      {
        field: 'volumes[config]',
        old: '{"configMap":{"name":"checkout-config"}}',
        new: '{"secret":{"secretName":"checkout-config"}}',
      },
    ],
    [
      'serviceAccountName',
      (tpl) => void delete (tpl.spec as Spec).serviceAccountName,
      { field: 'serviceAccountName', old: 'checkout', new: 'default' },
    ],
    [
      'pod securityContext',
      (tpl) => {
        (tpl.spec as Spec).securityContext = { runAsNonRoot: true, runAsUser: 0 };
      },
      { field: 'securityContext', old: '{"runAsNonRoot":true}', new: '{"runAsNonRoot":true,"runAsUser":0}' },
    ],
    [
      'container securityContext',
      (tpl) => {
        app(tpl).securityContext = {};
      },
      { field: 'containers[app].securityContext', old: '{"readOnlyRootFilesystem":true}', new: '(none)' },
    ],
    [
      'a template annotation',
      (tpl) => {
        tpl.metadata.annotations!['prometheus.io/scrape'] = 'false';
      },
      { field: 'metadata.annotations[prometheus.io/scrape]', old: 'true', new: 'false' },
    ],
    [
      'a template label',
      (tpl) => {
        tpl.metadata.labels!.track = 'canary';
      },
      { field: 'metadata.labels[track]', old: '(none)', new: 'canary' },
    ],
    [
      'a container only in new',
      (tpl) => {
        (tpl.spec as { containers: unknown[] }).containers.push({ name: 'proxy', image: 'envoy:1.31' });
      },
      { field: 'containers[proxy]', old: '(none)', new: 'image envoy:1.31' },
    ],
  ];
  for (const [name, change, expected] of cases)
    t.same(parityDifferences(template(), template(change), STRICT), [expected], name);
});

t.test('an env value under a credential-like name is a digest, never the text', async (t) => {
  const [difference, ...rest] = parityDifferences(
    template(),
    template((tpl) => {
      (app(tpl).env as Array<{ value?: string }>)[1]!.value = 'correct-horse';
    }),
    STRICT,
  );
  t.same(rest, []);
  t.equal(difference?.field, 'containers[app].env[DB_PASSWORD]');
  t.match(difference?.old, /^\(hidden, sha256 [0-9a-f]{12}\)$/);
  t.match(difference?.new, /^\(hidden, sha256 [0-9a-f]{12}\)$/);
  t.not(difference?.old, difference?.new, 'still tells the two apart');
  t.notMatch(JSON.stringify(difference), /hunter2|correct-horse/);
});

t.test('the allowance list: defaults, replaced, prefixes and * within a name', async (t) => {
  const scheduled = template((tpl) => {
    const spec = tpl.spec as Spec & Record<string, unknown>;
    spec.nodeSelector = { pool: 'green' };
    spec.tolerations = [{ key: 'dedicated', operator: 'Exists' }];
    spec.affinity = { nodeAffinity: {}, podAntiAffinity: { preferred: true } };
    spec.priorityClassName = 'high';
    tpl.metadata.annotations!['kubectl.kubernetes.io/restartedAt'] = '2026-12-01T08:00:00Z';
    tpl.metadata.annotations!['cluster-autoscaler.kubernetes.io/safe-to-evict'] = 'true';
  });
  t.same(
    parityDifferences(template(), scheduled, STRICT),
    [],
    'scheduling and cluster annotations may differ',
  );
  t.same(
    parityDifferences(template(), scheduled, { mode: 'strict', allow: ['metadata.annotations'] }).map(
      (d) => d.field,
    ),
    ['nodeSelector', 'tolerations', 'affinity', 'priorityClassName'],
    'a list of its own replaces the defaults',
  );
  const resized = template((tpl) => {
    (app(tpl).resources as { limits: Record<string, string> }).limits.memory = '1Gi';
    (app(tpl).env as Array<{ value?: string }>)[0]!.value = 'debug';
  });
  t.same(
    parityDifferences(template(), resized, { mode: 'strict', allow: ['containers[*].resources'] }).map(
      (d) => d.field,
    ),
    ['containers[app].env[LOG_LEVEL]'],
    'a prefix with * allows every container',
  );
  t.same(
    parityDifferences(template(), resized, { mode: 'strict', allow: ['containers[app].env[LOG'] }).map(
      (d) => d.field,
    ),
    ['containers[app].env[LOG_LEVEL]', 'containers[app].resources.limits.memory'],
    'a pattern matches whole names only',
  );
});

t.test('modes: images compares images only; off compares nothing', async (t) => {
  const changed = template((tpl) => {
    app(tpl).image = 'shop/checkout:1.1';
    app(tpl).args = ['--port=9090'];
  });
  t.same(
    parityDifferences(template(), changed, { mode: 'images', allow: [] }).map((d) => d.field),
    ['containers[app].image'],
  );
  t.same(parityDifferences(template(), changed, { mode: 'off', allow: [] }), []);
});

t.test('quantities', async (t) => {
  t.equal(quantityValue('500m'), 0.5);
  t.equal(quantityValue('1Gi'), 1024 ** 3);
  t.equal(quantityValue('1G'), 1e9);
  t.equal(quantityValue(2), 2);
  t.equal(quantityValue('lots'), undefined);
});

t.test('related objects and versions', async (t) => {
  t.same(
    missingRelatedObjects(
      {
        services: ['checkout', 'checkout-admin'],
        podDisruptionBudgets: ['checkout'],
        horizontalPodAutoscaler: 'checkout',
      },
      { services: ['checkout'], podDisruptionBudgets: [] },
    ),
    ['Service checkout-admin', 'HorizontalPodAutoscaler checkout', 'PodDisruptionBudget checkout'],
  );
  t.same(
    missingRelatedObjects(
      { services: [], podDisruptionBudgets: [] },
      { services: ['extra'], podDisruptionBudgets: ['x'] },
    ),
    [],
    'more in new is fine',
  );
  t.match(
    swappedVersions({ name: 'blue', version: 'v1.31.4' }, { name: 'green', version: 'v1.30.9-gke.1' }),
    /the new cluster green runs Kubernetes v1.30.9-gke.1, older than the old cluster blue \(v1.31.4\): the pair is probably swapped/,
  );
  t.equal(
    swappedVersions({ name: 'blue', version: 'v1.30.4' }, { name: 'green', version: 'v1.31.0' }),
    undefined,
  );
  t.equal(
    swappedVersions({ name: 'blue', version: 'v1.31.4' }, { name: 'green', version: 'v1.31.1' }),
    undefined,
    'patch not compared',
  );
  t.equal(
    swappedVersions({ name: 'blue', version: 'v2.0.0' }, { name: 'green', version: 'v1.99.0' }) !== undefined,
    true,
  );
  t.equal(
    swappedVersions({ name: 'blue', version: 'weird' }, { name: 'green', version: 'v1.1.0' }),
    undefined,
  );
});

// ---- preflight ------------------------------------------------------------------------

const facts = (cluster: string, version: string, more: Partial<ClusterFacts> = {}): ClusterFacts => ({
  cluster,
  version,
  services: ['checkout'],
  podDisruptionBudgets: ['checkout'],
  ...more,
});

function preflight(options: {
  policy?: object;
  newTemplate?: PodTemplate;
  clusterFacts?: ReturnType<Harness['observation']>['clusterFacts'];
}) {
  const h = new Harness({
    policy: testPolicy(options.policy),
    old: { podTemplate: template() },
    new: { podTemplate: options.newTemplate ?? template() },
  });
  h.start();
  h.tick(undefined, options.clusterFacts ? { clusterFacts: options.clusterFacts } : {});
  return h;
}

t.test('preflight refuses a different application with both values, and touches no traffic', async (t) => {
  const h = preflight({
    newTemplate: template((tpl) => {
      (app(tpl).env as Array<{ value?: string }>)[0]!.value = 'debug';
      (app(tpl).resources as { limits: Record<string, string> }).limits.memory = '1Gi';
    }),
  });
  t.equal(h.state.phase, 'Failed');
  t.equal(
    h.state.reason,
    'preflight: the application differs between the clusters (parity: strict): containers[app].env[LOG_LEVEL]: old info, new debug; containers[app].resources.limits.memory: old 512Mi, new 1Gi (make them the same, or list a field that may differ in parity.allow)',
  );
  t.same(h.weightsWritten(), []);

  const allowed = preflight({
    policy: { parity: { allow: ['containers[*].resources', 'containers[app].env[LOG_LEVEL]'] } },
    newTemplate: template((tpl) => {
      (app(tpl).env as Array<{ value?: string }>)[0]!.value = 'debug';
      (app(tpl).resources as { limits: Record<string, string> }).limits.memory = '1Gi';
    }),
  });
  t.not(allowed.state.phase, 'Failed', 'allowed fields do not refuse');
  for (let i = 0; i < 5 && allowed.state.phase === 'Preflight'; i++) allowed.tick();
  t.equal(allowed.state.phase, 'Progressing');
  t.match(allowed.state.history.map((e) => e.message).join('\n'), /both clusters run the same application/);

  const imagesOnly = preflight({
    policy: { parity: { mode: 'images' } },
    newTemplate: template((tpl) => {
      app(tpl).args = ['--port=9090'];
    }),
  });
  t.not(imagesOnly.state.phase, 'Failed', 'parity: images ignores args');
  const imageChanged = preflight({
    policy: { parity: { mode: 'images' } },
    newTemplate: template((tpl) => {
      app(tpl).image = 'shop/checkout:2';
    }),
  });
  t.match(
    imageChanged.state.reason,
    /parity: images\): containers\[app\]\.image: old shop\/checkout:1\.0, new shop\/checkout:2/,
  );
  const off = preflight({
    policy: { parity: { mode: 'off' } },
    newTemplate: template((tpl) => {
      app(tpl).image = 'shop/checkout:2';
    }),
  });
  t.not(off.state.phase, 'Failed', 'parity: off compares nothing');
});

t.test('preflight refuses a swapped pair and missing related objects', async (t) => {
  const swapped = preflight({
    clusterFacts: { old: facts('blue', 'v1.31.2'), new: facts('green', 'v1.30.5') },
  });
  t.equal(swapped.state.phase, 'Failed');
  t.match(
    swapped.state.reason,
    /new cluster green runs Kubernetes v1\.30\.5, older than the old cluster blue \(v1\.31\.2\): the pair is probably swapped/,
  );

  const missing = preflight({
    clusterFacts: {
      old: facts('blue', 'v1.30.2'),
      new: facts('green', 'v1.31.0', { podDisruptionBudgets: [] }),
    },
  });
  t.equal(missing.state.phase, 'Failed');
  t.equal(
    missing.state.reason,
    'preflight: the new cluster lacks what the old one runs around shop/checkout: PodDisruptionBudget checkout (create it in the new cluster first)',
  );

  const fine = preflight({ clusterFacts: { old: facts('blue', 'v1.30.2'), new: facts('green', 'v1.31.0') } });
  t.not(fine.state.phase, 'Failed');

  const unreadable = preflight({
    clusterFacts: { old: facts('blue', 'v1.30.2'), new: { error: 'connection refused' } },
  });
  t.equal(unreadable.state.phase, 'Preflight', 'unreadable facts wait (then fail after readyTimeout)');
});
