// The error registry (src/errors.ts) is real: every class raises a code from it, every code in
// it is raised by a class, and docs/errors.md is the same table for people.

import { readFileSync } from 'node:fs';
import t from 'tap';
import * as errors from '../src/errors.js';
import { ClustershiftError, ERROR_CODES } from '../src/errors.js';

const DOC = new URL('../docs/errors.md', import.meta.url);

/** Every ClustershiftError class errors.ts exports, constructed with placeholder arguments. */
function everyErrorClass(): Array<{ name: string; error: ClustershiftError }> {
  return Object.entries(errors)
    .filter(
      ([, value]) =>
        typeof value === 'function' &&
        (value === ClustershiftError || value.prototype instanceof ClustershiftError),
    )
    .map(([name, value]) => {
      const Class = value as unknown as new (...args: unknown[]) => ClustershiftError;
      return { name, error: new Class('message', 'second', 'third') };
    });
}

t.test('every error class raises a registered code with its status, and every code is raised', async (t) => {
  const classes = everyErrorClass();
  t.ok(classes.length >= Object.keys(ERROR_CODES).length, `${classes.length} error classes`);
  for (const { name, error } of classes) {
    t.ok(Object.hasOwn(ERROR_CODES, error.code), `${name}: ${error.code} is in ERROR_CODES`);
    t.equal(error.statusCode, ERROR_CODES[error.code].status, `${name}: HTTP ${error.statusCode}`);
    t.equal(error.name, name, `${name}: the name says the class`);
  }
  const raised = new Set(classes.map(({ error }) => error.code));
  t.same(
    Object.keys(ERROR_CODES).filter((code) => !raised.has(code as errors.ErrorCode)),
    [],
    'no code in the registry that no class raises',
  );
});

t.test('docs/errors.md lists every code, with the same status and meaning, and nothing else', async (t) => {
  const rows = readFileSync(DOC, 'utf8')
    .split('\n')
    .map((line) => /^\| `(CS_[A-Z_]+)` \| (\d{3}) \| (.+) \|$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ code: match[1]!, status: Number(match[2]), meaning: match[3]! }));
  t.same(
    rows.map((row) => row.code),
    Object.keys(ERROR_CODES),
    'the table has one row per code, in the registry order',
  );
  for (const row of rows) {
    const entry = ERROR_CODES[row.code as errors.ErrorCode];
    t.same({ status: row.status, meaning: row.meaning }, entry, `${row.code} reads the same in both`);
  }
});
