// apiextensions.k8s.io/v1 CustomResourceDefinitions: checking a CRD, serving the resource it
// defines (discovery, short names, categories, status subresource, printer columns), taking it
// away again with its objects when the CRD is deleted, and admitting custom resources through
// their version's structural schema.

import type { Clock } from '../../clock.js';
import type { StoreEvent } from './change-history.js';
import { kubeTime } from './object-metadata.js';
import type { ObjectStore, WriteContext } from './object-store.js';
import type { CustomResourceVersion, FakeResource, PrinterColumn, ResourceRegistry } from './resources.js';
import { checkAgainstSchema, type FieldError } from './schema-validation.js';
import { StatusError } from './status-error.js';
import { isObject, type JsonObject, type KubeObject } from './types.js';

const CRD_GROUP = 'apiextensions.k8s.io';

function isCrd(info: FakeResource): boolean {
  return info.group === CRD_GROUP && info.resource === 'customresourcedefinitions';
}

/** Kubernetes version priority: v1 > v1beta2 > v1beta1 > v1alpha1, then anything else by name. */
function versionPriority(version: string): number[] {
  const match = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(version);
  if (!match) return [0, 0, 0];
  const stability = match[2] === undefined ? 3 : match[2] === 'beta' ? 2 : 1;
  return [stability, Number(match[1]), Number(match[3] ?? 0)];
}

function byPriority(a: string, b: string): number {
  const [x, y] = [versionPriority(a), versionPriority(b)];
  for (let index = 0; index < 3; index++) {
    if (x[index] !== y[index]) return y[index]! - x[index]!;
  }
  return a.localeCompare(b);
}

/** A 422 Invalid Status naming every field, worded like the real API server. */
export function invalid(kind: string, group: string, name: string, errors: FieldError[]): StatusError {
  const lines = errors.map((error) =>
    error.field === '' ? error.message : `${error.field}: ${error.message}`,
  );
  const qualified = group === '' ? kind : `${kind}.${group}`;
  return new StatusError(
    422,
    'Invalid',
    `${qualified} "${name}" is invalid: ${lines.length === 1 ? lines[0] : `[${lines.join(', ')}]`}`,
    {
      name,
      group,
      kind,
      causes: errors.map((error) => ({ reason: error.reason, message: error.message, field: error.field })),
    },
  );
}

interface CrdNames {
  plural: string;
  singular: string;
  kind: string;
  shortNames: string[];
  categories: string[];
}

