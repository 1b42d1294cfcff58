// The demo's simulator stays out of production: no production source imports src/sandbox, the
// build leaves it out of dist/, and the image build context leaves it out of the image.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;
const src = join(root, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(entry.name) ? [path] : [];
  });
}

t.test('no production source imports the sandbox', async (t) => {
  const production = sources(src).filter((path) => !relative(src, path).startsWith('sandbox/'));
  t.ok(production.length > 50, `scanned ${production.length} files`);
  const importers = production.filter((path) =>
    /from\s+['"][^'"]*\/sandbox\/|import\(\s*['"][^'"]*\/sandbox\//.test(readFileSync(path, 'utf8')),
  );
  t.same(
    importers.map((path) => relative(root, path)),
    [],
  );
});

t.test('the build and the image build context leave src/sandbox out', async (t) => {
  const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { exclude?: string[] };
  t.ok(build.exclude?.includes('src/sandbox/**'), 'tsconfig.build.json excludes src/sandbox');
  const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
  t.ok(ignored.includes('src/sandbox'), '.dockerignore leaves out src/sandbox');
});
