// HAProxy through its runtime API on the admin stats socket: the workload's backend holds one
// server per cluster, and the split between them is the two servers' weights.
//
// Percent maps to weight exactly: the new server gets weight w and the old one 100 - w.
// HAProxy weights are integers 0..256 and relative within a backend, so new/(old + new) is
// w/100 for every whole percent, 0 and 100 included (weight 0 takes a server out of rotation).
// Runtime weights live only in the running process: a reload brings back haproxy.cfg's weights,
// which the controller's drift check notices and corrects.

import { createConnection, type Socket } from 'node:net';
import type { RouteConfig, RouteOf } from '../config/schema.js';
import { errorMessage, RouteNotFoundError, RouterError, WeightMismatchError } from '../errors.js';
import type { TrafficRouter } from './router.js';

export interface HaproxyRouterOptions {
  /** routers.haproxy.socket: a unix socket path, or tcp://host:port (a `stats socket ... level admin`). */
  socket: string;
  /** Per runtime-API connection, from connecting to the last byte of the answer. */
  timeoutMs: number;
}

type HaproxyRoute = RouteOf<'haproxy'>;

/** Backend and server names HAProxy accepts; anything else could not be sent safely on one command line. */
const NAME = /^[A-Za-z0-9_.:-]+$/;
const WEIGHT_ANSWER = /^(\d+) \(initial (\d+)\)$/;
/** Weight answers are a few bytes; anything this long is not a runtime API talking. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class HaproxyRouter implements TrafficRouter {
  readonly #target: { path: string } | { host: string; port: number };
  readonly #socket: string;
  readonly #timeoutMs: number;

  constructor(options: HaproxyRouterOptions) {
    this.#socket = options.socket;
    this.#timeoutMs = options.timeoutMs;
    this.#target = parseSocketAddress(options.socket);
  }

  describe(route: RouteConfig): string {
    const r = haproxyRoute(route);
    return `haproxy backend ${r.backend} servers ${r.oldServer}/${r.newServer}`;
  }

  async getWeight(route: RouteConfig, signal: AbortSignal): Promise<number> {
    const r = haproxyRoute(route);
    const [oldWeight, newWeight] = await this.#readWeights(r, signal);
    const percent = toPercent(oldWeight, newWeight);
    if (percent === undefined)
      throw new RouterError(
        `${this.describe(r)}: both servers have weight 0, so the backend sends the traffic nowhere; set a weight through clustershift or fix the weights in haproxy.cfg`,
      );
    return percent;
  }

  /**
   * Checks both servers exist first, then writes both weights and reads them back in one
   * connection. The larger weight is written first so that the moment between the two writes
   * never has both servers at 0 (which would answer 503 to everything).
   */
  async setWeight(route: RouteConfig, weight: number, signal: AbortSignal): Promise<void> {
    const r = haproxyRoute(route);
    if (!Number.isInteger(weight) || weight < 0 || weight > 100)
      throw new RouterError(`${this.describe(r)}: weight ${weight} is not a whole percent 0..100`);
    await this.#readWeights(r, signal);
    const writes = [
      { server: r.newServer, weight },
      { server: r.oldServer, weight: 100 - weight },
    ].sort((a, b) => b.weight - a.weight);
    const answers = await this.#run(
      [
        ...writes.map((w) => `set weight ${r.backend}/${w.server} ${w.weight}`),
        `get weight ${r.backend}/${r.oldServer}`,
        `get weight ${r.backend}/${r.newServer}`,
      ],
      signal,
    );
    for (const [index, write] of writes.entries()) {
      const answer = answers[index] ?? [];
      if (answer.length > 0)
        throw this.#answerError(r, write.server, `set weight to ${write.weight}`, answer);
    }
    const oldWeight = this.#weightFrom(r, r.oldServer, answers[writes.length] ?? []);
    const newWeight = this.#weightFrom(r, r.newServer, answers[writes.length + 1] ?? []);
    if (oldWeight !== 100 - weight || newWeight !== weight)
      throw new WeightMismatchError(this.describe(r), weight, toPercent(oldWeight, newWeight));
  }

  async verify(route: RouteConfig, signal: AbortSignal): Promise<void> {
    await this.#readWeights(haproxyRoute(route), signal);
  }

  /** [old, new] weights; a missing backend or server is a RouteNotFoundError naming it. */
  async #readWeights(r: HaproxyRoute, signal: AbortSignal): Promise<[number, number]> {
    const answers = await this.#run(
      [`get weight ${r.backend}/${r.oldServer}`, `get weight ${r.backend}/${r.newServer}`],
      signal,
    );
    const oldAnswer = answers[0] ?? [];
    const newAnswer = answers[1] ?? [];
    if (isNoSuchBackend(oldAnswer) || isNoSuchBackend(newAnswer))
      throw new RouteNotFoundError(
        `${this.describe(r)}: HAProxy at ${this.#socket} has no backend "${r.backend}"; check the route's backend against haproxy.cfg`,
      );
    const missing = [
      ...(isNoSuchServer(oldAnswer) ? [`"${r.oldServer}" (the old cluster's server)`] : []),
      ...(isNoSuchServer(newAnswer) ? [`"${r.newServer}" (the new cluster's server)`] : []),
    ];
    if (missing.length > 0)
      throw new RouteNotFoundError(
        `${this.describe(r)}: HAProxy backend "${r.backend}" has no server ${missing.join(' and no server ')}; check the route's oldServer and newServer against haproxy.cfg`,
      );
    return [this.#weightFrom(r, r.oldServer, oldAnswer), this.#weightFrom(r, r.newServer, newAnswer)];
  }

  #weightFrom(r: HaproxyRoute, server: string, answer: string[]): number {
    const match = answer.length === 1 ? WEIGHT_ANSWER.exec(answer[0] ?? '') : null;
    if (!match) throw this.#answerError(r, server, 'get weight', answer);
    return Number(match[1]);
  }

  #answerError(r: HaproxyRoute, server: string, what: string, answer: string[]): RouterError {
    const text = answer.join(' / ') || 'nothing';
    const message = `${this.describe(r)}: HAProxy at ${this.#socket} answered "${text}" to ${what} on ${r.backend}/${server}`;
    if (isNoSuchBackend(answer) || isNoSuchServer(answer)) return new RouteNotFoundError(message);
    if (/permission denied/i.test(text))
      return new RouterError(`${message}; the stats socket needs "level admin" to change weights`);
    return new RouterError(message);
  }

  /**
   * Sends `commands` as one `;`-separated line (the runtime API's non-interactive mode) and
   * returns each command's answer as its lines. HAProxy ends every answer with an empty line
   * and closes the connection after the last one.
   */
  async #run(commands: string[], signal: AbortSignal): Promise<string[][]> {
    signal.throwIfAborted();
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    const text = await new Promise<string>((resolve, reject) => {
      let received = '';
      let socket: Socket | undefined;
      const onAbort = () => {
        socket?.destroy();
        if (signal.aborted) reject(signal.reason);
        else
          reject(
            new RouterError(
              `HAProxy admin socket ${this.#socket} did not answer "${commands.join(';')}" within ${this.#timeoutMs}ms; check that HAProxy is running and not overloaded`,
            ),
          );
      };
      both.addEventListener('abort', onAbort, { once: true });
      const settle = () => both.removeEventListener('abort', onAbort);
      socket = createConnection(this.#target);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket?.write(`${commands.join(';')}\n`));
      socket.on('data', (chunk: string) => {
        received += chunk;
        if (received.length > MAX_ANSWER_BYTES) {
          settle();
          socket?.destroy();
          reject(
            new RouterError(
              `HAProxy admin socket ${this.#socket} answered more than ${MAX_ANSWER_BYTES} bytes`,
            ),
          );
        }
      });
      socket.on('end', () => {
        settle();
        socket?.destroy();
        resolve(received);
      });
      socket.on('error', (error) => {
        settle();
        reject(
          new RouterError(
            `cannot reach the HAProxy admin socket ${this.#socket}: ${errorMessage(error)}; check routers.haproxy.socket and that haproxy.cfg has "stats socket ... level admin" there`,
            { cause: error },
          ),
        );
      });
    });
    const answers = splitAnswers(text);
    if (answers.length !== commands.length)
      throw new RouterError(
        `HAProxy admin socket ${this.#socket} gave ${answers.length} answers to ${commands.length} commands ("${commands.join(';')}"): ${JSON.stringify(text.slice(0, 200))}`,
      );
    return answers;
  }
}

