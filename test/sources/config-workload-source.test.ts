// The configuration file as a WorkloadSource: its workloads, fixed, with their origin.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigWorkloadSource } from '../../src/sources/workload-source.js';

t.test("the file's workloads, as the CR source gives its own", async (t) => {
  const config = parseConfigText(
    readFileSync(new URL('../../config/istio.yaml', import.meta.url), 'utf8'),
    'istio.yaml',
  );
  const source = new ConfigWorkloadSource({ workloads: config.workloads, source: 'clustershift.yaml' });
  await source.start(AbortSignal.timeout(1000));
  const workload = source.workloads().get(config.workloads[0]!.key);
  t.same(workload, {
    ...config.workloads[0],
    origin: { kind: 'config', source: 'clustershift.yaml' },
    paused: false,
    deleting: false,
  });
  t.equal(source.workloads().size, config.workloads.length);
  const unsubscribe = source.subscribe(() => t.fail('a file never changes under a running process'));
  unsubscribe();
  await source.stop();
  const aborted = AbortSignal.abort(new Error('stopping'));
  await t.rejects(source.start(aborted), /stopping/);
});
