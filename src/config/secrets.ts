// Reads a secret named by a SecretRef. Errors name the environment variable or the file, never
// the value, so a misconfigured secret can be fixed from the message without leaking anything.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { SecretRef } from './schema.js';

/** The secret's value, trimmed of a trailing newline (files written by `echo` or Kubernetes). */
export function readSecret(ref: SecretRef, where = 'a secret'): string {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === '')
      throw new ConfigError(
        `${where}: the environment variable ${ref.env} is not set or empty; set it, or point the reference at a file`,
      );
    return value.replace(/\r?\n$/, '');
  }
  let text: string;
  try {
    text = readFileSync(ref.file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'an error';
    throw new ConfigError(
      `${where}: cannot read the secret file ${ref.file} (${code}); check the path and that the file is mounted and readable`,
    );
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new ConfigError(`${where}: the secret file ${ref.file} is empty`);
  return value;
}
