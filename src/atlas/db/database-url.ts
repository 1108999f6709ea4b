import { HearthError } from '../../errors.js';

/** The `atlas.database` value that selects the embedded PGlite database. */
export const EMBEDDED_DATABASE = 'embedded';

/** Where a PostgreSQL URL points, with the password kept out of everything printable. */
export interface PostgresTarget {
  /** The URL as given: holds the password, hand it only to the driver. */
  readonly url: string;
  /** The URL with its password replaced by `***`: safe for logs and messages. */
  readonly masked: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
}

const PASSWORD_PARAMS = ['password', 'sslpassword'];

export function isEmbeddedDatabase(database: string): boolean {
  return database.trim() === EMBEDDED_DATABASE;
}

/**
 * A database location fit to print: the password (in the user part or a
 * `password=` parameter) becomes `***`. Also copes with strings that are not
 * valid URLs, since those end up in error messages too.
 */
export function maskDatabaseUrl(database: string): string {
  if (isEmbeddedDatabase(database)) return EMBEDDED_DATABASE;
  let url: URL;
  try {
    url = new URL(database);
  } catch {
    return database.replace(/(\/\/[^/@:]*:)[^@/]*@/, '$1***@').replace(/([?&](?:ssl)?password=)[^&]*/gi, '$1***');
  }
  if (url.password) url.password = '***';
  for (const param of PASSWORD_PARAMS) if (url.searchParams.has(param)) url.searchParams.set(param, '***');
  return url.toString();
}

/** Reads a postgres:// or postgresql:// URL; anything else is a configuration error. */
export function parsePostgresUrl(database: string): PostgresTarget {
  const masked = maskDatabaseUrl(database);
  let url: URL;
  try {
    url = new URL(database);
  } catch {
    throw invalidDatabase(masked);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw invalidDatabase(masked);
  const user = decodeURIComponent(url.username) || url.searchParams.get('user') || process.env['PGUSER'] || '';
  const database_ = decodeURIComponent(url.pathname.replace(/^\//, '')) || user;
  return {
    url: database,
    masked,
    host: url.hostname || url.searchParams.get('host') || 'localhost',
    port: url.port ? Number(url.port) : 5432,
    user,
    database: database_,
  };
}

function invalidDatabase(masked: string): HearthError {
  return new HearthError(
    'CONFIG_INVALID',
    `atlas.database: '${masked}' is neither 'embedded' nor a postgres:// URL: ` +
      `use 'embedded' or e.g. postgres://hearth:PASSWORD@atlas:5432/hearth`,
  );
}
