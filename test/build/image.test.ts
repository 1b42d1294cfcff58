import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { imageEnv, imageNodeFlags } from '../helpers/image.js';

const dockerfile = async (t: Pick<Test, 'teardown'>, text: string) => {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-image-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'Dockerfile'), text);
  return dir;
};

t.test("the runtime stage's ENV and the ENTRYPOINT's node flags, as the container gets them", async (t) => {
  const root = await dockerfile(
    t,
    [
      'FROM node:24 AS build',
      'ENV NPM_CONFIG_LOGLEVEL=warn',
      'FROM gcr.io/distroless/nodejs24-debian12:nonroot',
      'ENV NODE_ENV=production',
      '# a comment',
      'ENV MALLOC_ARENA_MAX=1 EXTRA=a=b',
      'ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=8", "--flag", "/app/dist/main.js"]',
    ].join('\n'),
  );
  t.same(imageEnv(root), { NODE_ENV: 'production', MALLOC_ARENA_MAX: '1', EXTRA: 'a=b' });
  t.same(imageNodeFlags(root), ['--max-semi-space-size=8', '--flag']);
});

t.test('an ENV without KEY=value says where', async (t) => {
  const root = await dockerfile(t, 'FROM scratch\nENV MALLOC_ARENA_MAX 1\n');
  t.throws(() => imageEnv(root), /Dockerfile: ENV MALLOC_ARENA_MAX 1: write each as KEY=value/);
});

t.test("the repository's Dockerfile parses", async (t) => {
  const root = join(import.meta.dirname, '..', '..');
  t.ok(imageNodeFlags(root).length > 0);
  t.equal(imageEnv(root).NODE_ENV, 'production');
});
