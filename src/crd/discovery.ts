// Discovery, carried out: for each accepted ClusterMigration, its old and new cluster's
// Deployments (and the old cluster's Namespaces, for a namespaceSelector) are watched; whenever
// they or the home cluster's WorkloadMigrations change, the plan (discovery-plan.ts) is made
// again and the leader creates, updates or deletes the WorkloadMigrations discovery owns and
// writes what it found into the migration's status (missingInNew, parity, both clusters'
// Kubernetes versions). Never deploys anything to a cluster; never deletes a WorkloadMigration
// that has moved traffic.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { DEFAULT_POLICY } from '../config/defaults.js';
import { errorMessage } from '../errors.js';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, VersionApi } from '../kube/client-node.js';
import type { ClusterPair, ClusterPairs } from '../kube/cluster-pairs.js';
import { httpStatusOf, isNotFound, KubeCaller, requestOptions } from '../kube/kube-call.js';
import { type ParityPolicy, swappedVersions } from '../rollout/parity.js';
import type { SourcedWorkload, WorkloadChange, WorkloadSource } from '../sources/workload-source.js';
import { timeoutSignal } from '../timing.js';
import type { ClusterMigrationStatusWriter } from './cluster-migration-status-writer.js';
import type { CrWorkloadSource } from './cr-workload-source.js';
import {
  type DiscoveryPlan,
  discoveredCondition,
  discoveryStatus,
  planDiscovery,
  workloadMigrationObject,
} from './discovery-plan.js';
import { deploymentView, WatchedList, workloadMigrationView } from './discovery-watch.js';
import { homeClusterCaller } from './home-cluster.js';
import { WORKLOAD_MIGRATION } from './manifests.js';
import type { MigrationResolution, ProcessSettings, SourceCondition } from './resolve.js';
import { type ClusterMigrationStatus, GROUP, VERSION } from './schema.js';

export interface DiscoveryOptions {
  /** The home cluster: its WorkloadMigrations are created and deleted here. */
  home: KubeConfig;
  source: CrWorkloadSource;
  pairs: ClusterPairs;
  status: ClusterMigrationStatusWriter;
  /** The file's defaults (their parity under each migration's). */
  process: ProcessSettings;
  isLeader: () => boolean;
  clock: Clock;
  logger?: Logger;
  requestTimeoutMs: number;
  /** After a watch fails, list again after this long (default 2000 ms). */
  restartDelayMs?: number;
  /** Every migration is planned again this often, and its clusters' versions read (default 60 s). */
  resyncIntervalMs?: number;
}

type Accepted = Extract<MigrationResolution, { ok: true }>;

const HOLDER = (migration: string) => `discovery:${migration}`;
const NONE: ReadonlyMap<string, SourcedWorkload> = new Map();
/** How often a follower looks whether it leads now. */
const LEADER_CHECK_MS = 2_000;

/** What about a migration, when it changes, means watching its clusters afresh. */
const watchIdentity = (migration: Accepted) =>
  JSON.stringify([
    migration.settings.clusters,
    migration.settings.uid,
    migration.spec.selector !== undefined,
    migration.spec.selector?.namespaceSelector !== undefined,
  ]);

/**
 * Discovery lists no workloads of its own: it creates WorkloadMigrations, which the CR source
 * then lists. It is a WorkloadSource so that it starts and stops with the others, after the CR
 * source it follows.
 */
export class Discovery implements WorkloadSource {
  private readonly options: DiscoveryOptions;
  private readonly watchers = new Map<string, MigrationWatcher>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;

  constructor(options: DiscoveryOptions) {
    this.options = options;
  }

  workloads(): ReadonlyMap<string, SourcedWorkload> {
    return NONE;
  }

  subscribe(_listener: (change: WorkloadChange) => void): () => void {
    return () => {};
  }

