// The one way the API says no: every error answer, whether from a route, validation, Fastify
// itself or the security hooks, is built here, with a code from the registry in errors.ts.

import { STATUS_CODES } from 'node:http';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyError, FastifyReply } from 'fastify';
import {
  BadRequestError,
  ClustershiftError,
  PathNotFoundError,
  PayloadTooLargeError,
  PhaseConflictError,
  UnsupportedMediaTypeError,
} from '../errors.js';

export const ErrorSchema = Type.Object(
  {
    error: Type.String({ description: 'The HTTP status text, e.g. Not Found' }),
    code: Type.String({ description: 'A stable code from docs/errors.md, e.g. CS_ROLLOUT_NOT_FOUND' }),
    message: Type.String({ description: 'What was wrong, where, and what to do' }),
    phase: Type.Optional(Type.String({ description: "With CS_PHASE_CONFLICT: the rollout's phase" })),
  },
  { $id: 'Error' },
);
export type ErrorBody = Static<typeof ErrorSchema>;

export function errorBody(error: ClustershiftError): ErrorBody {
  return {
    error: STATUS_CODES[error.statusCode] ?? 'Error',
    code: error.code,
    message: error.message,
    ...(error instanceof PhaseConflictError ? { phase: error.phase } : {}),
  };
}

/** Answers with the error's status, body and `headers`; returning the reply ends a hook chain. */
export function sendError(
  reply: FastifyReply,
  error: ClustershiftError,
  headers: Record<string, string | number> = {},
): FastifyReply {
  return reply.code(error.statusCode).headers(headers).send(errorBody(error));
}

/** Fastify's own 4xx errors (a body that is not JSON, too large, ...) as registry errors. */
const FASTIFY_CLIENT_ERRORS: Record<number, new (message: string) => ClustershiftError> = {
  404: PathNotFoundError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
};

/**
 * Any error a request ended with, as the error the API answers with; undefined for an
 * unexpected one (answered as CS_ERROR, 500, and logged: its message may say too much).
 */
export function clientErrorOf(error: FastifyError | ClustershiftError): ClustershiftError | undefined {
  if (error instanceof ClustershiftError) return error;
  if (error.validation) {
    const first = error.validation[0];
    return new BadRequestError(
      `${error.validationContext ?? 'request'}${first?.instancePath ?? ''} ${first?.message ?? 'is invalid'}`,
    );
  }
  const status = error.statusCode;
  if (status === undefined || status < 400 || status >= 500) return undefined;
  return new (FASTIFY_CLIENT_ERRORS[status] ?? BadRequestError)(error.message);
}
