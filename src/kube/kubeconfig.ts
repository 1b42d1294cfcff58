// Where a cluster's credentials come from: a kubeconfig file and context, the pod's service
// account, or (tests, the demo) a bare http URL with no auth.

import type { AgentOptions } from 'node:https';
import { Agent, type Dispatcher, request } from 'undici';
import { ConfigError, errorMessage } from '../errors.js';
import {
  type ApiConstructor,
  type ApiType,
  type Cluster,
  createConfiguration,
  type HttpLibrary,
  KubeConfig,
  type RequestContext,
  ResponseContext,
  ServerConfiguration,
  setHeaderMiddleware,
  wrapHttpLibrary,
} from './client-node.js';

export interface KubeConfigSource {
  /** The cluster's name, for error messages. */
  name: string;
  kubeconfigPath?: string;
  context?: string;
  /** A plain API server URL without credentials (the fake API server); wins over the rest. */
  server?: string;
}

/** A KubeConfig for one cluster; a wrong path, context or environment is a ConfigError. */
export function buildKubeConfig(source: KubeConfigSource): KubeConfig {
  const kubeConfig = reuseConnections(new KubeConfig());
  if (source.server !== undefined) {
    // client-node refuses plain http unless TLS verification is off, though there is no TLS to verify.
    kubeConfig.loadFromOptions({
      clusters: [{ name: source.name, server: source.server, skipTLSVerify: true }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: source.name, cluster: source.name, user: 'anonymous' }],
      currentContext: source.name,
    });
    return kubeConfig;
  }
  if (source.kubeconfigPath !== undefined) {
    try {
      kubeConfig.loadFromFile(source.kubeconfigPath);
    } catch (error) {
      throw new ConfigError(
        `cluster "${source.name}": cannot load kubeconfig ${source.kubeconfigPath}: ${errorMessage(error)}; check clusters.*.kubeconfig`,
        { cause: error },
      );
    }
    if (source.context !== undefined) {
      const known = kubeConfig.getContexts().map((context) => context.name);
      if (!known.includes(source.context)) {
        throw new ConfigError(
          `cluster "${source.name}": context "${source.context}" is not in ${source.kubeconfigPath} (it has: ${known.join(', ') || 'none'})`,
        );
      }
      kubeConfig.setCurrentContext(source.context);
    }
    if (!kubeConfig.getCurrentCluster()) {
      throw new ConfigError(
        `cluster "${source.name}": ${source.kubeconfigPath} has no current context with a cluster; set clusters.*.context`,
      );
    }
    return kubeConfig;
  }
  if (!process.env.KUBERNETES_SERVICE_HOST) {
    throw new ConfigError(
      `cluster "${source.name}" has no kubeconfig and clustershift is not running in a pod (KUBERNETES_SERVICE_HOST is unset): set clusters.*.kubeconfig`,
    );
  }
  kubeConfig.loadFromCluster();
  return kubeConfig;
}

/** What client-node's (private) KubeConfig.createDispatcher returns: an undici Agent, or none. */
type DispatcherFactory = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher | undefined;
/** client-node's (internal) description of the dispatcher it would build. */
type DispatcherOptions =
  | { type: 'agent'; connect: Agent.Options['connect'] }
  | { type: 'none' | 'proxy' | 'socks' };
type DispatcherOptionsFactory = (cluster: Cluster | null, agentOptions: AgentOptions) => DispatcherOptions;

const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/**
 * Connections to one API server for calls (reads and writes). Beyond these a call waits in
 * undici's queue instead of opening a connection of its own: a tick's burst of status writes
 * and Events once opened one per call (16,000 connects a minute at 1,000 WorkloadMigrations).
 * Eight (client-go multiplexes over one HTTP/2 connection): with 32, the 21 API servers of
 * bench:scale's 10 cluster pairs kept 670 idle connections open (8 MiB of RSS) for no less CPU.
 */
export const API_CONNECTIONS_PER_CLUSTER = 8;
/**
 * How long an idle connection is kept. undici's default (4 s) is shorter than the 5 s tick, so
 * every tick reconnected (a TLS handshake in production); shorter than the usual load-balancer
 * idle timeout (60 s) in front of an API server, and kube-apiserver keeps idle ones 90 s.
 */
export const IDLE_CONNECTION_MS = 30_000;

/**
 * The TLS settings a pool is built from (file contents as read for this request), compared by
 * value on every call: a rotated certificate or CA gets new pools.
 */
type TlsSettings = readonly unknown[];

const tlsSettings = (cluster: Cluster | null, options: AgentOptions): TlsSettings => [
  cluster?.server,
  cluster?.proxyUrl,
  ...TLS_FIELDS.map((field) => options[field]),
];

const sameTls = (a: TlsSettings, b: TlsSettings): boolean =>
  a.length === b.length && a.every((value, i) => sameValue(value, b[i]));

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b)) return sameTls(a, b);
  return typeof a === 'object' && typeof b === 'object' && JSON.stringify(a) === JSON.stringify(b);
}

/** A cluster's two pools: calls (bounded) and watches (each holds its connection for its life). */
interface ClusterAgents {
  tls: TlsSettings;
  calls: Dispatcher;
  watches: Dispatcher;
}

