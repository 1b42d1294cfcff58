// The API's bearer tokens: reading the list from a mounted Secret file or an environment
// variable, checking it once at start, and matching a presented token in constant time.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';

export type CallerRole = 'viewer' | 'operator';
export const CALLER_ROLES: readonly CallerRole[] = ['viewer', 'operator'];

/** Who is calling: the token's name (it appears in the audit log) and what it may do. */
export interface Caller {
  name: string;
  role: CallerRole;
}

export interface ApiToken extends Caller {
  token: string;
}

/** Reserved for calls made while authentication is off; no token may take this name. */
export const ANONYMOUS = 'anonymous';

// Short tokens can be guessed; 16 characters is a floor, `openssl rand -hex 32` gives 64.
const MIN_TOKEN_LENGTH = 16;
const GENERATE_HINT = 'generate one with: openssl rand -hex 32';
const ENTRY_KEYS = ['name', 'role', 'token'];

export interface TokenSources {
  /** A YAML or JSON file holding a list of {name, role, token}, usually a mounted Secret. */
  tokensFile?: string | undefined;
  /** The name of an environment variable holding the same list as JSON. */
  tokensEnv?: string | undefined;
  /** Where `tokensEnv` is looked up. */
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Every token from the file and the environment variable (either or both). Throws one
 * ConfigError naming the source and the entry when anything is wrong; never echoes a token.
 */
export function loadApiTokens(sources: TokenSources): ApiToken[] {
  if (!sources.tokensFile && !sources.tokensEnv)
    throw new ConfigError(
      'API authentication is on but api.auth names no tokens: set api.auth.tokensFile (a mounted Secret) ' +
        'or api.auth.tokensEnv, or set api.auth.enabled: false for a local demo',
    );
  const tokens: ApiToken[] = [];
  if (sources.tokensFile)
    tokens.push(...parseTokenList(readTokensFile(sources.tokensFile), sources.tokensFile));
  if (sources.tokensEnv) {
    const text = sources.env[sources.tokensEnv];
    if (!text?.trim())
      throw new ConfigError(
        `environment variable ${sources.tokensEnv} (api.auth.tokensEnv) is empty or not set, ` +
          'expected a JSON list of {name, role, token}',
      );
    tokens.push(...parseTokenList(text, `environment variable ${sources.tokensEnv}`));
  }
  checkUnique(tokens);
  return tokens;
}

function readTokensFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `cannot read the API tokens file ${path} (api.auth.tokensFile): ${errorMessage(error)}; ` +
        'mount the Secret holding it (Helm value api.auth.existingSecret) or fix the path',
    );
  }
}

/** Parses one source's text; `source` names it in messages. */
export function parseTokenList(text: string, source: string): ApiToken[] {
  let parsed: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both forms.
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${source}: not valid YAML or JSON: ${errorMessage(error).split('\n')[0]}`);
  }
  if (!Array.isArray(parsed))
    throw new ConfigError(
      `${source}: found ${parsed === null ? 'nothing' : typeof parsed}, expected a list of {name, role, token}`,
    );
  if (parsed.length === 0)
    throw new ConfigError(
      `${source}: the list is empty, expected at least one token (nobody could call the API)`,
    );
  return parsed.map((entry, index) => parseEntry(entry, `${source}: entry ${index + 1}`));
}

function parseEntry(entry: unknown, where: string): ApiToken {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    throw new ConfigError(`${where}: found ${JSON.stringify(entry)}, expected an object {name, role, token}`);
  const record = entry as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!ENTRY_KEYS.includes(key))
      throw new ConfigError(
        `${where}: found the key ${JSON.stringify(key)}, expected only name, role, token`,
      );
  }
  const { name, role, token } = record;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/.test(name))
    throw new ConfigError(
      `${where}: found the name ${JSON.stringify(name)}, expected 1-63 letters, digits, '.', '_', '@' or '-'`,
    );
  if (name === ANONYMOUS)
    throw new ConfigError(
      `${where}: the name ${ANONYMOUS} is reserved for unauthenticated calls, pick another`,
    );
  if (typeof role !== 'string' || !(CALLER_ROLES as readonly string[]).includes(role))
    throw new ConfigError(
      `${where} (${name}): found the role ${JSON.stringify(role)}, expected ${CALLER_ROLES.join(' or ')}`,
    );
  if (typeof token !== 'string')
    throw new ConfigError(
      `${where} (${name}): found no token string, expected token: <secret>; ${GENERATE_HINT}`,
    );
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
    throw new ConfigError(
      `${where} (${name}): the token has ${token.length} characters${/\s/.test(token) ? ' and whitespace' : ''}, ` +
        `expected at least ${MIN_TOKEN_LENGTH} without whitespace; ${GENERATE_HINT}`,
    );
  return { name, role: role as CallerRole, token };
}

function checkUnique(tokens: readonly ApiToken[]): void {
  const names = new Set<string>();
  const owners = new Map<string, string>();
  for (const { name, token } of tokens) {
    if (names.has(name))
      throw new ConfigError(
        `the API token name ${name} appears twice, expected each name once (it identifies the caller in the audit log)`,
      );
    names.add(name);
    const owner = owners.get(token);
    if (owner !== undefined)
      throw new ConfigError(
        `API tokens ${owner} and ${name} are the same, expected each caller to have its own`,
      );
    owners.set(token, name);
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Matches a presented token against the configured ones. Both sides are SHA-256 digests of
 * equal length, compared with timingSafeEqual, and every entry is compared even after a
 * match, so response time reveals neither a token's length nor how much of it was right.
 */
export class ApiTokenVerifier {
  readonly #entries: ReadonlyArray<{ caller: Caller; digest: Buffer }>;

  constructor(options: { tokens: readonly ApiToken[] }) {
    this.#entries = options.tokens.map(({ name, role, token }) => ({
      caller: Object.freeze({ name, role }),
      digest: sha256(token),
    }));
  }

  identify(presented: string): Caller | undefined {
    const digest = sha256(presented);
    let found: Caller | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, digest)) found = entry.caller;
    }
    return found;
  }
}
