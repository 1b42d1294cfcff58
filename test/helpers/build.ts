// The production build (build/build.mjs, what `npm run build` and the image run) into a
// directory of the test's own inside the repository, so the build's imports of the installed
// packages resolve as they do in the image.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * A new directory under node_modules/.cache, removed at the test's end: built code there imports
 * the installed packages as dist/ does.
 */
export async function repositoryTempDir(t: Pick<Test, 'teardown'>, prefix: string): Promise<string> {
  const cache = join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const directory = await mkdtemp(join(cache, prefix));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** Builds the controller; returns its entry (dist/main.js), removed at the test's end. */
export async function buildController(t: Pick<Test, 'teardown'>): Promise<string> {
  const dist = join(await repositoryTempDir(t, 'clustershift-build-'), 'dist');
  await promisify(execFile)(process.execPath, [join(ROOT, 'build', 'build.mjs'), dist], {
    cwd: ROOT,
    timeout: 240_000,
  });
  return join(dist, 'main.js');
}
