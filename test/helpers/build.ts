// The production build (build/build.mjs, what `npm run build` and the image run) into a
// directory of the test's own inside the repository, so the build's imports of the installed
// packages resolve as they do in the image.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';

const ROOT = join(import.meta.dirname, '..', '..');

/** Builds the controller; returns its entry (dist/main.js), removed at the test's end. */
export async function buildController(t: Pick<Test, 'teardown'>): Promise<string> {
  const cache = join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const directory = await mkdtemp(join(cache, 'clustershift-build-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const dist = join(directory, 'dist');
  await promisify(execFile)(process.execPath, [join(ROOT, 'build', 'build.mjs'), dist], {
    cwd: ROOT,
    timeout: 240_000,
  });
  return join(dist, 'main.js');
}
