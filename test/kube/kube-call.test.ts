// KubeCaller against the fake API server: a JSON patch guarded by a `test` of the resourceVersion
// read, whose object another writer changed in between, is a conflict to retry with a fresh read
// (kube-apiserver answers it with 422, not 409); any other 422 is final.

import { CoreV1Api, PatchStrategy } from '@kubernetes/client-node';
import t from 'tap';
import { KubeError } from '../../src/errors.js';
import { KubeCaller, requestOptions } from '../../src/kube/kube-call.js';
import { buildKubeConfig } from '../../src/kube/kubeconfig.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';

const lock = (owner: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'lock', namespace: 'default' },
  data: { owner },
});

t.test('a failed resourceVersion test is retried on a fresh read; another 422 is final', async (t) => {
  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const core = buildKubeConfig({ name: 'home', server: url }).makeApiClient(CoreV1Api);
  const caller = new KubeCaller({ cluster: 'home', requestTimeoutMs: 5_000, sleep: async () => undefined });
  server.put(lock('a'));

  let attempts = 0;
  await caller.call(
    { verb: 'patch', object: 'configmap default/lock', retryConflicts: true },
    AbortSignal.timeout(10_000),
    async (s) => {
      attempts++;
      const read = await core.readNamespacedConfigMap(
        { name: 'lock', namespace: 'default' },
        requestOptions(s),
      );
      // Another writer, between this attempt's read and its patch.
      if (attempts === 1) server.put(lock('b'));
      await core.patchNamespacedConfigMap(
        {
          name: 'lock',
          namespace: 'default',
          body: [
            { op: 'test', path: '/metadata/resourceVersion', value: read.metadata?.resourceVersion },
            { op: 'add', path: '/data/note', value: 'written once the object was read fresh' },
          ],
        },
        requestOptions(s, PatchStrategy.JsonPatch),
      );
    },
  );
  t.equal(attempts, 2, 'read again and patched again after the failed test');
  const after = await core.readNamespacedConfigMap({ name: 'lock', namespace: 'default' });
  t.same(
    after.data,
    { owner: 'b', note: 'written once the object was read fresh' },
    "the other writer's change is kept",
  );

  let invalidAttempts = 0;
  const error = await caller
    .call(
      { verb: 'patch', object: 'configmap default/lock', retryConflicts: true },
      AbortSignal.timeout(10_000),
      (s) => {
        invalidAttempts++;
        return core.patchNamespacedConfigMap(
          {
            name: 'lock',
            namespace: 'default',
            body: [{ op: 'replace', path: '/data/missing', value: 'x' }],
          },
          requestOptions(s, PatchStrategy.JsonPatch),
        );
      },
    )
    .catch((caught: unknown) => caught);
  t.type(error, KubeError);
  t.equal((error as KubeError).httpStatus, 422);
  t.equal(invalidAttempts, 1, 'a patch that cannot apply is not retried');
});
