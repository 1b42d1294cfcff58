// Discovery, as kubectl reads it: /version, /api, /apis, /apis/{group}, and resource lists
// (with short names and categories, so `kubectl get wlm` and `kubectl get clustershift` resolve).

import { type FakeResource, groupVersion } from './resources.js';
import { noSuchPath } from './status-error.js';

/** What GET /version answers when the test names no version. */
export const DEFAULT_GIT_VERSION = 'v1.32.0-clustershift-fake';

/** GET /version for `gitVersion` (e.g. v1.31.2): major and minor are taken from it, as a real server's are. */
export function versionInfo(gitVersion: string = DEFAULT_GIT_VERSION) {
  const parsed = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  return {
    major: parsed?.[1] ?? '',
    minor: parsed?.[2] ?? '',
    gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.0',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function coreVersions(host: string) {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `${host}:0` }],
  };
}

function groupNames(resources: readonly FakeResource[]): string[] {
  return [...new Set(resources.filter((r) => r.group !== '').map((r) => r.group))];
}

export function apiGroup(resources: readonly FakeResource[], group: string) {
  const versions = [...new Set(resources.filter((r) => r.group === group).flatMap((r) => r.versions))];
  if (versions.length === 0) throw noSuchPath();
  const entries = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: group,
    versions: entries,
    preferredVersion: entries[0],
  };
}

export function groupList(resources: readonly FakeResource[]) {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupNames(resources).map((group) => {
      const { kind: _kind, apiVersion: _apiVersion, ...rest } = apiGroup(resources, group);
      return rest;
    }),
  };
}

export function resourceList(resources: readonly FakeResource[], group: string, version: string) {
  const served = resources.filter((r) => r.group === group && r.versions.includes(version));
  if (served.length === 0) throw noSuchPath();
  const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
  const entries = served.flatMap((r) => {
    const main = {
      name: r.resource,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs,
      ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      ...(r.categories ? { categories: r.categories } : {}),
    };
    const subresources = [];
    if (r.status) {
      subresources.push({
        name: `${r.resource}/status`,
        singularName: '',
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
    if (r.scale) {
      subresources.push({
        name: `${r.resource}/scale`,
        singularName: '',
        namespaced: r.namespaced,
        group: 'autoscaling',
        version: 'v1',
        kind: 'Scale',
        verbs: ['get', 'patch', 'update'],
      });
    }
    return [main, ...subresources];
  });
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersion(group, version),
    resources: entries,
  };
}