  /** Follows the CR source's ClusterMigrations from now on. */
  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.unsubscribe = this.options.source.onObjectsChanged(() => this.sync());
    this.sync();
    let lastResync = this.options.clock.now();
    const tick = () => {
      // A replica that just became the leader carries out what the follower only planned.
      const leading = this.options.isLeader();
      const resyncDue = this.options.clock.now() - lastResync >= (this.options.resyncIntervalMs ?? 60_000);
      if (resyncDue) {
        lastResync = this.options.clock.now();
        for (const watcher of this.watchers.values()) watcher.resync();
      } else if (leading && !this.leading) this.poke();
      this.leading = leading;
      this.timer = setTimeout(tick, LEADER_CHECK_MS);
      this.timer.unref();
    };
    this.leading = this.options.isLeader();
    this.timer = setTimeout(tick, LEADER_CHECK_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await Promise.all([...this.watchers.values()].map((watcher) => watcher.stop()));
    this.watchers.clear();
  }

  /** Resolves once every migration's pending plan is carried out (tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.watchers.values()].map((watcher) => watcher.idle()));
  }

  /** A reconcile of every migration now (e.g. this replica just became the leader). */
  poke(): void {
    for (const watcher of this.watchers.values()) watcher.schedule();
  }

  private sync(): void {
    const wanted = new Map<string, Accepted>();
    for (const [name, resolution] of this.options.source.migrationResolutions())
      if (resolution.ok && !resolution.deleting) wanted.set(name, resolution);
    for (const [name, watcher] of this.watchers) {
      const next = wanted.get(name);
      if (next && watchIdentity(next) === watcher.identity) continue;
      this.watchers.delete(name);
      void watcher.stop();
    }
    for (const [name, migration] of wanted) {
      let watcher = this.watchers.get(name);
      if (!watcher) {
        watcher = new MigrationWatcher(this.options, migration);
        this.watchers.set(name, watcher);
        watcher.start();
      } else watcher.update(migration);
      watcher.schedule();
    }
  }
}

class MigrationWatcher {
  readonly identity: string;
  private migration: Accepted;
  private readonly options: DiscoveryOptions;
  private readonly caller: KubeCaller;
  private readonly api: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly stopping = new AbortController();
  private pair: ClusterPair | undefined;
  private pairProblem: string | undefined;
  private lists: { old?: WatchedList; new?: WatchedList; namespaces?: WatchedList } = {};
  private versions: ClusterMigrationStatus['clusters'] | undefined;
  private versionProblem: string | undefined;
  private running: Promise<void> = Promise.resolve();
  private queued = false;
  private lastWritten: unknown;
  /** Creations sent but not yet seen in the home cluster's watch, so they are not sent twice. */
  private readonly creating = new Set<string>();

  constructor(options: DiscoveryOptions, migration: Accepted) {
    this.options = options;
    this.migration = migration;
    this.identity = watchIdentity(migration);
    this.caller = homeClusterCaller(options);
    this.api = options.home.makeApiClient(CustomObjectsApi);
    this.core = options.home.makeApiClient(CoreV1Api);
  }

  private get name(): string {
    return this.migration.name;
  }

  update(migration: Accepted): void {
    this.migration = migration;
  }

  start(): void {
    this.running = this.running.then(() => this.connect());
  }

  resync(): void {
    this.versions = undefined;
    this.schedule();
  }

  /** Plans again soon; calls while one runs are folded into one more. */
  schedule(): void {
    if (this.queued || this.stopping.signal.aborted) return;
    this.queued = true;
    this.running = this.running.then(async () => {
      this.queued = false;
      if (this.stopping.signal.aborted) return;
      try {
        await this.reconcile();
      } catch (error) {
        this.options.logger?.warn(
          { migration: this.name, err: error },
          `discovery of ClusterMigration ${this.name} failed: ${errorMessage(error)}; tried again on the next change`,
        );
      }
    });
  }

