// Assembles a controller and its HTTP server from parts. app.ts (real clusters, routers and
// Prometheus) and the demo (simulated ones, its own route handles and metrics source) both
// build through here, so the demo runs the real thing.

import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from './api/server.js';
import type { RuntimeConfig } from './config/load.js';
import { Controller, type ControllerOptions } from './controller.js';
import { Telemetry } from './telemetry.js';

/** The controller's parts, with its workloads and settings taken from the configuration. */
export interface RuntimeParts extends Omit<ControllerOptions, 'workloads' | 'settings'> {
  config: RuntimeConfig;
  leader?: ServerOptions['leader'];
  server?: Pick<ServerOptions, 'before' | 'after' | 'bodyLimit' | 'https'>;
  migrations?: ServerOptions['migrations'];
}

export interface Runtime {
  controller: Controller;
  server: FastifyInstance;
  telemetry: Telemetry;
}

export async function createRuntime(parts: RuntimeParts): Promise<Runtime> {
  const telemetry = parts.telemetry ?? new Telemetry();
  const { config, leader, server: serverOptions, migrations, ...controllerParts } = parts;
  const controller = new Controller({
    ...controllerParts,
    workloads: config.workloads,
    settings: config.controller,
    telemetry,
  });
  const server = await buildServer({
    controller,
    workloads: config.workloads,
    configFile: config.source,
    telemetry,
    logger: parts.logger,
    ...(leader ? { leader } : {}),
    ...(migrations ? { migrations } : {}),
    ...serverOptions,
  });
  return { controller, server, telemetry };
}
