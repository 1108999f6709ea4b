/**
 * Conversations on Atlas as message trees: one row per message with its
 * parent. Regenerating or editing adds a sibling, so every branch is kept and
 * a long chat grows by one small row per message (never a rewritten blob).
 * Every method that takes a user id only ever touches that user's rows: a
 * conversation of someone else is CONVERSATION_NOT_FOUND, exactly like one
 * that does not exist.
 */
import { randomUUID } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import { HearthError } from '../errors.js';
import { MESSAGE_ROLES, MESSAGE_STATUSES } from './vocabulary.js';

export { MESSAGE_ROLES, MESSAGE_STATUSES };

export type MessageRole = (typeof MESSAGE_ROLES)[number];
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];
export type TitleSource = 'default' | 'generated' | 'user' | 'imported';

/** Per-chat model options, in Ollama's names (they go through the one option path, src/models/options.ts). */
export type ChatParams = Record<string, number | boolean | string[]>;

/** A file given to a message: text as context, or an image (src/chat/attachments.ts). */
export interface Attachment {
  name: string;
  /** bytes of the original file */
  size: number;
  /** what the model sees (possibly cut); empty for an image */
  text: string;
  /** cut to fit the model's context */
  truncated: boolean;
  /** an image: its name on Atlas files, `<sha256>.<ext>` under `chat/<user>/` (GET /api/ui/images/:name) */
  image?: string;
}

/** Per-message generation figures, shown on demand. */
export interface MessageStats {
  promptTokens?: number;
  evalTokens?: number;
  tokensPerSecond?: number;
  timeToFirstTokenMs?: number;
  totalMs?: number;
  doneReason?: string;
  /** how long the reply's `<think>` reasoning took, from its first token */
  reasoningMs?: number;
  /** the knowledge-base passages the reply was given (numbered as the model was asked to cite them) */
  sources?: ChatSource[];
}

/** A retrieved passage a reply may cite as [n] (see src/knowledge, docs/knowledge.md). */
export interface ChatSource {
  n: number;
  base: string;
  document: string;
  document_id: string;
  chunk_id: number;
  heading: string;
  text: string;
  /** the retrieval's fusion score */
  score: number;
  /** the reranker's relevance score, when a reranker ordered the sources */
  rerank_score?: number;
}

