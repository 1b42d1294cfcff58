// Keys grouped by a value they share (a workload's ClusterMigration, a Deployment's claimants),
// kept beside the map that owns them so a group is read without a scan of every key.

const NONE: ReadonlySet<string> = new Set();

export class SetIndex {
  readonly #groups = new Map<string, Set<string>>();

  add(group: string, key: string): void {
    let keys = this.#groups.get(group);
    if (!keys) {
      keys = new Set();
      this.#groups.set(group, keys);
    }
    keys.add(key);
  }

  /** Takes `key` out of `group`; a group left empty goes. */
  delete(group: string, key: string): void {
    const keys = this.#groups.get(group);
    if (!keys?.delete(key) || keys.size > 0) return;
    this.#groups.delete(group);
  }

  /** The group's keys now (empty when none): copy it before changing the index while iterating. */
  get(group: string): ReadonlySet<string> {
    return this.#groups.get(group) ?? NONE;
  }
}
