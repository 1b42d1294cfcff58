// What the controller is built from and what it shows: its options, a workload's binding, the
// live view the API adds to the persisted state, and a tick's report.

import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Config, RolloutWorkload } from '../config/load.js';
import type { ClusterClient, KubeEvent } from '../kube/cluster-client.js';
import type { MetricsSource } from '../metrics/metrics.js';
import type { SmokeTester } from '../notify/smoke-test.js';
import type { RolloutState, RouteSplit } from '../rollout/types.js';
import type { RouteHandle } from '../routers/router.js';
import type { StateStore } from '../state/state-store.js';
import type { Telemetry } from '../telemetry.js';

/** Asked before each traffic increase; a string is the refusal that holds the step. */
export type TrafficGate = (
  state: RolloutState,
  weight: number,
  signal: AbortSignal,
) => Promise<string | undefined>;

/** Told about every committed change, e.g. to send notifications. Must not block. */
export type TransitionListener = (before: RolloutState, after: RolloutState) => void;

export interface ControllerOptions {
  workloads: readonly RolloutWorkload[];
  settings: Pick<
    Config['controller'],
    'maxConcurrent' | 'requestTimeoutMs' | 'autoStart' | 'intervalMs' | 'parallelism'
  >;
  clusters: { old: ClusterClient; new: ClusterClient };
  /** Each workload's route, bound at wiring time, by workload key. */
  routes: ReadonlyMap<string, RouteHandle>;
  metrics: MetricsSource;
  store: StateStore;
  clock: Clock;
  logger: Logger;
  telemetry?: Telemetry;
  isLeader?: () => boolean;
  gate?: TrafficGate;
  /** Blue-green's pre-validation webhook. */
  smokeTest?: SmokeTester;
  onTransition?: TransitionListener;
}

/**
 * What one workload runs with: its resolved policy, its cluster pair and its route bound against
 * that pair. The file's workloads share the process's pair; a WorkloadMigration's comes from its
 * ClusterMigration. A binding can be replaced while the rollout runs (a policy change applies
 * from the next step).
 */
export interface WorkloadBinding {
  workload: RolloutWorkload;
  clusters: { old: ClusterClient; new: ClusterClient };
  route: RouteHandle;
  /** Records each Event here too (against the WorkloadMigration); both Deployments then get only the milestones. */
  recordEvent?: (event: KubeEvent, signal: AbortSignal) => Promise<void>;
  /** A ClusterMigration's own limit on its workloads active at once, besides the controller's. */
  pacing?: { migration: string; maxConcurrent: number };
  /** False while its migration holds queued workloads (its waves: paused, or a rollback). */
  admissible?: (state: RolloutState) => boolean;
}

/** What the API shows about the clusters besides the persisted state. */
export interface LiveView {
  old?: { replicas: number; readyReplicas: number };
  new?: { replicas: number; readyReplicas: number };
  routeWeight?: number;
  /** The effective split read with routeWeight. */
  routeSplit?: RouteSplit;
  observedAt?: number;
  lastError?: string;
}

export interface TickReport {
  rollouts: number;
  active: number;
  metricsQueries: number;
  stateWrites: number;
}
