/**
 * `hearth keys create|list|revoke`: API keys on Atlas.
 *
 * The command opens the Atlas database from the configuration, as `hearth
 * doctor` does: that works with no server running (the first admin key has
 * to come from somewhere) and, on PostgreSQL, next to any number of running
 * nodes. The embedded database (PGlite) serves one process, so when a running
 * `hearth serve` holds it, the command goes through that server's admin API
 * instead (`/api/keys` at HEARTH_HOST, default 127.0.0.1:11434, with
 * HEARTH_API_KEY as its bearer key when the listener requires one).
 */
import type { Command } from 'commander';
import { openAtlasDb } from '../atlas/db/index.js';
import { embeddedDbDir } from '../config/index.js';
import { HearthError, isHearthError } from '../errors.js';
import { silentLogger } from '../log.js';
import { type ApiKeyInfo, ApiKeyStore, KEY_SCOPES } from '../net/index.js';
import { relativeTime, table } from '../units.js';
import { HearthClient } from './client.js';
import { action, type ConfigOption, loadCliConfig } from './shared.js';

/** What the commands need, whichever way Atlas is reached. */
interface KeyBackend {
  /** How Atlas was reached, for messages. */
  via: string;
  create(opts: { name: string; scopes: string[]; expires?: string }): Promise<{ key: string; info: ApiKeyInfo }>;
  list(includeRevoked: boolean): Promise<ApiKeyInfo[]>;
  revoke(name: string): Promise<ApiKeyInfo>;
  close(): Promise<void>;
}

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description('manage API keys (stored hashed on Atlas, so every node sees a change at once)');

  keys
    .command('create')
    .description('create an API key and print it (only this once)')
    .requiredOption('--name <name>', 'what the key is for, e.g. n8n or home-assistant (unique among active keys)')
    .requiredOption('--scopes <list>', `comma-separated: ${KEY_SCOPES.join(', ')}`)
    .option('--expires <lifetime>', 'e.g. 90d, 12w, 24h (default: never)')
    .action(
      action(async (o: { name: string; scopes: string; expires?: string }) => {
        await withKeys(program, async (backend) => {
          const { key, info } = await backend.create({
            name: o.name,
            scopes: o.scopes.split(','),
            ...(o.expires !== undefined ? { expires: o.expires } : {}),
          });
          // The key alone on stdout, so `KEY=$(hearth keys create ...)` works; the notes go to stderr.
          process.stdout.write(`${key}\n`);
          process.stderr.write(
            `created key ${JSON.stringify(info.name)} (id ${info.id}; scopes ${info.scopes.join(', ')}; ` +
              `${info.expiresAt ? `expires ${info.expiresAt.toISOString()}` : 'never expires'}) via ${backend.via}.\n` +
              'Store it now: it is not shown again. Clients send it as "Authorization: Bearer <key>".\n',
          );
        });
      }),
    );

  keys
    .command('list')
    .alias('ls')
    .description('list API keys: name, scopes, created, last used (never the key)')
    .option('--all', 'include revoked keys')
    .action(
      action(async (o: { all?: boolean }) => {
        await withKeys(program, async (backend) => {
          const list = await backend.list(o.all ?? false);
          process.stdout.write(keyTable(list, o.all ?? false));
        });
      }),
    );

  keys
    .command('revoke')
    .description('revoke an API key by name (or id): every node refuses it from its next request')
    .argument('<name>')
    .action(
      action(async (name: string) => {
        await withKeys(program, async (backend) => {
          const info = await backend.revoke(name);
          process.stdout.write(`revoked key ${JSON.stringify(info.name)} (id ${info.id})\n`);
        });
      }),
    );
}

