// build/bundle-client-node.mjs: the bundle it writes in place of kube/client-node.js exports the
// same names as the source module, holds client-node itself instead of importing it, and its
// clients and watches work against an API server.

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import ts from 'typescript';
import * as source from '../../src/kube/client-node.js';
import { FakeApiServer } from '../../src/sandbox/fake-apiserver.js';
import { repositoryTempDir } from '../helpers/build.js';
import { pollUntil } from '../helpers/poll.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const script = join(root, 'build', 'bundle-client-node.mjs');

async function bundleInto(t: Test): Promise<string> {
  // Inside the repository, so the bundle's shared dependencies (undici) resolve as in dist/.
  const directory = await repositoryTempDir(t, 'bundle-client-node-');
  const { outputText } = ts.transpileModule(
    await readFile(join(root, 'src', 'kube', 'client-node.ts'), 'utf8'),
    { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } },
  );
  const file = join(directory, 'client-node.js');
  await writeFile(file, outputText);
  const { stdout } = await run(process.execPath, [script, file]);
  t.match(stdout, /^bundled \d+ modules of @kubernetes\/client-node into .*client-node\.js \(\d+ KiB\)/);
  return file;
}

t.test('the bundle stands in for the source module', async (t) => {
  const file = await bundleInto(t);
  const text = await readFile(file, 'utf8');
  t.notMatch(text, /(from|import\()\s*["']@kubernetes\/client-node/, 'client-node is inside, not imported');
  t.match(text, /from\s*["']undici["']/, 'undici, which clustershift shares, stays an import');
  t.ok(
    text.length < 4 * 2 ** 20,
    `a tree-shaken bundle (${text.length} bytes; the package is ~25 MB of JavaScript)`,
  );

  const bundled = (await import(pathToFileURL(file).href)) as typeof source;
  t.strictSame(Object.keys(bundled).sort(), Object.keys(source).sort(), 'the same names');

  const server = new FakeApiServer();
  const { url } = await server.start();
  t.teardown(() => server.stop());
  const kubeConfig = new bundled.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
    users: [{ name: 'anonymous' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'anonymous' }],
    currentContext: 'fake',
  });
  const core = kubeConfig.makeApiClient(bundled.CoreV1Api);
  await core.createNamespacedConfigMap({
    namespace: 'shop',
    body: { metadata: { name: 'web' }, data: { weight: '10' } },
  });
  const list = await core.listNamespacedConfigMap({ namespace: 'shop' });
  t.strictSame(
    list.items.map((item) => [item.metadata?.name, item.data]),
    [['web', { weight: '10' }]],
  );
  const missing = await core.readNamespacedConfigMap({ namespace: 'shop', name: 'nope' }).catch((e) => e);
  t.ok(missing instanceof bundled.ApiException, 'a 404 is the bundle’s ApiException');
  t.equal((missing as { code?: number }).code, 404);

  const events: string[] = [];
  let ended: (error: unknown) => void = () => undefined;
  const end = new Promise<unknown>((resolve) => {
    ended = resolve;
  });
  const controller = await new bundled.Watch(kubeConfig).watch(
    '/api/v1/namespaces/shop/configmaps',
    { resourceVersion: list.metadata?.resourceVersion },
    (type, object: { metadata?: { name?: string } }) => events.push(`${type} ${object.metadata?.name}`),
    (error) => ended(error),
  );
  await core.patchNamespacedConfigMap(
    { namespace: 'shop', name: 'web', body: { data: { weight: '20' } } },
    {
      middleware: [bundled.setHeaderMiddleware('Content-Type', bundled.PatchStrategy.MergePatch)],
      middlewareMergeStrategy: 'append',
    },
  );
  await pollUntil(async () => (events.length > 0 ? true : undefined), {
    what: 'the watch event',
    timeoutMs: 10_000,
  });
  controller.abort();
  t.match(await end, { name: 'AbortError' }, 'the watch ends when aborted');
  t.strictSame(events, ['MODIFIED web'], 'a watch sees the change');
});

t.test('a wrong argument is refused before anything is written', async (t) => {
  const error = await run(process.execPath, [script, 'dist/main.js']).catch((e: unknown) => e);
  t.match(error, { code: 2, stderr: /usage: node build\/bundle-client-node\.mjs/ });
});
