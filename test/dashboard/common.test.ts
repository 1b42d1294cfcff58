// The dashboard runs in the browser as plain JavaScript and cannot import the controller's
// TypeScript, so its one copy of the terminal phases is held to the controller's here.

import t from 'tap';
import { TERMINAL_PHASES } from '../../src/rollout/types.js';

t.test("the dashboard's terminal phases are the controller's", async (t) => {
  // A URL, not a specifier: the browser module has no type declarations for the compiler.
  const common = (await import(new URL('../../src/dashboard/common.js', import.meta.url).href)) as {
    TERMINAL: ReadonlySet<string>;
  };
  t.same([...common.TERMINAL].sort(), [...TERMINAL_PHASES].sort());
});
