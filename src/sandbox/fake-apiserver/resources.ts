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
  /** `kubectl get <category>` lists every resource in it (`all`, `clustershift`). */
  categories?: string[];
  /** Has a `/scale` subresource (autoscaling/v1 Scale). */
  scale?: boolean;
  /** Has a `/status` subresource: writes to the main resource keep the stored status. */
  status?: boolean;
  /** Set for resources a CustomResourceDefinition registered: what validates and prints them. */
  custom?: CustomResourceInfo;
}

/** Per served version of a custom resource: its schema, printer columns and subresources. */
export interface CustomResourceVersion {
  schema: Record<string, unknown> | undefined;
  printerColumns: PrinterColumn[];
  status: boolean;
}

export interface CustomResourceInfo {
  /** `plural.group`, the CRD's name. */
  crdName: string;
  versions: Record<string, CustomResourceVersion>;
}

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
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
  const rbac = (resource: string, kind: string, namespaced: boolean): FakeResource => ({
    group: 'rbac.authorization.k8s.io',
    versions: ['v1'],
    resource,
    singular: kind.toLowerCase(),
    kind,
    namespaced,
  });
  return [
    core('configmaps', 'ConfigMap', { shortNames: ['cm'] }),
    core('events', 'Event', { shortNames: ['ev'] }),
    core('namespaces', 'Namespace', { namespaced: false, shortNames: ['ns'], status: true }),
    core('services', 'Service', { shortNames: ['svc'], status: true }),
    core('pods', 'Pod', { shortNames: ['po'], status: true }),
    core('secrets', 'Secret'),
    core('serviceaccounts', 'ServiceAccount', { shortNames: ['sa'] }),
    core('endpoints', 'Endpoints', { shortNames: ['ep'] }),
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
    rbac('roles', 'Role', true),
    rbac('rolebindings', 'RoleBinding', true),
    rbac('clusterroles', 'ClusterRole', false),
    rbac('clusterrolebindings', 'ClusterRoleBinding', false),
    {
      group: 'policy',
      versions: ['v1'],
      resource: 'poddisruptionbudgets',
      singular: 'poddisruptionbudget',
      kind: 'PodDisruptionBudget',
      namespaced: true,
      shortNames: ['pdb'],
      status: true,
    },
    {
      group: 'networking.k8s.io',
      versions: ['v1'],
      resource: 'networkpolicies',
      singular: 'networkpolicy',
      kind: 'NetworkPolicy',
      namespaced: true,
      shortNames: ['netpol'],
    },
    {
      group: 'apiextensions.k8s.io',
      versions: ['v1'],
      resource: 'customresourcedefinitions',
      singular: 'customresourcedefinition',
      kind: 'CustomResourceDefinition',
      namespaced: false,
      shortNames: ['crd', 'crds'],
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

/** The served resources: built-in kinds, and those CustomResourceDefinitions register. */
export class ResourceRegistry {
  private readonly resources: FakeResource[] = defaultResources();

  /** Serve a resource; one with the same group and plural is replaced (a CRD was updated). */
  add(resource: FakeResource): void {
    this.remove(resource.group, resource.resource);
    this.resources.push(resource);
  }

  remove(group: string, resource: string): void {
    const index = this.resources.findIndex((r) => r.group === group && r.resource === resource);
    if (index >= 0) this.resources.splice(index, 1);
  }

  all(): readonly FakeResource[] {
    return this.resources;
  }

  /** A served resource by plural or kind, or undefined: the real server has no such path. */
  find(group: string, resourceOrKind: string): FakeResource | undefined {
    return this.resources.find(
      (resource) =>
        resource.group === group &&
        (resource.resource === resourceOrKind || resource.kind === resourceOrKind),
    );
  }
}
