// Rollout state on local disk: one JSON file per rollout in a directory. A write goes to a temp
// file that is renamed over the old one, so a crash leaves the old state or the new, never half.
// A lock file makes check-revision-then-rename atomic between processes, so of two writers with
// the same revision exactly one wins; the other gets StateConflictError and must re-read.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ClustershiftError, errorMessage, StateConflictError, TimeoutError } from '../errors.js';
import type { RolloutState, WorkloadRef } from '../rollout/types.js';
import { abortableSleep } from '../timing.js';
import { persistedJson, type StateStore } from './state-store.js';

export interface FileStateStoreOptions {
  /** Created when missing. */
  directory: string;
  /** How long to wait for another writer's lock (default 5000). */
  lockTimeoutMs?: number;
  /** A lock older than this was left by a crashed process and is broken (default 30000). */
  staleLockMs?: number;
}

const SUFFIX = '.json';

/** `shop/web` -> `shop_web.json`; namespaces and names cannot hold `_`, so this is one-to-one. */
export function stateFileName(ref: WorkloadRef): string {
  return `${encodeURIComponent(ref.namespace)}_${encodeURIComponent(ref.name)}${SUFFIX}`;
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

export class FileStateStore implements StateStore {
  private readonly directory: string;
  private readonly lockTimeoutMs: number;
  private readonly staleLockMs: number;

  constructor(options: FileStateStoreOptions) {
    this.directory = options.directory;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 5000;
    this.staleLockMs = options.staleLockMs ?? 30_000;
  }

  async loadAll(signal: AbortSignal): Promise<RolloutState[]> {
    await mkdir(this.directory, { recursive: true });
    const names = (await readdir(this.directory)).filter(
      (name) => name.endsWith(SUFFIX) && !name.startsWith('.'),
    );
    const states: RolloutState[] = [];
    for (const name of names.sort()) {
      const state = await this.readState(join(this.directory, name), signal);
      if (state) states.push(state);
    }
    return states;
  }

  /** One rollout's state as on disk now, for re-reading after a conflict. */
  async load(ref: WorkloadRef, signal: AbortSignal): Promise<RolloutState | undefined> {
    return this.readState(join(this.directory, stateFileName(ref)), signal);
  }

  async save(state: RolloutState, signal: AbortSignal): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    const path = join(this.directory, stateFileName(state.workload));
    const release = await this.lock(`${path}.lock`, state.key, signal);
    try {
      const current = await this.readState(path, signal);
      if (current && current.revision >= state.revision) {
        throw new StateConflictError(
          `rollout ${state.key}: revision ${state.revision} is not newer than revision ${current.revision} in ${path}; another writer won, re-read the state`,
        );
      }
      const temp = join(
        this.directory,
        `.${stateFileName(state.workload)}.${randomBytes(6).toString('hex')}.tmp`,
      );
      try {
        const handle = await open(temp, 'wx');
        try {
          await handle.writeFile(`${persistedJson(state, 2)}\n`, { signal });
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, path);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
    } finally {
      await release();
    }
  }

  private async readState(path: string, signal: AbortSignal): Promise<RolloutState | undefined> {
    let text: string;
    try {
      text = await readFile(path, { encoding: 'utf8', signal });
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    try {
      return JSON.parse(text) as RolloutState;
    } catch (error) {
      throw new ClustershiftError(
        `rollout state file ${path} is not valid JSON (${errorMessage(error)}); restore it from a backup or delete it to start that rollout over`,
        { cause: error },
      );
    }
  }

  /** An exclusive lock file (O_EXCL); a stale one left by a crash is broken after staleLockMs. */
  private async lock(path: string, key: string, signal: AbortSignal): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      signal.throwIfAborted();
      try {
        const handle = await open(path, 'wx');
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        return () => unlink(path).catch(() => undefined);
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
      }
      const age = await stat(path).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age > this.staleLockMs) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new TimeoutError(
          `rollout ${key}: the state lock ${path} is held by another writer for over ${this.lockTimeoutMs}ms; if no other clustershift uses ${this.directory}, delete the lock file`,
        );
      }
      // The lock is held for one small write; check again shortly.
      await abortableSleep(5, signal);
    }
  }
}
