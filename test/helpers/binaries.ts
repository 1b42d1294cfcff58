// Finds the real binaries the integration tests start. A missing binary skips those tests
// with a message, except under CI=true, where it is a failure: CI must never pass by skipping.

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Where Debian puts daemons that are not on an ordinary user's PATH. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/local/bin', '/usr/bin'];

export function locateBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export interface Binary {
  /** Absolute path; '' when missing (then `skip` says why and the tests using it are skipped). */
  path: string;
  /** For `t.test(name, { skip }, ...)`: false when the binary is present. */
  skip: string | false;
}

/** Throws under CI=true when the binary is missing. */
export function needBinary(name: string, installHint = `apt-get install ${name}`): Binary {
  const path = locateBinary(name);
  if (path) return { path, skip: false };
  const message = `${name} is not installed (looked in PATH and ${EXTRA_DIRS.join(', ')}); ${installHint}`;
  if (process.env.CI === 'true')
    throw new Error(`${message}: under CI=true a missing binary fails the suite`);
  return { path: '', skip: message };
}
