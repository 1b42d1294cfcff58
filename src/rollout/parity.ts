// Parity: the application must not change during a cluster upgrade. Compares the pod templates of
// the old and new cluster's Deployments field by field (images, env, command, resources, probes,
// volumes' sources, service account, security context, scheduling, annotations and labels),
// minus what the policy allows to differ between clusters; also the related objects (Service,
// HPA, PDB) and the two clusters' Kubernetes versions. Pure: the observation brings the objects.

import { createHash } from 'node:crypto';

export type ParityMode = 'strict' | 'images' | 'off';

export interface ParityPolicy {
  /** strict: every compared field; images: container images only (the behaviour before); off: nothing. */
  mode: ParityMode;
  /** Field paths allowed to differ (prefixes; `*` matches within one name), e.g. nodeSelector. */
  allow: readonly string[];
}

/**
 * What legitimately differs between two clusters: where pods are scheduled and annotations the
 * cluster's own tooling writes. Giving `parity.allow` replaces this list.
 */
export const DEFAULT_PARITY_ALLOW: readonly string[] = [
  'nodeSelector',
  'tolerations',
  'affinity',
  'topologySpreadConstraints',
  'priorityClassName',
  'metadata.annotations[kubectl.kubernetes.io/restartedAt]',
  'metadata.annotations[cluster-autoscaler.kubernetes.io/*]',
  'metadata.annotations[karpenter.sh/*]',
];

type EnvVar = { name: string; value?: string; valueFrom?: unknown };

/** The parts of a container that parity reads; a client-node V1Container fits. */
export interface ContainerTemplate {
  name: string;
  image?: string;
  command?: unknown;
  args?: unknown;
  env?: ReadonlyArray<EnvVar>;
  envFrom?: unknown;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown>; claims?: unknown };
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  startupProbe?: unknown;
  securityContext?: unknown;
}

/** A Deployment's spec.template as parity reads it; a client-node V1PodTemplateSpec fits. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    containers?: readonly ContainerTemplate[];
    initContainers?: readonly ContainerTemplate[];
    volumes?: ReadonlyArray<{ name: string }>;
    serviceAccountName?: string;
    securityContext?: unknown;
    nodeSelector?: unknown;
    tolerations?: unknown;
    affinity?: unknown;
    topologySpreadConstraints?: unknown;
    priorityClassName?: string;
  };
}

export interface ParityDifference {
  /** Where, in the pod template: `containers[app].env[LOG_LEVEL]`. */
  field: string;
  old: string;
  new: string;
}

const ABSENT = '(none)';
const MAX_VALUE_CHARS = 200;
/** Env values under names like these may be credentials: shown as a digest, never as text. */
const SECRET_NAME = /pass|secret|token|key|credential|private|auth|cert/i;

/** JSON with sorted keys; empty objects, empty lists and null read as absent. */
function canonical(value: unknown): string | undefined {
  const normalize = (v: unknown): unknown => {
    if (v === null || v === undefined) return undefined;
    if (Array.isArray(v)) {
      const items = v.map(normalize);
      return items.length === 0 ? undefined : items;
    }
    if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>)
        .map(([key, item]) => [key, normalize(item)] as const)
        .filter(([, item]) => item !== undefined)
        .sort(([a], [b]) => a.localeCompare(b));
      return entries.length === 0 ? undefined : Object.fromEntries(entries);
    }
    return v;
  };
  const normalized = normalize(value);
  return normalized === undefined ? undefined : JSON.stringify(normalized);
}

