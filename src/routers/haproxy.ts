// HAProxy through its runtime API on the admin stats socket: the workload's backend holds one
// server per cluster, and the split between them is the two servers' weights, unless a server
// cannot take traffic (maint, drain, down by its health check): then the other takes it all.
//
// Percent maps to weight exactly: the new server gets weight w and the old one 100 - w.
// HAProxy weights are integers 0..256 and relative within a backend, so new/(old + new) is
// w/100 for every whole percent, 0 and 100 included (weight 0 takes a server out of rotation).
// Runtime weights live only in the running process: a reload brings back haproxy.cfg's weights,
// which the controller's drift check notices and corrects.

import { createConnection, type Socket } from 'node:net';
import type { RouteOf } from '../config/schema.js';
import { errorMessage, RouteNotFoundError, RouterError } from '../errors.js';
import type { ClusterRole } from '../rollout/types.js';
import { deadline } from '../timing.js';
import { checkWholePercent, type RouteHandle, splitWith } from './router.js';

export interface HaproxyRuntimeApiOptions {
  /** routers.haproxy.socket: a unix socket path, or tcp://host:port (a `stats socket ... level admin`). */
  socket: string;
  /** Per runtime-API connection, from connecting to the last byte of the answer. */
  timeoutMs: number;
}

type HaproxyRoute = RouteOf<'haproxy'>;

/** Backend and server names HAProxy accepts; anything else could not be sent safely on one command line. */
const NAME = /^[A-Za-z0-9_.:-]+$/;
/** Answers are a few lines per server; anything this long is not a runtime API talking. */
const MAX_ANSWER_BYTES = 256 * 1024;

/** One server's line of `show servers state <backend>`: what it is asked to do and what it does. */
export interface ServerState {
  name: string;
  /** srv_uweight: the weight in force (what `set weight` wrote). */
  weight: number;
  /** srv_op_state: 0 stopped (down), 1 starting, 2 running, 3 stopping. */
  operational: number;
  /** srv_admin_state bits: maintenance (forced, inherited, from the config, DNS) and drain. */
  admin: number;
}

const ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const ADMIN_DRAIN = 0x08 | 0x10;
const OP_STOPPED = 0;
const OP_STOPPING = 3;

/** Why a server takes no new traffic, or undefined when it does. */
export function unavailability(server: ServerState): string | undefined {
  if (server.admin & ADMIN_MAINT) return 'is in maintenance (maint)';
  if (server.admin & ADMIN_DRAIN) return 'is draining (drain)';
  if (server.operational === OP_STOPPED) return 'is down (its health check fails)';
  if (server.operational === OP_STOPPING) return 'is stopping';
  return undefined;
}

/** Bound to one route: its backend and the two servers in it. */
export function haproxyRoute(route: HaproxyRoute, api: HaproxyRuntimeApi): RouteHandle {
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
  const description = `haproxy backend ${route.backend} servers ${route.oldServer}/${route.newServer}`;
  const readServers = async (signal: AbortSignal) => {
    const servers = await api.serversOf(route.backend, description, signal);
    const find = (name: string) => servers.find((server) => server.name === name);
    const oldServer = find(route.oldServer);
    const newServer = find(route.newServer);
    if (!oldServer || !newServer) {
      const missing = [
        ...(oldServer ? [] : [`"${route.oldServer}" (the old cluster's server)`]),
        ...(newServer ? [] : [`"${route.newServer}" (the new cluster's server)`]),
      ];
      throw new RouteNotFoundError(
        `${description}: HAProxy backend "${route.backend}" has no server ${missing.join(' and no server ')}; check the route's oldServer and newServer against haproxy.cfg`,
      );
    }
    return { oldServer, newServer };
  };
  return {
    description,
    /**
     * The weights and each server's state from one `show servers state`: a server in maint or
     * drain, down by its health check or stopping takes no new traffic, whatever its weight.
     */
    async getSplit(signal) {
      const { oldServer, newServer } = await readServers(signal);
      const total = oldServer.weight + newServer.weight;
      if (total === 0)
        throw new RouterError(
          `${description}: both servers have weight 0, so the backend sends the traffic nowhere; set a weight through clustershift or fix the weights in haproxy.cfg`,
        );
      const unavailable: { cluster: ClusterRole; reason: string }[] = [];
      for (const [cluster, server] of [
        ['old', oldServer],
        ['new', newServer],
      ] as const) {
        const why = unavailability(server);
        if (why)
          unavailable.push({ cluster, reason: `HAProxy server ${route.backend}/${server.name} ${why}` });
      }
      return splitWith(Math.round((100 * newServer.weight) / total), unavailable);
    },
    /**
     * Checks both servers exist first, then writes both weights in one connection. The larger
     * weight is written first so that the moment between the two writes never has both servers
     * at 0 (which would answer 503 to everything).
     */
    async setWeight(weight, signal) {
      checkWholePercent(description, weight);
      await readServers(signal);
      const writes = [
        { server: route.newServer, weight },
        { server: route.oldServer, weight: 100 - weight },
      ].sort((a, b) => b.weight - a.weight);
      const answers = await api.run(
        writes.map((w) => `set weight ${route.backend}/${w.server} ${w.weight}`),
        signal,
      );
      for (const [index, write] of writes.entries()) {
        const answer = answers[index] ?? [];
        if (answer.length > 0)
          throw api.answerError(
            description,
            `${route.backend}/${write.server}`,
            `set weight to ${write.weight}`,
            answer,
          );
      }
    },
    async verify(signal) {
      await readServers(signal);
    },
  };
}

