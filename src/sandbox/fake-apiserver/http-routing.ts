// The HTTP side: read the request, apply injected faults, route discovery and resource paths,
// answer JSON or a Kubernetes Status, and log every write.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../clock.js';
import { apiGroup, coreVersions, groupList, resourceList, versionInfo } from './discovery.js';
import { type FaultInjector, faultError } from './faults.js';
import type { ObjectStore } from './object-store.js';
import { openApiGroupVersion, openApiIndex } from './openapi.js';
import type { ApiVerb, RequestCounter, WriteLog } from './request-log.js';
import type { ResourceHandlers } from './resource-handlers.js';
import type { ResourceRegistry } from './resources.js';
import { methodNotAllowed, noSuchPath, StatusError, statusBody } from './status-error.js';
import { toTable } from './table.js';
import type { Answer, JsonObject } from './types.js';
import type { WatchHub } from './watch.js';
import type { WatchFaults } from './watch-faults.js';

const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface HttpRoutingOptions {
  host: string;
  clock: Clock;
  registry: ResourceRegistry;
  store: ObjectStore;
  handlers: ResourceHandlers;
  faults: FaultInjector;
  writeLog: WriteLog;
  requests: RequestCounter;
  watches: WatchHub;
  watchFaults: WatchFaults;
  /** Runs before each request is served (due readiness is applied, so every reader sees it). */
  beforeRequest: () => void;
  /** The gitVersion GET /version answers now. */
  kubernetesVersion: () => string;
}

type Routed = Answer | { stream: (response: ServerResponse) => void };

/** The verb and resource a request counts under, the way apiserver_request_total labels it. */
function classify(
  method: string,
  url: URL,
): { verb: ApiVerb; group: string; resource: string; subresource?: string } {
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  let rest: string[] = [];
  let group = '';
  if (segments[0] === 'api' && segments.length > 2) rest = segments.slice(2);
  else if (segments[0] === 'apis' && segments.length > 3) {
    group = segments[1]!;
    rest = segments.slice(3);
  }
  if (
    rest[0] === 'namespaces' &&
    rest.length > 2 &&
    !(rest.length === 3 && group === '' && /^(status|finalize)$/.test(rest[2]!))
  ) {
    rest = rest.slice(2);
  }
  const [resource = '', name, subresource] = rest;
  const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
  const verbs: Record<string, ApiVerb> = { POST: 'create', PUT: 'update', PATCH: 'patch' };
  let verb: ApiVerb = verbs[method] ?? 'get';
  if (method === 'GET') verb = watch ? 'watch' : name === undefined && resource !== '' ? 'list' : 'get';
  if (method === 'DELETE') verb = name === undefined ? 'deletecollection' : 'delete';
  return { verb, group, resource, ...(subresource ? { subresource } : {}) };
}

export class HttpRouting {
  constructor(private readonly options: HttpRoutingOptions) {}

