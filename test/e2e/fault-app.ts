// A tiny HTTP app on loopback standing for one cluster's ingress in the end-to-end stack. Its
// faults (a share of 500s, added latency) switch at run time, so a test can break the new
// cluster mid-rollout. Every answer names who served it in `x-served-by`.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Fault {
  /** Share of requests answered 500, 0..1; spread evenly (every 10th at 0.1), not at random. */
  errorRatio?: number;
  /** Every answer waits this long first. */
  addedLatencyMs?: number;
}

export class FaultApp {
  readonly name: string;
  #server: Server | undefined;
  #errorRatio = 0;
  #addedLatencyMs = 0;
  /** Accumulates errorRatio per request; a whole unit is one 500. Deterministic, unlike a coin. */
  #errorDebt = 0;
  readonly #pending = new Set<NodeJS.Timeout>();
  served = 0;
  failed = 0;

  constructor(name: string) {
    this.name = name;
  }

  setFault(fault: Fault): void {
    const errorRatio = fault.errorRatio ?? 0;
    if (!(errorRatio >= 0 && errorRatio <= 1)) throw new Error(`errorRatio ${errorRatio} is not within 0..1`);
    this.#errorRatio = errorRatio;
    this.#addedLatencyMs = Math.max(0, fault.addedLatencyMs ?? 0);
    this.#errorDebt = 0;
  }

  /** Listens on a free loopback port; resolves with it. */
  async start(): Promise<number> {
    const server = createServer((request, response) => {
      request.resume();
      this.served++;
      this.#errorDebt += this.#errorRatio;
      const fail = this.#errorDebt >= 1 - 1e-9;
      if (fail) {
        this.#errorDebt -= 1;
        this.failed++;
      }
      const answer = () => {
        response.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain', 'x-served-by': this.name });
        response.end(fail ? `${this.name}: injected failure\n` : `${this.name}: ok\n`);
      };
      if (this.#addedLatencyMs <= 0) return answer();
      const timer = setTimeout(() => {
        this.#pending.delete(timer);
        answer();
      }, this.#addedLatencyMs);
      this.#pending.add(timer);
    });
    server.keepAliveTimeout = 30_000;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}
