// The fake API server's storage: objects by resource, namespace and name, one resourceVersion
// counter for the whole server, the server-set metadata (uid, creationTimestamp, generation)
// and the create/update rules the real registry applies.

import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { type FakeResource, groupVersion, type ResourceRegistry } from './resources.js';
import { conflict, groupResource, StatusError } from './status-error.js';
import { isObject, type JsonObject, type KubeObject } from './types.js';

/** What the simulated controllers do around storage. */
export interface StoreHooks {
  /** After a create or update is stored; may change the stored object in place. */
  afterWrite(info: FakeResource, key: string, object: KubeObject): void;
  /** Before an object is handed out: the object as it is now (due readiness applied). */
  beforeRead(info: FakeResource, key: string, object: KubeObject): KubeObject;
  /** After an object is gone. */
  afterDelete(key: string): void;
}

const NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Seconds precision, the way the API server renders metav1.Time. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** JSON with sorted keys, so "did the spec change" ignores key order. */
export function canonical(value: unknown): string {
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

const noHooks: StoreHooks = {
  afterWrite: () => {},
  beforeRead: (_info, _key, object) => object,
  afterDelete: () => {},
};

export class ObjectStore {
  private readonly clock: Clock;
  private readonly registry: ResourceRegistry;
  /** group|resource|namespace|name -> object; versions of one group share storage. */
  private readonly objects = new Map<string, KubeObject>();
  private resourceVersion = 1;
  hooks: StoreHooks = noHooks;

  constructor(options: { clock: Clock; registry: ResourceRegistry }) {
    this.clock = options.clock;
    this.registry = options.registry;
  }

  /** The resourceVersion of the latest write, as lists report it. */
  currentResourceVersion(): string {
    return String(this.resourceVersion);
  }

  key(info: FakeResource, namespace: string | undefined, name: string): string {
    return `${info.group}|${info.resource}|${namespace ?? ''}|${name}`;
  }

  read(info: FakeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = this.key(info, namespace, name);
    const object = this.objects.get(key);
    return object ? this.hooks.beforeRead(info, key, object) : undefined;
  }

  /** The stored object as it is, without running the simulated controllers first. */
  peek(info: FakeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(this.key(info, namespace, name));
  }

  /** Every object of a resource (in one namespace, or all), sorted by namespace and name. */
  select(info: FakeResource, namespace: string | undefined): KubeObject[] {
    const prefix = `${info.group}|${info.resource}|`;
    const found: KubeObject[] = [];
    for (const [key, object] of this.objects) {
      if (!key.startsWith(prefix)) continue;
      if (namespace !== undefined && object.metadata.namespace !== namespace) continue;
      found.push(this.hooks.beforeRead(info, key, object));
    }
    return found.sort((a, b) =>
      `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace ?? ''}/${b.metadata.name}`,
      ),
    );
  }

  /** A copy shown at the version the client asked for. */
  present(info: FakeResource, version: string, object: KubeObject): KubeObject {
    return {
      ...structuredClone(object),
      apiVersion: groupVersion(info.group, version),
      kind: this.kindOf(info, object),
    };
  }

  /** A write carrying a resourceVersion must name the stored one. */
  checkPrecondition(info: FakeResource, name: string, existing: KubeObject, resourceVersion: unknown): void {
    if (resourceVersion === undefined || resourceVersion === '' || resourceVersion === null) return;
    if (String(resourceVersion) !== existing.metadata.resourceVersion) throw conflict(info, name);
  }

  create(
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
      throw new StatusError(409, 'AlreadyExists', `${groupResource(info)} "${name}" already exists`, {
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
    this.hooks.afterWrite(info, key, object);
    return this.objects.get(key)!;
  }

  /**
   * Store a new state of an existing object: server-set metadata is kept, generation follows
   * the spec, and a write that changes nothing keeps its resourceVersion, as on a real server.
   */
  update(
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
    if (withoutResourceVersion(next) === withoutResourceVersion(existing)) return existing;
    next.metadata.resourceVersion = String(++this.resourceVersion);
    const key = this.key(info, existing.metadata.namespace, existing.metadata.name);
    this.objects.set(key, next);
    this.hooks.afterWrite(info, key, next);
    return this.objects.get(key)!;
  }

  /**
   * Store a state a simulated controller produced (no hooks run again): a write of its own,
   * with a new resourceVersion.
   */
  commitSimulated(key: string, object: KubeObject): KubeObject {
    const next: KubeObject = {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(++this.resourceVersion) },
    };
    this.objects.set(key, next);
    return next;
  }

  /** Remove an object; returns it, or undefined when there was none. */
  delete(info: FakeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = this.key(info, namespace, name);
    const existing = this.objects.get(key);
    if (!existing) return undefined;
    this.objects.delete(key);
    this.hooks.afterDelete(key);
    return existing;
  }

  /** An unregistered resource's kind was only guessed from its plural; the object's own is better. */
  kindOf(info: FakeResource, object: { kind?: unknown }): string {
    return info.versions.length === 0 && typeof object.kind === 'string' && object.kind !== ''
      ? object.kind
      : info.kind;
  }

  /**
   * Like the NamespaceAutoProvision admission plugin: creating an object in a namespace creates
   * the namespace, so kubectl's "does the namespace exist" follow-up finds it.
   */
  private provisionNamespace(namespace: string): void {
    const namespaces = this.registry.resolve('', 'namespaces');
    if (this.objects.has(this.key(namespaces, undefined, namespace))) return;
    this.create(namespaces, 'v1', undefined, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace },
      status: { phase: 'Active' },
    });
  }
}
