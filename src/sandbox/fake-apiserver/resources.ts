// The resources the fake API server serves: what discovery lists, and how paths map to kinds.

export interface FakeResource {
  /** '' for the core group (/api/v1). */
  group: string;
  /** Every version it is served at; objects are stored once and shown at the version asked for. */
  versions: string[];
  /** Plural, as in the URL: `deployments`. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  /** Has a `/scale` subresource (autoscaling/v1 Scale). */
  scale?: boolean;
  /** Has a `/status` subresource: writes to the main resource keep the stored status. */
  status?: boolean;
}

/** What the brief and kubectl need; `FakeApiServer.registerResource` adds more. */
export function defaultResources(): FakeResource[] {
  const core = (resource: string, kind: string, extra: Partial<FakeResource> = {}): FakeResource => ({
    group: '',
    versions: ['v1'],
    resource,
    singular: kind.toLowerCase(),
    kind,
    namespaced: true,
    ...extra,
  });
  const crd = (group: string, versions: string[], resource: string, kind: string, shortNames?: string[]) => ({
    group,
    versions,
    resource,
    singular: kind.toLowerCase(),
    kind,
    namespaced: true,
    status: true,
    ...(shortNames ? { shortNames } : {}),
  });
  return [
    core('configmaps', 'ConfigMap', { shortNames: ['cm'] }),
    core('events', 'Event', { shortNames: ['ev'] }),
    core('namespaces', 'Namespace', { namespaced: false, shortNames: ['ns'], status: true }),
    core('services', 'Service', { shortNames: ['svc'], status: true }),
    core('pods', 'Pod', { shortNames: ['po'], status: true }),
    {
      group: 'apps',
      versions: ['v1'],
      resource: 'deployments',
      singular: 'deployment',
      kind: 'Deployment',
      namespaced: true,
      shortNames: ['deploy'],
      scale: true,
      status: true,
    },
    {
      group: 'apps',
      versions: ['v1'],
      resource: 'statefulsets',
      singular: 'statefulset',
      kind: 'StatefulSet',
      namespaced: true,
      shortNames: ['sts'],
      scale: true,
      status: true,
    },
    crd('autoscaling', ['v2'], 'horizontalpodautoscalers', 'HorizontalPodAutoscaler', ['hpa']),
    { ...crd('coordination.k8s.io', ['v1'], 'leases', 'Lease'), status: false },
    { ...crd('events.k8s.io', ['v1'], 'events', 'Event', ['ev']), status: false },
    crd('networking.istio.io', ['v1', 'v1beta1'], 'virtualservices', 'VirtualService', ['vs']),
    crd('networking.istio.io', ['v1', 'v1beta1'], 'destinationrules', 'DestinationRule', ['dr']),
    crd('networking.istio.io', ['v1', 'v1beta1'], 'serviceentries', 'ServiceEntry', ['se']),
    crd('gateway.networking.k8s.io', ['v1'], 'httproutes', 'HTTPRoute'),
    crd('split.smi-spec.io', ['v1alpha2'], 'trafficsplits', 'TrafficSplit', ['ts']),
    crd('multicluster.x-k8s.io', ['v1alpha1'], 'serviceimports', 'ServiceImport', ['svcim']),
  ];
}

export function groupVersion(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

/** `apps/v1` -> { group: 'apps', version: 'v1' }; `v1` -> the core group. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** English plural of a kind the way CRDs usually spell it, for resources nobody registered. */
export function guessPlural(kind: string): string {
  const lower = kind.toLowerCase();
  if (/(s|x|ch|sh)$/.test(lower)) return `${lower}es`;
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

/** The kind for a resource nobody registered, derived from its plural. */
export function guessKind(resource: string): string {
  const singular = resource.endsWith('ies')
    ? `${resource.slice(0, -3)}y`
    : resource.endsWith('ses')
      ? resource.slice(0, -2)
      : resource.replace(/s$/, '');
  return singular.charAt(0).toUpperCase() + singular.slice(1);
}

/** The served resources; a path or kind nobody registered is still stored, generically. */
export class ResourceRegistry {
  private readonly resources: FakeResource[] = defaultResources();

  add(resource: FakeResource): void {
    this.resources.push(resource);
  }

  all(): readonly FakeResource[] {
    return this.resources;
  }

  /** A registered resource by plural or kind; anything else is served generically. */
  resolve(group: string, resourceOrKind: string, namespaced = true): FakeResource {
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
}
