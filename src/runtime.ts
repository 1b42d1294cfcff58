// Assembles a controller and its HTTP server from parts. main.ts (real clusters) and the
// sandbox demo (simulated ones) both build through here, so the demo runs the real thing.

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildServer, type ServerOptions } from './api/server.js';
import type { Clock } from './clock.js';
import type { Config } from './config/load.js';
import type { RouteConfig } from './config/schema.js';
import { Controller, type TrafficGate, type TransitionListener } from './controller.js';
import type { ClusterClient } from './kube/cluster-client.js';
import type { MetricsSource } from './metrics/metrics.js';
import type { TrafficRouter } from './routers/router.js';
import type { StateStore } from './state/state-store.js';
import { Telemetry } from './telemetry.js';

export interface RuntimeParts {
  config: Config;
  clusters: { old: ClusterClient; new: ClusterClient };
  routerFor: (route: RouteConfig) => TrafficRouter;
  metrics: MetricsSource;
  store: StateStore;
  clock: Clock;
  logger: Logger;
  telemetry?: Telemetry;
  isLeader?: () => boolean;
  leader?: ServerOptions['leader'];
  gate?: TrafficGate;
  onTransition?: TransitionListener;
  server?: Pick<ServerOptions, 'before' | 'after' | 'bodyLimit' | 'https'>;
}

export interface Runtime {
  controller: Controller;
  server: FastifyInstance;
  telemetry: Telemetry;
}

export async function createRuntime(parts: RuntimeParts): Promise<Runtime> {
  const telemetry = parts.telemetry ?? new Telemetry();
  const controller = new Controller({
    workloads: parts.config.workloads,
    settings: parts.config.controller,
    clusters: parts.clusters,
    routerFor: parts.routerFor,
    metrics: parts.metrics,
    store: parts.store,
    clock: parts.clock,
    logger: parts.logger,
    telemetry,
    ...(parts.isLeader ? { isLeader: parts.isLeader } : {}),
    ...(parts.gate ? { gate: parts.gate } : {}),
    ...(parts.onTransition ? { onTransition: parts.onTransition } : {}),
  });
  const server = await buildServer({
    controller,
    workloads: parts.config.workloads,
    telemetry,
    logger: parts.logger,
    ...(parts.leader ? { leader: parts.leader } : {}),
    ...parts.server,
  });
  return { controller, server, telemetry };
}
