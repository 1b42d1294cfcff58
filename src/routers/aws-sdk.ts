// The AWS SDK clients, imported when a route of their kind is bound (the registry builds its
// client then) or first called, not when the controller starts: the two clients and their
// @smithy dependencies are ~10 MiB of RSS that a controller with no alb or route53 route never
// uses. Each module is imported once; a failed import stays failed (the package is missing from
// the install, which no retry mends) and fails that route's calls.

export type Elbv2Sdk = typeof import('@aws-sdk/client-elastic-load-balancing-v2');
export type Route53Sdk = typeof import('@aws-sdk/client-route-53');

let elbv2: Promise<Elbv2Sdk> | undefined;
let route53: Promise<Route53Sdk> | undefined;

export function loadElbv2Sdk(): Promise<Elbv2Sdk> {
  elbv2 ??= import('@aws-sdk/client-elastic-load-balancing-v2');
  return elbv2;
}

export function loadRoute53Sdk(): Promise<Route53Sdk> {
  route53 ??= import('@aws-sdk/client-route-53');
  return route53;
}

/**
 * A client that may still be loading, as a promise that never goes unhandled while no call
 * awaits it (its rejection reaches the first call instead).
 */
export function pendingClient<T>(client: T | Promise<T>): Promise<T> {
  const pending = Promise.resolve(client);
  pending.catch(() => undefined);
  return pending;
}
