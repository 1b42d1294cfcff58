// The migrations read API: GET /api/v1/migrations and GET /api/v1/migrations/:name. Each
// ClusterMigration as last watched (its spec's clusters and pause, and its status: counts, waves,
// blockers, traffic on the new cluster, the estimate, leftovers, decommissionReady), and on the
// detail its workloads with their phase and weight from the controller. Without CRDs the list is
// empty and every name is unknown.

import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ClusterMigrationObject } from '../crd/schema.js';
import { ClusterMigrationStatusSchema, PhaseCountsSchema } from '../crd/schema.js';
import { MigrationNotFoundError } from '../errors.js';
import { DNS_SUBDOMAIN } from '../kube/names.js';
import type { RolloutState } from '../rollout/types.js';
import { ErrorSchema } from './error-body.js';

/** Where the API finds the migrations: the CR source's watch cache and running workloads. */
export interface MigrationDirectory {
  /** Every ClusterMigration as last listed or watched, status included. */
  list(): readonly ClusterMigrationObject[];
  /** The keys (namespace/name) of the workloads a migration runs now. */
  workloadsOf(migration: string): readonly string[];
}

const status = ClusterMigrationStatusSchema.properties;
const ClusterSide = Type.Object({ name: Type.String(), version: Type.Optional(Type.String()) });

export const MigrationSummarySchema = Type.Object(
  {
    name: Type.String(),
    clusters: Type.Object({ old: ClusterSide, new: ClusterSide }),
    paused: Type.Boolean({ description: 'spec.paused: every workload of the migration holds' }),
    counts: PhaseCountsSchema,
    waves: Type.Array(status.waves.items),
    currentWave: Type.Optional(Type.String()),
    blockers: Type.Array(status.blockers.items),
    blockerCount: Type.Integer({ minimum: 0 }),
    trafficOnNew: Type.Optional(status.trafficOnNew),
    estimatedCompletionTime: Type.Optional(Type.String({ format: 'date-time' })),
    leftovers: Type.Array(status.leftovers.items),
    leftoverCount: Type.Integer({ minimum: 0 }),
    decommissionReady: Type.Boolean(),
    decommissionMessage: Type.Optional(Type.String()),
    missingInNewCount: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { $id: 'MigrationSummary' },
);
export type MigrationSummary = Static<typeof MigrationSummarySchema>;

export const MigrationWorkloadSchema = Type.Object({
  key: Type.String(),
  phase: Type.Optional(Type.String({ description: 'absent while the controller does not run it yet' })),
  weight: Type.Optional(Type.Integer({ description: 'new-cluster weight in force, percent' })),
});

export const MigrationDetailSchema = Type.Object(
  {
    ...MigrationSummarySchema.properties,
    workloads: Type.Array(MigrationWorkloadSchema),
    missingInNew: Type.Array(status.missingInNew.items),
  },
  { $id: 'MigrationDetail' },
);
export type MigrationDetail = Static<typeof MigrationDetailSchema>;

export const MigrationListSchema = Type.Object(
  { migrations: Type.Array(MigrationSummarySchema) },
  { $id: 'MigrationList' },
);

const MigrationParams = Type.Object({ name: Type.String({ ...DNS_SUBDOMAIN }) });

interface SpecView {
  clusters?: { old?: { name?: string }; new?: { name?: string } };
  paused?: boolean;
}

/** What the list shows of one ClusterMigration. */
export function migrationSummary(object: ClusterMigrationObject): MigrationSummary {
  const spec = (object.spec ?? {}) as SpecView;
  const s = object.status ?? {};
  const side = (role: 'old' | 'new') => {
    const named = s.clusters?.[role];
    const name = spec.clusters?.[role]?.name ?? named?.name ?? '';
    return { name, ...(named?.name === name && named.version ? { version: named.version } : {}) };
  };
  return {
    name: object.metadata?.name ?? '',
    clusters: { old: side('old'), new: side('new') },
    paused: spec.paused === true,
    counts: s.counts ?? { total: 0 },
    waves: s.waves ?? [],
    ...(s.currentWave !== undefined ? { currentWave: s.currentWave } : {}),
    blockers: s.blockers ?? [],
    blockerCount: s.blockerCount ?? s.blockers?.length ?? 0,
    ...(s.trafficOnNew ? { trafficOnNew: s.trafficOnNew } : {}),
    ...(s.estimatedCompletionTime ? { estimatedCompletionTime: s.estimatedCompletionTime } : {}),
    leftovers: s.leftovers ?? [],
    leftoverCount: s.leftoverCount ?? s.leftovers?.length ?? 0,
    decommissionReady: s.decommissionReady === true,
    ...(s.decommissionMessage ? { decommissionMessage: s.decommissionMessage } : {}),
    ...(s.missingInNewCount !== undefined ? { missingInNewCount: s.missingInNewCount } : {}),
  };
}

export interface MigrationRoutesOptions {
  migrations?: MigrationDirectory;
  /** A rollout's state, undefined while the controller does not run it. */
  rollout: (key: string) => RolloutState | undefined;
}

export function registerMigrationRoutes(app: FastifyInstance, options: MigrationRoutesOptions): void {
  const all = () =>
    [...(options.migrations?.list() ?? [])].sort((a, b) =>
      (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );

  app.get(
    '/api/v1/migrations',
    {
      schema: {
        summary: 'List ClusterMigrations with their progress: counts, waves, blockers, traffic, leftovers',
        tags: ['migrations'],
        response: { 200: MigrationListSchema },
      },
    },
    async () => ({ migrations: all().map(migrationSummary) }),
  );

  app.get<{ Params: Static<typeof MigrationParams> }>(
    '/api/v1/migrations/:name',
    {
      schema: {
        summary: 'One ClusterMigration: its progress and its workloads',
        tags: ['migrations'],
        params: MigrationParams,
        response: { 200: MigrationDetailSchema, 400: ErrorSchema, 404: ErrorSchema },
      },
    },
    async (request): Promise<MigrationDetail> => {
      const { name } = request.params;
      const object = all().find((m) => m.metadata?.name === name);
      if (!object) throw new MigrationNotFoundError(name);
      const workloads = [...(options.migrations?.workloadsOf(name) ?? [])].sort().map((key) => {
        const state = options.rollout(key);
        return { key, ...(state ? { phase: state.phase, weight: state.weight } : {}) };
      });
      return { ...migrationSummary(object), workloads, missingInNew: object.status?.missingInNew ?? [] };
    },
  );
}