  idle(): Promise<void> {
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(Object.values(this.lists).map((list) => list?.stop()));
    if (this.pair) this.options.pairs.release(this.migration.settings, HOLDER(this.name));
    await this.running.catch(() => {});
  }

  private signal(): AbortSignal {
    return timeoutSignal(this.options.requestTimeoutMs * 3, this.stopping.signal);
  }

  /** The pair's clients, then the watches (a selector's only); a failure is retried on resync. */
  private async connect(): Promise<void> {
    if (this.pair || this.stopping.signal.aborted) return;
    try {
      this.pair = await this.options.pairs.acquire(this.migration.settings, HOLDER(this.name), this.signal());
      this.pairProblem = undefined;
    } catch (error) {
      this.pairProblem = errorMessage(error);
      return;
    }
    if (this.migration.spec.selector === undefined) return;
    const restart = this.options.restartDelayMs ?? 2_000;
    const timeout = this.options.requestTimeoutMs;
    const changed = () => this.schedule();
    const deployments = (kube: KubeConfig, role: 'old' | 'new') => {
      const apps = kube.makeApiClient(AppsV1Api);
      return new WatchedList(
        kube,
        '/apis/apps/v1/deployments',
        async () =>
          (await apps.listDeploymentForAllNamespaces({}, requestOptions(timeoutSignal(timeout)))) as never,
        changed,
        restart,
        this.options.logger,
        `Deployments in the ${role} cluster ${this.migration.settings.clusters[role].name}`,
      );
    };
    this.lists.old = deployments(this.pair.kube.old, 'old');
    this.lists.new = deployments(this.pair.kube.new, 'new');
    if (this.migration.spec.selector.namespaceSelector) {
      const core = this.pair.kube.old.makeApiClient(CoreV1Api);
      this.lists.namespaces = new WatchedList(
        this.pair.kube.old,
        '/api/v1/namespaces',
        async () => (await core.listNamespace({}, requestOptions(timeoutSignal(timeout)))) as never,
        changed,
        restart,
        this.options.logger,
        `Namespaces in the old cluster ${this.migration.settings.clusters.old.name}`,
      );
    }
    // Not awaited: a list that fails is retried by its WatchedList, and reports as a condition.
    for (const list of Object.values(this.lists)) void list?.begin();
  }

  private async readVersions(pair: ClusterPair): Promise<void> {
    const read = async (role: 'old' | 'new') => {
      const name = pair.clusters[role].name;
      const caller = new KubeCaller({ cluster: name, requestTimeoutMs: this.options.requestTimeoutMs });
      const info = await caller.call({ verb: 'get', object: 'the API server version' }, this.signal(), (s) =>
        pair.kube[role].makeApiClient(VersionApi).getCode(requestOptions(s)),
      );
      return { name, version: info.gitVersion };
    };
    try {
      const [old, fresh] = await Promise.all([read('old'), read('new')]);
      this.versions = { old, new: fresh };
      this.versionProblem = undefined;
    } catch (error) {
      this.versionProblem = errorMessage(error);
    }
  }

  private async reconcile(): Promise<void> {
    if (!this.pair) await this.connect();
    const pair = this.pair;
    const now = this.options.clock.now();
    const conditions: SourceCondition[] = [];
    const fields: Partial<ClusterMigrationStatus> = {};
    if (!pair) {
      conditions.push({
        type: 'ClusterVersions',
        status: 'Unknown',
        reason: 'ClustersUnavailable',
        message: `the clusters could not be reached: ${this.pairProblem ?? 'not connected yet'}`,
      });
    } else {
      if (this.versions === undefined) await this.readVersions(pair);
      conditions.push(this.versionCondition());
      if (this.versions) fields.clusters = this.versions;
    }
    const selector = this.migration.spec.selector;
    if (selector !== undefined) {
      const discovered = pair ? await this.discover() : undefined;
      if (discovered) {
        Object.assign(fields, discovered.fields);
        conditions.push(discovered.condition);
      } else if (!pair)
        conditions.push({
          type: 'Discovered',
          status: 'False',
          reason: 'ClustersUnavailable',
          message: `the clusters could not be reached: ${this.pairProblem ?? 'not connected yet'}`,
        });
    }
    if (!this.options.isLeader()) return;
    const written = { fields, conditions };
    if (isDeepStrictEqual(written, this.lastWritten)) return;
    await this.options.status.writeFields(this.name, fields, conditions, now, this.signal());
    this.lastWritten = written;
  }