function crdErrors(crd: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const required = (field: string) =>
    errors.push({ field, reason: 'FieldValueRequired', message: 'Required value' });
  const spec = isObject(crd.spec) ? crd.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  if (typeof spec.group !== 'string' || spec.group === '') required('spec.group');
  if (typeof names.plural !== 'string' || names.plural === '') required('spec.names.plural');
  if (typeof names.kind !== 'string' || names.kind === '') required('spec.names.kind');
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
    errors.push({
      field: 'spec.scope',
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(spec.scope ?? '')}: supported values: "Cluster", "Namespaced"`,
    });
  }
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObject) : [];
  if (versions.length === 0) required('spec.versions');
  else {
    const storage = versions.filter((version) => version.storage === true).length;
    if (storage !== 1) {
      errors.push({
        field: 'spec.versions',
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(versions.map((v) => v.name))}: must have exactly one version marked as storage version`,
      });
    }
    versions.forEach((version, index) => {
      const schema = isObject(version.schema) ? version.schema.openAPIV3Schema : undefined;
      if (!isObject(schema)) required(`spec.versions[${index}].schema.openAPIV3Schema`);
      else if (schema.type !== 'object') {
        errors.push({
          field: `spec.versions[${index}].schema.openAPIV3Schema.type`,
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(schema.type ?? '')}: must be object at the root`,
        });
      }
    });
  }
  const expectedName = `${names.plural}.${spec.group}`;
  if (
    typeof names.plural === 'string' &&
    typeof spec.group === 'string' &&
    crd.metadata.name !== expectedName
  ) {
    errors.push({
      field: 'metadata.name',
      reason: 'FieldValueInvalid',
      message: `Invalid value: "${crd.metadata.name}": must be spec.names.plural+"."+spec.group`,
    });
  }
  return errors;
}

function namesOf(crd: KubeObject): CrdNames {
  const names = (crd.spec as JsonObject).names as JsonObject;
  const strings = (value: unknown) =>
    Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  const kind = names.kind as string;
  return {
    plural: names.plural as string,
    singular:
      typeof names.singular === 'string' && names.singular !== '' ? names.singular : kind.toLowerCase(),
    kind,
    shortNames: strings(names.shortNames),
    categories: strings(names.categories),
  };
}

/** The resource a (checked) CRD serves. */
function resourceOf(crd: KubeObject): FakeResource {
  const spec = crd.spec as JsonObject;
  const names = namesOf(crd);
  const served = (spec.versions as JsonObject[]).filter((version) => version.served !== false);
  const versions: Record<string, CustomResourceVersion> = {};
  for (const version of served) {
    const subresources = isObject(version.subresources) ? version.subresources : {};
    const columns = Array.isArray(version.additionalPrinterColumns) ? version.additionalPrinterColumns : [];
    versions[version.name as string] = {
      schema: (version.schema as JsonObject | undefined)?.openAPIV3Schema as JsonObject | undefined,
      printerColumns: columns.filter(isObject).map((column) => ({ ...column }) as unknown as PrinterColumn),
      status: isObject(subresources.status),
    };
  }
  return {
    group: spec.group as string,
    versions: Object.keys(versions).sort(byPriority),
    resource: names.plural,
    singular: names.singular,
    kind: names.kind,
    namespaced: spec.scope === 'Namespaced',
    ...(names.shortNames.length > 0 ? { shortNames: names.shortNames } : {}),
    ...(names.categories.length > 0 ? { categories: names.categories } : {}),
    status: Object.values(versions).some((version) => version.status),
    custom: { crdName: crd.metadata.name, versions },
  };
}

/** Serves CRDs' resources as CRDs come and go. */
export class CustomResources {
  private readonly store: ObjectStore;
  private readonly registry: ResourceRegistry;
  private readonly clock: Clock;

  constructor(options: { store: ObjectStore; registry: ResourceRegistry; clock: Clock }) {
    this.store = options.store;
    this.clock = options.clock;
    this.registry = options.registry;
    this.store.addAdmission((context) => this.admit(context));
    this.store.subscribe((event) => this.follow(event));
  }

  private admit(context: WriteContext): void {
    if (isCrd(context.info)) this.admitDefinition(context);
    else if (context.info.custom) this.admitCustomResource(context);
  }

  /** A CRD is checked, and gets the status a real server's controllers give it at once. */
  private admitDefinition({ object, operation }: WriteContext): void {
    const errors = crdErrors(object);
    if (errors.length > 0) throw invalid('CustomResourceDefinition', CRD_GROUP, object.metadata.name, errors);
    const names = namesOf(object);
    const spec = object.spec as JsonObject;
    const clash = this.registry
      .all()
      .find(
        (resource) =>
          resource.group === spec.group &&
          resource.resource !== names.plural &&
          (resource.kind === names.kind || resource.resource === names.plural),
      );
    if (clash) {
      throw invalid('CustomResourceDefinition', CRD_GROUP, object.metadata.name, [
        {
          field: 'spec.names.kind',
          reason: 'FieldValueInvalid',
          message: `Invalid value: "${names.kind}": is already in use`,
        },
      ]);
    }
    if (operation === 'create' || object.status === undefined) {
      const now = kubeTime(this.clock.now());
      const condition = (type: string, reason: string, message: string) => ({
        type,
        status: 'True',
        lastTransitionTime: now,
        reason,
        message,
      });
      object.status = {
        conditions: [
          condition('NamesAccepted', 'NoConflicts', 'no conflicts found'),
          condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted'),
        ],
        acceptedNames: {
          plural: names.plural,
          singular: names.singular,
          kind: names.kind,
          listKind: `${names.kind}List`,
          ...(names.shortNames.length > 0 ? { shortNames: names.shortNames } : {}),
          ...(names.categories.length > 0 ? { categories: names.categories } : {}),
        },
        storedVersions: (spec.versions as JsonObject[]).filter((v) => v.storage === true).map((v) => v.name),
      };
    }
  }

  /**
   * Through the version's schema; with a status subresource, status is dropped on create (it
   * is written through /status only), as a real server does.
   */
  private admitCustomResource({
    info,
    version,
    object,
    existing,
    operation,
    fieldValidation,
    source,
  }: WriteContext): void {
    const served = info.custom!.versions[version];
    if (!served) {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (operation === 'create' && served.status && source !== 'seed') delete object.status;
    if (!served.schema) return;
    const check = checkAgainstSchema(served.schema, object, existing);
    if (check.unknownFields.length > 0 && fieldValidation === 'Strict') {
      throw new StatusError(
        400,
        'BadRequest',
        `${info.kind} in version "${version}" cannot be handled as a ${info.kind}: strict decoding error: ${check.unknownFields
          .map((field) => `unknown field "${field}"`)
          .join(', ')}`,
      );
    }
    if (check.errors.length > 0) throw invalid(info.kind, info.group, object.metadata.name, check.errors);
  }

  private follow(event: StoreEvent): void {
    if (!isCrd(event.info)) return;
    if (event.type === 'DELETED') {
      const served = this.registry
        .all()
        .find((resource) => resource.custom?.crdName === event.object.metadata.name);
      if (!served) return;
      // The real server's finalizer removes every object of the resource before the CRD goes.
      for (const object of this.store.select(served, undefined)) {
        this.store.delete(served, object.metadata.namespace, object.metadata.name, { force: true });
      }
      this.registry.remove(served.group, served.resource);
      return;
    }
    this.registry.add(resourceOf(event.object));
  }
}