export interface Conversation {
  id: string;
  title: string;
  titleSource: TitleSource;
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases (names) every reply answers from, besides the `#name` tags of its message */
  knowledge: string[];
  /** the last message of the branch shown */
  currentLeafId: string | null;
  pinned: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface ConversationSummary {
  id: string;
  title: string;
  pinned: boolean;
  model: string | null;
  updatedAt: Date;
  /** a reply is being written in this chat (on any node) */
  streaming: boolean;
}

export interface ConversationMessage {
  id: string;
  parentId: string | null;
  role: MessageRole;
  content: string;
  attachments: Attachment[];
  model: string | null;
  status: MessageStatus;
  error: string | null;
  stats: MessageStats | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A search hit: the conversation and a piece of text around the match. */
export interface SearchHit extends ConversationSummary {
  snippet: string;
}

/** What a new conversation starts with. */
export interface NewConversation {
  title?: string;
  model?: string | null;
  systemPrompt?: string | null;
  params?: ChatParams;
  knowledge?: string[];
}

/** The fields a PATCH may change. */
export interface ConversationPatch {
  title?: string;
  pinned?: boolean;
  model?: string | null;
  systemPrompt?: string | null;
  params?: ChatParams;
  knowledge?: string[];
  /** show another branch: must be a message of this conversation */
  currentLeafId?: string;
}

/** A message for {@link ConversationStore.addMessage}. */
export interface NewMessage {
  parentId: string | null;
  role: MessageRole;
  content: string;
  attachments?: Attachment[];
  model?: string | null;
  status?: MessageStatus;
  /** the node writing a streaming reply (so a restarted node can mark its own as interrupted) */
  nodeId?: string;
  /** a streaming reply's lease, ms: past it without renewal, any node marks the reply interrupted */
  leaseMs?: number;
}

/** A whole conversation to insert at once (import). Message ids are the file's; parents refer to them. */
export interface ConversationTree {
  title: string;
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases (names) attached to the chat */
  knowledge?: string[];
  pinned: boolean;
  createdAt: Date;
  updatedAt: Date;
  currentLeafId: string | null;
  messages: Array<Omit<ConversationMessage, 'updatedAt'>>;
}

export const DEFAULT_TITLE = 'New chat';
const TITLE_MAX = 200;

const CONVERSATION_COLUMNS =
  'c.id, c.title, c.title_source, c.model, c.system_prompt, c.params, c.knowledge, c.current_leaf_id, c.pinned, c.created_at, c.updated_at';
const MESSAGE_COLUMNS =
  'm.id, m.parent_id, m.role, m.content, m.attachments, m.model, m.status, m.error, m.stats, m.created_at, m.updated_at';

interface ConversationRow {
  id: string;
  title: string;
  title_source: TitleSource;
  model: string | null;
  system_prompt: string | null;
  params: ChatParams;
  knowledge: string[] | null;
  current_leaf_id: string | null;
  pinned: boolean;
  created_at: Date;
  updated_at: Date;
}

interface MessageRow {
  id: string;
  parent_id: string | null;
  role: MessageRole;
  content: string;
  attachments: Attachment[];
  model: string | null;
  status: MessageStatus;
  error: string | null;
  stats: MessageStats | null;
  created_at: Date;
  updated_at: Date;
}

function toConversation(row: ConversationRow): Conversation {
  return {
    id: row.id,
    title: row.title,
    titleSource: row.title_source,
    model: row.model,
    systemPrompt: row.system_prompt,
    params: row.params ?? {},
    knowledge: row.knowledge ?? [],
    currentLeafId: row.current_leaf_id,
    pinned: row.pinned,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toSummary(
  row: Pick<ConversationRow, 'id' | 'title' | 'pinned' | 'model' | 'updated_at'> & { streaming?: boolean },
): ConversationSummary {
  return {
    id: row.id,
    title: row.title,
    pinned: row.pinned,
    model: row.model,
    updatedAt: row.updated_at,
    streaming: row.streaming ?? false,
  };
}

/** The SQL that says whether conversation `c` has a reply being written. */
const STREAMING_COLUMN = `exists (select 1 from chat_messages s where s.conversation_id = c.id and s.status = 'streaming') as streaming`;

/** Says why a reply past its lease stopped. */
const LEASE_LOST = 'the node writing this reply stopped answering; the text written until then is kept';

function toMessage(row: MessageRow): ConversationMessage {
  return {
    id: row.id,
    parentId: row.parent_id,
    role: row.role,
    content: row.content,
    attachments: row.attachments ?? [],
    model: row.model,
    status: row.status,
    error: row.error,
    stats: row.stats,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function notFound(id: string): HearthError {
  return new HearthError('CONVERSATION_NOT_FOUND', [JSON.stringify(id)]);
}

/** PostgreSQL text cannot hold NUL characters (a random or broken model can emit them): they become U+FFFD. */
export function storableText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}

/** A title from free text: one line, trimmed, at most 200 characters. */
export function cleanTitle(text: string, max = TITLE_MAX): string {
  const line = text
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 1).trimEnd()}…` : line;
}

function parseReplyWritten(payload: string): ReplyWritten | null {
  try {
    const value = JSON.parse(payload) as Partial<ReplyWritten>;
    return typeof value.id === 'string' && typeof value.length === 'number' && typeof value.status === 'string'
      ? { id: value.id, length: value.length, status: value.status }
      : null;
  } catch {
    return null;
  }
}

/** `lighthouse keep` → `'lighthouse':* & 'keep':*` (prefix match per word); null when nothing is searchable. */
export function searchQuery(text: string): string | null {
  const words = (text.normalize('NFC').match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 8);
  if (words.length === 0) return null;
  return words.map((w) => `'${w.toLowerCase()}':*`).join(' & ');
}

/** The channel on which every write of a streaming reply is announced (see {@link ConversationStore.watchReplies}). */
const REPLY_CHANNEL = 'hearth_reply';

/** What a reply's write announces: which reply, how long its saved text is now, and its status. */
export interface ReplyWritten {
  id: string;
  length: number;
  status: MessageStatus;
}

export class ConversationStore {
  private readonly db: Pick<AtlasDb, 'query' | 'transaction' | 'notify' | 'listen'>;

  constructor(opts: { db: Pick<AtlasDb, 'query' | 'transaction' | 'notify' | 'listen'> }) {
    this.db = opts.db;
  }

  /**
   * Calls `onWrite` for each write of a reply's text or end, on any node sharing this Atlas
   * (PostgreSQL LISTEN/NOTIFY; in-process on PGlite), until the returned function is called. A
   * signal only: read the reply ({@link replyState}) for its text. Throws ATLAS_DB_UNREACHABLE.
   */
  watchReplies(onWrite: (written: ReplyWritten) => void): Promise<() => Promise<void>> {
    return this.db.listen(REPLY_CHANNEL, (payload) => {
      const written = parseReplyWritten(payload);
      if (written) onWrite(written);
    });
  }

  /**
   * One page of the sidebar: pinned first, then most recently updated. `after`
   * is the id of the last conversation of the previous page (keyset paging,
   * so page 200 costs what page 1 does).
   */
  async list(
    userId: string,
    opts: { limit?: number; after?: string } = {},
  ): Promise<{ items: ConversationSummary[]; next: string | null }> {
    const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
    await this.expireLeases();
    const rows = await this.db.query<ConversationRow & { streaming: boolean }>(
      `select c.id, c.title, c.pinned, c.model, c.updated_at, ${STREAMING_COLUMN} from conversations c
       where c.user_id = $1 and c.deleted_at is null
         and ($2::text is null or (c.pinned, c.updated_at, c.id) <
           (select a.pinned, a.updated_at, a.id from conversations a where a.id = $2 and a.user_id = $1))
       order by c.pinned desc, c.updated_at desc, c.id desc
       limit $3`,
      [userId, opts.after ?? null, limit + 1],
    );
    const items = rows.slice(0, limit).map(toSummary);
    return { items, next: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
  }

  async count(userId: string): Promise<number> {
    const [row] = await this.db.query<{ n: string }>(
      'select count(*) as n from conversations where user_id = $1 and deleted_at is null',
      [userId],
    );
    return Number(row?.n ?? 0);
  }

  async create(userId: string, init: NewConversation = {}): Promise<Conversation> {
    const title = init.title ? cleanTitle(init.title) : '';
    const [row] = await this.db.query<ConversationRow>(
      `insert into conversations as c (id, user_id, title, title_source, model, system_prompt, params, knowledge)
       values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::text[]) returning ${CONVERSATION_COLUMNS}`,
      [
        randomUUID(),
        userId,
        title || DEFAULT_TITLE,
        title ? 'user' : 'default',
        init.model ?? null,
        init.systemPrompt ?? null,
        JSON.stringify(init.params ?? {}),
        init.knowledge ?? [],
      ],
    );
    return toConversation(row!);
  }

  async get(userId: string, id: string): Promise<Conversation> {
    const [row] = await this.db.query<ConversationRow>(
      `select ${CONVERSATION_COLUMNS} from conversations c where c.id = $1 and c.user_id = $2 and c.deleted_at is null`,
      [id, userId],
    );
    if (!row) throw notFound(id);
    return toConversation(row);
  }

  /** Every message of a conversation (all branches), oldest first: one indexed range read. */
  async messages(userId: string, id: string): Promise<ConversationMessage[]> {
    await this.expireLeases(id);
    const rows = await this.db.query<MessageRow>(
      `select ${MESSAGE_COLUMNS} from chat_messages m join conversations c on c.id = m.conversation_id
       where m.conversation_id = $1 and c.user_id = $2 order by m.seq`,
      [id, userId],
    );
    return rows.map(toMessage);
  }

  async update(userId: string, id: string, patch: ConversationPatch): Promise<Conversation> {
    const title = patch.title === undefined ? null : cleanTitle(patch.title);
    if (title === '') throw new HearthError('BAD_REQUEST', 'a title cannot be empty', { details: { param: 'title' } });
    const [row] = await this.db.query<ConversationRow>(
      `update conversations c set
         title = coalesce($3, c.title),
         title_source = case when $3::text is null then c.title_source else 'user' end,
         pinned = coalesce($4, c.pinned),
         model = case when $5 then $6 else c.model end,
         system_prompt = case when $7 then $8 else c.system_prompt end,
         params = coalesce($9::jsonb, c.params),
         knowledge = coalesce($11::text[], c.knowledge),
         current_leaf_id = case when $10::text is null then c.current_leaf_id
           when exists (select 1 from chat_messages m where m.id = $10 and m.conversation_id = c.id) then $10
           else c.current_leaf_id end
       where c.id = $1 and c.user_id = $2 and c.deleted_at is null
       returning ${CONVERSATION_COLUMNS}`,
      [
        id,
        userId,
        title,
        patch.pinned ?? null,
        patch.model !== undefined,
        patch.model ?? null,
        patch.systemPrompt !== undefined,
        patch.systemPrompt ?? null,
        patch.params === undefined ? null : JSON.stringify(patch.params),
        patch.currentLeafId ?? null,
        patch.knowledge ?? null,
      ],
    );
    if (!row) throw notFound(id);
    if (patch.currentLeafId !== undefined && row.current_leaf_id !== patch.currentLeafId) {
      throw new HearthError(
        'MESSAGE_NOT_FOUND',
        `message ${JSON.stringify(patch.currentLeafId)} is not in this conversation`,
        {
          details: { param: 'currentLeafId' },
        },
      );
    }
    return toConversation(row);
  }

  /** Moves a conversation to the bin; {@link restore} brings it back until it is purged. */
  async delete(userId: string, id: string): Promise<void> {
    const rows = await this.db.query(
      'update conversations set deleted_at = now() where id = $1 and user_id = $2 and deleted_at is null returning id',
      [id, userId],
    );
    if (rows.length === 0) throw notFound(id);
  }

  async restore(userId: string, id: string): Promise<Conversation> {
    const [row] = await this.db.query<ConversationRow>(
      `update conversations c set deleted_at = null where c.id = $1 and c.user_id = $2 returning ${CONVERSATION_COLUMNS}`,
      [id, userId],
    );
    if (!row) throw notFound(id);
    return toConversation(row);
  }

  /** Deletes for good what has been in the bin longer than `olderThanMs`. */
  async purgeDeleted(olderThanMs: number): Promise<number> {
    const rows = await this.db.query(
      `delete from conversations where deleted_at is not null and deleted_at < now() - ($1::bigint * interval '1 millisecond') returning id`,
      [olderThanMs],
    );
    return rows.length;
  }

  /** One message, if it belongs to the user's (not deleted) conversation. */
  async message(userId: string, conversationId: string, messageId: string): Promise<ConversationMessage> {
    const [row] = await this.db.query<MessageRow>(
      `select ${MESSAGE_COLUMNS} from chat_messages m join conversations c on c.id = m.conversation_id
       where m.id = $1 and m.conversation_id = $2 and c.user_id = $3 and c.deleted_at is null`,
      [messageId, conversationId, userId],
    );
    if (!row) {
      throw new HearthError(
        'MESSAGE_NOT_FOUND',
        `no message ${JSON.stringify(messageId)} in conversation ${JSON.stringify(conversationId)}`,
      );
    }
    return toMessage(row);
  }

  /** The branch from the first message down to `leafId`, oldest first (what the model is shown). */
  async path(conversationId: string, leafId: string): Promise<ConversationMessage[]> {
    const rows = await this.db.query<MessageRow & { seq: string }>(
      `with recursive path as (
         select * from chat_messages where id = $1 and conversation_id = $2
         union all
         select p.* from chat_messages p join path on p.id = path.parent_id
       )
       select ${MESSAGE_COLUMNS} from path m order by m.seq`,
      [leafId, conversationId],
    );
    return rows.map(toMessage);
  }

  /**
   * Adds a message under `parentId` (null: a first message) and makes it the
   * conversation's shown leaf, in one statement. The parent must be in the
   * same conversation. `runner`: a transaction to write it in (default: the database).
   */
  async addMessage(
    conversationId: string,
    message: NewMessage,
    runner: Pick<AtlasDb, 'query'> = this.db,
  ): Promise<ConversationMessage> {
    const [row] = await runner.query<MessageRow>(
      `with added as (
         insert into chat_messages as m (id, conversation_id, parent_id, role, content, attachments, model, status, node_id, lease_until)
         select $1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, now() + $10::integer * interval '1 millisecond'
         where $3::text is null or exists (select 1 from chat_messages where id = $3 and conversation_id = $2)
         returning ${MESSAGE_COLUMNS}
       ), shown as (
         update conversations set current_leaf_id = (select id from added), updated_at = now()
         where id = $2 and exists (select 1 from added)
       )
       select * from added m`,
      [
        randomUUID(),
        conversationId,
        message.parentId,
        message.role,
        storableText(message.content),
        JSON.stringify(message.attachments ?? []),
        message.model ?? null,
        message.status ?? 'done',
        message.nodeId ?? null,
        message.leaseMs ?? null,
      ],
    );
    if (!row) {
      throw new HearthError(
        'MESSAGE_NOT_FOUND',
        `message ${JSON.stringify(message.parentId)} is not in this conversation`,
        {
          details: { param: 'parentId' },
        },
      );
    }
    return toMessage(row);
  }

  /**
   * Adds a question and its finished answer (the answer a child of the question), in one
   * transaction: both are on Atlas or neither is. Returns them, the question first.
   */
  async addExchange(
    conversationId: string,
    question: NewMessage,
    answer: Omit<NewMessage, 'parentId'>,
  ): Promise<ConversationMessage[]> {
    return this.db.transaction(async (tx) => {
      const asked = await this.addMessage(conversationId, question, tx);
      return [asked, await this.addMessage(conversationId, { ...answer, parentId: asked.id }, tx)];
    });
  }

  /**
   * Writes a reply's text so far (and, when it ends, its status and figures).
   * A write while it streams renews its lease by `leaseMs`. Returns whether
   * someone asked, through any node, to stop it.
   */
  async writeReply(
    messageId: string,
    update: { content: string; status?: MessageStatus; stats?: MessageStats; error?: string | null; leaseMs?: number },
  ): Promise<{ stopRequested: boolean }> {
    const content = storableText(update.content);
    const [row] = await this.db.query<{ stop_requested: boolean; status: MessageStatus }>(
      `update chat_messages set content = $2, status = coalesce($3, status), stats = coalesce($4::jsonb, stats),
         error = coalesce($5, error), updated_at = now(),
         node_id = case when coalesce($3, status) = 'streaming' then node_id else null end,
         lease_until = case when coalesce($3, status) = 'streaming'
           then now() + coalesce($6::integer, 0) * interval '1 millisecond' else null end
       where id = $1 returning stop_requested, status`,
      [
        messageId,
        content,
        update.status ?? null,
        update.stats ? JSON.stringify(update.stats) : null,
        update.error ?? null,
        update.leaseMs ?? null,
      ],
    );
    if (row) await this.announce([{ id: messageId, length: content.length, status: row.status }]);
    return { stopRequested: row?.stop_requested ?? false };
  }

  /**
   * Tells every node's followers that these replies changed (one NOTIFY each). Followers on other
   * nodes wake on it; a lost notification costs them only time (they also poll).
   */
  private async announce(written: readonly ReplyWritten[]): Promise<void> {
    for (const w of written) await this.db.notify(REPLY_CHANNEL, JSON.stringify(w)).catch(() => undefined);
  }

  /**
   * Makes an ended reply (stopped, interrupted, failed, or cut at its length) `streaming` again, text
   * kept, for this node to continue it: its lease, no error, no stop asked. Null when it is already
   * being written (by anyone).
   */
  async reopenReply(messageId: string, nodeId: string, leaseMs: number): Promise<ConversationMessage | null> {
    const [row] = await this.db.query<MessageRow>(
      `with reopened as (
         update chat_messages set status = 'streaming', node_id = $2, error = null, stop_requested = false,
           lease_until = now() + $3::integer * interval '1 millisecond', updated_at = now()
         where id = $1 and role = 'assistant' and status <> 'streaming'
         returning *
       ), shown as (
         update conversations set current_leaf_id = (select id from reopened), updated_at = now()
         where id = (select conversation_id from reopened)
       )
       select ${MESSAGE_COLUMNS} from reopened m`,
      [messageId, nodeId, leaseMs],
    );
    return row ? toMessage(row) : null;
  }

  /**
   * A streaming reply as it stands on Atlas (for a follower on a node that
   * does not write it); null when it is gone. Marks it interrupted first when
   * its lease ran out.
   */
  async replyState(messageId: string): Promise<ConversationMessage | null> {
    await this.expireLeases(undefined, messageId);
    const [row] = await this.db.query<MessageRow>(`select ${MESSAGE_COLUMNS} from chat_messages m where m.id = $1`, [
      messageId,
    ]);
    return row ? toMessage(row) : null;
  }

  /**
   * Streaming replies whose lease ran out (their node crashed or lost Atlas)
   * keep their text and are marked interrupted: in one conversation, one
   * message, or everywhere. Returns how many.
   */
  async expireLeases(conversationId?: string, messageId?: string): Promise<number> {
    const rows = await this.db.query<ReplyWritten>(
      `update chat_messages set status = 'interrupted', node_id = null, lease_until = null, updated_at = now(),
         error = $3
       where status = 'streaming' and lease_until < now()
         and ($1::text is null or conversation_id = $1) and ($2::text is null or id = $2)
       returning id, length(content) as length, status`,
      [conversationId ?? null, messageId ?? null, LEASE_LOST],
    );
    await this.announce(rows);
    return rows.length;
  }

  /** Asks whichever node writes a streaming reply to stop it (it checks at its next write). */
  async requestStop(userId: string, conversationId: string, messageId: string): Promise<boolean> {
    const rows = await this.db.query(
      `update chat_messages m set stop_requested = true
       from conversations c
       where m.id = $1 and m.conversation_id = $2 and c.id = m.conversation_id and c.user_id = $3 and m.status = 'streaming'
       returning m.id`,
      [messageId, conversationId, userId],
    );
    return rows.length > 0;
  }

  /** At start-up: replies this node was writing when it died keep their text and say so. */
  async markInterrupted(nodeId: string): Promise<number> {
    const rows = await this.db.query<ReplyWritten>(
      `update chat_messages set status = 'interrupted', node_id = null, lease_until = null, updated_at = now(),
         error = 'the node restarted while writing this reply; the text written until then is kept'
       where status = 'streaming' and node_id = $1 returning id, length(content) as length, status`,
      [nodeId],
    );
    await this.announce(rows);
    return rows.length;
  }

  /** Sets the title unless a person has set one since (background titles never overwrite theirs). */
  async setGeneratedTitle(conversationId: string, title: string, source: 'default' | 'generated'): Promise<boolean> {
    const rows = await this.db.query(
      `update conversations set title = $2, title_source = $3 where id = $1 and title_source = 'default' returning id`,
      [conversationId, cleanTitle(title), source],
    );
    return rows.length > 0;
  }

  /** Full-text search over the user's titles and message text, in the database. */
  async search(userId: string, text: string, limit = 20): Promise<SearchHit[]> {
    const query = searchQuery(text);
    if (!query) return [];
    const rows = await this.db.query<ConversationRow & { snippet: string | null }>(
      `with q as (select to_tsquery('simple', $2) as q)
       select c.id, c.title, c.pinned, c.model, c.updated_at,
         (select m.content from chat_messages m
          where m.conversation_id = c.id and to_tsvector('simple', m.content) @@ q.q order by m.seq limit 1) as snippet
       from conversations c, q
       where c.user_id = $1 and c.deleted_at is null
         and (to_tsvector('simple', c.title) @@ q.q
              or c.id in (select m.conversation_id from chat_messages m where to_tsvector('simple', m.content) @@ q.q))
       order by c.updated_at desc
       limit $3`,
      [userId, query, Math.min(Math.max(limit, 1), 100)],
    );
    return rows.map((row) => ({ ...toSummary(row), snippet: excerpt(row.snippet ?? '', text) }));
  }

  /** Conversation ids of a user, newest first (for export). */
  async ids(userId: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      'select id from conversations where user_id = $1 and deleted_at is null order by created_at, id',
      [userId],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Inserts a whole conversation (an import) in one statement: it is there
   * completely or not at all. New ids are given to the conversation and its
   * messages; the tree's shape is kept.
   */
  async insertTree(userId: string, tree: ConversationTree): Promise<Conversation> {
    const ids = new Map(tree.messages.map((m) => [m.id, randomUUID()]));
    const rows = orderParentsFirst(tree.messages).map((m, ord) => ({
      ord,
      id: ids.get(m.id),
      parent_id: m.parentId === null ? null : (ids.get(m.parentId) ?? null),
      role: m.role,
      content: storableText(m.content),
      attachments: (m.attachments ?? []).map((x) => ({ ...x, text: storableText(x.text) })),
      model: m.model,
      status: m.status === 'streaming' ? 'interrupted' : m.status,
      error: m.error,
      stats: m.stats,
      created_at: m.createdAt.toISOString(),
    }));
    const leaf = tree.currentLeafId ? (ids.get(tree.currentLeafId) ?? null) : (rows.at(-1)?.id ?? null);
    const [row] = await this.db.query<ConversationRow>(
      `with c as (
         insert into conversations (id, user_id, title, title_source, model, system_prompt, params, current_leaf_id, pinned, created_at, updated_at, knowledge)
         values ($1, $2, $3, 'imported', $4, $5, $6::jsonb, $7, $8, $9, $10, $12::text[])
         returning *
       ), m as (
         insert into chat_messages (id, conversation_id, parent_id, role, content, attachments, model, status, error, stats, created_at, updated_at)
         select x.id, (select id from c), x.parent_id, x.role, x.content, coalesce(x.attachments, '[]'::jsonb), x.model,
                x.status, x.error, x.stats, x.created_at, x.created_at
         from json_to_recordset($11::json) as x(ord int, id text, parent_id text, role text, content text, attachments jsonb,
              model text, status text, error text, stats jsonb, created_at timestamptz)
         order by x.ord
       )
       select ${CONVERSATION_COLUMNS} from c`,
      [
        randomUUID(),
        userId,
        cleanTitle(tree.title) || DEFAULT_TITLE,
        tree.model,
        tree.systemPrompt,
        JSON.stringify(tree.params ?? {}),
        leaf,
        tree.pinned,
        tree.createdAt.toISOString(),
        tree.updatedAt.toISOString(),
        JSON.stringify(rows),
        tree.knowledge ?? [],
      ],
    );
    return toConversation(row!);
  }
}

/**
 * Parents before children (an import's messages may come in any order). A
 * message whose parent is missing, or that closes a cycle, becomes a root, so
 * the stored tree is always a tree.
 */
function orderParentsFirst<M extends { id: string; parentId: string | null }>(messages: M[]): M[] {
  const byId = new Map(messages.map((m) => [m.id, { ...m }]));
  const out: M[] = [];
  const placed = new Set<string>();
  for (const start of byId.values()) {
    // Walk up to the first placed ancestor (or a root), then place the chain top-down.
    const chain: M[] = [];
    const onChain = new Set<string>();
    let at: M | undefined = start;
    while (at && !placed.has(at.id)) {
      if (onChain.has(at.id)) {
        at.parentId = null;
        break;
      }
      chain.push(at);
      onChain.add(at.id);
      const parent: M | undefined = at.parentId === null ? undefined : byId.get(at.parentId);
      if (at.parentId !== null && !parent) at.parentId = null;
      at = parent;
    }
    for (const m of chain.reverse()) {
      if (placed.has(m.id)) continue;
      placed.add(m.id);
      out.push(m);
    }
  }
  return out;
}

/** About 160 characters of `text` around the first word of `query` found in it. */
function excerpt(text: string, query: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const first = (query.match(/[\p{L}\p{N}]+/u) ?? [''])[0]?.toLowerCase() ?? '';
  const at = first ? flat.toLowerCase().indexOf(first) : -1;
  const start = Math.max(0, at - 60);
  const piece = flat.slice(start, start + 160);
  return `${start > 0 ? '…' : ''}${piece}${start + 160 < flat.length ? '…' : ''}`;
}
