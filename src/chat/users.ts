/**
 * Chat UI accounts on Atlas. Roles are `admin` (manages users, shares presets)
 * and `user`; each sees only their own conversations. The first account is
 * made by the first visitor (or `hearth users add`) and is an admin.
 */
import { randomUUID } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import { HearthError } from '../errors.js';
import { checkNewPassword, decoyHash, hashPassword, verifyPassword } from './passwords.js';
import { THEMES, USER_ROLES } from './vocabulary.js';

export { THEMES, USER_ROLES };

export type UserRole = (typeof USER_ROLES)[number];

/** An account as the API and the CLI show it: never the password hash. */
export interface User {
  id: string;
  username: string;
  role: UserRole;
  /** the model a new chat starts with; null = none chosen yet */
  defaultModel: string | null;
  /** the person's own settings of the chat UI */
  preferences: UserPreferences;
  createdAt: Date;
}

/** A person's own settings of the chat UI (users.preferences, migration 0013). */
export interface UserPreferences {
  theme?: (typeof THEMES)[number];
}

/** Options for {@link UserStore.create}. */
export interface NewUser {
  /** 1-64 letters, digits, `.`, `_`, `-` or `@`; unique ignoring case. */
  username: string;
  /** At least 8 characters. */
  password: string;
  /** Default `user`. */
  role?: UserRole;
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const COLUMNS = 'id, username, role, default_model, preferences, created_at';

interface UserRow {
  id: string;
  username: string;
  role: UserRole;
  default_model: string | null;
  preferences: UserPreferences | null;
  created_at: Date;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    role: row.role,
    defaultModel: row.default_model,
    preferences: row.preferences ?? {},
    createdAt: row.created_at,
  };
}

export function checkUsername(username: string): string {
  const name = username.trim();
  if (!USERNAME.test(name)) {
    throw new HearthError(
      'USER_INVALID',
      `user name ${JSON.stringify(username)} is not valid: use 1-64 letters, digits, ".", "_", "-" or "@", starting with a letter or digit`,
      { details: { param: 'username' } },
    );
  }
  return name;
}

function checkRole(role: string): UserRole {
  if (!(USER_ROLES as readonly string[]).includes(role)) {
    throw new HearthError('USER_INVALID', `role ${JSON.stringify(role)} is not one of ${USER_ROLES.join(', ')}`, {
      details: { param: 'role' },
    });
  }
  return role as UserRole;
}

export class UserStore {
  private readonly db: Pick<AtlasDb, 'query'>;

  constructor(opts: { db: Pick<AtlasDb, 'query'> }) {
    this.db = opts.db;
  }

  async count(): Promise<number> {
    const [row] = await this.db.query<{ n: string }>('select count(*) as n from users');
    return Number(row?.n ?? 0);
  }

  /** Makes an account; USER_EXISTS if the name is taken (ignoring case). */
  async create(input: NewUser): Promise<User> {
    const username = checkUsername(input.username);
    const role = checkRole(input.role ?? 'user');
    checkNewPassword(input.password);
    const hash = await hashPassword(input.password);
    const [row] = await this.db.query<UserRow>(
      `insert into users (id, username, password_hash, role) values ($1, $2, $3, $4)
       on conflict do nothing returning ${COLUMNS}`,
      [randomUUID(), username, hash, role],
    );
    if (!row) throw new HearthError('USER_EXISTS', [JSON.stringify(username)]);
    return toUser(row);
  }

  /**
   * The first visitor's admin account. One statement, guarded by a settings
   * row, so two browsers racing on a fresh install make one admin between them:
   * the loser gets UI_SETUP_DONE.
   */
  async createFirstAdmin(input: Omit<NewUser, 'role'>): Promise<User> {
    const username = checkUsername(input.username);
    checkNewPassword(input.password);
    const hash = await hashPassword(input.password);
    const [row] = await this.db.query<UserRow>(
      `with guard as (
         insert into settings (key, value) values ('ui.setup', to_jsonb(now()))
         on conflict (key) do nothing returning key
       )
       insert into users (id, username, password_hash, role)
       select $1, $2, $3, 'admin' from guard where not exists (select 1 from users)
       returning ${COLUMNS}`,
      [randomUUID(), username, hash],
    );
    if (!row) {
      throw new HearthError('UI_SETUP_DONE');
    }
    return toUser(row);
  }

