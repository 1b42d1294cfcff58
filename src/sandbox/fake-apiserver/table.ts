// meta.k8s.io/v1 Tables, the server-side printing `kubectl get` asks for: the Deployment
// columns, a custom resource's additionalPrinterColumns (JSONPath), or Name and Age.

import { evaluateJsonPath } from './json-path.js';
import type { FakeResource, PrinterColumn } from './resources.js';
import type { JsonObject, KubeObject } from './types.js';

/** Like kubectl's AGE column: 45s, 3m20s, 12m, 5h3m, 2d4h, 40d, 3y10d. */
export function humanDuration(ms: number): string {
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

export interface TableOptions {
  now: number;
  resourceVersion: string;
  /** `includeObject`: None, Metadata (the default) or Object. */
  includeObject: string | null;
}

interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

type CellsOf = (object: KubeObject, age: string) => unknown[];

function column(name: string, type: string, priority = 0, format = '', description = name): ColumnDefinition {
  return { name, type, format, description, priority };
}

function deploymentColumns(): { definitions: ColumnDefinition[]; cells: CellsOf } {
  return {
    definitions: [
      column('Name', 'string', 0, 'name'),
      column('Ready', 'string'),
      column('Up-to-date', 'integer'),
      column('Available', 'integer'),
      column('Age', 'string'),
      column('Containers', 'string', 1),
      column('Images', 'string', 1),
      column('Selector', 'string', 1),
    ],
    cells: (object, age) => {
      const spec = (object.spec ?? {}) as JsonObject;
      const status = (object.status ?? {}) as JsonObject;
      const template = ((spec.template as JsonObject | undefined)?.spec ?? {}) as JsonObject;
      const containers = (template.containers ?? []) as { name: string; image: string }[];
      const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<
        string,
        string
      >;
      return [
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
    },
  };
}

/** A CRD's additionalPrinterColumns after Name; `date` cells print as an age, as the real server does. */
function printerColumns(
  columns: PrinterColumn[],
  now: number,
): { definitions: ColumnDefinition[]; cells: CellsOf } {
  return {
    definitions: [
      column('Name', 'string', 0, 'name', 'Name must be unique within a namespace.'),
      ...columns.map((printer) =>
        column(
          printer.name,
          printer.type,
          printer.priority ?? 0,
          printer.format ?? '',
          printer.description ?? '',
        ),
      ),
    ],
    cells: (object) => [
      object.metadata.name,
      ...columns.map((printer) => {
        const value = evaluateJsonPath(object, printer.jsonPath);
        if (value === undefined) return null;
        if (printer.type === 'date' && typeof value === 'string')
          return humanDuration(now - Date.parse(value));
        if (typeof value === 'object' && value !== null) return JSON.stringify(value);
        return value;
      }),
    ],
  };
}

function columnsFor(info: FakeResource, version: string, now: number) {
  if (info.group === 'apps' && info.resource === 'deployments') return deploymentColumns();
  const printers = info.custom?.versions[version]?.printerColumns ?? [];
  if (printers.length > 0) return printerColumns(printers, now);
  return {
    definitions: [column('Name', 'string', 0, 'name'), column('Age', 'string')],
    cells: ((object, age) => [object.metadata.name, age]) as CellsOf,
  };
}

/** A Table of one object or a list body. */
export function toTable(
  info: FakeResource,
  version: string,
  body: JsonObject,
  options: TableOptions,
): JsonObject {
  const objects = (Array.isArray(body.items) ? body.items : [body]) as KubeObject[];
  const { definitions, cells } = columnsFor(info, version, options.now);
  const includeObject = options.includeObject ?? 'Metadata';
  const rows = objects.map((object) => {
    const age = humanDuration(options.now - Date.parse(object.metadata.creationTimestamp ?? ''));
    const rowObject =
      includeObject === 'None'
        ? undefined
        : includeObject === 'Object'
          ? object
          : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
    return { cells: cells(object, age), ...(rowObject ? { object: rowObject } : {}) };
  });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: options.resourceVersion },
    columnDefinitions: definitions,
    rows,
  };
}