/** The runtime API of one HAProxy: one connection per call, `;`-separated commands. */
export class HaproxyRuntimeApi {
  readonly #target: { path: string } | { host: string; port: number };
  readonly #socket: string;
  readonly #timeoutMs: number;

  constructor(options: HaproxyRuntimeApiOptions) {
    this.#socket = options.socket;
    this.#timeoutMs = options.timeoutMs;
    this.#target = parseSocketAddress(options.socket);
  }

  /** Every server of `backend` with its weight and state; a missing backend is a RouteNotFoundError. */
  async serversOf(backend: string, target: string, signal: AbortSignal): Promise<ServerState[]> {
    const [answer = []] = await this.run([`show servers state ${backend}`], signal);
    if (isNoSuchBackend(answer))
      throw new RouteNotFoundError(
        `${target}: HAProxy at ${this.#socket} has no backend "${backend}"; check the route's backend against haproxy.cfg`,
      );
    const header = answer.find((line) => line.startsWith('# '));
    if (!header) throw this.answerError(target, backend, 'show servers state', answer);
    const columns = header.slice(2).split(' ');
    const column = (name: string) => {
      const index = columns.indexOf(name);
      if (index < 0)
        throw this.answerError(target, backend, `show servers state (no column ${name})`, answer);
      return index;
    };
    const [nameAt, weightAt, opAt, adminAt] = [
      column('srv_name'),
      column('srv_uweight'),
      column('srv_op_state'),
      column('srv_admin_state'),
    ];
    return answer
      .filter((line) => line !== header && line.includes(' '))
      .map((line) => {
        const fields = line.split(' ');
        const number = (index: number) => {
          const value = Number(fields[index]);
          if (!Number.isInteger(value)) throw this.answerError(target, backend, 'show servers state', answer);
          return value;
        };
        return {
          name: fields[nameAt] ?? '',
          weight: number(weightAt),
          operational: number(opAt),
          admin: number(adminAt),
        };
      });
  }

  answerError(target: string, object: string, what: string, answer: string[]): RouterError {
    const text = answer.join(' / ') || 'nothing';
    const message = `${target}: HAProxy at ${this.#socket} answered "${text}" to ${what} on ${object}`;
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
  async run(commands: string[], signal: AbortSignal): Promise<string[][]> {
    signal.throwIfAborted();
    const timeout = deadline(this.#timeoutMs, { parent: signal });
    const both = timeout.signal;
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
    }).finally(() => timeout.dispose());
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

const isNoSuchBackend = (answer: string[]): boolean =>
  answer.some((line) => /^(No such backend|Can't find backend)/i.test(line));
const isNoSuchServer = (answer: string[]): boolean => answer.some((line) => /^No such server/i.test(line));
