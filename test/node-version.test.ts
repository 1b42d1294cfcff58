// The Node.js version check every entry runs first (src/node-version.ts).

import { readFileSync } from 'node:fs';
import t from 'tap';
import { REQUIRED_NODE, unsupportedNode } from '../src/node-version.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
  bin: Record<string, string>;
};

t.test('older than 22.19 is refused with the version found; 22.19 and later pass', async (t) => {
  t.equal(
    unsupportedNode('20.20.2'),
    'clustershift needs Node.js >= 22.19 (found 20.20.2); install Node.js 24 (the release it is tested on), or run the container image',
  );
  t.match(unsupportedNode('22.18.0'), /needs Node\.js >= 22\.19 \(found 22\.18\.0\)/);
  t.match(unsupportedNode('18.20.4'), /found 18\.20\.4/);
  for (const version of ['22.19.0', '22.20.1', '23.0.0', '24.21.0', '25.1.0'])
    t.equal(unsupportedNode(version), undefined, `${version} passes`);
  t.equal(unsupportedNode(), undefined, `the Node running the tests (${process.versions.node}) passes`);
});

t.test('package.json says the same requirement and names the three commands', async (t) => {
  t.equal(pkg.engines.node, `>=${REQUIRED_NODE}`);
  t.same(pkg.bin, {
    clustershift: 'dist/cli/main.js',
    'clustershift-controller': 'dist/main.js',
    // The CLI as a kubectl plugin (`kubectl clustershift ...`); it runs the same check first.
    'kubectl-clustershift': 'dist/cli/kubectl-plugin.js',
  });
});
