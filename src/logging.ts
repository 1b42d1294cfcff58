// The process logger's settings: JSON lines through pino, secrets redacted by field, and request
// URLs kept (an access log without its path says nothing) with the values of query parameters
// that may carry a credential masked.

import pino, { type Logger, type LoggerOptions } from 'pino';

export const REDACTED = '[redacted]';

/** Query parameters whose values are credentials wherever they appear. */
const SECRET_QUERY_PARAMETER = /token|secret|password|passwd|key|signature|auth|credential|session/i;

/** The URL with the values of credential-like query parameters replaced by [redacted]. */
export function redactUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  const pairs = url
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      return equals !== -1 && SECRET_QUERY_PARAMETER.test(decodeQueryName(name))
        ? `${name}=${REDACTED}`
        : pair;
    });
  return `${url.slice(0, query)}?${pairs.join('&')}`;
}

function decodeQueryName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    // A censor function, not a req serializer: Fastify puts its own serializers on the child
    // logger it makes from ours, and redaction runs on whatever they produce.
    redact: {
      paths: ['req.headers.authorization', '*.token', '*.password', 'req.url'],
      censor: (value: unknown, path: string[]) =>
        path.join('.') === 'req.url' && typeof value === 'string' ? redactUrl(value) : REDACTED,
    },
  };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
