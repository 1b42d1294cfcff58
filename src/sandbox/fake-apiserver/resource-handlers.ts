// The REST verbs on a resource path: list, create, get, update, patch, delete, and the
// `/status` and `/scale` subresources.

import { matchesSelectors, querySelectors } from './label-selector.js';
import type { ObjectStore } from './object-store.js';
import { applyPatch } from './patch.js';
import { type FakeResource, groupVersion, type ResourceRegistry, splitApiVersion } from './resources.js';
import { methodNotAllowed, noSuchPath, notFound, StatusError } from './status-error.js';
import { type Answer, isObject, type JsonObject, type KubeObject } from './types.js';

export interface ResourcePath {
  info: FakeResource;
  version: string;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

export interface ResourceRequest {
  method: string;
  target: ResourcePath;
  url: URL;
  rawBody: string;
  contentType: string | undefined;
}

export class ResourceHandlers {
  private readonly store: ObjectStore;
  private readonly registry: ResourceRegistry;

  constructor(options: { store: ObjectStore; registry: ResourceRegistry }) {
    this.store = options.store;
    this.registry = options.registry;
  }

  /** `[namespaces/{ns}/]{resource}[/{name}[/{subresource}]]` below a group version. */
  parsePath(group: string, version: string, rest: string[]): ResourcePath {
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
    if (resource === undefined || extra.length > 0) throw noSuchPath();
    // Like the real server: a resource nobody serves (no built-in, no CRD) has no path at all.
    const info = this.registry.find(group, resource);
    if (!info || info.resource !== resource || !info.versions.includes(version)) throw noSuchPath();
    if (!info.namespaced && namespace !== undefined) throw noSuchPath();
    return { info, version, namespace, name, subresource };
  }

