// The Node.js version clustershift needs, checked by each entry before it loads anything else:
// on an older Node a dependency (undici) fails while loading, with a stack trace that names no
// cause. This file imports nothing, so the check itself runs on any Node.

/** The lowest Node.js release clustershift runs on; package.json's engines says the same. */
export const REQUIRED_NODE = '22.19';

/** The message to exit with when `version` (x.y.z) is older than REQUIRED_NODE; undefined when it is not. */
export function unsupportedNode(version: string = process.versions.node): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [needMajor = 0, needMinor = 0] = REQUIRED_NODE.split('.').map(Number);
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return undefined;
  return (
    `clustershift needs Node.js >= ${REQUIRED_NODE} (found ${version}); ` +
    'install Node.js 24 (the release it is tested on), or run the container image'
  );
}

/** Exit code 2, as for every usage or setup problem. */
export const EXIT_UNSUPPORTED_NODE = 2;

/**
 * Runs `start` (which imports the rest of the program) when this Node is supported; otherwise
 * says which Node is needed and sets exit code 2.
 */
export async function onSupportedNode(start: () => Promise<void>): Promise<void> {
  const problem = unsupportedNode();
  if (!problem) return start();
  process.stderr.write(`${problem}\n`);
  process.exitCode = EXIT_UNSUPPORTED_NODE;
}
