// The home cluster holds the ClusterMigrations and WorkloadMigrations; every client of them
// calls it the same way.

import { KubeCaller, type RetryPolicy } from '../kube/kube-call.js';
import type { Sleep } from '../timing.js';

/** The part of a home-cluster client's options that says how it calls. */
export interface HomeClusterCallOptions {
  requestTimeoutMs: number;
  retry?: RetryPolicy;
  sleep?: Sleep;
}

export function homeClusterCaller(options: HomeClusterCallOptions): KubeCaller {
  return new KubeCaller({
    cluster: 'home',
    requestTimeoutMs: options.requestTimeoutMs,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
}