const shown = (text: string | undefined): string => {
  if (text === undefined) return ABSENT;
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 3)}...` : text;
};

const digest = (text: string): string =>
  `(hidden, sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 12)})`;

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity as a number ("500m" and "0.5" are one value); undefined when it is not one. */
export function quantityValue(quantity: unknown): number | undefined {
  const text = typeof quantity === 'number' ? String(quantity) : typeof quantity === 'string' ? quantity : '';
  const match = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(
    text.trim(),
  );
  if (!match) return undefined;
  const value = Number(match[1]) * (SUFFIX[match[2] ?? ''] ?? Number.NaN);
  return Number.isFinite(value) ? value : undefined;
}

function byName<T extends { name: string }>(items: readonly T[] | undefined): Map<string, T> {
  return new Map((items ?? []).map((item) => [item.name, item]));
}

function keysOf(...maps: Array<Map<string, unknown> | Record<string, unknown> | undefined>): string[] {
  const keys = new Set<string>();
  for (const map of maps) {
    if (!map) continue;
    for (const key of map instanceof Map ? map.keys() : Object.keys(map)) keys.add(key);
  }
  return [...keys].sort();
}

class Differences {
  readonly found: ParityDifference[] = [];

  /** Compares two values as canonical JSON (strings as they are). */
  value(field: string, old: unknown, fresh: unknown): void {
    const a = typeof old === 'string' ? old : canonical(old);
    const b = typeof fresh === 'string' ? fresh : canonical(fresh);
    if (a !== b) this.found.push({ field, old: shown(a), new: shown(b) });
  }

  add(field: string, old: string, fresh: string): void {
    this.found.push({ field, old, new: fresh });
  }
}

function compareEnv(diff: Differences, where: string, old: ContainerTemplate, fresh: ContainerTemplate) {
  const a = byName(old.env);
  const b = byName(fresh.env);
  for (const name of keysOf(a, b)) {
    const text = (variable: EnvVar | undefined) =>
      variable === undefined
        ? undefined
        : variable.valueFrom !== undefined
          ? canonical({ valueFrom: variable.valueFrom })
          : (variable.value ?? '');
    const oldText = text(a.get(name));
    const newText = text(b.get(name));
    if (oldText === newText) continue;
    const secretish = SECRET_NAME.test(name);
    const show = (t: string | undefined) => (t === undefined ? ABSENT : secretish ? digest(t) : shown(t));
    diff.add(`${where}.env[${name}]`, show(oldText), show(newText));
  }
  diff.value(`${where}.envFrom`, old.envFrom, fresh.envFrom);
}

function compareResources(
  diff: Differences,
  where: string,
  old: ContainerTemplate['resources'],
  fresh: ContainerTemplate['resources'],
) {
  for (const kind of ['requests', 'limits'] as const) {
    const a = old?.[kind] ?? {};
    const b = fresh?.[kind] ?? {};
    for (const resource of keysOf(a, b)) {
      const x = a[resource];
      const y = b[resource];
      const same = x === y || (quantityValue(x) !== undefined && quantityValue(x) === quantityValue(y));
      if (!same)
        diff.add(
          `${where}.resources.${kind}.${resource}`,
          x === undefined ? ABSENT : String(x),
          y === undefined ? ABSENT : String(y),
        );
    }
  }
  diff.value(`${where}.resources.claims`, old?.claims, fresh?.claims);
}

function compareContainers(
  diff: Differences,
  list: 'containers' | 'initContainers',
  old: readonly ContainerTemplate[] | undefined,
  fresh: readonly ContainerTemplate[] | undefined,
  imagesOnly: boolean,
) {
  const a = byName(old);
  const b = byName(fresh);
  for (const name of keysOf(a, b)) {
    const where = `${list}[${name}]`;
    const x = a.get(name);
    const y = b.get(name);
    if (!x || !y) {
      diff.add(where, x ? `image ${x.image ?? ''}` : ABSENT, y ? `image ${y.image ?? ''}` : ABSENT);
      continue;
    }
    diff.value(`${where}.image`, x.image ?? '', y.image ?? '');
    if (imagesOnly) continue;
    diff.value(`${where}.command`, x.command, y.command);
    diff.value(`${where}.args`, x.args, y.args);
    compareEnv(diff, where, x, y);
    compareResources(diff, where, x.resources, y.resources);
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const)
      diff.value(`${where}.${probe}`, x[probe], y[probe]);
    diff.value(`${where}.securityContext`, x.securityContext, y.securityContext);
  }
}

function compareMap(
  diff: Differences,
  field: string,
  old: Record<string, string> | undefined,
  fresh: Record<string, string> | undefined,
) {
  for (const key of keysOf(old, fresh)) diff.value(`${field}[${key}]`, old?.[key], fresh?.[key]);
}

/** A `*` matches within one name; a pattern also allows every field under it. */
function allowPattern(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^\\]]*');
  return new RegExp(`^${body}($|[.[])`);
}

/**
 * Every difference between the two pod templates the policy does not allow, in a stable order.
 * Init containers count: a changed init image changes the application.
 */
export function parityDifferences(
  old: PodTemplate,
  fresh: PodTemplate,
  policy: ParityPolicy,
): ParityDifference[] {
  if (policy.mode === 'off') return [];
  const imagesOnly = policy.mode === 'images';
  const diff = new Differences();
  compareContainers(diff, 'initContainers', old.spec?.initContainers, fresh.spec?.initContainers, imagesOnly);
  compareContainers(diff, 'containers', old.spec?.containers, fresh.spec?.containers, imagesOnly);
  if (!imagesOnly) {
    const a = old.spec ?? {};
    const b = fresh.spec ?? {};
    const volumesA = byName(a.volumes);
    const volumesB = byName(b.volumes);
    for (const name of keysOf(volumesA, volumesB)) {
      const source = (volume: { name: string } | undefined) => {
        if (!volume) return undefined;
        const { name: _name, ...rest } = volume as Record<string, unknown>;
        return canonical(rest) ?? '{}';
      };
      diff.value(`volumes[${name}]`, source(volumesA.get(name)), source(volumesB.get(name)));
    }
    // The API server gives a pod without one the namespace's default service account.
    diff.value('serviceAccountName', a.serviceAccountName || 'default', b.serviceAccountName || 'default');
    diff.value('securityContext', a.securityContext, b.securityContext);
    for (const field of [
      'nodeSelector',
      'tolerations',
      'affinity',
      'topologySpreadConstraints',
      'priorityClassName',
    ] as const)
      diff.value(field, a[field], b[field]);
    compareMap(diff, 'metadata.labels', old.metadata?.labels, fresh.metadata?.labels);
    compareMap(diff, 'metadata.annotations', old.metadata?.annotations, fresh.metadata?.annotations);
  }
  const allowed = policy.allow.map(allowPattern);
  return diff.found.filter((difference) => !allowed.some((pattern) => pattern.test(difference.field)));
}

/** One line for a preflight refusal: the first few differences with both values. */
export function describeDifferences(differences: readonly ParityDifference[], mode: ParityMode): string {
  const shownCount = 5;
  const listed = differences
    .slice(0, shownCount)
    .map((d) => `${d.field}: old ${d.old}, new ${d.new}`)
    .join('; ');
  const more = differences.length > shownCount ? `; and ${differences.length - shownCount} more` : '';
  const hint =
    mode === 'strict'
      ? ' (make them the same, or list a field that may differ in parity.allow)'
      : ' (make them the same)';
  return `the application differs between the clusters (parity: ${mode}): ${listed}${more}${hint}`;
}

/** The objects around a workload that must move with it: its Services, HPA and PDBs, by name. */
export interface RelatedObjects {
  services: readonly string[];
  podDisruptionBudgets: readonly string[];
  horizontalPodAutoscaler?: string;
}

/** What the old cluster has around the workload and the new one lacks, e.g. `Service checkout`. */
export function missingRelatedObjects(old: RelatedObjects, fresh: RelatedObjects): string[] {
  const missing: string[] = [];
  for (const name of old.services) if (!fresh.services.includes(name)) missing.push(`Service ${name}`);
  if (old.horizontalPodAutoscaler !== undefined && fresh.horizontalPodAutoscaler === undefined)
    missing.push(`HorizontalPodAutoscaler ${old.horizontalPodAutoscaler}`);
  for (const name of old.podDisruptionBudgets)
    if (!fresh.podDisruptionBudgets.includes(name)) missing.push(`PodDisruptionBudget ${name}`);
  return missing;
}

/** Major and minor of a gitVersion (v1.31.2-gke.1 -> [1, 31]); undefined when it is not one. */
export function minorVersion(gitVersion: string): [number, number] | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(gitVersion.trim());
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/**
 * Why the pair looks swapped: the "new" cluster runs an older minor version than the "old"
 * one. Patch releases are not compared: two clusters of one minor differ by patch routinely.
 */
export function swappedVersions(
  old: { name: string; version: string },
  fresh: { name: string; version: string },
): string | undefined {
  const a = minorVersion(old.version);
  const b = minorVersion(fresh.version);
  if (!a || !b) return undefined;
  const older = b[0] < a[0] || (b[0] === a[0] && b[1] < a[1]);
  if (!older) return undefined;
  return `the new cluster ${fresh.name} runs Kubernetes ${fresh.version}, older than the old cluster ${old.name} (${old.version}): the pair is probably swapped; name the upgraded cluster as new`;
}