/**
 * Makes a KubeConfig's API clients cheap to call, for a KubeConfig created here (before it is
 * loaded):
 * - client-node 2.0 builds a new undici Agent, a connection pool of its own, for every request
 *   to a cluster with any TLS setting (a CA, a client certificate, skipTLSVerify: every real
 *   cluster, and the fake ones over http), so no connection was ever reused. This keeps one
 *   pool per cluster and user while its TLS settings stay the same (a rotated certificate or CA
 *   gets new pools; the old ones close once their requests are done): one for calls, at most
 *   API_CONNECTIONS_PER_CLUSTER connections, and one for watches, which is not bounded because
 *   a watch holds its connection for as long as it runs.
 * - Its API clients (makeApiClient) send through undici's request() instead of its fetch():
 *   the same pools, TLS and credentials, without fetch's WHATWG streams, Headers and signal
 *   chain per call. Measured in bench:scale (1,000 WorkloadMigrations, all active): tick CPU
 *   215 to 152 ms, RSS 805 to 630 MiB.
 * Watches (client-node's Watch and informers) keep client-node's fetch, on the watch pool.
 */
export function reuseConnections(kubeConfig: KubeConfig): KubeConfig {
  const target = kubeConfig as unknown as {
    createDispatcher?: DispatcherFactory;
    createDispatcherOptions?: DispatcherOptionsFactory;
  };
  const create = target.createDispatcher;
  const describe = target.createDispatcherOptions;
  // test/kube/kubeconfig.test.ts fails if a client-node upgrade renames them.
  if (typeof create !== 'function' || typeof describe !== 'function') return kubeConfig;
  const agents = new Map<string, ClusterAgents>();
  const watchPoolOf = new WeakMap<Dispatcher, Dispatcher>();
  const build = (cluster: Cluster | null, agentOptions: AgentOptions): ClusterAgents | undefined => {
    const options = describe.call(kubeConfig, cluster, agentOptions);
    if (options.type === 'proxy' || options.type === 'socks') return undefined;
    const connect = options.type === 'agent' ? { connect: options.connect } : {};
    const pool = (connections?: number) =>
      new Agent({
        ...connect,
        ...(connections !== undefined ? { connections } : {}),
        keepAliveTimeout: IDLE_CONNECTION_MS,
      });
    return {
      tls: tlsSettings(cluster, agentOptions),
      calls: pool(API_CONNECTIONS_PER_CLUSTER),
      watches: pool(),
    };
  };
  target.createDispatcher = (cluster, agentOptions) => {
    const id = `${cluster?.name ?? ''}\u0000${kubeConfig.getCurrentUser()?.name ?? ''}`;
    const known = agents.get(id);
    if (known && sameTls(known.tls, tlsSettings(cluster, agentOptions))) return known.calls;
    const built = build(cluster, agentOptions);
    // Through a proxy: client-node's own Agent, as before (a new one per request).
    if (!built) return create.call(kubeConfig, cluster, agentOptions);
    agents.set(id, built);
    watchPoolOf.set(built.calls, built.watches);
    if (known) for (const old of [known.calls, known.watches]) void old.close().catch(() => undefined);
    return built.calls;
  };
  const authenticate = kubeConfig.applySecurityAuthentication.bind(kubeConfig);
  kubeConfig.applySecurityAuthentication = async (context: RequestContext) => {
    await authenticate(context);
    const calls = context.getDispatcher() as Dispatcher | undefined;
    const watches = calls && watchPoolOf.get(calls);
    if (watches && isWatch(context.getUrl())) context.setDispatcher(watches);
  };
  kubeConfig.makeApiClient = <T extends ApiType>(apiClientType: ApiConstructor<T>): T => {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    return new apiClientType(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: kubeConfig },
        httpApi: undiciHttpLibrary,
        // What kube-apiserver's audit log and metrics name the caller by (leader election adds its identity).
        middleware: [setHeaderMiddleware('User-Agent', 'clustershift')],
      }),
    );
  };
  return kubeConfig;
}

const isWatch = (url: string) => /[?&]watch=(true|1)(&|$)/.test(url);

/** client-node's HttpLibrary over undici's request(); every body is read whole (API objects are JSON). */
const undiciHttpLibrary: HttpLibrary = wrapHttpLibrary({
  async send(context: RequestContext): Promise<ResponseContext> {
    // JSON text for every call clustershift makes; client-node's type also allows forms.
    const body = context.getBody();
    const payload = body instanceof URLSearchParams ? body.toString() : (body as string | undefined);
    const response = await request(context.getUrl(), {
      method: context.getHttpMethod() as Dispatcher.HttpMethod,
      headers: context.getHeaders(),
      ...(payload !== undefined ? { body: payload } : {}),
      ...(context.getSignal() ? { signal: context.getSignal() } : {}),
      ...(context.getDispatcher() ? { dispatcher: context.getDispatcher() as Dispatcher } : {}),
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers))
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    return new ResponseContext(response.statusCode, headers, {
      text: async () => bytes.toString('utf8'),
      binary: async () => bytes,
      stream: () => null,
    });
  },
});
