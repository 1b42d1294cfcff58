// Kubernetes' rules for names (RFC 1123), in one place for the configuration schema, the API's
// path and query parameters, and the fake API server that refuses what a real one refuses.

/** A DNS subdomain: the name of most objects (Deployments, ConfigMaps, custom resources). */
export const DNS_SUBDOMAIN = { pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 } as const;

/** A DNS label: a namespace's name (no dots). */
export const DNS_LABEL = { pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 } as const;

const SUBDOMAIN = new RegExp(DNS_SUBDOMAIN.pattern);
const LABEL = new RegExp(DNS_LABEL.pattern);

export function isDnsSubdomain(name: string): boolean {
  return name.length <= DNS_SUBDOMAIN.maxLength && SUBDOMAIN.test(name);
}

export function isDnsLabel(name: string): boolean {
  return name.length <= DNS_LABEL.maxLength && LABEL.test(name);
}
