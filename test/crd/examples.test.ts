// The example manifests in docs/examples are accepted by the API server (the CRDs' schemas and
// CEL rules, in the fake API server) and resolve into a workload clustershift would run.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { clusterMigrationCrd, workloadMigrationCrd } from '../../src/crd/manifests.js';
import { resolveClusterMigration, resolveWorkloadMigration } from '../../src/crd/resolve.js';
import type { ClusterMigrationObject, WorkloadMigrationObject } from '../../src/crd/schema.js';
import { FakeApiServer, type KubeObject } from '../../src/sandbox/fake-apiserver.js';

const example = <T>(name: string) =>
  parse(readFileSync(new URL(`../../docs/examples/${name}`, import.meta.url), 'utf8')) as T;

t.test('the examples are valid objects that resolve', async (t) => {
  const cm = example<ClusterMigrationObject>('clustermigration.yaml');
  const wlm = example<WorkloadMigrationObject>('workloadmigration.yaml');
  const server = new FakeApiServer();
  server.put(clusterMigrationCrd() as KubeObject);
  server.put(workloadMigrationCrd() as KubeObject);
  // put() admits through the CRD's schema and CEL rules as a create over HTTP does.
  t.doesNotThrow(() => server.put(cm as KubeObject), 'the ClusterMigration is admitted');
  t.doesNotThrow(() => server.put(wlm as KubeObject), 'the WorkloadMigration is admitted');
  const migration = resolveClusterMigration(cm);
  t.match(migration, { ok: true, settings: { maxConcurrent: 3, clusters: { new: { name: 'prod-1-31' } } } });
  const resolution = resolveWorkloadMigration(wlm, migration, {
    process: { metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' } },
  });
  t.match(resolution, {
    ok: true,
    workload: { key: 'shop/checkout', route: { virtualService: 'checkout' } },
  });
  if (resolution.ok) {
    t.equal(resolution.workload.policy.plan.holdTimeMs, 120_000, "the migration's defaults");
    t.equal(resolution.workload.policy.analysis.errorRate.maxRatio, 1.2, "the workload's override");
  }
  const templated = resolveWorkloadMigration(
    { ...wlm, spec: { ...(wlm.spec as object), route: undefined } },
    migration,
    {
      process: { metrics: { type: 'prometheus', address: 'http://prometheus:9090', template: 'istio' } },
    },
  );
  t.match(
    templated,
    { ok: true, workload: { route: { newDestination: { host: 'checkout.shop.global' } } } },
    'the template gives the same route',
  );
});
