// `npm run gen:crds`: write the CustomResourceDefinitions into the chart, from src/crd/schema.ts.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_DIRECTORY, crdFiles } from './manifests.js';

const directory = join(import.meta.dirname, '..', '..', CRD_DIRECTORY);
mkdirSync(directory, { recursive: true });
const files = crdFiles();
// A kind renamed or removed must not leave its old file behind for the chart to install.
for (const stale of readdirSync(directory).filter((name) => !(name in files))) rmSync(join(directory, stale));
for (const [name, text] of Object.entries(files)) {
  writeFileSync(join(directory, name), text);
  console.log(`wrote ${join(CRD_DIRECTORY, name)}`);
}
