/**
 * API keys on Atlas. Every check reads the key's row (one indexed lookup), so
 * a key revoked on one node is refused by every node on its next request:
 * there is no cache of rows. What is remembered, per process, is that a given
 * key text matched a given stored hash, so the deliberately slow scrypt runs
 * once per key rather than once per request; the row (revoked? expired?
 * scopes?) is still read every time.
 */
import { createHash } from 'node:crypto';
import type { AtlasDb } from '../../atlas/db/index.js';
import { HearthError } from '../../errors.js';
import {
  EXPIRY_HINT,
  generateApiKey,
  hashKeySecret,
  KEY_SCOPES,
  type KeyScope,
  parseApiKey,
  parseKeyExpiry,
  verifyKeySecret,
} from './api-key.js';

/** A key as `hearth keys list` shows it: never the key itself. */
export interface ApiKeyInfo {
  /** The lookup id, also the middle part of the key's text (`hth_<id>_...`). */
  id: string;
  name: string;
  scopes: KeyScope[];
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** The outcome of checking a presented key. */
export type KeyCheck =
  | { ok: true; key: ApiKeyInfo }
  | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' | 'expired' | 'mismatch' };

/** Options for {@link ApiKeyStore}. */
export interface ApiKeyStoreOptions {
  /** The Atlas database (migration 0003 applied). */
  db: Pick<AtlasDb, 'query'>;
  /** `last_used_at` is written at most this often per key and process, ms (default 60 000). */
  touchIntervalMs?: number;
}

/** Options for {@link ApiKeyStore.create}. */
export interface CreateKeyOptions {
  /** Unique among active keys: 1-63 letters, digits, `.`, `_`, `-`. */
  name: string;
  /** A non-empty subset of {@link KEY_SCOPES}. */
  scopes: readonly string[];
  /** Lifetime: `90d`, `12w`, `24h`, `never`, or ms. Default: never expires. */
  expires?: string | number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const VERIFIED_MEMO_SIZE = 1024;

interface KeyRow {
  id: string;
  name: string;
  hash: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  expired: boolean;
}

const COLUMNS = `id, name, hash, scopes, created_at, expires_at, last_used_at, revoked_at,
  (expires_at is not null and expires_at <= now()) as expired`;

export class ApiKeyStore {
  private readonly db: Pick<AtlasDb, 'query'>;
  private readonly touchIntervalMs: number;
  /** sha256(key text) → the stored hash it was verified against. */
  private readonly verified = new Map<string, string>();
  private readonly touched = new Map<string, number>();

  constructor(opts: ApiKeyStoreOptions) {
    this.db = opts.db;
    this.touchIntervalMs = opts.touchIntervalMs ?? 60_000;
  }

