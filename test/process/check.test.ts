// The controller process's `--check`: exit 2 with the start's own message when a file the
// configuration names is missing, exit 0 with "valid" once it is there (src/main.ts).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { EXAMPLE_FILES, writeFiles } from '../fixtures/mounted-files.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function check(configPath: string): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', '--config', configPath, '--check'],
      // A bounded child: --check does no I/O beyond reading files, so a minute is far more than it needs.
      { cwd: REPO, timeout: 60_000, env: { ...process.env, LOG_LEVEL: 'silent' } },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

t.test('--check: exit 2 with the reason the start would give, exit 0 once the files are there', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'clustershift-check-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const example = await readFile(join(REPO, 'config/istio.yaml'), 'utf8');
  const configPath = join(dir, 'istio.yaml');
  await writeFile(configPath, example.replaceAll('/etc/clustershift/', `${dir}/`));
  const { 'api-tokens/tokens.yaml': tokens, ...kubeconfigs } = EXAMPLE_FILES;
  await writeFiles(dir, kubeconfigs);

  const noTokens = await check(configPath);
  t.equal(noTokens.code, 2, 'a missing tokens file is a configuration error');
  t.match(
    noTokens.stderr,
    /^clustershift-controller: cannot read the API tokens file .*tokens\.yaml \(api\.auth\.tokensFile\)/,
  );
  t.equal(noTokens.stdout, '', 'nothing claims the file is valid');

  await writeFiles(dir, { 'api-tokens/tokens.yaml': tokens ?? '' });
  const valid = await check(configPath);
  t.equal(valid.code, 0, valid.stderr);
  t.equal(valid.stdout, `${configPath}: valid, 1 workload\n`);
});
