import { describeError, HearthError } from '../../../errors.js';
import type { PostgresTarget } from '../database-url.js';

// Errors that mean "the server is not there (any more)", as opposed to an error in the SQL.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
]);
// SQLSTATE: class 08 (connection exception), shutdown and start-up, too many connections,
// and authentication / missing database, which are only raised while connecting.
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300', '28000', '28P01', '3D000']);
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'is not queryable',
  'Query read timeout',
  'Connection ended',
  'The server does not support SSL',
];

/** Whether `err` (or an error it wraps) means the connection failed rather than the SQL. */
export function isConnectionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('08') || SERVER_CODES.has(code))) {
      return true;
    }
    if (CONNECTION_MESSAGES.some((m) => e instanceof Error && e.message.includes(m))) return true;
  }
  return false;
}

/** The innermost pg/system error (a wrapper may hide the one that carries the code). */
function rootError(err: unknown): unknown {
  let e = err;
  for (let depth = 0; depth < 5 && e instanceof Error && e.cause instanceof Error; depth++) e = e.cause;
  return e;
}

/** "what happened: what to do" for a failed connection, without the password. */
export function explainConnectionError(err: unknown, target: PostgresTarget): string {
  const root = rootError(err);
  const code = (root as { code?: unknown }).code;
  const cause = describeError(root);
  const where = `${target.host}:${target.port}`;
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused at ${where} (ECONNREFUSED): start PostgreSQL on Atlas, or fix the host and port in atlas.database`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host '${target.host}' not found (${code}): fix the host name in atlas.database or this node's DNS`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return `${where} cannot be reached (${code}): check that Atlas is up and that this node may reach port ${target.port}`;
    case '28P01':
    case '28000':
      return `authentication failed for user '${target.user}' (${cause}): fix the user and password in atlas.database, or pg_hba.conf on Atlas`;
    case '3D000':
      return `database '${target.database}' does not exist: create it on Atlas (createdb -O ${target.user || 'hearth'} ${target.database}) or fix atlas.database`;
    case '57P03':
      return `the server is starting up or shutting down (${cause}): wait for it and try again`;
    case '53300':
      return `the server has no free connections (${cause}): raise max_connections on Atlas or lower this node's pool size`;
    case '57P01':
    case '57P02':
    case 'ECONNRESET':
    case 'EPIPE':
      return `the server closed the connection (${cause}): check that PostgreSQL on Atlas is running; hearth reconnects by itself`;
  }
  if (/timeout/i.test(cause)) {
    return `no answer from ${where} in time (${cause}): check that Atlas is up and that this node may reach port ${target.port}`;
  }
  if (/ssl/i.test(cause)) return `TLS failed (${cause}): check sslmode in atlas.database and the server's ssl setting`;
  return `${cause}: check that PostgreSQL on Atlas is running and that atlas.database is right`;
}

/** The error a caller sees when PostgreSQL cannot be reached. */
export function unreachable(err: unknown, target: PostgresTarget, doing: string): HearthError {
  return new HearthError(
    'ATLAS_DB_UNREACHABLE',
    `atlas.database: ${doing} ${target.masked}: ${explainConnectionError(err, target)}`,
    { cause: err },
  );
}
