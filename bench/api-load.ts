// Runs autocannon in its own process for bench:api, so the load generator does not share the
// controller's event loop. Input: one JSON argument; output: one JSON line on stdout.

import autocannon from 'autocannon';

interface LoadInput {
  url: string;
  paths: string[];
  connections: number;
  durationSeconds: number;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as LoadInput;
  let next = 0;
  const result = await autocannon({
    url: input.url,
    connections: input.connections,
    duration: input.durationSeconds,
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => ({ ...request, path: input.paths[next++ % input.paths.length]! }),
      },
    ],
  });
  process.stdout.write(
    `${JSON.stringify({
      requests: result.requests.total,
      requestsPerSecond: result.requests.average,
      latencyMs: {
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        max: result.latency.max,
      },
      throughputBytesPerSecond: result.throughput.average,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
    })}\n`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
