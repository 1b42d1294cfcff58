// Leader election over a coordination.k8s.io/v1 Lease, the way Kubernetes controllers do it
// (client-go's leaderelection): acquire when the lease is free or has not changed for
// leaseDuration by our own clock, renew every retryPeriod, and write only with the
// resourceVersion last read, so a 409 means someone else won the round.
//
// The safety rule: a leader that has not renewed within renewDeadline (< leaseDuration) of its
// last renewal's start stops being leader on its own clock, whatever its requests are doing.
// Another replica takes over only after seeing no change for leaseDuration, which is later, so
// two replicas never both believe they lead (with clocks that run at the same rate).

import type { Clock } from '../clock.js';
import { ConfigError } from '../errors.js';
import { abortableSleep, type Sleep, timeoutSignal } from '../timing.js';
import {
  CoordinationV1Api,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
  V1MicroTime,
} from './client-node.js';
import { httpStatusOf, isNotFound, KubeCaller, type RetryPolicy, requestOptions } from './kube-call.js';

export interface LeaseElectorOptions {
  kubeConfig: KubeConfig;
  /** Where the Lease lives (the controller's namespace). */
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** This replica, e.g. the pod name; unique among candidates. */
  identity: string;
  /** Default 15000, like Kubernetes controllers. */
  leaseDurationMs?: number;
  /** Default 10000; must be below leaseDurationMs. */
  renewDeadlineMs?: number;
  /** Default 2000; how often to try to acquire or renew. */
  retryPeriodMs?: number;
  /** Per round; default renewDeadlineMs, and never past the renew deadline while leading. */
  requestTimeoutMs?: number;
  /** Measures lease timing; default a monotonic clock, so wall-clock jumps cannot stretch a lease. */
  clock?: Clock;
  sleep?: Sleep;
  random?: () => number;
  /** Told about failed rounds (the loop goes on). */
  onError?: (error: unknown) => void;
}

export interface LeadershipChange {
  isLeader: boolean;
  /** The holder as last seen. */
  leader: string | undefined;
}

/** Acquisition retries wait retryPeriod plus up to this fraction, so candidates spread out. */
const JITTER = 0.2;
const ONE_TRY: RetryPolicy = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };
const monotonicClock: Clock = { now: () => performance.now() };

export class LeaseElector {
  private readonly coordination: CoordinationV1Api;
  private readonly namespace: string;
  private readonly name: string;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly requestTimeoutMs: number;
  private readonly clock: Clock;
  private readonly sleep: Sleep;
  private readonly random: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly caller: KubeCaller;
  private readonly listeners = new Set<(change: LeadershipChange) => void>();

  /** The Lease names us and we have renewed it (see isLeader for the deadline). */
  private holding = false;
  private lastRenewStartedAt = Number.NEGATIVE_INFINITY;
  /** The Lease as last read or written, and when (our clock) it last changed. */
  private observed: V1Lease | undefined;
  private observedAt = Number.NEGATIVE_INFINITY;
  private reported: LeadershipChange = { isLeader: false, leader: undefined };
  /** The loop resolves with whether we held the lease when it ended. */
  private running: { abort: AbortController; loop: Promise<boolean> } | undefined;

  constructor(options: LeaseElectorOptions) {
    this.coordination = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (
      !(
        this.leaseDurationMs > this.renewDeadlineMs &&
        this.renewDeadlineMs > this.retryPeriodMs * (1 + JITTER)
      )
    ) {
      throw new ConfigError(
        `leader election for lease ${this.namespace}/${this.name}: need leaseDuration (${this.leaseDurationMs}ms) > renewDeadline (${this.renewDeadlineMs}ms) > 1.2 x retryPeriod (${this.retryPeriodMs}ms)`,
      );
    }
    this.requestTimeoutMs = options.requestTimeoutMs ?? this.renewDeadlineMs;
    this.clock = options.clock ?? monotonicClock;
    this.sleep = options.sleep ?? abortableSleep;
    this.random = options.random ?? Math.random;
    this.onError = options.onError ?? (() => undefined);
    this.caller = new KubeCaller({
      cluster: 'controller',
      requestTimeoutMs: this.requestTimeoutMs,
      retry: ONE_TRY,
    });
  }

  /**
   * Campaign in the background until stop(). Aborting `signal` ends the campaign and the
   * leadership at once, but without releasing the lease: the others take over after leaseDuration.
   */
  start(signal: AbortSignal): void {
    if (this.running) throw new Error(`leader election for ${this.identity} is already running`);
    const abort = new AbortController();
    const loop = this.campaign(AbortSignal.any([signal, abort.signal]));
    this.running = { abort, loop };
  }

  /** True while we hold the lease and our last renewal began less than renewDeadline ago. */
  isLeader(): boolean {
    return this.holding && this.clock.now() - this.lastRenewStartedAt < this.renewDeadlineMs;
  }

  /** The current holder as last seen (ourselves while leading). */
  leader(): string | undefined {
    if (this.isLeader()) return this.identity;
    return this.observed?.spec?.holderIdentity || undefined;
  }

