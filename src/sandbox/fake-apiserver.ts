// An in-process Kubernetes API server over HTTP on loopback: generic objects of any resource,
// resourceVersion and 409 conflicts, three patch types, the Deployment scale subresource with
// simulated readiness, discovery enough for kubectl, fault injection and a log of every write.
//
// Namespaces are not enforced: creating an object in one creates it (NamespaceAutoProvision).
// Strategic merge patch is applied as a JSON merge patch (lists replace instead of merging by
// key, `$patch` directives are rejected): for the fields clustershift patches (replicas,
// minReplicas, maxReplicas, weights inside lists it rewrites whole) that is the same result.

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../clock.js';
import {
  defaultResources,
  type FakeResource,
  groupVersion,
  guessKind,
  guessPlural,
  splitApiVersion,
} from './fake-api-resources.js';
import { applyJsonPatch, applyMergePatch, PatchError } from './json-patch.js';
import { fieldLookup, matchesSelector, parseSelector, type SelectorError } from './label-selector.js';

export interface FakeApiServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** How long after a scale-up a Deployment's new replicas become ready (default 0). */
  readyDelayMs?: number;
  /** Drives timestamps and readiness; a ManualClock makes readiness tests instant. */
  clock?: Clock;
}

export type FaultKind = 500 | 429 | 'hang';

export interface FaultSpec {
  status: FaultKind;
  /** How many matching requests get the fault. */
  count: number;
  pathIncludes?: string;
  method?: string;
  /** For 429: the Retry-After header (default 1). */
  retryAfterSeconds?: number;
  /** Narrow the fault further, e.g. to one client's User-Agent. */
  match?: (request: { method: string; path: string; headers: IncomingMessage['headers'] }) => boolean;
}

