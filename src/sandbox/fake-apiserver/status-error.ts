// A failed request, answered as a Kubernetes `Status` the way the real API server words it.

import type { FakeResource } from './resources.js';
import type { JsonObject } from './types.js';

export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: JsonObject,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The `Status` body of a failed request. */
export function statusBody(error: StatusError): JsonObject {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: error.message,
    reason: error.reason,
    ...(error.details ? { details: error.details } : {}),
    code: error.code,
  };
}

/** `deployments.apps`, or `configmaps` for the core group: how the server names a resource. */
export function groupResource(info: FakeResource): string {
  return info.group === '' ? info.resource : `${info.resource}.${info.group}`;
}

export function notFound(info: FakeResource, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${groupResource(info)} "${name}" not found`, {
    name,
    group: info.group,
    kind: info.resource,
  });
}

export function noSuchPath(): StatusError {
  return new StatusError(404, 'NotFound', 'the server could not find the requested resource');
}

export function conflict(info: FakeResource, name: string): StatusError {
  return new StatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${groupResource(info)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: info.group, kind: info.resource },
  );
}

export function methodNotAllowed(
  message = 'the server does not allow this method on the requested resource',
) {
  return new StatusError(405, 'MethodNotAllowed', message);
}