  serve(request: ResourceRequest): Answer {
    const { method, target, url, rawBody, contentType } = request;
    const { info, version, namespace, name, subresource } = target;
    const fieldValidation = url.searchParams.get('fieldValidation') ?? undefined;
    if (name === undefined) {
      if (method === 'GET') return { code: 200, body: this.list(info, version, namespace, url.searchParams) };
      if (method === 'POST') {
        // A namespaced kind is created in a namespace's collection; the cluster-wide one only lists.
        if (info.namespaced && namespace === undefined) throw methodNotAllowed();
        const created = this.store.create(info, version, namespace, parseObject(rawBody), {
          fieldValidation,
          source: 'api',
        });
        return { code: 201, body: this.store.present(info, version, created) };
      }
      throw methodNotAllowed(`the server does not allow ${method} on a collection of ${info.resource}`);
    }
    if (info.namespaced && namespace === undefined) {
      throw new StatusError(
        404,
        'NotFound',
        `${info.resource} "${name}" must be addressed within a namespace`,
      );
    }
    if (subresource === 'scale') return this.serveScale(request, name);
    if (subresource !== undefined && subresource !== 'status') {
      throw new StatusError(404, 'NotFound', `${info.resource} has no subresource "${subresource}"`);
    }
    const statusOnly = subresource === 'status';
    const existing = this.store.read(info, namespace, name);
    switch (method) {
      case 'GET':
        if (!existing) throw notFound(info, name);
        return { code: 200, body: this.store.present(info, version, existing) };
      case 'PUT': {
        const incoming = parseObject(rawBody);
        if (incoming.metadata.name !== name) {
          throw new StatusError(
            400,
            'BadRequest',
            `the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`,
          );
        }
        if (!existing) throw notFound(info, name);
        this.store.checkPrecondition(info, name, existing, incoming.metadata.resourceVersion);
        const updated = this.writeUpdate(info, version, existing, incoming, statusOnly, fieldValidation);
        return { code: 200, body: this.store.present(info, version, updated) };
      }
      case 'PATCH': {
        if (!existing) throw notFound(info, name);
        const patched = applyPatch(this.store.present(info, version, existing), rawBody, contentType);
        this.store.checkPrecondition(info, name, existing, patched.metadata.resourceVersion);
        const updated = this.writeUpdate(info, version, existing, patched, statusOnly, fieldValidation);
        return { code: 200, body: this.store.present(info, version, updated) };
      }
      case 'DELETE': {
        if (!existing) throw notFound(info, name);
        checkDeletePreconditions(info, name, existing, rawBody);
        const outcome = this.store.delete(info, namespace, name)!;
        // Held by finalizers: the object, now with its deletionTimestamp, as the real server answers.
        if (!outcome.deleted) return { code: 200, body: this.store.present(info, version, outcome.object) };
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
        throw methodNotAllowed(`the server does not allow ${method} on ${info.resource}`);
    }
  }

  /** A list body, filtered by label and field selectors. */
  list(info: FakeResource, version: string, namespace: string | undefined, query: URLSearchParams) {
    const selectors = querySelectors(query);
    const items = this.store
      .select(info, namespace)
      .filter((object) => matchesSelectors(selectors, object))
      .map((object) => this.store.present(info, version, object));
    return {
      kind: `${info.kind}List`,
      apiVersion: groupVersion(info.group, version),
      metadata: { resourceVersion: this.store.currentResourceVersion() },
      items,
    };
  }

  /** PUT and PATCH: the main resource keeps the stored status; `/status` changes only status. */
  private writeUpdate(
    info: FakeResource,
    version: string,
    existing: KubeObject,
    incoming: KubeObject,
    statusOnly: boolean,
    fieldValidation: string | undefined,
  ): KubeObject {
    if (statusOnly) {
      const next = { ...structuredClone(existing), status: incoming.status };
      return this.store.update(info, version, existing, next, {
        keepStatus: false,
        subresource: 'status',
        fieldValidation,
        source: 'api',
      });
    }
    return this.store.update(info, version, existing, incoming, {
      keepStatus: info.status === true,
      fieldValidation,
      source: 'api',
    });
  }

  private serveScale(request: ResourceRequest, name: string): Answer {
    const { method, rawBody, contentType } = request;
    const { info, namespace } = request.target;
    if (!info.scale) throw new StatusError(404, 'NotFound', `${info.resource} has no scale subresource`);
    const existing = this.store.read(info, namespace, name);
    if (!existing) throw notFound(info, name);
    if (method === 'GET') return { code: 200, body: scaleOf(existing) };
    let incoming: KubeObject;
    if (method === 'PUT') incoming = parseObject(rawBody);
    else if (method === 'PATCH') incoming = applyPatch(scaleOf(existing), rawBody, contentType);
    else throw methodNotAllowed(`the server does not allow ${method} on ${info.resource}/scale`);
    this.store.checkPrecondition(info, name, existing, incoming.metadata.resourceVersion);
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
    const updated = this.store.update(info, splitApiVersion(existing.apiVersion).version, existing, next, {
      keepStatus: true,
    });
    return { code: 200, body: scaleOf(updated) };
  }
}

/** DeleteOptions.preconditions: the delete applies only to that uid / resourceVersion. */
function checkDeletePreconditions(
  info: FakeResource,
  name: string,
  existing: KubeObject,
  rawBody: string,
): void {
  if (rawBody.trim() === '') return;
  let options: unknown;
  try {
    options = JSON.parse(rawBody);
  } catch {
    throw new StatusError(400, 'BadRequest', 'the DeleteOptions body is not valid JSON');
  }
  const preconditions = isObject(options) && isObject(options.preconditions) ? options.preconditions : {};
  const { uid, resourceVersion } = preconditions;
  const failed = (field: 'UID' | 'ResourceVersion', precondition: string, meta: string | undefined) =>
    new StatusError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${info.resource} "${name}": Precondition failed: ${field} in precondition: ${precondition}, ${field} in object meta: ${meta}`,
      { name, group: info.group, kind: info.resource },
    );
  if (typeof uid === 'string' && uid !== existing.metadata.uid)
    throw failed('UID', uid, existing.metadata.uid);
  if (typeof resourceVersion === 'string' && resourceVersion !== existing.metadata.resourceVersion)
    throw failed('ResourceVersion', resourceVersion, existing.metadata.resourceVersion);
}

function scaleOf(object: KubeObject): KubeObject {
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

export function parseObject(rawBody: string): KubeObject {
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