/** The `keys list` table. */
export function keyTable(keys: readonly ApiKeyInfo[], withRevoked: boolean, now: Date = new Date()): string {
  const header = ['NAME', 'ID', 'SCOPES', 'CREATED', 'LAST USED', 'EXPIRES', ...(withRevoked ? ['REVOKED'] : [])];
  const rows = keys.map((k) => [
    k.name,
    k.id,
    k.scopes.join(','),
    relativeTime(k.createdAt, now),
    k.lastUsedAt ? relativeTime(k.lastUsedAt, now) : 'never',
    k.expiresAt ? relativeTime(k.expiresAt, now) : 'never',
    ...(withRevoked ? [k.revokedAt ? relativeTime(k.revokedAt, now) : '-'] : []),
  ]);
  return table(header, rows);
}

async function withKeys(program: Command, fn: (backend: KeyBackend) => Promise<void>): Promise<void> {
  const backend = await openKeyBackend(program.opts<ConfigOption>());
  try {
    await fn(backend);
  } finally {
    await backend.close();
  }
}

async function openKeyBackend(opts: ConfigOption): Promise<KeyBackend> {
  const { config } = loadCliConfig(opts);
  let db: Awaited<ReturnType<typeof openAtlasDb>>;
  try {
    db = await openAtlasDb({
      database: config.atlas.database,
      embeddedDir: embeddedDbDir(config),
      log: silentLogger(),
    });
  } catch (err) {
    if (!isHearthError(err, 'ATLAS_DB_IN_USE')) throw err;
    return serverBackend(err);
  }
  const store = new ApiKeyStore({ db });
  return {
    via: db.describe,
    create: (o) => store.create(o),
    list: (includeRevoked) => store.list({ includeRevoked }),
    revoke: (name) => store.revoke(name),
    close: () => db.close(),
  };
}

interface KeyJson {
  id: string;
  name: string;
  scopes: ApiKeyInfo['scopes'];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** The running server's admin API, for when it holds the embedded database. */
async function serverBackend(inUse: HearthError): Promise<KeyBackend> {
  const client = new HearthClient();
  const via = `the admin API of the hearth serving ${client.base}`;
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    try {
      return await client.json<T>(method, path, body);
    } catch (err) {
      const status = (err as HearthError).status;
      // Not reachable, or reachable but not serving admin there (the router's 404): say both halves of the story.
      if (
        isHearthError(err) &&
        ((status === 404 && /no such route$/.test(err.message)) || /could not connect/.test(err.message))
      ) {
        throw new HearthError(
          'ATLAS_DB_IN_USE',
          `${inUse.message}\nand ${client.base} did not take the request either (${err.message}): ` +
            'run this where `hearth serve` runs, set HEARTH_HOST to a listener that serves admin ' +
            '(with HEARTH_API_KEY holding an admin key if it requires one), or stop the server',
          { cause: err },
        );
      }
      if (isHearthError(err) && (status === 401 || status === 403)) {
        throw new HearthError(
          'AUTH_REQUIRED',
          `${client.base}: ${err.message} (the CLI sends HEARTH_API_KEY as its key)`,
          {
            status,
            cause: err,
          },
        );
      }
      throw err;
    }
  };
  return {
    via,
    create: async (o) => {
      const res = await call<KeyJson & { key: string }>('POST', '/api/keys', o);
      return { key: res.key, info: fromJson(res) };
    },
    list: async (includeRevoked) =>
      (await call<{ keys: KeyJson[] }>('GET', `/api/keys${includeRevoked ? '?all=true' : ''}`)).keys.map(fromJson),
    revoke: async (name) =>
      fromJson((await call<{ revoked: KeyJson }>('DELETE', `/api/keys/${encodeURIComponent(name)}`)).revoked),
    close: async () => {},
  };
}

function fromJson(k: KeyJson): ApiKeyInfo {
  const date = (s: string | null) => (s === null ? null : new Date(s));
  return {
    id: k.id,
    name: k.name,
    scopes: k.scopes,
    createdAt: new Date(k.created_at),
    expiresAt: date(k.expires_at),
    lastUsedAt: date(k.last_used_at),
    revokedAt: date(k.revoked_at),
  };
}
