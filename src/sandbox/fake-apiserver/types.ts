// The fake API server's public shapes (options, faults, the write log, objects) and small JSON helpers.

import type { IncomingMessage } from 'node:http';
import type { Clock } from '../../clock.js';

export interface FakeApiServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** How long after a scale-up a Deployment's new replicas become ready (default 0). */
  readyDelayMs?: number;
  /** Drives timestamps and readiness; a ManualClock makes readiness tests instant. */
  clock?: Clock;
  /** How often a watch asked for bookmarks (allowWatchBookmarks) gets one (default 5000). */
  bookmarkIntervalMs?: number;
  /** How many changes a watch can resume over before it is answered 410 Gone (default 10,000). */
  watchHistoryLimit?: number;
  /** The gitVersion GET /version answers, e.g. v1.31.2 (default v1.32.0-clustershift-fake). */
  kubernetesVersion?: string;
}

export type FaultKind = 500 | 429 | 'hang';

export interface FaultSpec {
  status: FaultKind;
  /** How many matching requests get the fault. */
  count: number;
  pathIncludes?: string;
  method?: string;
  /** For 429: the Retry-After header (default 1). */
  retryAfterSeconds?: number;
  /** Narrow the fault further, e.g. to one client's User-Agent. */
  match?: (request: { method: string; path: string; headers: IncomingMessage['headers'] }) => boolean;
}

export interface WriteRecord {
  at: number;
  method: string;
  /** The URL path without the query string. */
  path: string;
  query: string;
  contentType: string | undefined;
  /** Parsed JSON when the body is JSON, else the raw text; undefined when empty. */
  body: unknown;
  /** The HTTP status answered, or 'hang' for a request held open by a fault. */
  status: number | 'hang';
  /**
   * Who wrote: the bearer token of the Authorization header (the fake authenticates nobody,
   * so the token only names the caller, e.g. one kubeconfig user per replica); undefined without one.
   */
  user?: string;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a handler answers; the HTTP layer serialises it. */
export interface Answer {
  code: number;
  body: unknown;
}
