import { type AtlasDb, jsonForAtlas } from '../atlas/db/index.js';

/**
 * Who asks for a stored response: the API key's id, or a loopback caller on a
 * loopback-exempt listener (`key: null`), who may read every stored response.
 */
export interface ResponseCaller {
  /** the API key id the request was admitted with; null for a loopback caller (no key checked) */
  readonly key: string | null;
}

export interface StoredResponse {
  id: string;
  /** the API key id that made it; null when a loopback caller did */
  owner: string | null;
  model: string;
  /** the response object as the API returned it */
  response: Record<string, unknown>;
  /** the input items of the whole chain (previous responses included), then this response's output items */
  conversation: unknown[];
  createdAt: Date;
}

export interface ResponseStoreOptions {
  db: AtlasDb;
  /** how long a stored response is kept (inference.responsesRetention, ms); 0 = until deleted */
  retentionMs: number;
  /** this node's id, recorded with each response */
  nodeId: string;
}

interface Row {
  id: string;
  owner: string | null;
  model: string;
  response: Record<string, unknown>;
  conversation: unknown[];
  created_at: Date;
}

/**
 * Stored responses of the OpenAI Responses API, on Atlas (invariant 5: any
 * node answers `previous_response_id` and `GET /v1/responses/{id}`; a restart
 * loses none). Visibility: a response is readable by the key that made it,
 * and by loopback callers; to anyone else it does not exist (404, never 403,
 * so ids cannot be probed).
 */
export class ResponseStore {
  private readonly db: AtlasDb;
  private readonly retentionMs: number;
  private readonly nodeId: string;

  constructor(opts: ResponseStoreOptions) {
    this.db = opts.db;
    this.retentionMs = opts.retentionMs;
    this.nodeId = opts.nodeId;
  }

  /** Stores a response before it is acknowledged; expired ones are swept in the same round trip's wake. */
  async save(r: Omit<StoredResponse, 'createdAt'>): Promise<void> {
    const expires = this.retentionMs > 0 ? new Date(Date.now() + this.retentionMs) : null;
    await this.db.query(
      `insert into responses (id, owner, model, response, conversation, node, created_at, expires_at)
       values ($1, $2, $3, $4::jsonb, $5::jsonb, $6, now(), $7)`,
      [r.id, r.owner, r.model, jsonForAtlas(r.response), jsonForAtlas(r.conversation), this.nodeId, expires],
    );
    await this.sweep();
  }

  /** The response if it exists, has not expired and `caller` may see it; otherwise null. */
  async get(id: string, caller: ResponseCaller): Promise<StoredResponse | null> {
    const rows = await this.db.query<Row>(
      `select id, owner, model, response, conversation, created_at from responses
       where id = $1 and (expires_at is null or expires_at > now()) and ($2::text is null or owner = $2)`,
      [id, caller.key],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id,
      owner: row.owner,
      model: row.model,
      response: row.response,
      conversation: row.conversation,
      createdAt: row.created_at,
    };
  }

  /** Deletes the response if `caller` may see it; false when there was none to delete. */
  async delete(id: string, caller: ResponseCaller): Promise<boolean> {
    const rows = await this.db.query(
      `delete from responses where id = $1 and ($2::text is null or owner = $2) returning id`,
      [id, caller.key],
    );
    return rows.length > 0;
  }

  /** Removes expired responses; returns how many. */
  async sweep(): Promise<number> {
    const rows = await this.db.query(`delete from responses where expires_at <= now() returning id`);
    return rows.length;
  }

  /** How many responses are stored (expired ones not yet swept included); for the drill and metrics. */
  async count(): Promise<number> {
    const rows = await this.db.query<{ n: string }>('select count(*) as n from responses');
    return Number(rows[0]?.n ?? 0);
  }
}
