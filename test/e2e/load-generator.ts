// A bounded loopback load generator: a fixed request rate against one URL through an undici
// Pool, counting what came back. It never runs past its deadline, never holds more than
// `maxInFlight` requests open, and stops on stop().

import { Pool } from 'undici';

export interface LoadOptions {
  /** e.g. http://127.0.0.1:PORT (the HAProxy frontend); only loopback addresses are accepted. */
  origin: string;
  requestsPerSecond: number;
  /** The generator stops by itself this long after start(). */
  maxDurationMs: number;
  /** Requests open at once; a request due while this many are open is skipped (counted). Default 64. */
  maxInFlight?: number;
  /** Per request, from sending to the last byte. Default 10s. */
  requestTimeoutMs?: number;
}

export interface ServerCounts {
  ok: number;
  failed: number;
}

export interface LoadCounts {
  sent: number;
  /** Answered below 500. */
  ok: number;
  /** Answered 500 or above, or no answer at all (connection error, timeout). */
  failed: number;
  /** Due while maxInFlight requests were open, so not sent. */
  skipped: number;
  /** Per `x-served-by` answer header; answers without it (HAProxy's own 503) are under '-'. */
  byServer: Record<string, ServerCounts>;
}

const TICK_MS = 20;

export class LoadGenerator {
  readonly #options: Required<LoadOptions>;
  readonly #pool: Pool;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #due = 0;
  #inFlight = 0;
  readonly #settled = new Set<Promise<void>>();
  readonly #counts: LoadCounts = { sent: 0, ok: 0, failed: 0, skipped: 0, byServer: {} };
  #stopped = false;

  constructor(options: LoadOptions) {
    const url = new URL(options.origin);
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname))
      throw new Error(`the load generator only targets loopback addresses, not ${url.hostname}`);
    if (!(options.requestsPerSecond > 0)) throw new Error('requestsPerSecond must be above 0');
    this.#options = { maxInFlight: 64, requestTimeoutMs: 10_000, ...options, origin: url.origin };
    this.#pool = new Pool(url.origin, { connections: this.#options.maxInFlight, keepAliveTimeout: 4_000 });
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** A copy of the counts so far. */
  counts(): LoadCounts {
    return structuredClone(this.#counts);
  }

  start(): void {
    if (this.#stopped) throw new Error('a stopped load generator does not start again');
    if (this.#timer) return;
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#send(), TICK_MS);
    this.#deadline = setTimeout(() => void this.stop(), this.#options.maxDurationMs);
  }

  /** Stops sending, waits for the requests still open, and closes the pool. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#timer = undefined;
    this.#deadline = undefined;
    await Promise.all([...this.#settled]);
    if (!this.#pool.closed) await this.#pool.close();
  }

  /** Sends what the rate says is due by now. */
  #send(): void {
    const elapsedSeconds = (performance.now() - this.#startedAt) / 1000;
    const dueByNow = Math.floor(elapsedSeconds * this.#options.requestsPerSecond);
    while (this.#due < dueByNow) {
      this.#due++;
      if (this.#inFlight >= this.#options.maxInFlight) {
        this.#counts.skipped++;
        continue;
      }
      const request = this.#one().finally(() => this.#settled.delete(request));
      this.#settled.add(request);
    }
  }

  async #one(): Promise<void> {
    this.#inFlight++;
    this.#counts.sent++;
    let server = '-';
    let ok = false;
    try {
      const timeout = this.#options.requestTimeoutMs;
      const response = await this.#pool.request({
        method: 'GET',
        path: '/',
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await response.body.dump();
      const servedBy = response.headers['x-served-by'];
      if (typeof servedBy === 'string') server = servedBy;
      ok = response.statusCode < 500;
    } catch {
      ok = false;
    } finally {
      this.#inFlight--;
    }
    const perServer = this.#counts.byServer[server] ?? { ok: 0, failed: 0 };
    this.#counts.byServer[server] = perServer;
    if (ok) {
      this.#counts.ok++;
      perServer.ok++;
    } else {
      this.#counts.failed++;
      perServer.failed++;
    }
  }
}