/** Each answer runs up to an empty line: `"\n\n50 (initial 1)\n\n"` is [], [], ['50 (initial 1)']. */
export function splitAnswers(text: string): string[][] {
  const answers: string[][] = [];
  let current: string[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    if (line === '') {
      answers.push(current);
      current = [];
    } else current.push(line);
  }
  if (current.length > 0) answers.push(current);
  return answers;
}

function parseSocketAddress(socket: string): { path: string } | { host: string; port: number } {
  if (!socket.startsWith('tcp://')) return { path: socket };
  const url = new URL(socket);
  const port = Number(url.port);
  if (!url.hostname || !Number.isInteger(port) || port < 1)
    throw new RouterError(
      `routers.haproxy.socket: found ${socket}, expected tcp://host:port or a unix socket path`,
    );
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

function haproxyRoute(route: RouteConfig): HaproxyRoute {
  if (route.type !== 'haproxy') throw new RouterError(`the haproxy router was given a ${route.type} route`);
  for (const [field, value] of [
    ['backend', route.backend],
    ['oldServer', route.oldServer],
    ['newServer', route.newServer],
  ] as const) {
    if (!NAME.test(value))
      throw new RouterError(
        `haproxy route ${field}: found ${JSON.stringify(value)}, expected an HAProxy name (letters, digits, - _ . :)`,
      );
  }
  return route;
}

function toPercent(oldWeight: number, newWeight: number): number | undefined {
  const total = oldWeight + newWeight;
  return total === 0 ? undefined : Math.round((100 * newWeight) / total);
}

const isNoSuchBackend = (answer: string[]): boolean => answer.some((line) => /^No such backend/i.test(line));
const isNoSuchServer = (answer: string[]): boolean => answer.some((line) => /^No such server/i.test(line));
