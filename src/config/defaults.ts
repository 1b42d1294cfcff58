// Every default in one place; config/README.md documents each (a test keeps them in step).

export const DEFAULT_POLICY = {
  plan: { steps: [1, 5, 10, 25, 50, 100], holdTime: '1m', minPassingChecks: 2, requireApproval: false },
  analysis: {
    interval: '10s',
    latencyWindow: '1m',
    failureLimit: 2,
    inconclusiveLimit: 30,
    minRequests: 50,
    errorRate: { alpha: 0.05, maxRatio: 1.5, maxErrorRate: 0.05, criticalErrorRate: 0.5 },
    latency: { maxRatio: 1.5, maxP99Ms: undefined as number | undefined },
    trafficShareTolerance: 0.5,
  },
  scaling: {
    headroom: 0.2,
    minReplicas: 1,
    readyTimeout: '5m',
    drainDelay: '30s',
    oldScaleDown: 'afterPromotion' as const,
    oldScaleDownDelay: '5m',
  },
} as const;

export const DEFAULTS = {
  controller: {
    namespace: 'clustershift',
    interval: '5s',
    maxConcurrent: 1,
    requestTimeout: '10s',
    autoStart: false,
  },
  leaderElection: {
    enabled: false,
    leaseName: 'clustershift-leader',
    leaseDuration: '15s',
    renewDeadline: '10s',
    retryPeriod: '2s',
  },
  api: { host: '0.0.0.0', port: 8080 },
} as const;