  private versionCondition(): SourceCondition {
    if (!this.versions)
      return {
        type: 'ClusterVersions',
        status: 'Unknown',
        reason: 'VersionUnknown',
        message: `the clusters' versions could not be read: ${this.versionProblem ?? 'not yet'}`,
      };
    const { old, new: fresh } = this.versions;
    const swapped = swappedVersions(
      { name: old.name, version: old.version ?? '' },
      { name: fresh.name, version: fresh.version ?? '' },
    );
    return swapped
      ? {
          type: 'ClusterVersions',
          status: 'False',
          reason: 'NewClusterOlder',
          message: `${swapped}; every workload's preflight refuses it`,
        }
      : {
          type: 'ClusterVersions',
          status: 'True',
          reason: 'NewNotOlder',
          message: `old ${old.name} runs ${old.version}, new ${fresh.name} runs ${fresh.version}`,
        };
  }

  /** Plans and (as leader) carries out; undefined while the watches have not listed yet. */
  private async discover(): Promise<
    { fields: Partial<ClusterMigrationStatus>; condition: SourceCondition } | undefined
  > {
    const { old, new: fresh, namespaces } = this.lists;
    const lists = [old, fresh, namespaces].filter((list): list is WatchedList => list !== undefined);
    const broken = lists.find((list) => list.broken !== undefined);
    if (broken || lists.some((list) => !list.listed) || !old || !fresh) {
      return broken
        ? {
            fields: {},
            condition: {
              type: 'Discovered',
              status: 'False',
              reason: 'WatchFailed',
              message: `watching the clusters failed (${broken.broken}); nothing is created or deleted until it lists again`,
            },
          }
        : undefined;
    }
    const plan = planDiscovery({
      migration: {
        name: this.name,
        ...(this.migration.settings.uid ? { uid: this.migration.settings.uid } : {}),
        spec: this.migration.spec,
      },
      parity: this.parityPolicy(),
      old: old.informer.list().map(deploymentView),
      new: new Map(
        fresh.informer
          .list()
          .map(deploymentView)
          .map((view) => [`${view.namespace}/${view.name}`, view]),
      ),
      ...(namespaces
        ? {
            namespaces: new Map(
              namespaces.informer.list().map((ns) => [ns.metadata?.name ?? '', ns.metadata?.labels ?? {}]),
            ),
          }
        : {}),
      workloadMigrations: [...this.options.source.workloadMigrations()].map(workloadMigrationView),
    });
    const missingNamespaces = this.options.isLeader() ? await this.carryOut(plan) : new Set<string>();
    return {
      fields: discoveryStatus(plan),
      condition: discoveredCondition(plan, missingNamespaces, this.migration.settings.clusters.old.name),
    };
  }

  /** A migration's parity over the file's, as a workload of it resolves (a parity setting replaces the one under it). */
  private parityPolicy(): ParityPolicy {
    const parity = this.migration.spec.defaults?.parity ?? this.options.process.defaults?.parity;
    return {
      mode: parity?.mode ?? DEFAULT_POLICY.parity.mode,
      allow: parity?.allow ?? DEFAULT_POLICY.parity.allow,
    };
  }

