/**
 * Model pulls as server-side tasks recorded on Atlas (table `model_pulls`,
 * migration 0010): the Models page starts one and follows it by reading the
 * row, so closing the page does not stop it, and a reload or a page served by
 * another node sharing Atlas shows the same progress.
 *
 * The node running a pull writes its progress (bytes, speed) at most every
 * 500 ms and at least every 5 s, and each write renews a 15 s lease. A pull
 * whose lease ran out (its node died or lost Atlas) is marked `interrupted`
 * by whoever lists the pulls; a restarting node marks its own at once. The
 * partial download stays in the node's cache, so pulling again resumes it.
 */
import { randomUUID } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import { describeError, HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ModelPuller, PullProgress } from './pull.js';

export type PullState = 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

/** A pull as the UI API shows it. */
export interface PullTaskView {
  id: string;
  /** what was asked for: a registry name, `hf:owner/repo/file.gguf` or a URL */
  source: string;
  /** the model it creates */
  model: string | null;
  state: PullState;
  /** the latest progress line (`pulling 3f2a…`, `verifying sha256 digest`) */
  status: string;
  completed: number;
  total: number | null;
  /** download speed over the last few seconds; null before the first bytes */
  bytesPerSecond: number | null;
  error: string | null;
  /** the node running (or that ran) it */
  node: string;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface PullTasksOptions {
  db: AtlasDb;
  puller: ModelPuller;
  nodeId: string;
  log: Logger;
  /** how long a running pull's row stays "running" without a write from its node (default 15 s) */
  leaseMs?: number;
  /** how often progress is written while it changes (default 500 ms) */
  writeEveryMs?: number;
  /** a write at least this often, progress or not, renews the lease (default 5 s) */
  heartbeatMs?: number;
}

interface PullRow {
  id: string;
  source: string;
  model: string | null;
  state: PullState;
  status: string;
  completed: string | number;
  total: string | number | null;
  bytes_per_second: number | null;
  error: string | null;
  node_id: string;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

function view(r: PullRow): PullTaskView {
  return {
    id: r.id,
    source: r.source,
    model: r.model,
    state: r.state,
    status: r.status,
    completed: Number(r.completed),
    total: r.total === null ? null : Number(r.total),
    bytesPerSecond: r.bytes_per_second,
    error: r.error,
    node: r.node_id,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
  };
}

/** Download speed over a sliding window of (time, bytes) samples. */
class SpeedMeter {
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  constructor(private readonly windowMs = 3000) {}

  add(bytes: number, at = Date.now()): void {
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - this.samples[0]!.at > this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or null before two samples far enough apart. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < 200) return null;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
}

const INTERRUPTED_BY_RESTART = 'interrupted: the node running it restarted; pull again to resume the download';
const INTERRUPTED_BY_LEASE = 'interrupted: the node running it stopped answering; pull again to resume the download';
const INTERRUPTED_BY_SHUTDOWN = 'interrupted: hearth was shut down; pull again to resume the download';
const INTERRUPTED_BY_LOST_LEASE =
  'interrupted: this node could not reach Atlas for longer than its lease; pull again to resume the download';

/** Why a pull this node runs was stopped early. */
type StopReason = 'cancel' | 'shutdown' | 'lost';
interface RunningPull {
  stop: AbortController;
  done: Promise<void>;
  why?: StopReason;
}

export class PullTasks {
  private readonly o: Required<PullTasksOptions>;
  /** pulls this node runs: id → how to stop it, and the promise that settles when its row is final */
  private readonly running = new Map<string, RunningPull>();
  private closed = false;

  private constructor(opts: PullTasksOptions) {
    this.o = { leaseMs: 15_000, writeEveryMs: 500, heartbeatMs: 5_000, ...opts };
  }

  /** Opens the task list, marking pulls this node was running before it restarted as interrupted. */
  static async open(opts: PullTasksOptions): Promise<PullTasks> {
    const tasks = new PullTasks(opts);
    await opts.db.query(
      `update model_pulls set state = 'interrupted', error = $2, finished_at = now(), updated_at = now(), lease_until = null
        where state = 'running' and node_id = $1`,
      [opts.nodeId, INTERRUPTED_BY_RESTART],
    );
    return tasks;
  }

  /**
   * Starts pulling `source` on this node and returns at once with the task. The source is checked
   * first (a malformed one is BAD_REQUEST); one already being pulled anywhere is PULL_RUNNING.
   */
  async start(source: string, opts: { insecure?: boolean; createdBy?: string } = {}): Promise<PullTaskView> {
    if (this.closed) throw new HearthError('SHUTTING_DOWN', 'hearth is shutting down: pull again once it is back');
    const trimmed = source.trim();
    const model = this.o.puller.resolve(trimmed).name;
    await this.expireLeases();
    const id = randomUUID();
    try {
      await this.o.db.query(
        `insert into model_pulls (id, source, model, state, status, node_id, lease_until, created_by)
         values ($1, $2, $3, 'running', 'starting', $4, now() + make_interval(secs => $5), $6)`,
        [id, trimmed, model, this.o.nodeId, this.o.leaseMs / 1000, opts.createdBy ?? null],
      );
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new HearthError('PULL_RUNNING', [trimmed]);
      }
      throw err;
    }
    const stop = new AbortController();
    const entry: RunningPull = { stop, done: Promise.resolve() };
    entry.done = this.run(id, trimmed, opts.insecure ?? false, entry).finally(() => this.running.delete(id));
    this.running.set(id, entry);
    return this.get(id);
  }

