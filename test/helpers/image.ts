// What the image (the Dockerfile's runtime stage) starts the controller with: its node flags and
// its environment. The benchmarks and the tests that run the built controller use both, so they
// run it as the container does.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The node flags the image starts the controller with: the Dockerfile's ENTRYPOINT, between
 * node and dist/main.js.
 */
export function imageNodeFlags(root: string): string[] {
  const dockerfile = join(root, 'Dockerfile');
  const line = readFileSync(dockerfile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  const entrypoint = line ? (JSON.parse(line.slice('ENTRYPOINT '.length)) as unknown) : undefined;
  const main = Array.isArray(entrypoint) ? entrypoint.findIndex((a) => String(a).endsWith('main.js')) : -1;
  if (!Array.isArray(entrypoint) || main < 1)
    throw new Error(
      `${dockerfile}: no ENTRYPOINT ["node", ...flags, ".../main.js"] to take the node flags from`,
    );
  return entrypoint.slice(1, main).map(String);
}

/**
 * The environment the image sets for the controller: the Dockerfile's ENV lines after its last
 * FROM (the runtime stage), e.g. MALLOC_ARENA_MAX. A benchmark's controller process gets them
 * as the container does.
 */
export function imageEnv(root: string): Record<string, string> {
  const dockerfile = join(root, 'Dockerfile');
  const lines = readFileSync(dockerfile, 'utf8').split('\n');
  const runtime = lines.slice(lines.findLastIndex((l) => /^FROM\s/i.test(l)) + 1);
  const env: Record<string, string> = {};
  for (const line of runtime) {
    const match = /^ENV\s+(.+)$/i.exec(line.trim());
    if (!match?.[1]) continue;
    for (const pair of match[1].split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq < 1) throw new Error(`${dockerfile}: ENV ${match[1]}: write each as KEY=value`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}
