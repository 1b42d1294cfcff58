// What the fake API server was asked: every write as received (for tests asserting the exact
// calls a component made).

import type { WriteRecord } from './types.js';

export class WriteLog {
  private readonly records: WriteRecord[] = [];

  add(record: WriteRecord): void {
    this.records.push(record);
  }

  /** Oldest first, as copies. */
  all(): WriteRecord[] {
    return this.records.map((record) => structuredClone(record));
  }

  clear(): void {
    this.records.length = 0;
  }
}
