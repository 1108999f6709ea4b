import { randomUUID } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { AtlasDb, SqlRunner } from '../atlas/db/index.js';
import { isEmbeddedDatabase } from '../atlas/db/index.js';
import { describeError, HearthError } from '../errors.js';
import type { Logger } from '../log.js';

/** pg-boss keeps its tables in this schema of the Atlas database (created and migrated by pg-boss itself). */
export const QUEUE_SCHEMA = 'hearth_queue';
/** Every ticket of every job: one queue, so one fetch serves plan, shard and finalize work by priority. */
export const WORK_QUEUE = 'hearth-jobs';
/** Tickets that used up their attempts land here; a worker turns each into a failed job. */
export const DEAD_QUEUE = 'hearth-jobs-dead';

/**
 * What a queue's notification says: 'work' (a ticket became fetchable: sent, handed back, or a retry
 * came due) or 'dead' (a ticket used up its attempts and waits in the dead-letter queue).
 */
export type QueueSignal = 'work' | 'dead';

/** What a ticket asks a worker to do. Tickets are disposable: the job tables say what is done. */
export type TicketWork =
  | { kind: 'plan'; jobId: string }
  | { kind: 'shard'; jobId: string; shard: number }
  | { kind: 'finalize'; jobId: string };

/** Plan and finalize go first: they unblock whole jobs. */
const PRIORITY: Record<TicketWork['kind'], number> = { plan: 10, finalize: 10, shard: 0 };

/** A ticket this node holds: the pg-boss job, and the token that proves the lease is still ours. */
export interface HeldTicket<W = TicketWork> {
  readonly id: string;
  readonly work: W;
  /** attempts made before this one (0 on the first) */
  readonly retryCount: number;
  /** retries allowed after the first attempt */
  readonly retryLimit: number;
  readonly token: string;
}

/** A ticket that used up its attempts, with the last error pg-boss recorded. */
export interface DeadTicket<W = TicketWork> {
  readonly id: string;
  readonly work: W;
  readonly error: string;
}

/**
 * Which pg-boss queues a JobQueue serves and how it ranks their tickets: the batch jobs' by default;
 * another service (workflow prompts) passes its own, and gets the same leases, heartbeats and retries.
 */
export interface TicketQueueNames<W> {
  /** the work queue */
  work: string;
  /** where tickets that used up their attempts land */
  dead: string;
  /** a ticket's priority (higher first; equal ones in the order sent) */
  priority(work: W): number;
}

const JOB_NAMES: TicketQueueNames<TicketWork> = {
  work: WORK_QUEUE,
  dead: DEAD_QUEUE,
  priority: (w) => PRIORITY[w.kind],
};

/** How the queue behaves; all durations in milliseconds. */
export interface JobQueueOptions<W = TicketWork> {
  /** the queues served (default: the batch jobs') */
  names?: TicketQueueNames<W>;
  db: AtlasDb;
  /** `atlas.database`: 'embedded' (PGlite, reached through `db`) or the PostgreSQL URL pg-boss opens its own pool to. */
  database: string;
  log: Logger;
  /** this node's id, stamped on every ticket it holds */
  node: string;
  /** a lease not renewed by a heartbeat for this long expires, and the ticket is retried on any node */
  leaseMs: number;
  /** attempts per ticket, the first included (1 = no retries) */
  maxAttempts: number;
  /** delay before the first retry; later retries back off exponentially (pg-boss counts whole seconds) */
  retryDelayMs: number;
  /** false: every retry waits retryDelayMs (which may then be 0: at once); default true */
  retryBackoff?: boolean;
  /** how often expired leases are looked for (every node looks; one expires them) */
  maintenanceIntervalMs: number;
}

/**
 * How often finished tickets are archived and old archives dropped. pg-boss would do it with every
 * lease check (each a locked write transaction: on PGlite a write to disk every few seconds, the
 * larger part of an idle node's CPU); tickets are archived a day after they finish, so once an hour
 * is plenty.
 */
const HOUSEKEEPING_MS = 3_600_000;

/** The LISTEN/NOTIFY channel of a pg-boss queue: its work queue's name (a dead queue is `<work>-dead`). */
function channelOf(queueName: string): string {
  return queueName.replace(/-dead$/, '').replace(/-/g, '_');
}

