import type { SqlRunner } from '../atlas/db/index.js';
import { jsonForAtlas } from '../atlas/db/index.js';
import type { NodeUi } from './types.js';

/** A prompt as the database holds it (table `workflow_prompts`, migrations 0006 and 0011). */
export interface PromptRow {
  id: string;
  number: string;
  prompt: Record<string, unknown>;
  extra_data: Record<string, unknown>;
  client_id: string | null;
  state: PromptState;
  node: string | null;
  outputs: Record<string, NodeUi>;
  messages: Array<[string, Record<string, unknown>]>;
  /** runs started (claims), the current one included */
  attempts: number;
  /** the queue ticket that carries this prompt; a ticket that is not this one is stale */
  ticket: string | null;
}

export type PromptState = 'pending' | 'running' | 'success' | 'error' | 'interrupted';
export type FinishedState = Extract<PromptState, 'success' | 'error' | 'interrupted'>;

const FINISHED = `state in ('success', 'error', 'interrupted')`;

/**
 * The prompt records: queue and history are the same rows, so both survive restarts and every node on
 * one Atlas reads the same. The queue's tickets (queue.ts) only say "run this prompt"; these rows say
 * what happened. Every function takes the runner to use: the database or a transaction.
 */
export const promptStore = {
  /** Inserts a pending prompt; false when the id is taken. `front` queues it before every other. */
  async insert(
    q: SqlRunner,
    p: {
      id: string;
      prompt: unknown;
      extra: Record<string, unknown>;
      clientId: string | null;
      front: boolean;
      ticket: string;
    },
  ): Promise<number | null> {
    const rows = await q.query<{ number: string }>(
      `insert into workflow_prompts (id, number, prompt, extra_data, client_id, state, ticket)
       values ($1, case when $5 then -nextval('workflow_prompt_number') else nextval('workflow_prompt_number') end, $2, $3, $4, 'pending', $6)
       on conflict (id) do nothing returning number`,
      [p.id, JSON.stringify(p.prompt), JSON.stringify(p.extra), p.clientId, p.front, p.ticket],
    );
    return rows[0] ? Number(rows[0].number) : null;
  },

  async get(q: SqlRunner, id: string): Promise<PromptRow | undefined> {
    const [row] = await q.query<PromptRow>(`select * from workflow_prompts where id = $1`, [id]);
    return row;
  },

  async remaining(q: SqlRunner): Promise<number> {
    const [row] = await q.query<{ n: string }>(
      `select count(*) as n from workflow_prompts where state in ('pending', 'running')`,
    );
    return Number(row?.n ?? 0);
  },

  /** Running and pending prompts, in queue order. */
  live(q: SqlRunner): Promise<PromptRow[]> {
    return q.query<PromptRow>(
      `select * from workflow_prompts where state in ('pending', 'running') order by number, created_at`,
    );
  },

  /** Deletes pending prompts (all, or those named); returns the ids deleted. */
  async deletePending(q: SqlRunner, ids: string[] | 'all'): Promise<string[]> {
    const rows =
      ids === 'all'
        ? await q.query<{ id: string }>(`delete from workflow_prompts where state = 'pending' returning id`)
        : await q.query<{ id: string }>(
            `delete from workflow_prompts where state = 'pending' and id = any($1) returning id`,
            [ids],
          );
    return rows.map((r) => r.id);
  },

  /** Flags running prompts (one, or all) for interruption; their runners see it at the next heartbeat. */
  async requestInterrupt(q: SqlRunner, id?: string): Promise<number> {
    const rows = id
      ? await q.query(
          `update workflow_prompts set interrupt_requested = true where state = 'running' and id = $1 returning id`,
          [id],
        )
      : await q.query(`update workflow_prompts set interrupt_requested = true where state = 'running' returning id`);
    return rows.length;
  },

  /** Finished prompts: one by id, or a page newest first. */
  finished(q: SqlRunner, opts: { maxItems?: number; offset?: number; id?: string }): Promise<PromptRow[]> {
    return opts.id
      ? q.query<PromptRow>(`select * from workflow_prompts where id = $1 and ${FINISHED}`, [opts.id])
      : q.query<PromptRow>(
          `select * from workflow_prompts where ${FINISHED} order by finished_at desc, number desc limit $1 offset $2`,
          [opts.maxItems ?? 10_000, opts.offset ?? 0],
        );
  },

  async deleteFinished(q: SqlRunner, ids: string[] | 'all'): Promise<number> {
    const rows =
      ids === 'all'
        ? await q.query(`delete from workflow_prompts where ${FINISHED} returning id`)
        : await q.query(`delete from workflow_prompts where ${FINISHED} and id = any($1) returning id`, [ids]);
    return rows.length;
  },

  /**
   * Claims a prompt for the ticket a node holds: it runs now, under `token`. Undefined when the ticket is
   * stale (the prompt was deleted, finished, or carried by another ticket): the ticket is then dropped.
   */
  async claim(q: SqlRunner, id: string, ticket: string, node: string, token: string): Promise<PromptRow | undefined> {
    const [row] = await q.query<PromptRow>(
      `update workflow_prompts set state = 'running', node = $3, lease_token = $4, attempts = attempts + 1,
         started_at = coalesce(started_at, now()), interrupt_requested = false
       where id = $1 and ticket = $2 and state in ('pending', 'running')
       returning *`,
      [id, ticket, node, token],
    );
    return row;
  },

  /** Whether the run under `token` still owns the prompt, and whether someone asked to interrupt it. */
  async look(q: SqlRunner, id: string, token: string): Promise<{ ours: boolean; interrupt: boolean }> {
    const [row] = await q.query<{ interrupt_requested: boolean }>(
      `select interrupt_requested from workflow_prompts where id = $1 and lease_token = $2 and state = 'running'`,
      [id, token],
    );
    return { ours: row !== undefined, interrupt: row?.interrupt_requested === true };
  },

  /** Records the run's end (fenced by its token); false when the run no longer owns the prompt. */
  async finish(
    q: SqlRunner,
    id: string,
    token: string,
    end: { state: FinishedState; outputs: Record<string, NodeUi>; messages: unknown[] },
  ): Promise<boolean> {
    const rows = await q.query(
      `update workflow_prompts set state = $3, outputs = $4, messages = $5, finished_at = now(), lease_token = null
       where id = $1 and lease_token = $2 and state = 'running' returning id`,
      [id, token, end.state, jsonForAtlas(end.outputs), jsonForAtlas(end.messages)],
    );
    return rows.length === 1;
  },

  /** A run handed back (shutdown): pending again, the attempt not counted. */
  async handBack(q: SqlRunner, id: string, token: string): Promise<void> {
    await q.query(
      `update workflow_prompts set state = 'pending', node = null, lease_token = null, attempts = greatest(attempts - 1, 0)
       where id = $1 and lease_token = $2 and state = 'running'`,
      [id, token],
    );
  },

  /** A prompt whose ticket used up its attempts (its nodes were lost): it fails with `message`. */
  async failLost(q: SqlRunner, id: string, ticket: string, message: string): Promise<boolean> {
    const rows = await q.query(
      `update workflow_prompts set state = 'error', finished_at = now(), lease_token = null, messages = $3::jsonb
       where id = $1 and ticket = $2 and state in ('pending', 'running') returning id`,
      [id, ticket, JSON.stringify([['execution_error', { prompt_id: id, exception_message: message }]])],
    );
    return rows.length === 1;
  },

  /**
   * Queued or running prompts with no open ticket: queued before this queue existed (an upgrade), or
   * whose ticket was lost. Each gets a new ticket (`attach`).
   */
  orphans(q: SqlRunner, queueSchema: string, queueName: string): Promise<Array<{ id: string; number: string }>> {
    return q.query(
      `select p.id, p.number from workflow_prompts p
        where p.state in ('pending', 'running')
          and not exists (select 1 from ${queueSchema}.job j
                           where j.name = $1 and j.id::text = p.ticket and j.state < 'completed')
        order by p.number`,
      [queueName],
    );
  },

  /** Points a prompt at a new ticket (the old one, if any, is stale from now on). */
  async attach(q: SqlRunner, id: string, ticket: string): Promise<void> {
    await q.query(`update workflow_prompts set ticket = $2 where id = $1`, [id, ticket]);
  },
};