  /** Makes a key. The returned `key` is the only time its text exists outside the holder's hands. */
  async create(opts: CreateKeyOptions): Promise<{ key: string; info: ApiKeyInfo }> {
    const name = opts.name.trim();
    if (!NAME.test(name)) {
      throw new HearthError(
        'KEY_INVALID',
        `key name ${JSON.stringify(opts.name)} is not valid: use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
    const scopes = checkScopes(opts.scopes);
    let expiresInMs: number | undefined;
    if (typeof opts.expires === 'number') {
      if (!(opts.expires > 0)) throw new HearthError('KEY_INVALID', `key lifetime must be positive; ${EXPIRY_HINT}`);
      expiresInMs = opts.expires;
    } else if (opts.expires !== undefined) {
      try {
        expiresInMs = parseKeyExpiry(opts.expires);
      } catch (err) {
        throw new HearthError('KEY_INVALID', `--expires ${(err as Error).message}`);
      }
    }
    // A clash of 48-bit random ids is all but impossible; retry rather than fail if it happens.
    for (let attempt = 0; attempt < 3; attempt++) {
      const generated = generateApiKey();
      const hash = await hashKeySecret(generated.secret);
      try {
        const [row] = await this.db.query<KeyRow>(
          `insert into api_keys (id, name, hash, scopes, expires_at)
           values ($1, $2, $3, $4, case when $5::bigint is null then null else now() + ($5::bigint * interval '1 millisecond') end)
           on conflict (id) do nothing
           returning ${COLUMNS}`,
          [generated.id, name, hash, scopes, expiresInMs ?? null],
        );
        if (row) return { key: generated.key, info: toInfo(row) };
      } catch (err) {
        if ((err as { code?: string }).code === '23505') {
          throw new HearthError('KEY_EXISTS', [JSON.stringify(name), name]);
        }
        throw err;
      }
    }
    throw new HearthError('INTERNAL', 'could not choose a free key id: try again');
  }

  /** Keys, newest first; revoked ones only with `includeRevoked`. */
  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
    const rows = await this.db.query<KeyRow>(
      `select ${COLUMNS} from api_keys ${opts.includeRevoked ? '' : 'where revoked_at is null'} order by created_at desc, name`,
    );
    return rows.map(toInfo);
  }

  /** Revokes the active key with this name (or id). Every node refuses it from its next request on. */
  async revoke(nameOrId: string): Promise<ApiKeyInfo> {
    const rows = await this.db.query<KeyRow>(
      `update api_keys set revoked_at = now()
       where revoked_at is null and (name = $1 or id = $1)
       returning ${COLUMNS}`,
      [nameOrId.trim()],
    );
    const [row] = rows;
    if (!row) {
      throw new HearthError('KEY_NOT_FOUND', [JSON.stringify(nameOrId)]);
    }
    return toInfo(row);
  }

  /** Checks a presented key against Atlas. Throws ATLAS_DB_UNREACHABLE when Atlas does not answer (fail closed). */
  async check(presented: string): Promise<KeyCheck> {
    const parsed = parseApiKey(presented);
    if (!parsed) return { ok: false, reason: 'malformed' };
    const [row] = await this.db.query<KeyRow>(`select ${COLUMNS} from api_keys where id = $1`, [parsed.id]);
    if (!row) return { ok: false, reason: 'unknown' };
    const fingerprint = createHash('sha256').update(presented.trim()).digest('base64url');
    if (this.verified.get(fingerprint) !== row.hash) {
      if (!(await verifyKeySecret(parsed.secret, row.hash))) return { ok: false, reason: 'mismatch' };
      if (this.verified.size >= VERIFIED_MEMO_SIZE) this.verified.delete(this.verified.keys().next().value ?? '');
      this.verified.set(fingerprint, row.hash);
    }
    if (row.revoked_at) return { ok: false, reason: 'revoked' };
    if (row.expired) return { ok: false, reason: 'expired' };
    await this.touch(row.id);
    return { ok: true, key: toInfo(row) };
  }

  private async touch(id: string): Promise<void> {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? Number.NEGATIVE_INFINITY) < this.touchIntervalMs) return;
    this.touched.set(id, now);
    await this.db.query('update api_keys set last_used_at = now() where id = $1', [id]);
  }
}

/** Validates a scope list (`inference,jobs`), naming what is allowed. */
export function checkScopes(scopes: readonly string[]): KeyScope[] {
  const cleaned = [...new Set(scopes.map((s) => s.trim().toLowerCase()).filter(Boolean))];
  if (cleaned.length === 0) {
    throw new HearthError('KEY_INVALID', `a key needs at least one scope; allowed: ${KEY_SCOPES.join(', ')}`);
  }
  const unknown = cleaned.filter((s) => !(KEY_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    throw new HearthError(
      'KEY_INVALID',
      `unknown scope${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => JSON.stringify(s)).join(', ')}; allowed: ${KEY_SCOPES.join(', ')}`,
    );
  }
  return cleaned as KeyScope[];
}

function toInfo(row: KeyRow): ApiKeyInfo {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes.filter((s): s is KeyScope => (KEY_SCOPES as readonly string[]).includes(s)),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