/**
 * The job queue: pg-boss on the Atlas database, with leases that heartbeats extend.
 *
 * On PostgreSQL pg-boss uses its own connection pool from the URL. On the embedded PGlite it goes
 * through `db` (an `executeSql` adapter); its multi-statement scripts (schema creation, maintenance)
 * use PGlite's `exec`. Sends, completions and cancellations that must agree with a job record take a
 * transaction runner, so both change together or not at all.
 *
 * Two small reaches into pg-boss's table, both on one row of a held ticket: a heartbeat extends the
 * ticket's `expire_in` (pg-boss 10 has no heartbeat of its own), and `release` puts a ticket back
 * without counting an attempt (a clean shutdown is not a failure).
 *
 * Maintenance is ours, not pg-boss's `supervise` (see `maintain`): a cheap read looks for expired
 * leases every `maintenanceIntervalMs`, and pg-boss's expiry runs only when there are some.
 */
export class JobQueue<W extends object = TicketWork> {
  private readonly boss: PgBoss;
  private readonly opts: JobQueueOptions<W>;
  private readonly names: TicketQueueNames<W>;
  private readonly instance = randomUUID();
  /** the LISTEN/NOTIFY channel of this queue (its work queue's name as a channel name) */
  readonly channel: string;
  /** retries this node scheduled, announced when they come due (see `fail`) */
  private readonly dueTimers = new Set<NodeJS.Timeout>();
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintaining: Promise<void> | undefined;
  /**
   * The first archiving comes at a random point of the first hour, not with the first lease check:
   * nodes started together spread it, and a node just started does no 150 ms of writes at once.
   */
  private lastHousekeeping = Date.now() - Math.random() * HOUSEKEEPING_MS;
  private closed: Promise<void> | undefined;

  private constructor(boss: PgBoss, opts: JobQueueOptions<W>, names: TicketQueueNames<W>) {
    this.boss = boss;
    this.opts = opts;
    this.names = names;
    this.channel = channelOf(names.work);
    this.scheduleMaintenance();
  }

