// Just enough OpenAPI v3 for `kubectl apply`: kubectl reads /openapi/v3 to learn whether the
// server validates fields itself (the `fieldValidation` parameter on PATCH). It does here (custom
// resources against their schema), so kubectl skips client-side schema validation, sends
// `fieldValidation=Strict`, and works out its patches from its built-in types. Schemas are
// not published: PATCH lists no strategic-merge content type, so kubectl never asks for them.

import { type FakeResource, groupVersion } from './resources.js';
import { noSuchPath } from './status-error.js';

function pathKey(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

function servedGroupVersions(resources: readonly FakeResource[]): { group: string; version: string }[] {
  const seen = new Map<string, { group: string; version: string }>();
  for (const resource of resources) {
    for (const version of resource.versions)
      seen.set(pathKey(resource.group, version), { group: resource.group, version });
  }
  return [...seen.values()];
}

/** GET /openapi/v3: one entry per served group version. */
export function openApiIndex(resources: readonly FakeResource[]) {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const { group, version } of servedGroupVersions(resources)) {
    const key = pathKey(group, version);
    // The hash only has to change when the served resources do, for kubectl's cache.
    const hash = resources
      .filter((r) => r.group === group && r.versions.includes(version))
      .map((r) => r.resource)
      .sort()
      .join('.');
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${encodeURIComponent(hash)}` };
  }
  return { paths };
}

/** GET /openapi/v3/apis/{group}/{version}: a PATCH operation per resource, naming its kind. */
export function openApiGroupVersion(resources: readonly FakeResource[], key: string) {
  const target = servedGroupVersions(resources).find(({ group, version }) => pathKey(group, version) === key);
  if (!target) throw noSuchPath();
  const { group, version } = target;
  const paths: Record<string, unknown> = {};
  for (const resource of resources.filter((r) => r.group === group && r.versions.includes(version))) {
    const scope = resource.namespaced ? '/namespaces/{namespace}' : '';
    const gvk = { group, version, kind: resource.kind };
    paths[`/${key}${scope}/${resource.resource}/{name}`] = {
      patch: {
        operationId: `patch${resource.kind}`,
        parameters: [
          { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
        requestBody: {
          content: {
            'application/json-patch+json': { schema: { type: 'object' } },
            'application/merge-patch+json': { schema: { type: 'object' } },
          },
          required: true,
        },
        responses: { '200': { description: 'OK' } },
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': gvk,
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: `${groupVersion(group, version)} (clustershift fake)` },
    paths,
    components: { schemas: {} },
  };
}
