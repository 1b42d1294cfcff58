// Which names a resource accepts, worded as the real API server's validation words them.

import type { FakeResource } from './resources.js';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `name` is not a valid name for the resource, or undefined when it is. */
export function invalidNameReason(info: FakeResource, name: string): string | undefined {
  if (info.group === 'rbac.authorization.k8s.io') {
    // RBAC names are path segments, so `system:controller:x` is fine.
    if (name === '.' || name === '..') return `may not be '${name}'`;
    if (/[/%]/.test(name)) return `may not contain '${name.includes('/') ? '/' : '%'}'`;
    return undefined;
  }
  if (info.group === '' && info.resource === 'namespaces') {
    if (name.length <= 63 && LABEL.test(name)) return undefined;
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
  }
  if (info.group === '' && info.resource === 'services') {
    if (name.length <= 63 && DNS1035_LABEL.test(name)) return undefined;
    return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
  }
  if (name.length <= 253 && SUBDOMAIN.test(name)) return undefined;
  return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
}