  /** Starts pg-boss (creating or migrating its schema) and makes sure both queues exist with current settings. */
  static async open<W extends object = TicketWork>(opts: JobQueueOptions<W>): Promise<JobQueue<W>> {
    const names = opts.names ?? (JOB_NAMES as unknown as TicketQueueNames<W>);
    const backoff = opts.retryBackoff !== false;
    const leaseSeconds = Math.max(1, Math.ceil(opts.leaseMs / 1000));
    const common = {
      schema: QUEUE_SCHEMA,
      schedule: false,
      // pg-boss's supervision would run expiry, archiving and dropping, each a locked write
      // transaction, on every node every interval whether or not there is anything to do: `maintain`
      // does the same work only when needed (the same guarantee: expired leases are found within
      // maintenanceIntervalMs).
      supervise: false,
      migrate: true,
      // Finished tickets are kept a day for debugging, then archived; the job tables are the record.
      archiveCompletedAfterSeconds: 24 * 3600,
    };
    const boss = isEmbeddedDatabase(opts.database)
      ? new PgBoss({ ...common, db: embeddedAdapter(opts.db) })
      : new PgBoss({ ...common, connectionString: opts.database, max: 4, application_name: 'hearth-jobs' });
    boss.on('error', (err: Error) => opts.log.warn({ err: describeError(err) }, 'job queue: pg-boss error'));
    try {
      await startWithRetry(boss);
      const queue: Omit<PgBoss.Queue, 'name'> = {
        retryLimit: Math.max(0, opts.maxAttempts - 1),
        retryDelay: Math.max(backoff ? 1 : 0, Math.round(opts.retryDelayMs / 1000)),
        retryBackoff: backoff,
        expireInSeconds: leaseSeconds,
        // Queued tickets must outlive any realistic wait (pg-boss archives unstarted ones after this).
        retentionMinutes: 365 * 24 * 60,
      };
      // A dead ticket whose handling is interrupted must come back, or its job would never be failed.
      await boss.createQueue(names.dead, { ...queue, name: names.dead, retryLimit: 1000, retryBackoff: false });
      const work = { ...queue, name: names.work, deadLetter: names.dead };
      await boss.createQueue(names.work, work);
      // createQueue keeps an existing queue's settings: apply this configuration's.
      await boss.updateQueue(names.work, work);
    } catch (err) {
      await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
      throw new HearthError(
        'ATLAS_DB_UNREACHABLE',
        `jobs: cannot start the job queue on ${opts.db.describe}: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }
    return new JobQueue(boss, opts, names);
  }

  /**
   * Queues tickets inside `tx` (they exist only if the transaction commits). `ids` (UUIDs, one per
   * ticket) names them, for a record that must know its ticket.
   */
  async send(tx: SqlRunner, work: readonly W[], ids?: readonly string[]): Promise<void> {
    if (work.length === 0) return;
    // pg-boss's bulk insert takes one JSON document; big plans go in slices to keep statements small.
    for (let i = 0; i < work.length; i += 1000) {
      const slice = work.slice(i, i + 1000).map((w, j) => ({
        name: this.names.work,
        data: w,
        priority: this.names.priority(w),
        ...(ids ? { id: ids[i + j] } : {}),
      }));
      await this.boss.insert(slice, { db: bossDb(tx) });
    }
    await this.announce('work', tx);
  }

  /**
   * Calls `onSignal` on each notification of this queue from any node, until the returned function
   * is called; `onState` hears the listening connection's losses and returns (AtlasDb.listen).
   * Throws ATLAS_DB_UNREACHABLE when the database cannot be reached.
   */
  listen(onSignal: (signal: QueueSignal) => void, onState: (listening: boolean) => void): Promise<() => Promise<void>> {
    return this.opts.db.listen(this.channel, (payload) => onSignal(payload === 'dead' ? 'dead' : 'work'), onState);
  }

  /**
   * Tells every listening node (this one too) that the queue changed; inside `tx`, when it commits.
   * Best effort outside a transaction: a lost notification costs a wait for the fallback poll.
   */
  private async announce(signal: QueueSignal, tx?: SqlRunner, channel = this.channel): Promise<void> {
    if (tx) return this.opts.db.notify(channel, signal, tx);
    await this.opts.db.notify(channel, signal).catch((err: unknown) => {
      this.opts.log.debug({ err: describeError(err) }, 'job queue: cannot announce a change; the poll will find it');
    });
  }

  /** Announces 'work' on `channel` in `ms` (a retry coming due), unless the queue closes first. */
  private announceLater(ms: number, channel = this.channel): void {
    if (this.closed) return;
    const timer = setTimeout(
      () => {
        this.dueTimers.delete(timer);
        void this.announce('work', undefined, channel);
      },
      // A little after the due time: pg-boss compares start_after with the database's clock.
      ms + 50,
    );
    timer.unref();
    this.dueTimers.add(timer);
  }

  private scheduleMaintenance(): void {
    if (this.closed) return;
    this.maintenanceTimer = setTimeout(() => {
      this.maintaining = this.maintain()
        .catch((err: unknown) => this.opts.log.warn({ err: describeError(err) }, 'job queue: maintenance failed'))
        .finally(() => {
          this.maintaining = undefined;
          this.scheduleMaintenance();
        });
    }, this.opts.maintenanceIntervalMs);
    this.maintenanceTimer.unref();
  }

  /**
   * Expires leases that ran out (their tickets are retried, or dead-lettered after the last attempt)
   * and, hourly, archives finished tickets. The expiry is pg-boss's own (a locked transaction, so
   * nodes running it at once do it once), run only when a read finds an expired lease: an idle
   * cluster writes nothing. Each queue with expired leases is announced at once (a dead letter to
   * handle, a prompt to run again) and again when its retries come due, so no node waits for a poll.
   * Every node looks (a dead node's leases must expire without it), each queue of the schema at once.
   */
  async maintain(): Promise<void> {
    const expired = await this.opts.db.query<{ name: string }>(
      `select distinct name from ${QUEUE_SCHEMA}.job where state = 'active' and started_on + expire_in < now()`,
    );
    if (expired.length > 0 && !this.closed) {
      await this.boss.expire();
      const names = expired.map((r) => r.name);
      for (const name of names) await this.announce('dead', undefined, channelOf(name));
      const due = await this.opts.db.query<{ name: string; wait_ms: number | string | null }>(
        `select name, greatest(0, extract(epoch from max(start_after) - now()) * 1000)::float8 as wait_ms
           from ${QUEUE_SCHEMA}.job where state = 'retry' and name = any($1::text[]) group by name`,
        [names],
      );
      for (const row of due) this.announceLater(Number(row.wait_ms ?? 0), channelOf(row.name));
    }
    if (Date.now() - this.lastHousekeeping >= HOUSEKEEPING_MS && !this.closed) {
      this.lastHousekeeping = Date.now();
      await this.boss.archive();
      // pg-boss 10 has drop() (deleting archived tickets past deleteAfter), missing from its types.
      await (this.boss as unknown as { drop(): Promise<void> }).drop();
    }
  }

  /** Takes up to `count` tickets, stamping each with this node and a fresh token. */
  async fetch(count: number): Promise<HeldTicket<W>[]> {
    if (count <= 0 || this.closed) return [];
    const jobs = await this.boss.fetch<W>(this.names.work, { batchSize: count, includeMetadata: true });
    const held: HeldTicket<W>[] = [];
    for (const job of jobs) {
      const token = randomUUID();
      await this.opts.db.query(
        `update ${QUEUE_SCHEMA}.job set output = $3::jsonb where name = $1 and id = $2 and state = 'active'`,
        [this.names.work, job.id, JSON.stringify(this.holder(token))],
      );
      held.push({ id: job.id, work: job.data, retryCount: job.retryCount, retryLimit: job.retryLimit, token });
    }
    return held;
  }

  /** Extends the lease. False when it is no longer ours (expired and taken again, cancelled or completed). */
  async heartbeat(ticket: HeldTicket<W>): Promise<boolean> {
    const rows = await this.opts.db.query(
      `update ${QUEUE_SCHEMA}.job
          set expire_in = (now() - started_on) + make_interval(secs => $3)
        where name = $1 and id = $2 and state = 'active' and output ->> 'token' = $4
        returning 1`,
      [this.names.work, ticket.id, Math.ceil(this.opts.leaseMs / 1000), ticket.token],
    );
    return rows.length === 1;
  }

  /** Marks a ticket done inside `tx`. */
  async complete(tx: SqlRunner, ticket: { id: string }): Promise<void> {
    await this.boss.complete(this.names.work, ticket.id, { node: this.opts.node }, { db: bossDb(tx) });
  }

  /**
   * Records a failed attempt: the ticket is retried with backoff, or dead-lettered after its last
   * attempt. Skipped when the lease is no longer ours (the holder now decides).
   */
  async fail(ticket: HeldTicket<W>, error: unknown): Promise<'retry' | 'dead' | 'lost'> {
    if (!(await this.stillHeld(ticket))) return 'lost';
    await this.boss.fail(this.names.work, ticket.id, { message: describeError(error) });
    if (ticket.retryCount >= ticket.retryLimit) {
      await this.announce('dead');
      return 'dead';
    }
    await this.announceWhenDue(ticket.id);
    return 'retry';
  }

  /**
   * A retry is fetchable at its `start_after` (pg-boss's backoff): this node announces it then, so
   * it starts on time on whichever node has room. Were this node to stop first, the others' slow
   * poll finds it (at most one poll interval late).
   */
  private async announceWhenDue(id: string): Promise<void> {
    const [row] = await this.opts.db.query<{ wait_ms: number | string | null }>(
      `select greatest(0, extract(epoch from start_after - now()) * 1000)::float8 as wait_ms
         from ${QUEUE_SCHEMA}.job where name = $1 and id = $2 and state = 'retry'`,
      [this.names.work, id],
    );
    if (row) this.announceLater(Number(row.wait_ms ?? 0));
  }

  /** Puts a held ticket back at once without counting an attempt (shutdown, or work handed back). */
  async release(ticket: HeldTicket<W>): Promise<void> {
    await this.opts.db.query(
      `update ${QUEUE_SCHEMA}.job set state = 'created', started_on = null, start_after = now(), output = null
        where name = $1 and id = $2 and state = 'active' and output ->> 'token' = $3`,
      [this.names.work, ticket.id, ticket.token],
    );
    await this.announce('work');
  }

  /** Cancels every open ticket of a job inside `tx`; returns how many. */
  cancelJob(tx: SqlRunner, jobId: string): Promise<number> {
    return this.cancelWhere(tx, 'jobId', jobId);
  }

  /** Cancels inside `tx` every open ticket whose work has `field` = `value` (a string); returns how many. */
  async cancelWhere(tx: SqlRunner, field: string, value: string): Promise<number> {
    const rows = await tx.query<{ id: string }>(
      `select id::text as id from ${QUEUE_SCHEMA}.job where name = $1 and data ->> $3 = $2 and state < 'completed'`,
      [this.names.work, value, field],
    );
    if (rows.length === 0) return 0;
    // pg-boss answers { affected } though its types say void.
    const result: unknown = await this.boss.cancel(
      this.names.work,
      rows.map((r) => r.id),
      { db: bossDb(tx) },
    );
    return (result as { affected?: number } | undefined)?.affected ?? rows.length;
  }

  /**
   * Tickets this node held before it restarted (same node id, another process) are orphans: fail them
   * now rather than wait for their leases to expire. Each counts as a failed attempt.
   */
  async reclaimOrphans(): Promise<number> {
    const rows = await this.opts.db.query<{ id: string }>(
      `select id::text as id from ${QUEUE_SCHEMA}.job
        where name = $1 and state = 'active' and output ->> 'node' = $2 and output ->> 'instance' <> $3`,
      [this.names.work, this.opts.node, this.instance],
    );
    for (const { id } of rows) {
      await this.boss.fail(this.names.work, id, {
        message: `node ${this.opts.node} restarted while holding this work`,
      });
      await this.announceWhenDue(id);
    }
    return rows.length;
  }

  /** Takes tickets that used up their attempts (completing them: the caller records the failure first). */
  async fetchDead(count: number): Promise<DeadTicket<W>[]> {
    if (this.closed) return [];
    const jobs = await this.boss.fetch<W>(this.names.dead, { batchSize: count, includeMetadata: true });
    return jobs.map((job) => ({ id: job.id, work: job.data, error: deadMessage(job.output) }));
  }

  /** Completes a dead-letter ticket inside `tx`. */
  async completeDead(tx: SqlRunner, ticket: { id: string }): Promise<void> {
    await this.boss.complete(this.names.dead, ticket.id, { node: this.opts.node }, { db: bossDb(tx) });
  }

  /** Stops maintenance and (on PostgreSQL) closes pg-boss's pool. Held tickets should be released first. */
  close(): Promise<void> {
    for (const timer of this.dueTimers) clearTimeout(timer);
    this.dueTimers.clear();
    clearTimeout(this.maintenanceTimer);
    this.closed ??= (async () => {
      await this.maintaining;
      await this.boss.stop({ graceful: false, wait: true, close: true });
    })().catch((err: unknown) => {
      this.opts.log.warn({ err: describeError(err) }, 'job queue: error while stopping');
    });
    return this.closed;
  }

  private holder(token: string) {
    return { node: this.opts.node, instance: this.instance, token };
  }

  private async stillHeld(ticket: HeldTicket<W>): Promise<boolean> {
    const rows = await this.opts.db.query(
      `select 1 from ${QUEUE_SCHEMA}.job where name = $1 and id = $2 and state = 'active' and output ->> 'token' = $3`,
      [this.names.work, ticket.id, ticket.token],
    );
    return rows.length === 1;
  }
}

/** pg-boss's error output (`{message}`, possibly nested in `value`) as one line. */
function deadMessage(output: unknown): string {
  const o = output as { message?: unknown; value?: { message?: unknown } } | null | undefined;
  const message = o?.message ?? o?.value?.message;
  return typeof message === 'string' ? message : 'the work failed on every attempt';
}

/** pg-boss's `db` option over one of our SQL runners (a transaction). */
function bossDb(runner: SqlRunner): PgBoss.Db {
  return { executeSql: async (text, values) => ({ rows: await runner.query(text, values ?? []) }) };
}

/**
 * pg-boss over the embedded database: parameterised statements through `db.query`, pg-boss's
 * scripts (several statements, no parameters: schema creation, maintenance) through `db.exec`.
 */
function embeddedAdapter(db: AtlasDb): PgBoss.Db {
  return {
    executeSql: async (text, values) => ({
      rows: values && values.length > 0 ? await db.query(text, values) : await db.exec(text),
    }),
  };
}

/**
 * Nodes starting at the same moment on a fresh database race on pg-boss's
 * schema set-up, and PostgreSQL may resolve that as a deadlock (40P01) or a
 * duplicate-object error. Both are safe to retry: the winner finished the work.
 */
async function startWithRetry(boss: PgBoss): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await boss.start();
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const racing = code === '40P01' || code === '42P07' || code === '42710' || code === '23505';
      if (!racing || attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt + Math.random() * 200));
    }
  }
}
