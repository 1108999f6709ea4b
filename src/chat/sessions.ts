/**
 * Browser sessions on Atlas. The cookie holds a random token; the database
 * holds its sha256, the user and a CSRF token. Any node sharing the Atlas
 * accepts the cookie, and a restart logs no one out.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import type { User, UserPreferences, UserRole } from './users.js';

/** A signed-in browser. */
export interface Session {
  /** sha256 of the token (the row's id) */
  id: string;
  user: User;
  /** Sent back by the browser in `X-Hearth-CSRF` on every write. */
  csrfToken: string;
  expiresAt: Date;
}

/** Options for {@link SessionStore}. */
export interface SessionStoreOptions {
  db: Pick<AtlasDb, 'query'>;
  /** A session ends this long after its last use, ms. */
  ttlMs: number;
  /** How often a session's expiry moves forward while in use, ms (default: a minute, or ttl/10 if shorter); fewer writes. */
  slideEveryMs?: number;
}

interface SessionRow {
  id: string;
  csrf_token: string;
  expires_at: Date;
  last_seen_at: Date;
  user_id: string;
  username: string;
  role: UserRole;
  default_model: string | null;
  preferences: UserPreferences | null;
  user_created_at: Date;
}

export class SessionStore {
  private readonly db: Pick<AtlasDb, 'query'>;
  private readonly _ttlMs: number;
  private readonly slideEveryMs: number;

  constructor(opts: SessionStoreOptions) {
    this.db = opts.db;
    this._ttlMs = Math.max(60_000, opts.ttlMs);
    this.slideEveryMs = opts.slideEveryMs ?? Math.min(60_000, this._ttlMs / 10);
  }

  get ttlMs(): number {
    return this._ttlMs;
  }

  /** Starts a session; the returned token goes into the cookie and exists nowhere else. */
  async create(user: User): Promise<{ token: string; session: Session }> {
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const [row] = await this.db.query<{ expires_at: Date }>(
      `insert into user_sessions (id, user_id, csrf_token, expires_at)
       values ($1, $2, $3, now() + ($4::bigint * interval '1 millisecond')) returning expires_at`,
      [tokenId(token), user.id, csrfToken, this._ttlMs],
    );
    return { token, session: { id: tokenId(token), user, csrfToken, expiresAt: row!.expires_at } };
  }

  /** The live session for a cookie's token, or null (unknown, expired, or its user deleted). Slides the expiry. */
  async resolve(token: string): Promise<Session | null> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
    const id = tokenId(token);
    const [row] = await this.db.query<SessionRow>(
      `select s.id, s.csrf_token, s.expires_at, s.last_seen_at, u.id as user_id, u.username, u.role, u.default_model, u.preferences,
              u.created_at as user_created_at
       from user_sessions s join users u on u.id = s.user_id
       where s.id = $1 and s.expires_at > now()`,
      [id],
    );
    if (!row) return null;
    let expiresAt = row.expires_at;
    if (Date.now() - row.last_seen_at.getTime() > this.slideEveryMs) {
      const [slid] = await this.db.query<{ expires_at: Date }>(
        `update user_sessions set last_seen_at = now(), expires_at = now() + ($2::bigint * interval '1 millisecond')
         where id = $1 returning expires_at`,
        [id, this._ttlMs],
      );
      if (slid) expiresAt = slid.expires_at;
    }
    return {
      id,
      csrfToken: row.csrf_token,
      expiresAt,
      user: {
        id: row.user_id,
        username: row.username,
        role: row.role,
        defaultModel: row.default_model,
        preferences: row.preferences ?? {},
        createdAt: row.user_created_at,
      },
    };
  }

  async revoke(sessionId: string): Promise<void> {
    await this.db.query('delete from user_sessions where id = $1', [sessionId]);
  }

  /** Signs a user out everywhere (after a password change, a demotion, or deletion), except `keep`. */
  async revokeUser(userId: string, keep?: string): Promise<number> {
    const rows = await this.db.query(
      "delete from user_sessions where user_id = $1 and id <> coalesce($2, '') returning id",
      [userId, keep ?? null],
    );
    return rows.length;
  }

  /** When each account last used one of its sessions (accounts with none are left out). */
  async lastSeen(): Promise<Map<string, Date>> {
    const rows = await this.db.query<{ user_id: string; seen: Date }>(
      'select user_id, max(last_seen_at) as seen from user_sessions group by user_id',
    );
    return new Map(rows.map((r) => [r.user_id, r.seen]));
  }

  /** Removes expired rows (they are refused anyway; this keeps the table small). */
  async purgeExpired(): Promise<number> {
    const rows = await this.db.query('delete from user_sessions where expires_at <= now() returning id');
    return rows.length;
  }
}

function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