  /** Recent pulls, newest first (running ones whose node stopped answering are marked interrupted first). */
  async list(limit = 50): Promise<PullTaskView[]> {
    await this.expireLeases();
    const rows = await this.o.db.query<PullRow>('select * from model_pulls order by created_at desc, id limit $1', [
      limit,
    ]);
    return rows.map(view);
  }

  async get(id: string): Promise<PullTaskView> {
    await this.expireLeases();
    const rows = await this.o.db.query<PullRow>('select * from model_pulls where id = $1', [id]);
    if (!rows[0]) throw new HearthError('PULL_NOT_FOUND', [JSON.stringify(id)]);
    return view(rows[0]);
  }

  /**
   * Cancels a running pull. On this node it stops at once; on another node sharing Atlas, at its
   * next write (within about half a second). A pull that has ended is left as it is.
   */
  async cancel(id: string): Promise<PullTaskView> {
    const local = this.running.get(id);
    if (local) {
      local.why = 'cancel';
      local.stop.abort();
      await local.done;
      return this.get(id);
    }
    const current = await this.get(id);
    if (current.state !== 'running') return current;
    await this.o.db.query(`update model_pulls set cancel_requested = true where id = $1 and state = 'running'`, [id]);
    return this.get(id);
  }

  /** Stops the pulls this node runs, marking them interrupted (their partial downloads are kept). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.running.values()];
    for (const entry of all) {
      entry.why ??= 'shutdown';
      entry.stop.abort();
    }
    await Promise.allSettled(all.map((e) => e.done));
  }

  private async expireLeases(): Promise<void> {
    await this.o.db.query(
      `update model_pulls set state = 'interrupted', error = $1, finished_at = now(), updated_at = now(), lease_until = null
        where state = 'running' and lease_until < now()`,
      [INTERRUPTED_BY_LEASE],
    );
  }

  private async run(id: string, source: string, insecure: boolean, entry: RunningPull): Promise<void> {
    const { db, log } = this.o;
    const speed = new SpeedMeter();
    let latest: PullProgress = { status: 'starting' };
    let written = '';
    let lastWrite = 0;
    const write = async (force: boolean) => {
      const rate = speed.rate();
      const shown = `${latest.status}|${latest.completed}|${latest.total}|${rate === null ? '' : Math.round(rate)}`;
      const now = Date.now();
      if (!force && shown === written && now - lastWrite < this.o.heartbeatMs) return;
      written = shown;
      lastWrite = now;
      const rows = await db.query<{ cancel_requested: boolean }>(
        `update model_pulls set status = $2, completed = $3, total = $4, bytes_per_second = $5, updated_at = now(),
           lease_until = now() + make_interval(secs => $6)
         where id = $1 and state = 'running' returning cancel_requested`,
        [id, latest.status, latest.completed ?? 0, latest.total ?? null, rate, this.o.leaseMs / 1000],
      );
      // Cancelled from another node, or marked interrupted while this node could not write: stop here.
      if (!rows[0] || rows[0].cancel_requested) {
        entry.why ??= rows[0] ? 'cancel' : 'lost';
        entry.stop.abort();
      }
    };
    let writing = Promise.resolve();
    const timer = setInterval(() => {
      writing = writing
        .then(() => write(false))
        .catch((err: unknown) => log.warn({ err, pull: id }, 'pull: could not record progress on Atlas'));
    }, this.o.writeEveryMs);
    let state: PullState = 'done';
    let error: string | null = null;
    try {
      await this.o.puller.pull(source, {
        insecure,
        signal: entry.stop.signal,
        onProgress: (p) => {
          if (p.completed !== undefined) speed.add(p.completed);
          // A status line without bytes (verifying, writing manifest) keeps the byte counts shown.
          latest = p.completed === undefined ? { ...latest, status: p.status } : p;
        },
      });
    } catch (err) {
      if (entry.stop.signal.aborted) {
        state = entry.why === 'cancel' ? 'cancelled' : 'interrupted';
        error =
          entry.why === 'cancel'
            ? 'cancelled: pull again to resume the download'
            : entry.why === 'lost'
              ? INTERRUPTED_BY_LOST_LEASE
              : INTERRUPTED_BY_SHUTDOWN;
      } else {
        state = 'failed';
        error = isHearthError(err) ? err.message : describeError(err, { causes: true });
      }
      log.info({ pull: id, source, state, error }, 'pull: ended early');
    } finally {
      clearInterval(timer);
      await writing;
    }
    const status = state === 'done' ? 'success' : latest.status;
    await db
      .query(
        `update model_pulls set state = $2, status = $3, error = $4, completed = $5, total = $6,
           finished_at = now(), updated_at = now(), lease_until = null
         where id = $1`,
        [id, state, status, error, latest.completed ?? 0, latest.total ?? null],
      )
      .catch((err: unknown) => log.warn({ err, pull: id }, 'pull: could not record its end on Atlas'));
  }
}
