// The acting half of a step: a decision's actions carried out in order against the clusters and
// the route.

import type { Logger } from 'pino';
import { RouterError, WeightMismatchError } from '../errors.js';
import type { Action, EventKind, RolloutState, RouteSplit } from '../rollout/types.js';
import type { WorkloadBinding } from './types.js';

/** Events of a rollout's progress, as opposed to its milestones (start, pause, promote, rollback). */
const PROGRESS_EVENTS: ReadonlySet<EventKind> = new Set<EventKind>(['StepAdvanced']);

/**
 * Performs actions in order; a weight write is read back and must match (the split read back is
 * told to `onSplitRead` either way). Events are best effort. The first failed scale or weight
 * write throws, leaving the rest undone for the next tick to decide again.
 */
export async function performActions(
  binding: WorkloadBinding,
  state: RolloutState,
  actions: readonly Action[],
  signal: AbortSignal,
  deps: { logger: Logger; onSplitRead: (split: RouteSplit) => void },
): Promise<void> {
  const { workload, clusters } = binding;
  const log = deps.logger.child({ namespace: workload.ref.namespace, workload: workload.ref.name });
  for (const action of actions) {
    switch (action.type) {
      case 'scale':
        await clusters[action.cluster].scale(workload.ref, action.replicas, signal);
        log.info({ cluster: action.cluster, replicas: action.replicas }, 'scaled');
        break;
      case 'setHpaMinReplicas':
        await clusters[action.cluster].setHpaMinReplicas(workload.ref, action.minReplicas, signal);
        log.info({ cluster: action.cluster, minReplicas: action.minReplicas }, 'set HPA minReplicas');
        break;
      case 'setWeight': {
        // The one read-back after a write, for every router: what the router says it now does.
        const { route } = binding;
        await route.setWeight(action.weight, signal);
        const readBack = await route.getSplit(signal);
        deps.onSplitRead(readBack);
        if (readBack.weight !== action.weight)
          throw new WeightMismatchError(route.description, action.weight, readBack.weight);
        log.info(
          { weight: action.weight, reason: action.reason },
          `new-cluster weight set to ${action.weight}%`,
        );
        break;
      }
      case 'setHeaderRoute': {
        const { route } = binding;
        if (!route.setHeaderRoute)
          throw new RouterError(`${route.description}: this router cannot route by request header`);
        await route.setHeaderRoute(action.header, signal);
        log.info(
          { header: action.header?.name ?? null },
          action.header ? 'header route set' : 'header route removed',
        );
        break;
      }
      case 'event': {
        const event = {
          reason: action.kind,
          message: action.message,
          type: action.warning ? 'Warning' : 'Normal',
        } as const;
        // With a WorkloadMigration to tell the whole story (kubectl describe wlm), the Deployments
        // in both clusters keep the milestones, not every step: two more Events a step cost more
        // API calls than the step's status write.
        const onDeployments = !binding.recordEvent || !PROGRESS_EVENTS.has(action.kind);
        await Promise.all([
          ...(onDeployments ? (['old', 'new'] as const) : []).map((cluster) =>
            clusters[cluster].recordEvent(workload.ref, event, signal).catch((error) => {
              log.warn({ cluster, err: error }, 'could not record a Kubernetes event');
            }),
          ),
          binding.recordEvent?.(event, signal).catch((error) => {
            log.warn({ err: error }, 'could not record a Kubernetes event on the WorkloadMigration');
          }),
        ]);
        (action.warning ? log.warn.bind(log) : log.info.bind(log))(
          { event: action.kind, phase: state.phase },
          action.message,
        );
        break;
      }
    }
  }
}