export interface WriteRecord {
  at: number;
  method: string;
  /** The URL path without the query string. */
  path: string;
  query: string;
  contentType: string | undefined;
  /** Parsed JSON when the body is JSON, else the raw text; undefined when empty. */
  body: unknown;
  /** The HTTP status answered, or 'hang' for a request held open by a fault. */
  status: number | 'hang';
  /**
   * Who wrote: the bearer token of the Authorization header (the fake authenticates nobody,
   * so the token only names the caller, e.g. one kubeconfig user per replica); undefined without one.
   */
  user?: string;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

type JsonObject = Record<string, unknown>;

/** A failed request, answered as a Kubernetes `Status`. */
class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonObject,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface ResourcePath {
  info: FakeResource;
  version: string;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

interface Readiness {
  /** The ready replicas the Deployment is heading for, and when it gets there. */
  target?: number;
  readyAt?: number;
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Seconds precision, the way the API server renders metav1.Time. */
function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Like kubectl's AGE column: 45s, 3m20s, 12m, 5h3m, 2d4h, 40d, 3y10d. */
function humanDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  const years = Math.floor(days / 365);
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit}${small}${smallUnit}`;
  if (seconds < 120) return `${seconds}s`;
  if (minutes < 10) return pair(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  if (hours < 8) return pair(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return pair(days, 'd', hours % 24, 'h');
  if (days < 365 * 2) return `${days}d`;
  if (days < 365 * 8) return pair(years, 'y', days % 365, 'd');
  return `${years}y`;
}

/** JSON with sorted keys, so "did the spec change" ignores key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Everything but metadata and status: what a `generation` bump tracks. */
function specPart(object: JsonObject): string {
  const { metadata: _metadata, status: _status, ...rest } = object;
  return canonical(rest);
}

function withoutResourceVersion(object: JsonObject): string {
  const metadata = { ...(object.metadata as JsonObject) };
  delete metadata.resourceVersion;
  return canonical({ ...object, metadata });
}

export class FakeApiServer {
  private readonly host: string;
  private readonly port: number;
  private readonly clock: Clock;
  private readonly readyDelayMs: number;
  private readonly resources: FakeResource[] = defaultResources();
  /** group|resource|namespace|name -> object; versions of one group share storage. */
  private readonly objects = new Map<string, KubeObject>();
  private readonly readiness = new Map<string, Readiness>();
  private readonly neverReady = new Set<string>();
  private readonly readyDelayOverrides = new Map<string, number>();
  private readonly faults: FaultSpec[] = [];
  private readonly writeLog: WriteRecord[] = [];
  private resourceVersion = 1;
  private server: Server | undefined;

  constructor(options: FakeApiServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.clock = options.clock ?? systemClock;
    this.readyDelayMs = options.readyDelayMs ?? 0;
  }

  /** Listen; resolves with the base URL to hand to a client or to `kubectl --server`. */
  async start(): Promise<{ url: string }> {
    const server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) {
          this.sendStatus(
            response,
            new StatusError(500, 'InternalError', `fake API server: ${String(error)}`),
          );
        }
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://${this.host}:${port}` };
  }

  /** Close the server and destroy every open connection, including requests held by 'hang'. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** The next `count` requests matching the spec fail as asked. */
  injectFault(fault: FaultSpec): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Every POST/PUT/PATCH/DELETE received, oldest first (faulted ones too). */
  writes(): WriteRecord[] {
    return this.writeLog.map((record) => structuredClone(record));
  }

  clearWrites(): void {
    this.writeLog.length = 0;
  }

  /** Serve one more resource kind in discovery (unregistered ones are still stored generically). */
  registerResource(resource: FakeResource): void {
    this.resources.push(resource);
  }

  /** Keep a Deployment's new replicas from ever getting ready (a crash-looping image). */
  setNeverReady(namespace: string, name: string, neverReady: boolean): void {
    const key = `${namespace}/${name}`;
    if (neverReady) this.neverReady.add(key);
    else this.neverReady.delete(key);
  }

  /** Override the server's readyDelayMs for one Deployment. */
  setReadyDelay(namespace: string, name: string, readyDelayMs: number): void {
    this.readyDelayOverrides.set(`${namespace}/${name}`, readyDelayMs);
  }

  /** Seed or overwrite an object directly (no preconditions); returns it as stored. */
  put(object: KubeObject): KubeObject {
    const { group, version } = splitApiVersion(object.apiVersion);
    const info = this.resolve(group, object.kind);
    const namespace = info.namespaced ? (object.metadata.namespace ?? 'default') : undefined;
    const key = this.key(info, namespace, object.metadata.name);
    const existing = this.objects.get(key);
    const incoming = structuredClone(object) as KubeObject;
    if (namespace !== undefined) incoming.metadata.namespace = namespace;
    const stored = existing
      ? this.storeUpdate(info, version, existing, incoming, { keepStatus: false })
      : this.storeCreate(info, version, namespace, incoming);
    return structuredClone(stored);
  }

  /** Read an object as tests see it; `kindOrResource` is `Deployment` or `deployments`. */
  get(
    apiVersion: string,
    kindOrResource: string,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    const info = this.resolve(group, kindOrResource);
    const object = this.read(info, info.namespaced ? (namespace ?? 'default') : undefined, name);
    return object ? this.present(info, version, object) : undefined;
  }

  /** Every object of a kind, optionally in one namespace. */
  list(apiVersion: string, kindOrResource: string, namespace?: string): KubeObject[] {
    const { group, version } = splitApiVersion(apiVersion);
    const info = this.resolve(group, kindOrResource);
    return this.select(info, namespace).map((object) => this.present(info, version, object));
  }

  /** Delete an object directly; returns whether it existed. */
  remove(apiVersion: string, kindOrResource: string, namespace: string | undefined, name: string): boolean {
    const { group } = splitApiVersion(apiVersion);
    const info = this.resolve(group, kindOrResource);
    return this.objects.delete(this.key(info, info.namespaced ? (namespace ?? 'default') : undefined, name));
  }

  // ---- HTTP --------------------------------------------------------------------------------

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake');
    const method = (request.method ?? 'GET').toUpperCase();
    const contentType = request.headers['content-type'];
    const rawBody = await this.readBody(request);
    const isWrite = method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
    const record = (status: number | 'hang') => {
      if (!isWrite) return;
      let body: unknown = rawBody === '' ? undefined : rawBody;
      try {
        if (rawBody !== '') body = JSON.parse(rawBody);
      } catch {
        // Not JSON: keep the text.
      }
      const query = url.search.replace(/^\?/, '');
      const user = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
      this.writeLog.push({
        at: this.clock.now(),
        method,
        path: url.pathname,
        query,
        contentType,
        body,
        status,
        ...(user !== undefined ? { user } : {}),
      });
    };

    const fault = this.takeFault(method, url.pathname, request.headers);
    if (fault) {
      if (fault.status === 'hang') {
        record('hang');
        return; // Never answered; stop() destroys the socket.
      }
      const error =
        fault.status === 429
          ? new StatusError(
              429,
              'TooManyRequests',
              'the server has received too many requests and has asked us to try again later',
              { retryAfterSeconds: fault.retryAfterSeconds ?? 1 },
              { 'retry-after': String(fault.retryAfterSeconds ?? 1) },
            )
          : new StatusError(500, 'InternalError', 'Internal error occurred: injected fault');
      record(error.code);
      this.sendStatus(response, error);
      return;
    }

    let status: number;
    try {
      const { code, body } = this.route(method, url, rawBody, contentType, request.headers.accept);
      status = code;
      this.sendJson(response, code, body);
    } catch (error) {
      const statusError =
        error instanceof StatusError ? error : new StatusError(500, 'InternalError', String(error));
      status = statusError.code;
      this.sendStatus(response, statusError);
    }
    record(status);
  }

  private async readBody(request: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) throw new Error('request body too large');
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private takeFault(
    method: string,
    path: string,
    headers: IncomingMessage['headers'],
  ): FaultSpec | undefined {
    const index = this.faults.findIndex(
      (fault) =>
        fault.count > 0 &&
        (fault.method === undefined || fault.method.toUpperCase() === method) &&
        (fault.pathIncludes === undefined || path.includes(fault.pathIncludes)) &&
        (fault.match === undefined || fault.match({ method, path, headers })),
    );
    const fault = this.faults[index];
    if (!fault) return undefined;
    fault.count--;
    if (fault.count <= 0) this.faults.splice(index, 1);
    return fault;
  }

  private sendJson(
    response: ServerResponse,
    code: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    response.writeHead(code, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    response.end(text);
  }

  private sendStatus(response: ServerResponse, error: StatusError): void {
    this.sendJson(
      response,
      error.code,
      {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: error.message,
        reason: error.reason,
        ...(error.details ? { details: error.details } : {}),
        code: error.code,
      },
      error.headers,
    );
  }

  // ---- routing -----------------------------------------------------------------------------

  private route(
    method: string,
    url: URL,
    rawBody: string,
    contentType: string | undefined,
    accept: string | undefined,
  ): { code: number; body: unknown } {
    const segments = url.pathname.split('/').filter((segment) => segment !== '');
    const path = url.pathname;
    if (method === 'GET' && (path === '/healthz' || path === '/readyz' || path === '/livez')) {
      return { code: 200, body: 'ok' };
    }
    if (method === 'GET' && path === '/version') return { code: 200, body: this.versionInfo() };

    let group: string;
    let version: string | undefined;
    let rest: string[];
    if (segments[0] === 'api') {
      group = '';
      version = segments[1];
      rest = segments.slice(2);
      if (version === undefined) return this.discoveryOnly(method, this.coreVersions());
    } else if (segments[0] === 'apis') {
      group = segments[1] ?? '';
      version = segments[2];
      rest = segments.slice(3);
      if (segments.length === 1) return this.discoveryOnly(method, this.groupList());
      if (version === undefined) return this.discoveryOnly(method, this.apiGroup(group));
    } else {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (rest.length === 0) return this.discoveryOnly(method, this.resourceList(group, version));

    const target = this.parseResourcePath(group, version, rest);
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      throw new StatusError(400, 'BadRequest', 'watch is not supported by the fake API server');
    }
    if (
      (method === 'POST' || method === 'PUT') &&
      !/^application\/json\b/i.test(contentType ?? 'application/json')
    ) {
      throw new StatusError(
        415,
        'UnsupportedMediaType',
        `the fake API server reads JSON only, not ${contentType}; kubectl sends protobuf for built-in kinds on create, so seed those objects through the API as JSON or FakeApiServer.put()`,
      );
    }
    const answer = this.serveResource(method, target, url, rawBody, contentType);
    // kubectl's human output asks for a Table; everything else gets plain JSON.
    if (method === 'GET' && target.subresource === undefined && /as=Table/.test(accept ?? '')) {
      return { code: 200, body: this.table(target.info, answer.body as JsonObject, url.searchParams) };
    }
    return answer;
  }

  /** A meta.k8s.io/v1 Table, with the Deployment columns kubectl users know. */
  private table(info: FakeResource, body: JsonObject, query: URLSearchParams): JsonObject {
    const objects = (Array.isArray(body.items) ? body.items : [body]) as KubeObject[];
    const isDeployment = info.group === 'apps' && info.resource === 'deployments';
    const column = (name: string, type: string, priority = 0, format = '') => ({
      name,
      type,
      format,
      description: name,
      priority,
    });
    const columnDefinitions = isDeployment
      ? [
          column('Name', 'string', 0, 'name'),
          column('Ready', 'string'),
          column('Up-to-date', 'integer'),
          column('Available', 'integer'),
          column('Age', 'string'),
          column('Containers', 'string', 1),
          column('Images', 'string', 1),
          column('Selector', 'string', 1),
        ]
      : [column('Name', 'string', 0, 'name'), column('Age', 'string')];
    const includeObject = query.get('includeObject') ?? 'Metadata';
    const rows = objects.map((object) => {
      const age = humanDuration(this.clock.now() - Date.parse(object.metadata.creationTimestamp ?? ''));
      let cells: unknown[] = [object.metadata.name, age];
      if (isDeployment) {
        const spec = (object.spec ?? {}) as JsonObject;
        const status = (object.status ?? {}) as JsonObject;
        const template = ((spec.template as JsonObject | undefined)?.spec ?? {}) as JsonObject;
        const containers = (template.containers ?? []) as { name: string; image: string }[];
        const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<
          string,
          string
        >;
        cells = [
          object.metadata.name,
          `${status.readyReplicas ?? 0}/${spec.replicas ?? 0}`,
          status.updatedReplicas ?? 0,
          status.availableReplicas ?? 0,
          age,
          containers.map((container) => container.name).join(','),
          containers.map((container) => container.image).join(','),
          Object.entries(matchLabels)
            .map(([key, value]) => `${key}=${value}`)
            .join(','),
        ];
      }
      const rowObject =
        includeObject === 'None'
          ? undefined
          : includeObject === 'Object'
            ? object
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
      return { cells, ...(rowObject ? { object: rowObject } : {}) };
    });
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion: String(this.resourceVersion) },
      columnDefinitions,
      rows,
    };
  }

  private discoveryOnly(method: string, body: unknown): { code: number; body: unknown } {
    if (method !== 'GET') {
      throw new StatusError(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }
    return { code: 200, body };
  }

  private parseResourcePath(group: string, version: string, rest: string[]): ResourcePath {
    let namespace: string | undefined;
    let tail = rest;
    // /api/v1/namespaces/{name}[/status|/finalize] names a Namespace itself.
    const namespaceObject =
      rest[0] === 'namespaces' &&
      (rest.length <= 2 || (rest.length === 3 && group === '' && /^(status|finalize)$/.test(rest[2]!)));
    if (rest[0] === 'namespaces' && !namespaceObject) {
      namespace = rest[1];
      tail = rest.slice(2);
    }
    const [resource, name, subresource, ...extra] = tail;
    if (resource === undefined || extra.length > 0) {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const info = this.resolve(group, resource, namespace !== undefined);
    if (!info.namespaced && namespace !== undefined) {
      throw new StatusError(404, 'NotFound', `${resource} is not namespaced`);
    }
    return { info, version, namespace, name, subresource };
  }

  private serveResource(
    method: string,
    target: ResourcePath,
    url: URL,
    rawBody: string,
    contentType: string | undefined,
  ): { code: number; body: unknown } {
    const { info, version, namespace, name, subresource } = target;
    if (name === undefined) {
      if (method === 'GET')
        return { code: 200, body: this.listBody(info, version, namespace, url.searchParams) };
      if (method === 'POST') {
        if (info.namespaced && namespace === undefined) {
          throw new StatusError(
            405,
            'MethodNotAllowed',
            `create ${info.resource} needs a namespace in the path`,
          );
        }
        const created = this.storeCreate(info, version, namespace, this.parseObject(rawBody));
        return { code: 201, body: this.present(info, version, created) };
      }
      throw new StatusError(
        405,
        'MethodNotAllowed',
        `the server does not allow ${method} on a collection of ${info.resource}`,
      );
    }
    if (info.namespaced && namespace === undefined) {
      throw new StatusError(
        404,
        'NotFound',
        `${info.resource} "${name}" must be addressed within a namespace`,
      );
    }
    if (subresource === 'scale') return this.serveScale(method, info, namespace, name, rawBody, contentType);
    if (subresource !== undefined && subresource !== 'status') {
      throw new StatusError(404, 'NotFound', `${info.resource} has no subresource "${subresource}"`);
    }
    const statusOnly = subresource === 'status';
    const existing = this.read(info, namespace, name);
    switch (method) {
      case 'GET':
        if (!existing) throw this.notFound(info, name);
        return { code: 200, body: this.present(info, version, existing) };
      case 'PUT': {
        const incoming = this.parseObject(rawBody);
        if (incoming.metadata.name !== name) {
          throw new StatusError(
            400,
            'BadRequest',
            `the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`,
          );
        }
        if (!existing) throw this.notFound(info, name);
        this.checkPrecondition(info, name, existing, incoming.metadata.resourceVersion);
        const updated = this.writeUpdate(info, version, existing, incoming, statusOnly);
        return { code: 200, body: this.present(info, version, updated) };
      }
      case 'PATCH': {
        if (!existing) throw this.notFound(info, name);
        const patched = this.applyPatch(this.present(info, version, existing), rawBody, contentType);
        this.checkPrecondition(info, name, existing, patched.metadata.resourceVersion);
        const updated = this.writeUpdate(info, version, existing, patched, statusOnly);
        return { code: 200, body: this.present(info, version, updated) };
      }
      case 'DELETE': {
        if (!existing) throw this.notFound(info, name);
        this.objects.delete(this.key(info, namespace, name));
        this.readiness.delete(this.key(info, namespace, name));
        return {
          code: 200,
          body: {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: { name, group: info.group, kind: info.resource, uid: existing.metadata.uid },
          },
        };
      }
      default:
        throw new StatusError(
          405,
          'MethodNotAllowed',
          `the server does not allow ${method} on ${info.resource}`,
        );
    }
  }

  private serveScale(
    method: string,
    info: FakeResource,
    namespace: string | undefined,
    name: string,
    rawBody: string,
    contentType: string | undefined,
  ): { code: number; body: unknown } {
    if (!info.scale) throw new StatusError(404, 'NotFound', `${info.resource} has no scale subresource`);
    const existing = this.read(info, namespace, name);
    if (!existing) throw this.notFound(info, name);
    if (method === 'GET') return { code: 200, body: this.scaleOf(existing) };
    let incoming: KubeObject;
    if (method === 'PUT') incoming = this.parseObject(rawBody);
    else if (method === 'PATCH') incoming = this.applyPatch(this.scaleOf(existing), rawBody, contentType);
    else
      throw new StatusError(
        405,
        'MethodNotAllowed',
        `the server does not allow ${method} on ${info.resource}/scale`,
      );
    this.checkPrecondition(info, name, existing, incoming.metadata.resourceVersion);
    const replicas = (incoming.spec as JsonObject | undefined)?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw new StatusError(
        422,
        'Invalid',
        `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be a non-negative integer`,
      );
    }
    const next = structuredClone(existing);
    (next.spec as JsonObject).replicas = replicas;
    const updated = this.storeUpdate(info, splitApiVersion(existing.apiVersion).version, existing, next, {
      keepStatus: true,
    });
    return { code: 200, body: this.scaleOf(updated) };
  }

  private scaleOf(object: KubeObject): KubeObject {
    const spec = (object.spec ?? {}) as JsonObject;
    const status = (object.status ?? {}) as JsonObject;
    const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<
      string,
      string
    >;
    const { name, namespace, uid, resourceVersion, creationTimestamp } = object.metadata;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
      spec: { replicas: spec.replicas ?? 0 },
      status: {
        replicas: status.replicas ?? 0,
        selector: Object.entries(matchLabels)
          .map(([key, value]) => `${key}=${value}`)
          .join(','),
      },
    };
  }

  // ---- storage -----------------------------------------------------------------------------

  /** A registered resource by plural or kind; anything else is served generically. */
  private resolve(group: string, resourceOrKind: string, namespaced = true): FakeResource {
    const known = this.resources.find(
      (resource) =>
        resource.group === group &&
        (resource.resource === resourceOrKind || resource.kind === resourceOrKind),
    );
    if (known) return known;
    const isKind = /^[A-Z]/.test(resourceOrKind);
    const resource = isKind ? guessPlural(resourceOrKind) : resourceOrKind;
    return {
      group,
      versions: [],
      resource,
      singular: resource,
      kind: isKind ? resourceOrKind : guessKind(resourceOrKind),
      namespaced,
    };
  }

  private key(info: FakeResource, namespace: string | undefined, name: string): string {
    return `${info.group}|${info.resource}|${namespace ?? ''}|${name}`;
  }

  private read(info: FakeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = this.key(info, namespace, name);
    const object = this.objects.get(key);
    return object ? this.settle(info, key, object) : undefined;
  }

  private select(info: FakeResource, namespace: string | undefined): KubeObject[] {
    const prefix = `${info.group}|${info.resource}|`;
    const found: KubeObject[] = [];
    for (const [key, object] of this.objects) {
      if (!key.startsWith(prefix)) continue;
      if (namespace !== undefined && object.metadata.namespace !== namespace) continue;
      found.push(this.settle(info, key, object));
    }
    return found.sort((a, b) =>
      `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace ?? ''}/${b.metadata.name}`,
      ),
    );
  }

  private listBody(
    info: FakeResource,
    version: string,
    namespace: string | undefined,
    query: URLSearchParams,
  ) {
    let labelRequirements: ReturnType<typeof parseSelector>;
    let fieldRequirements: ReturnType<typeof parseSelector>;
    try {
      labelRequirements = parseSelector(query.get('labelSelector') ?? '');
      fieldRequirements = parseSelector(query.get('fieldSelector') ?? '');
    } catch (error) {
      throw new StatusError(
        400,
        'BadRequest',
        `unable to parse selector: ${(error as SelectorError).message}`,
      );
    }
    const items = this.select(info, namespace)
      .filter((object) => matchesSelector(labelRequirements, (key) => object.metadata.labels?.[key]))
      .filter((object) => matchesSelector(fieldRequirements, fieldLookup(object)))
      .map((object) => this.present(info, version, object));
    return {
      kind: `${info.kind}List`,
      apiVersion: groupVersion(info.group, version),
      metadata: { resourceVersion: String(this.resourceVersion) },
      items,
    };
  }

  /** A copy shown at the version the client asked for. */
  private present(info: FakeResource, version: string, object: KubeObject): KubeObject {
    return {
      ...structuredClone(object),
      apiVersion: groupVersion(info.group, version),
      kind: this.kindOf(info, object),
    };
  }

  /** An unregistered resource's kind was only guessed from its plural; the object's own is better. */
  private kindOf(info: FakeResource, object: { kind?: unknown }): string {
    return info.versions.length === 0 && typeof object.kind === 'string' && object.kind !== ''
      ? object.kind
      : info.kind;
  }

  private parseObject(rawBody: string): KubeObject {
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch (error) {
      throw new StatusError(
        400,
        'BadRequest',
        `the request body is not valid JSON: ${(error as Error).message}`,
      );
    }
    if (!isObject(body)) throw new StatusError(400, 'BadRequest', 'the request body must be a JSON object');
    if (!isObject(body.metadata)) body.metadata = {};
    return body as KubeObject;
  }

  private applyPatch(current: KubeObject, rawBody: string, contentType: string | undefined): KubeObject {
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    const known = [
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/strategic-merge-patch+json',
    ];
    if (!known.includes(type)) {
      throw new StatusError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${known.join(', ')}`,
      );
    }
    let patch: unknown;
    try {
      patch = JSON.parse(rawBody);
    } catch (error) {
      throw new StatusError(400, 'BadRequest', `the patch is not valid JSON: ${(error as Error).message}`);
    }
    let result: unknown;
    try {
      if (type === 'application/json-patch+json') result = applyJsonPatch(current, patch);
      else if (type === 'application/merge-patch+json') result = applyMergePatch(current, patch);
      else if (type === 'application/strategic-merge-patch+json') {
        if (/"\$(patch|retainKeys|setElementOrder|deleteFromPrimitiveList)/.test(rawBody)) {
          throw new PatchError(
            'strategic merge patch directives ($patch, ...) are not supported by the fake API server',
          );
        }
        result = applyMergePatch(current, patch);
      }
    } catch (error) {
      if (error instanceof PatchError)
        throw new StatusError(422, 'Invalid', `the patch could not be applied: ${error.message}`);
      throw error;
    }
    if (!isObject(result) || !isObject(result.metadata)) {
      throw new StatusError(422, 'Invalid', 'the patched object must be a JSON object with metadata');
    }
    return result as KubeObject;
  }

  private checkPrecondition(
    info: FakeResource,
    name: string,
    existing: KubeObject,
    resourceVersion: unknown,
  ): void {
    if (resourceVersion === undefined || resourceVersion === '' || resourceVersion === null) return;
    if (String(resourceVersion) !== existing.metadata.resourceVersion) {
      throw new StatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${this.groupResource(info)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, group: info.group, kind: info.resource },
      );
    }
  }

  private groupResource(info: FakeResource): string {
    return info.group === '' ? info.resource : `${info.resource}.${info.group}`;
  }

  private notFound(info: FakeResource, name: string): StatusError {
    return new StatusError(404, 'NotFound', `${this.groupResource(info)} "${name}" not found`, {
      name,
      group: info.group,
      kind: info.resource,
    });
  }

  private storeCreate(
    info: FakeResource,
    version: string,
    namespace: string | undefined,
    incoming: KubeObject,
  ): KubeObject {
    const metadata = incoming.metadata;
    if (info.namespaced && metadata.namespace !== undefined && metadata.namespace !== namespace) {
      throw new StatusError(
        400,
        'BadRequest',
        `the namespace of the provided object (${metadata.namespace}) does not match the namespace sent on the request (${namespace})`,
      );
    }
    if (!metadata.name && typeof metadata.generateName === 'string') {
      const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
      const suffix = [...randomBytes(5)].map((byte) => alphabet[byte % alphabet.length]).join('');
      metadata.name = `${metadata.generateName}${suffix}`;
    }
    const name = metadata.name;
    if (typeof name !== 'string' || name === '') {
      throw new StatusError(
        422,
        'Invalid',
        `${info.kind} is invalid: metadata.name: Required value: name or generateName is required`,
      );
    }
    if (name.length > 253 || !NAME_PATTERN.test(name)) {
      throw new StatusError(
        422,
        'Invalid',
        `${info.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
        { name, group: info.group, kind: info.kind },
      );
    }
    const key = this.key(info, namespace, name);
    if (this.objects.has(key)) {
      throw new StatusError(409, 'AlreadyExists', `${this.groupResource(info)} "${name}" already exists`, {
        name,
        group: info.group,
        kind: info.resource,
      });
    }
    const object: KubeObject = {
      ...incoming,
      apiVersion: groupVersion(info.group, version),
      kind: this.kindOf(info, incoming),
      metadata: {
        ...metadata,
        name,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: String(++this.resourceVersion),
        creationTimestamp: kubeTime(this.clock.now()),
      },
    };
    if ('spec' in object) object.metadata.generation = 1;
    else delete object.metadata.generation;
    if (namespace !== undefined) this.provisionNamespace(namespace);
    this.objects.set(key, object);
    this.afterWrite(info, key, object);
    return this.objects.get(key)!;
  }

  /**
   * Like the NamespaceAutoProvision admission plugin: creating an object in a namespace creates
   * the namespace, so kubectl's "does the namespace exist" follow-up finds it.
   */
  private provisionNamespace(namespace: string): void {
    const namespaces = this.resolve('', 'namespaces');
    if (this.objects.has(this.key(namespaces, undefined, namespace))) return;
    this.storeCreate(namespaces, 'v1', undefined, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace },
      status: { phase: 'Active' },
    });
  }

  /** PUT and PATCH: the main resource keeps the stored status; `/status` changes only status. */
  private writeUpdate(
    info: FakeResource,
    version: string,
    existing: KubeObject,
    incoming: KubeObject,
    statusOnly: boolean,
  ) {
    if (statusOnly) {
      const next = { ...structuredClone(existing), status: incoming.status };
      return this.storeUpdate(info, version, existing, next, { keepStatus: false });
    }
    return this.storeUpdate(info, version, existing, incoming, { keepStatus: info.status === true });
  }

  private storeUpdate(
    info: FakeResource,
    version: string,
    existing: KubeObject,
    incoming: KubeObject,
    options: { keepStatus: boolean },
  ): KubeObject {
    const next: KubeObject = {
      ...incoming,
      apiVersion: groupVersion(info.group, version),
      kind: this.kindOf(info, existing),
      metadata: {
        ...incoming.metadata,
        name: existing.metadata.name,
        ...(existing.metadata.namespace !== undefined ? { namespace: existing.metadata.namespace } : {}),
        uid: existing.metadata.uid,
        creationTimestamp: existing.metadata.creationTimestamp,
        resourceVersion: existing.metadata.resourceVersion,
      },
    };
    if (options.keepStatus) {
      if (existing.status === undefined) delete next.status;
      else next.status = structuredClone(existing.status);
    }
    if ('spec' in next) {
      const generation = existing.metadata.generation ?? 1;
      next.metadata.generation = specPart(next) === specPart(existing) ? generation : generation + 1;
    } else delete next.metadata.generation;
    // A write that changes nothing keeps its resourceVersion, as on a real API server.
    if (withoutResourceVersion(next) === withoutResourceVersion(existing)) return existing;
    next.metadata.resourceVersion = String(++this.resourceVersion);
    const key = this.key(info, existing.metadata.namespace, existing.metadata.name);
    this.objects.set(key, next);
    this.afterWrite(info, key, next);
    return this.objects.get(key)!;
  }

  // ---- simulated controllers ----------------------------------------------------------------

  /** The Deployment controller and the HPA controller, reduced to what clustershift observes. */
  private afterWrite(info: FakeResource, key: string, object: KubeObject): void {
    if (info.group === 'apps' && (info.resource === 'deployments' || info.resource === 'statefulsets')) {
      this.rollOut(info, key, object);
    } else if (info.group === 'autoscaling' && info.resource === 'horizontalpodautoscalers') {
      this.applyHpa(object);
    }
  }

  /** spec.replicas changed: pods are created at once, and get ready after the delay. */
  private rollOut(info: FakeResource, key: string, object: KubeObject): void {
    const spec = (object.spec ?? {}) as JsonObject;
    if (typeof spec.replicas !== 'number') spec.replicas = 1;
    object.spec = spec;
    const replicas = spec.replicas as number;
    const status = (object.status ?? {}) as JsonObject;
    const ready = Math.min(typeof status.readyReplicas === 'number' ? status.readyReplicas : 0, replicas);
    object.status = {
      ...status,
      observedGeneration: object.metadata.generation ?? 1,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: ready,
      availableReplicas: Math.min(
        typeof status.availableReplicas === 'number' ? status.availableReplicas : 0,
        ready,
      ),
    };
    const id = `${object.metadata.namespace}/${object.metadata.name}`;
    const delay = this.readyDelayOverrides.get(id) ?? this.readyDelayMs;
    const neverReady = info.resource === 'deployments' && this.neverReady.has(id);
    if (delay <= 0 && !neverReady) {
      object.status = {
        ...(object.status as JsonObject),
        readyReplicas: replicas,
        availableReplicas: replicas,
      };
      this.readiness.delete(key);
    } else {
      this.readiness.set(key, { target: replicas, readyAt: this.clock.now() + delay });
    }
  }

  /** Apply due readiness; a status change is a write of its own with a new resourceVersion. */
  private settle(info: FakeResource, key: string, object: KubeObject): KubeObject {
    const readiness = this.readiness.get(key);
    if (readiness?.target === undefined || readiness.readyAt === undefined) return object;
    if (
      info.resource === 'deployments' &&
      this.neverReady.has(`${object.metadata.namespace}/${object.metadata.name}`)
    ) {
      return object;
    }
    if (this.clock.now() < readiness.readyAt) return object;
    const status = (object.status ?? {}) as JsonObject;
    this.readiness.delete(key);
    if (status.readyReplicas === readiness.target && status.availableReplicas === readiness.target)
      return object;
    const next: KubeObject = {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(++this.resourceVersion) },
      status: { ...status, readyReplicas: readiness.target, availableReplicas: readiness.target },
    };
    this.objects.set(key, next);
    return next;
  }

  /** The HPA controller keeps its target's replicas within [minReplicas, maxReplicas]. */
  private applyHpa(hpa: KubeObject): void {
    const spec = (hpa.spec ?? {}) as JsonObject;
    const target = (spec.scaleTargetRef ?? {}) as JsonObject;
    if (target.kind !== 'Deployment' || typeof target.name !== 'string') return;
    const deployments = this.resolve('apps', 'deployments');
    const deployment = this.read(deployments, hpa.metadata.namespace, target.name);
    if (!deployment) return;
    const current = ((deployment.spec as JsonObject | undefined)?.replicas as number | undefined) ?? 1;
    const min = typeof spec.minReplicas === 'number' ? spec.minReplicas : 1;
    const max = typeof spec.maxReplicas === 'number' ? spec.maxReplicas : current;
    const desired = Math.min(Math.max(current, min), Math.max(max, min));
    hpa.status = {
      ...((hpa.status ?? {}) as JsonObject),
      currentReplicas: desired,
      desiredReplicas: desired,
    };
    if (desired === current) return;
    const next = structuredClone(deployment);
    (next.spec as JsonObject).replicas = desired;
    this.storeUpdate(deployments, 'v1', deployment, next, { keepStatus: true });
  }

  // ---- discovery ---------------------------------------------------------------------------

  private versionInfo() {
    return {
      major: '1',
      minor: '32',
      gitVersion: 'v1.32.0-clustershift-fake',
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2025-01-01T00:00:00Z',
      goVersion: 'go1.23.0',
      compiler: 'gc',
      platform: 'linux/amd64',
    };
  }

  private coreVersions() {
    return {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `${this.host}:0` }],
    };
  }

  private groupNames(): string[] {
    return [...new Set(this.resources.filter((r) => r.group !== '').map((r) => r.group))];
  }

  private apiGroup(group: string) {
    const versions = [...new Set(this.resources.filter((r) => r.group === group).flatMap((r) => r.versions))];
    if (versions.length === 0)
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const entries = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
    return {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: group,
      versions: entries,
      preferredVersion: entries[0],
    };
  }

  private groupList() {
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: this.groupNames().map((group) => {
        const { kind: _kind, apiVersion: _apiVersion, ...rest } = this.apiGroup(group);
        return rest;
      }),
    };
  }

  private resourceList(group: string, version: string) {
    const served = this.resources.filter((r) => r.group === group && r.versions.includes(version));
    if (served.length === 0) {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update'];
    const resources = served.flatMap((r) => {
      const main = {
        name: r.resource,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs,
        ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      };
      const subresources = [];
      if (r.status) {
        subresources.push({
          name: `${r.resource}/status`,
          singularName: '',
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: ['get', 'patch', 'update'],
        });
      }
      if (r.scale) {
        subresources.push({
          name: `${r.resource}/scale`,
          singularName: '',
          namespaced: r.namespaced,
          group: 'autoscaling',
          version: 'v1',
          kind: 'Scale',
          verbs: ['get', 'patch', 'update'],
        });
      }
      return [main, ...subresources];
    });
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: groupVersion(group, version),
      resources,
    };
  }
}
