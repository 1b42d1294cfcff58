// The strategic merge patch subset kubectl sends for built-in kinds.

import t from 'tap';
import { PatchError } from '../../../src/sandbox/fake-apiserver/json-patch.js';
import { applyStrategicMergePatch } from '../../../src/sandbox/fake-apiserver/strategic-merge-patch.js';

t.test('maps merge, null deletes, lists without a known key replace', async (t) => {
  t.same(applyStrategicMergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1, 2] }, { b: { c: null, x: 1 }, e: [3] }), {
    a: 1,
    b: { d: 3, x: 1 },
    e: [3],
  });
});

t.test(
  'lists of objects merge by key; $setElementOrder orders them; $patch: delete removes one',
  async (t) => {
    const current = {
      containers: [
        {
          name: 'app',
          image: 'a:1',
          env: [
            { name: 'X', value: '1' },
            { name: 'Y', value: '2' },
          ],
        },
        { name: 'proxy', image: 'p:1' },
      ],
    };
    const patched = applyStrategicMergePatch(current, {
      '$setElementOrder/containers': [{ name: 'proxy' }, { name: 'app' }, { name: 'new' }],
      containers: [
        {
          name: 'app',
          image: 'a:2',
          '$setElementOrder/env': [{ name: 'X' }],
          env: [{ name: 'Y', $patch: 'delete' }],
        },
        { name: 'new', image: 'n:1' },
      ],
    });
    t.same(patched, {
      containers: [
        { name: 'proxy', image: 'p:1' },
        { name: 'app', image: 'a:2', env: [{ name: 'X', value: '1' }] },
        { name: 'new', image: 'n:1' },
      ],
    });
    t.same(
      applyStrategicMergePatch(
        { ports: [{ port: 80, name: 'http' }, { port: 443 }] },
        { ports: [{ port: 80, targetPort: 8080 }] },
      ),
      { ports: [{ port: 80, name: 'http', targetPort: 8080 }, { port: 443 }] },
      "a Service's ports merge by port",
    );
  },
);

t.test('$patch: replace, $retainKeys, $deleteFromPrimitiveList, merged primitive lists', async (t) => {
  t.same(applyStrategicMergePatch({ s: { a: 1, b: 2 } }, { s: { $patch: 'replace', c: 3 } }), {
    s: { c: 3 },
  });
  t.same(
    applyStrategicMergePatch(
      { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } },
      { strategy: { $retainKeys: ['type'], type: 'Recreate' } },
    ),
    { strategy: { type: 'Recreate' } },
  );
  t.same(
    applyStrategicMergePatch(
      { metadata: { finalizers: ['a', 'b', 'c'] } },
      { metadata: { '$deleteFromPrimitiveList/finalizers': ['b'] } },
    ),
    { metadata: { finalizers: ['a', 'c'] } },
  );
  t.same(
    applyStrategicMergePatch(
      { finalizers: ['a'] },
      { '$setElementOrder/finalizers': ['b', 'a'], finalizers: ['b'] },
    ),
    { finalizers: ['b', 'a'] },
  );
  let refused: unknown;
  try {
    applyStrategicMergePatch({}, { $patch: 'explode' });
  } catch (error) {
    refused = error;
  }
  t.ok(refused instanceof PatchError, 'an unknown $patch is a PatchError (422)');
});
