// The rollout state machine: (state, observation, now) -> { state, actions }, and the
// operator calls. Pure and synchronous: the controller observes, calls these, and performs
// the actions. Ordering invariants live here, so they are tested without any I/O:
//  - the new cluster is scaled and READY before its weight is raised;
//  - the weight is lowered before anything is scaled down;
//  - nothing advances or promotes on inconclusive or missing data, and a step's hold counts
//    only observed time with passing checks in a row;
//  - traffic goes back to the old cluster no faster than its ready replicas carry it (unless
//    the breach is critical), and the new cluster keeps its replicas until the old one is back
//    at its starting capacity;
//  - a route that cannot carry the split written (a server out of service) stops the rollout.

//
// This file is the public entry and one tick's dispatch; each concern lives beside it:
// draft.ts (the decision context), preflight.ts, analysis.ts, step-advance.ts, promotion.ts,
// rollback.ts, replicas.ts, commands.ts (operator calls, restart, admission), blue-green.ts.

import { analyse, correctDrift, resumeIfRecovered, unrepairableSplit } from './analysis.js';
import { blueGreen } from './blue-green.js';
import { Draft, pause } from './draft.js';
import type { RolloutPolicy } from './policy.js';
import { preflight } from './preflight.js';
import { promote } from './promotion.js';
import { rollBack } from './rollback.js';
import { progress } from './step-advance.js';
import type { Decision, Observation, RolloutState } from './types.js';

export { admit, applyCommand, resumeAfterRestart } from './commands.js';
export { MAX_CHECKS, MAX_HISTORY, newRolloutState } from './draft.js';
export { compareImages } from './preflight.js';

export function decide(
  state: RolloutState,
  observation: Observation,
  now: number,
  policy: RolloutPolicy,
): Decision {
  const draft = new Draft(state, now);
  switch (state.phase) {
    case 'Preflight':
      preflight(draft, observation, policy);
      break;
    case 'Progressing':
    case 'Paused': {
      correctDrift(draft, observation);
      // A rollout keeps the strategy it started with (state.blueGreen), whatever the policy says now.
      if (draft.state.blueGreen) {
        blueGreen(draft, observation, policy);
        break;
      }
      const splitProblem = unrepairableSplit(draft.state, observation);
      if (splitProblem && draft.state.phase === 'Progressing') pause(draft, 'route-split', splitProblem);
      analyse(draft, observation, policy);
      if (draft.state.phase === 'Progressing') progress(draft, observation, policy);
      else if (draft.state.phase === 'Paused') resumeIfRecovered(draft, observation);
      break;
    }
    case 'Promoting':
      correctDrift(draft, observation);
      promote(draft, observation, policy);
      break;
    case 'RollingBack':
      correctDrift(draft, observation);
      rollBack(draft, observation, policy);
      break;
    default:
      // Pending, Succeeded, RolledBack, Failed: nothing to do until an operator call.
      break;
  }
  return draft.done();
}