  /** The request listener; never rejects (a bug answers 500 InternalError). */
  listener(): (request: IncomingMessage, response: ServerResponse) => void {
    return (request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) {
          sendStatus(response, new StatusError(500, 'InternalError', `fake API server: ${String(error)}`));
        }
      });
    };
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake');
    const method = (request.method ?? 'GET').toUpperCase();
    const contentType = request.headers['content-type'];
    const rawBody = await readBody(request);
    const counted = classify(method, url);
    this.options.requests.add(counted.verb, counted.group, counted.resource, counted.subresource);
    this.options.beforeRequest();
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
      this.options.writeLog.add({
        at: this.options.clock.now(),
        method,
        path: url.pathname,
        query,
        contentType,
        body,
        status,
        ...(user !== undefined ? { user } : {}),
      });
    };

    const fault = this.options.faults.take(method, url.pathname, request.headers);
    if (fault) {
      if (fault.status === 'hang') {
        record('hang');
        return; // Never answered; stop() destroys the socket.
      }
      const error = faultError(fault);
      record(error.code);
      sendStatus(response, error);
      return;
    }

    let status: number;
    try {
      const routed = this.route(method, url, rawBody, contentType, request.headers.accept);
      if ('stream' in routed) {
        routed.stream(response);
        return;
      }
      const { code, body } = routed;
      status = code;
      sendJson(response, code, body);
    } catch (error) {
      const statusError =
        error instanceof StatusError ? error : new StatusError(500, 'InternalError', String(error));
      status = statusError.code;
      sendStatus(response, statusError);
    }
    record(status);
  }

  private route(
    method: string,
    url: URL,
    rawBody: string,
    contentType: string | undefined,
    accept: string | undefined,
  ): Routed {
    const { registry, handlers } = this.options;
    const segments = url.pathname.split('/').filter((segment) => segment !== '');
    const path = url.pathname;
    if (method === 'GET' && (path === '/healthz' || path === '/readyz' || path === '/livez')) {
      return { code: 200, body: 'ok' };
    }
    if (method === 'GET' && path === '/version')
      return { code: 200, body: versionInfo(this.options.kubernetesVersion()) };
    if (path === '/openapi/v2') {
      discoveryOnly(method, undefined);
      return { stream: sendEmptyOpenApiV2 };
    }
    if (path === '/openapi/v3') return discoveryOnly(method, openApiIndex(registry.all()));
    if (path.startsWith('/openapi/v3/')) {
      return discoveryOnly(method, openApiGroupVersion(registry.all(), path.slice('/openapi/v3/'.length)));
    }

    let group: string;
    let version: string | undefined;
    let rest: string[];
    if (segments[0] === 'api') {
      group = '';
      version = segments[1];
      rest = segments.slice(2);
      if (version === undefined) return discoveryOnly(method, coreVersions(this.options.host));
    } else if (segments[0] === 'apis') {
      group = segments[1] ?? '';
      version = segments[2];
      rest = segments.slice(3);
      if (segments.length === 1) return discoveryOnly(method, groupList(registry.all()));
      if (version === undefined) return discoveryOnly(method, apiGroup(registry.all(), group));
    } else {
      throw noSuchPath();
    }
    if (rest.length === 0) return discoveryOnly(method, resourceList(registry.all(), group, version));

    const target = handlers.parsePath(group, version, rest);
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      if (method !== 'GET') throw methodNotAllowed();
      const refused = this.options.watchFaults.take(target.info.resource);
      if (refused) throw refused;
      return { stream: this.options.watches.prepare({ target, query: url.searchParams, accept }) };
    }
    if (
      (method === 'POST' || method === 'PUT') &&
      !/^application\/json\b/i.test(contentType ?? 'application/json')
    ) {
      throw new StatusError(
        415,
        'UnsupportedMediaType',
        `the fake API server reads JSON only, not ${contentType}; seed objects through the API as JSON or with FakeApiServer.put()`,
      );
    }
    const answer = handlers.serve({ method, target, url, rawBody, contentType });
    // kubectl's human output asks for a Table; everything else gets plain JSON.
    if (method === 'GET' && target.subresource === undefined && /as=Table/.test(accept ?? '')) {
      return {
        code: 200,
        body: toTable(target.info, target.version, answer.body as JsonObject, {
          now: this.options.clock.now(),
          resourceVersion: this.options.store.currentResourceVersion(),
          includeObject: url.searchParams.get('includeObject'),
        }),
      };
    }
    return answer;
  }
}

/**
 * An OpenAPI v2 document with no definitions (the empty protobuf message): kubectl's client-side
 * validation then finds no schema and skips, as it does for any kind a real server has no
 * schema for, so `kubectl apply` of a `kind: List` or of an unknown kind fails where a real
 * server's would (no such resource), not on a missing document.
 */
function sendEmptyOpenApiV2(response: ServerResponse): void {
  response.writeHead(200, {
    'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
    'content-length': 0,
  });
  response.end();
}

function discoveryOnly(method: string, body: unknown): Answer {
  if (method !== 'GET') throw methodNotAllowed();
  return { code: 200, body };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(
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

export function sendStatus(response: ServerResponse, error: StatusError): void {
  sendJson(response, error.code, statusBody(error), error.headers);
}
