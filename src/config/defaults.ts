// Every default in one place; config/README.md documents each (a test keeps them in step).

import { DEFAULT_PARITY_ALLOW } from '../rollout/parity.js';

export const DEFAULT_POLICY = {
  plan: { steps: [1, 5, 10, 25, 50, 100], holdTime: '1m', minPassingChecks: 2, requireApproval: false },
  analysis: {
    interval: '10s',
    latencyWindow: '1m',
    failureLimit: 2,
    inconclusiveLimit: 30,
    minRequests: 50,
    errorRate: {
      alpha: 0.05,
      maxRatio: 1.5,
      maxErrorRate: 0.05,
      criticalErrorRate: 0.5,
      negligibleErrorRate: 0.001,
    },
    latency: { maxRatio: 1.5, maxP99Ms: undefined as number | undefined, minDeltaMs: 10 },
    trafficShareTolerance: 0.5,
    startWithoutBaseline: false,
  },
  scaling: {
    headroom: 0.2,
    minReplicas: 1,
    readyTimeout: '5m',
    drainDelay: '30s',
    oldScaleDown: 'afterPromotion' as const,
    oldScaleDownDelay: '5m',
  },
  strategy: 'canary' as const,
  // A bake long enough for a periodic job or a cache expiry to show; a smoke test is one request.
  blueGreen: { bakeTime: '10m', smokeTest: { timeout: '10s' }, headerPhase: { duration: '5m' } },
  parity: { mode: 'strict' as const, allow: DEFAULT_PARITY_ALLOW },
} as const;

export const DEFAULTS = {
  controller: {
    namespace: 'clustershift',
    interval: '5s',
    maxConcurrent: 1,
    requestTimeout: '10s',
    parallelism: 32,
    autoStart: false,
  },
  leaderElection: {
    enabled: false,
    leaseName: 'clustershift-leader',
    leaseDuration: '15s',
    renewDeadline: '10s',
    retryPeriod: '2s',
  },
  api: {
    host: '0.0.0.0',
    port: 8080,
    // Secure by default: a configuration without api.auth requires tokens; the demo opts out.
    auth: { enabled: true, openPaths: ['/healthz', '/readyz', '/metrics'] },
    // Mutating calls are rare and human-paced; 30 a minute per caller leaves room for scripts.
    rateLimit: { max: 30, window: '1m' },
    // The largest body any route takes is an abort reason; 16 KiB is generous.
    bodyLimit: 16_384,
  },
  // A query that takes longer than 10s is a Prometheus in trouble; two scrape intervals (15s each
  // by default) is the shortest range that reliably holds two samples.
  metrics: { timeout: '10s', minWindow: '30s' },
  // A notification is worth a few retries, never a stuck queue: 4 attempts of at most 5s each.
  notifications: { timeout: '5s', retries: 3 },
  // A gate that cannot answer in 5s refuses the step (fail closed); the next tick asks again.
  gates: { webhook: { timeout: '5s' } },
} as const;