  /** Called on every change of isLeader() or leader(); returns an unsubscribe function. */
  onChange(listener: (change: LeadershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stop campaigning and, when we hold the lease, release it so another replica can lead at once. */
  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    running.abort.abort(new Error('leader election stopped'));
    const held = await running.loop;
    this.running = undefined;
    if (held && this.observed) await this.release(this.observed);
  }

  /** Rounds until the signal aborts; then we stop leading (reported) and say whether we held the lease. */
  private async campaign(signal: AbortSignal): Promise<boolean> {
    await this.rounds(signal);
    const held = this.holding;
    this.holding = false;
    this.report();
    return held;
  }

  private async rounds(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.round(signal);
      const now = this.clock.now();
      const wait = this.holding
        ? // Wake up at the renew deadline at the latest, so a step-down is reported on time.
          Math.min(this.retryPeriodMs, Math.max(0, this.lastRenewStartedAt + this.renewDeadlineMs - now))
        : this.retryPeriodMs * (1 + this.random() * JITTER);
      try {
        await this.sleep(wait, signal);
      } catch {
        return;
      }
    }
  }

  private async round(signal: AbortSignal): Promise<void> {
    this.stepDownIfLate();
    const startedAt = this.clock.now();
    // Whole ms, rounded down: the monotonic clock is fractional, and the error message and the
    // timer should say the same number (never more than the renew deadline allows).
    const timeoutMs = this.holding
      ? Math.max(
          1,
          Math.floor(
            Math.min(this.requestTimeoutMs, this.lastRenewStartedAt + this.renewDeadlineMs - startedAt),
          ),
        )
      : this.requestTimeoutMs;
    try {
      const renewed = await this.caller.call(
        { verb: 'acquire or renew', object: `lease ${this.namespace}/${this.name}`, timeoutMs },
        signal,
        (s) => this.tryAcquireOrRenew(s),
      );
      if (renewed) {
        this.holding = true;
        this.lastRenewStartedAt = startedAt;
      }
    } catch (error) {
      if (!signal.aborted) this.onError(error);
    }
    this.stepDownIfLate();
  }

  private stepDownIfLate(): void {
    if (this.holding && !this.isLeader()) this.holding = false;
    this.report();
  }

  /** One round: true when the Lease now names us with a fresh renewTime. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const options = requestOptions(signal, undefined, {
      'User-Agent': `clustershift/${this.identity} (leader-election)`,
    });
    let lease: V1Lease | undefined;
    try {
      lease = await this.coordination.readNamespacedLease(
        { name: this.name, namespace: this.namespace },
        options,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const wallNow = new V1MicroTime(Date.now());
    if (!lease) {
      try {
        const created = await this.coordination.createNamespacedLease(
          {
            namespace: this.namespace,
            body: {
              metadata: { name: this.name, namespace: this.namespace },
              spec: this.ourSpec({ acquireTime: wallNow, renewTime: wallNow, leaseTransitions: 0 }),
            },
          },
          options,
        );
        this.observe(created);
        return true;
      } catch (error) {
        if (httpStatusOf(error) === 409) return false;
        throw error;
      }
    }
    this.observe(lease);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const mine = holder === this.identity;
    if (holder !== undefined && !mine && this.clock.now() < this.observedAt + this.leaseDurationMs) {
      this.holding = false; // someone else holds a live lease, whatever we believed
      return false;
    }
    const transitions = spec.leaseTransitions ?? 0;
    try {
      const replaced = await this.coordination.replaceNamespacedLease(
        {
          name: this.name,
          namespace: this.namespace,
          body: {
            ...lease,
            spec: {
              ...spec,
              ...this.ourSpec({
                acquireTime: mine && spec.acquireTime ? spec.acquireTime : wallNow,
                renewTime: wallNow,
                leaseTransitions: mine ? transitions : transitions + 1,
              }),
            },
          },
        },
        options,
      );
      this.observe(replaced);
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 409) return false;
      throw error;
    }
  }

  private ourSpec(times: Pick<V1LeaseSpec, 'acquireTime' | 'renewTime' | 'leaseTransitions'>): V1LeaseSpec {
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseDurationMs / 1000)),
      ...times,
    };
  }

  /** Remember the Lease; its expiry is counted from when we saw it change, not from its renewTime. */
  private observe(lease: V1Lease): void {
    if (lease.metadata?.resourceVersion !== this.observed?.metadata?.resourceVersion) {
      this.observedAt = this.clock.now();
    }
    this.observed = lease;
  }

  /** Clear holderIdentity with the resourceVersion we last wrote; a 409 means it is not ours anyway. */
  private async release(lease: V1Lease): Promise<void> {
    const wallNow = new V1MicroTime(Date.now());
    try {
      await this.caller.call(
        { verb: 'release', object: `lease ${this.namespace}/${this.name}` },
        timeoutSignal(this.requestTimeoutMs),
        (s) =>
          this.coordination.replaceNamespacedLease(
            {
              name: this.name,
              namespace: this.namespace,
              body: {
                ...lease,
                spec: {
                  ...lease.spec,
                  holderIdentity: '',
                  leaseDurationSeconds: 1,
                  renewTime: wallNow,
                  acquireTime: wallNow,
                },
              },
            },
            requestOptions(s),
          ),
      );
    } catch (error) {
      this.onError(error);
    }
  }

  private report(): void {
    const now: LeadershipChange = { isLeader: this.isLeader(), leader: this.leader() };
    if (now.isLeader === this.reported.isLeader && now.leader === this.reported.leader) return;
    this.reported = now;
    for (const listener of this.listeners) {
      try {
        listener(now);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}
