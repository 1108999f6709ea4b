/**
 * Presets: a named model + system prompt + parameters to start a chat with.
 * A user's are private; an admin may share one with everybody.
 */
import { randomUUID } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import { HearthError } from '../errors.js';
import { type ChatParams, cleanTitle } from './conversations.js';
import type { User } from './users.js';

export interface Preset {
  id: string;
  name: string;
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases (names) a chat started from it answers from */
  knowledge: string[];
  /** everybody sees it (only admins share) */
  shared: boolean;
  /** the user may change or delete it (their own; any shared one for an admin) */
  editable: boolean;
  createdAt: Date;
}

/** The fields of a preset a person sets. */
export interface PresetInput {
  name: string;
  model?: string | null;
  systemPrompt?: string | null;
  params?: ChatParams;
  knowledge?: string[];
  shared?: boolean;
}

interface PresetRow {
  id: string;
  owner_id: string;
  name: string;
  model: string | null;
  system_prompt: string | null;
  params: ChatParams;
  knowledge: string[] | null;
  shared: boolean;
  created_at: Date;
}

const COLUMNS = 'id, owner_id, name, model, system_prompt, params, knowledge, shared, created_at';

function toPreset(row: PresetRow, viewer: User): Preset {
  return {
    id: row.id,
    name: row.name,
    model: row.model,
    systemPrompt: row.system_prompt,
    params: row.params ?? {},
    knowledge: row.knowledge ?? [],
    shared: row.shared,
    editable: row.owner_id === viewer.id || (row.shared && viewer.role === 'admin'),
    createdAt: row.created_at,
  };
}

export class PresetStore {
  private readonly db: Pick<AtlasDb, 'query'>;

  constructor(opts: { db: Pick<AtlasDb, 'query'> }) {
    this.db = opts.db;
  }

  /** The user's own presets and every shared one, by name. */
  async list(user: User): Promise<Preset[]> {
    const rows = await this.db.query<PresetRow>(
      `select ${COLUMNS} from chat_presets where owner_id = $1 or shared order by lower(name), id`,
      [user.id],
    );
    return rows.map((r) => toPreset(r, user));
  }

  async create(user: User, input: PresetInput): Promise<Preset> {
    const name = checkName(input.name);
    if (input.shared && user.role !== 'admin') {
      throw new HearthError('AUTH_FORBIDDEN', 'only an admin can share a preset with everybody');
    }
    await this.checkUnique(user, name, null);
    const [row] = await this.db.query<PresetRow>(
      `insert into chat_presets (id, owner_id, name, model, system_prompt, params, shared, knowledge)
       values ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::text[]) returning ${COLUMNS}`,
      [
        randomUUID(),
        user.id,
        name,
        input.model ?? null,
        input.systemPrompt ?? null,
        JSON.stringify(input.params ?? {}),
        input.shared ?? false,
        input.knowledge ?? [],
      ],
    );
    return toPreset(row!, user);
  }

  async update(user: User, id: string, input: Partial<PresetInput>): Promise<Preset> {
    if (input.shared && user.role !== 'admin') {
      throw new HearthError('AUTH_FORBIDDEN', 'only an admin can share a preset with everybody');
    }
    if (input.name !== undefined) await this.checkUnique(user, checkName(input.name), id);
    const [row] = await this.db.query<PresetRow>(
      `update chat_presets set
         name = coalesce($3, name),
         model = case when $4 then $5 else model end,
         system_prompt = case when $6 then $7 else system_prompt end,
         params = coalesce($8::jsonb, params),
         shared = coalesce($9, shared),
         knowledge = coalesce($11::text[], knowledge),
         updated_at = now()
       where id = $1 and (owner_id = $2 or (shared and $10))
       returning ${COLUMNS}`,
      [
        id,
        user.id,
        input.name === undefined ? null : checkName(input.name),
        input.model !== undefined,
        input.model ?? null,
        input.systemPrompt !== undefined,
        input.systemPrompt ?? null,
        input.params === undefined ? null : JSON.stringify(input.params),
        input.shared ?? null,
        user.role === 'admin',
        input.knowledge ?? null,
      ],
    );
    if (!row) throw notFound(id);
    return toPreset(row, user);
  }

  /** A name is unique (ignoring case) among the presets a person sees: their own and the shared ones. */
  private async checkUnique(user: User, name: string, id: string | null): Promise<void> {
    const [taken] = await this.db.query<{ name: string }>(
      `select name from chat_presets
       where lower(name) = lower($1) and id <> coalesce($2, '') and (owner_id = $3 or shared) limit 1`,
      [name, id, user.id],
    );
    if (taken) {
      throw new HearthError('PRESET_EXISTS', [JSON.stringify(taken.name)], { details: { param: 'name' } });
    }
  }

  async delete(user: User, id: string): Promise<void> {
    const rows = await this.db.query(
      'delete from chat_presets where id = $1 and (owner_id = $2 or (shared and $3)) returning id',
      [id, user.id, user.role === 'admin'],
    );
    if (rows.length === 0) throw notFound(id);
  }
}

function notFound(id: string): HearthError {
  return new HearthError('PRESET_NOT_FOUND', [JSON.stringify(id)]);
}

function checkName(name: string): string {
  const clean = cleanTitle(name, 80);
  if (!clean) throw new HearthError('BAD_REQUEST', 'a preset needs a name', { details: { param: 'name' } });
  return clean;
}
