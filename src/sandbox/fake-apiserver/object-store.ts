// The fake API server's storage: objects by resource, namespace and name, one resourceVersion
// counter for the whole server, the server-set metadata (uid, creationTimestamp, generation,
// deletionTimestamp), finalizers, and the history of changes a watch replays.

import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { ChangeHistory, type StoreEvent, type StoreListener, type WatchEventType } from './change-history.js';
import {
  finalizersOf,
  generationPart,
  kubeTime,
  tracksGeneration,
  withoutResourceVersion,
} from './object-metadata.js';
import { invalidNameReason } from './object-names.js';
import { type FakeResource, groupVersion, type ResourceRegistry } from './resources.js';
import { conflict, groupResource, StatusError } from './status-error.js';
import type { KubeObject } from './types.js';

/** What the simulated controllers do around storage. */
export interface StoreHooks {
  /** After a create or update is stored; may change the stored object in place. */
  afterWrite(info: FakeResource, key: string, object: KubeObject): void;
  /** Before an object is handed out: the object as it is now (due readiness applied). */
  beforeRead(info: FakeResource, key: string, object: KubeObject): KubeObject;
  /** After an object is gone. */
  afterDelete(key: string): void;
}

/** How a write arrived, for admission (validation, defaulting) of the incoming object. */
export interface WriteContext {
  operation: 'create' | 'update';
  info: FakeResource;
  /** The version the client wrote at. */
  version: string;
  /** The incoming object; admission may change it (defaults, pruned fields). */
  object: KubeObject;
  existing: KubeObject | undefined;
  subresource?: 'status' | undefined;
  /** The `fieldValidation` query parameter: Strict, Warn or Ignore. */
  fieldValidation?: string | undefined;
  /** 'seed' for FakeApiServer.put(): a test may seed what only controllers write (status). */
  source?: 'api' | 'seed' | undefined;
}

/** Checks and defaults a write before it is stored; throws a StatusError to refuse it. */
export type Admission = (context: WriteContext) => void;

export interface WriteOptions {
  /** `/status` writes change only status; main-resource writes keep it (a status subresource). */
  keepStatus: boolean;
  subresource?: 'status' | undefined;
  fieldValidation?: string | undefined;
  source?: 'api' | 'seed' | undefined;
}

const noHooks: StoreHooks = {
  afterWrite: () => {},
  beforeRead: (_info, _key, object) => object,
  afterDelete: () => {},
};

export interface ObjectStoreOptions {
  clock: Clock;
  registry: ResourceRegistry;
  /** How many changes a watch can replay before it gets 410 Gone (default 10,000). */
  historyLimit?: number;
}

export class ObjectStore {
  private readonly clock: Clock;
  private readonly registry: ResourceRegistry;
  /** group|resource|namespace|name -> object; versions of one group share storage. */
  private readonly objects = new Map<string, KubeObject>();
  private readonly history: ChangeHistory;
  private readonly admissions: Admission[] = [];
  private resourceVersion = 1;
  hooks: StoreHooks = noHooks;

  constructor(options: ObjectStoreOptions) {
    this.clock = options.clock;
    this.registry = options.registry;
    this.history = new ChangeHistory({ limit: options.historyLimit ?? 10_000 });
  }

  /** The resourceVersion of the latest write, as lists report it. */
  currentResourceVersion(): string {
    return String(this.resourceVersion);
  }

  addAdmission(admission: Admission): void {
    this.admissions.push(admission);
  }

  /** Every stored change from now on; returns the unsubscribe. */
  subscribe(listener: StoreListener): () => void {
    return this.history.subscribe(listener);
  }

  /** The changes after `resourceVersion`, oldest first; undefined when they are no longer kept. */
  changesSince(resourceVersion: number): StoreEvent[] | undefined {
    return this.history.since(resourceVersion);
  }