  async list(): Promise<User[]> {
    const rows = await this.db.query<UserRow>(`select ${COLUMNS} from users order by lower(username)`);
    return rows.map(toUser);
  }

  async get(id: string): Promise<User> {
    const [row] = await this.db.query<UserRow>(`select ${COLUMNS} from users where id = $1`, [id]);
    if (!row) throw new HearthError('USER_NOT_FOUND', `no user with id ${JSON.stringify(id)}`);
    return toUser(row);
  }

  /** By name, ignoring case; USER_NOT_FOUND if there is none. */
  async getByName(username: string): Promise<User> {
    const [row] = await this.db.query<UserRow>(`select ${COLUMNS} from users where lower(username) = lower($1)`, [
      username.trim(),
    ]);
    if (!row) {
      throw new HearthError(
        'USER_NOT_FOUND',
        `no user named ${JSON.stringify(username)}: \`hearth users list\` shows them`,
      );
    }
    return toUser(row);
  }

  /** The user if the password is theirs; null otherwise (an unknown name costs the same time). */
  async authenticate(username: string, password: string): Promise<User | null> {
    const [row] = await this.db.query<UserRow & { password_hash: string }>(
      `select ${COLUMNS}, password_hash from users where lower(username) = lower($1)`,
      [username.trim()],
    );
    if (!row) {
      await verifyPassword(password, await decoyHash());
      return null;
    }
    return (await verifyPassword(password, row.password_hash)) ? toUser(row) : null;
  }

  async setPassword(id: string, password: string): Promise<void> {
    checkNewPassword(password);
    const hash = await hashPassword(password);
    const rows = await this.db.query(
      'update users set password_hash = $2, updated_at = now() where id = $1 returning id',
      [id, hash],
    );
    if (rows.length === 0) throw new HearthError('USER_NOT_FOUND', `no user with id ${JSON.stringify(id)}`);
  }

  /** Changes a role; refuses to demote the last admin. */
  async setRole(id: string, role: string): Promise<User> {
    const checked = checkRole(role);
    const [row] = await this.db.query<UserRow>(
      `update users set role = $2, updated_at = now()
       where id = $1 and ($2 = 'admin' or exists (select 1 from users where role = 'admin' and id <> $1))
       returning ${COLUMNS}`,
      [id, checked],
    );
    if (!row) {
      await this.get(id);
      throw new HearthError('USER_INVALID', 'this is the last admin account: make another user admin first');
    }
    return toUser(row);
  }

  async setDefaultModel(id: string, model: string | null): Promise<User> {
    const [row] = await this.db.query<UserRow>(
      `update users set default_model = $2, updated_at = now() where id = $1 returning ${COLUMNS}`,
      [id, model],
    );
    if (!row) throw new HearthError('USER_NOT_FOUND', `no user with id ${JSON.stringify(id)}`);
    return toUser(row);
  }

  /** Merges `patch` into the person's preferences. */
  async setPreferences(id: string, patch: UserPreferences): Promise<User> {
    const [row] = await this.db.query<UserRow>(
      `update users set preferences = preferences || $2::jsonb, updated_at = now() where id = $1 returning ${COLUMNS}`,
      [id, JSON.stringify(patch)],
    );
    if (!row) throw new HearthError('USER_NOT_FOUND', `no user with id ${JSON.stringify(id)}`);
    return toUser(row);
  }

  /** Deletes an account with its sessions, conversations and presets; refuses to delete the last admin. */
  async delete(id: string): Promise<User> {
    const [row] = await this.db.query<UserRow>(
      `delete from users where id = $1 and (role <> 'admin' or exists (select 1 from users where role = 'admin' and id <> $1))
       returning ${COLUMNS}`,
      [id],
    );
    if (!row) {
      await this.get(id);
      throw new HearthError(
        'USER_INVALID',
        'this is the last admin account: make another user admin before deleting it',
      );
    }
    return toUser(row);
  }
}