  /** Creates, updates and deletes as planned; returns the namespaces the home cluster lacks. */
  private async carryOut(plan: DiscoveryPlan): Promise<Set<string>> {
    const uid = this.migration.settings.uid;
    const missing = new Set<string>();
    const target = { group: GROUP, version: VERSION, plural: WORKLOAD_MIGRATION.plural };
    const log = this.options.logger?.child({ migration: this.name });
    const homeNamespaces = new Map<string, boolean>();
    const namespaceExists = async (namespace: string) => {
      let exists = homeNamespaces.get(namespace);
      if (exists === undefined) {
        exists = await this.caller.call(
          { verb: 'get', object: `namespace ${namespace}` },
          this.signal(),
          async (s) => {
            try {
              await this.core.readNamespace({ name: namespace }, requestOptions(s));
              return true;
            } catch (error) {
              if (isNotFound(error)) return false;
              throw error;
            }
          },
        );
        homeNamespaces.set(namespace, exists);
      }
      return exists;
    };
    const seen = new Set(
      [...this.options.source.workloadMigrations()].map(
        (o) => `${o.metadata?.namespace}/${o.metadata?.name}`,
      ),
    );
    for (const key of [...this.creating]) if (seen.has(key)) this.creating.delete(key);
    if (uid !== undefined)
      for (const desired of plan.create) {
        const key = `${desired.namespace}/${desired.name}`;
        if (this.creating.has(key)) continue;
        if (!(await namespaceExists(desired.namespace))) {
          missing.add(desired.namespace);
          continue;
        }
        try {
          await this.caller.call({ verb: 'create', object: `WorkloadMigration ${key}` }, this.signal(), (s) =>
            this.api.createNamespacedCustomObject(
              {
                ...target,
                namespace: desired.namespace,
                body: workloadMigrationObject(desired, { name: this.name, uid }),
              },
              requestOptions(s),
            ),
          );
          this.creating.add(key);
          log?.info({ workloadMigration: key }, `discovery created WorkloadMigration ${key}`);
        } catch (error) {
          // Already there (our own create, not yet watched): the next plan sees it.
          if (httpStatusOf(error) === 409) continue;
          if (isNotFound(error)) {
            missing.add(desired.namespace);
            continue;
          }
          throw error;
        }
      }
    for (const { existing, desired } of plan.update) {
      const key = `${existing.namespace}/${existing.name}`;
      if (uid === undefined) break;
      try {
        await this.api.replaceNamespacedCustomObject(
          {
            ...target,
            namespace: existing.namespace,
            name: existing.name,
            body: workloadMigrationObject(
              desired,
              { name: this.name, uid },
              {
                ...(existing.resourceVersion ? { resourceVersion: existing.resourceVersion } : {}),
                ...(existing.annotations ? { annotations: existing.annotations } : {}),
              },
            ),
          },
          requestOptions(this.signal()),
        );
        log?.info({ workloadMigration: key }, `discovery updated WorkloadMigration ${key}`);
      } catch (error) {
        // A conflict or a deletion meanwhile: the watch brings the news and a new plan.
        if (httpStatusOf(error) === 409 || isNotFound(error)) continue;
        throw error;
      }
    }
    for (const { existing, why } of plan.remove) {
      const key = `${existing.namespace}/${existing.name}`;
      try {
        await this.api.deleteNamespacedCustomObject(
          {
            ...target,
            namespace: existing.namespace,
            name: existing.name,
            ...(existing.resourceVersion
              ? { body: { preconditions: { resourceVersion: existing.resourceVersion } } }
              : {}),
          },
          requestOptions(this.signal()),
        );
        log?.info(
          { workloadMigration: key, why },
          `discovery deleted WorkloadMigration ${key}, which never started: ${why}`,
        );
      } catch (error) {
        if (httpStatusOf(error) === 409 || isNotFound(error)) continue;
        throw error;
      }
    }
    for (const { existing, why } of plan.kept)
      log?.info(
        { workloadMigration: `${existing.namespace}/${existing.name}`, why },
        'discovery leaves a WorkloadMigration that has started alone although it is no longer wanted',
      );
    return missing;
  }
}