  /** Forget the change history (an etcd compaction): watches from older versions get 410 Gone. */
  compact(): void {
    this.history.compact(this.resourceVersion);
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
    return { ...structuredClone(object), apiVersion: groupVersion(info.group, version), kind: info.kind };
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
    options: Omit<WriteOptions, 'keepStatus'> = {},
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
    const invalidName = invalidNameReason(info, name);
    if (invalidName !== undefined) {
      throw new StatusError(
        422,
        'Invalid',
        `${info.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}": ${invalidName}`,
        {
          name,
          group: info.group,
          kind: info.kind,
          causes: [
            {
              reason: 'FieldValueInvalid',
              message: `Invalid value: "${name}": ${invalidName}`,
              field: 'metadata.name',
            },
          ],
        },
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
    const {
      deletionTimestamp: _deletionTimestamp,
      deletionGracePeriodSeconds: _grace,
      namespace: _namespace,
      ...clientMetadata
    } = metadata;
    const object: KubeObject = {
      ...incoming,
      apiVersion: groupVersion(info.group, version),
      kind: info.kind,
      metadata: {
        ...clientMetadata,
        name,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: '',
        creationTimestamp: kubeTime(this.clock.now()),
      },
    };
    if (tracksGeneration(info, object)) object.metadata.generation = 1;
    else delete object.metadata.generation;
    for (const admit of this.admissions) {
      admit({ operation: 'create', info, version, object, existing: undefined, ...options });
    }
    if (namespace !== undefined) this.provisionNamespace(namespace);
    object.metadata.resourceVersion = String(++this.resourceVersion);
    this.objects.set(key, object);
    this.hooks.afterWrite(info, key, object);
    const stored = this.objects.get(key)!;
    this.emit('ADDED', info, stored, undefined);
    return stored;
  }

  /**
   * Store a new state of an existing object: server-set metadata is kept, generation follows
   * the spec, and a write that changes nothing keeps its resourceVersion, as on a real server.
   * Removing the last finalizer of an object being deleted deletes it.
   */
  update(
    info: FakeResource,
    version: string,
    existing: KubeObject,
    incoming: KubeObject,
    options: WriteOptions,
  ): KubeObject {
    const next: KubeObject = {
      ...incoming,
      apiVersion: groupVersion(info.group, version),
      kind: info.kind,
      metadata: {
        ...incoming.metadata,
        name: existing.metadata.name,
        ...(existing.metadata.namespace !== undefined ? { namespace: existing.metadata.namespace } : {}),
        uid: existing.metadata.uid,
        creationTimestamp: existing.metadata.creationTimestamp,
        resourceVersion: existing.metadata.resourceVersion,
      },
    };
    if (next.metadata.namespace === undefined) delete next.metadata.namespace;
    if (options.keepStatus) {
      if (existing.status === undefined) delete next.status;
      else next.status = structuredClone(existing.status);
    }
    this.carryDeletion(info, existing, next);
    if (tracksGeneration(info, next)) {
      const generation = existing.metadata.generation ?? 1;
      next.metadata.generation =
        generationPart(info, version, next) === generationPart(info, version, existing)
          ? generation
          : generation + 1;
    } else delete next.metadata.generation;
    for (const admit of this.admissions) {
      admit({
        operation: 'update',
        info,
        version,
        object: next,
        existing,
        subresource: options.subresource,
        fieldValidation: options.fieldValidation,
        source: options.source,
      });
    }
    if (withoutResourceVersion(next) === withoutResourceVersion(existing)) return existing;
    next.metadata.resourceVersion = String(++this.resourceVersion);
    const key = this.key(info, existing.metadata.namespace, existing.metadata.name);
    if (next.metadata.deletionTimestamp !== undefined && finalizersOf(next).length === 0) {
      this.objects.delete(key);
      this.hooks.afterDelete(key);
      this.emit('DELETED', info, next, existing);
      return next;
    }
    this.objects.set(key, next);
    this.hooks.afterWrite(info, key, next);
    const stored = this.objects.get(key)!;
    this.emit('MODIFIED', info, stored, existing);
    return stored;
  }

  /**
   * Store a state a simulated controller produced (no hooks run again): a write of its own,
   * with a new resourceVersion.
   */
  commitSimulated(info: FakeResource, key: string, object: KubeObject): KubeObject {
    const previous = this.objects.get(key);
    const next: KubeObject = {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(++this.resourceVersion) },
    };
    this.objects.set(key, next);
    this.emit('MODIFIED', info, next, previous);
    return next;
  }

  /**
   * DELETE: an object with finalizers only gets its deletionTimestamp (and stays until the last
   * finalizer is removed); without, it is gone. `force` skips finalizers (a test's remove()).
   * Returns the object and whether it is gone, or undefined when there was none.
   */
  delete(
    info: FakeResource,
    namespace: string | undefined,
    name: string,
    options: { force?: boolean } = {},
  ): { object: KubeObject; deleted: boolean } | undefined {
    const key = this.key(info, namespace, name);
    const existing = this.objects.get(key);
    if (!existing) return undefined;
    if (!options.force && finalizersOf(existing).length > 0) {
      if (existing.metadata.deletionTimestamp !== undefined) return { object: existing, deleted: false };
      const next: KubeObject = {
        ...structuredClone(existing),
        metadata: {
          ...structuredClone(existing.metadata),
          deletionTimestamp: kubeTime(this.clock.now()),
          deletionGracePeriodSeconds: 0,
          resourceVersion: String(++this.resourceVersion),
        },
      };
      this.objects.set(key, next);
      this.emit('MODIFIED', info, next, existing);
      return { object: next, deleted: false };
    }
    this.objects.delete(key);
    this.hooks.afterDelete(key);
    const last: KubeObject = {
      ...existing,
      metadata: { ...existing.metadata, resourceVersion: String(++this.resourceVersion) },
    };
    this.emit('DELETED', info, last, existing);
    return { object: last, deleted: true };
  }

  /** Once deletion started it cannot be undone, and no finalizer can be added. */
  private carryDeletion(info: FakeResource, existing: KubeObject, next: KubeObject): void {
    const deletionTimestamp = existing.metadata.deletionTimestamp;
    if (deletionTimestamp === undefined) {
      delete next.metadata.deletionTimestamp;
      delete next.metadata.deletionGracePeriodSeconds;
      return;
    }
    next.metadata.deletionTimestamp = deletionTimestamp;
    next.metadata.deletionGracePeriodSeconds = existing.metadata.deletionGracePeriodSeconds;
    const before = new Set(finalizersOf(existing));
    const added = finalizersOf(next).filter((finalizer) => !before.has(finalizer));
    if (added.length > 0) {
      const name = existing.metadata.name;
      const message = `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`;
      throw new StatusError(422, 'Invalid', `${info.kind} "${name}" is invalid: ${message}`, {
        name,
        group: info.group,
        kind: info.kind,
        causes: [{ reason: 'FieldValueForbidden', message, field: 'metadata.finalizers' }],
      });
    }
  }

  private emit(
    type: WatchEventType,
    info: FakeResource,
    object: KubeObject,
    previous: KubeObject | undefined,
  ) {
    this.history.record({ type, resourceVersion: this.resourceVersion, info, object, previous });
  }

  /**
   * Like the NamespaceAutoProvision admission plugin: creating an object in a namespace creates
   * the namespace, so kubectl's "does the namespace exist" follow-up finds it.
   */
  private provisionNamespace(namespace: string): void {
    const namespaces = this.registry.find('', 'namespaces')!;
    if (this.objects.has(this.key(namespaces, undefined, namespace))) return;
    this.create(namespaces, 'v1', undefined, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace },
      status: { phase: 'Active' },
    });
  }
}
