import pg from 'pg';
import type { Logger } from 'pino';
import type { PostgresTarget } from '../database-url.js';
import { unreachable } from './connection-errors.js';

/** Longest wait between two attempts to get the listening connection back, ms (the back-off's bound). */
const MAX_BACKOFF_MS = 5000;
/** First wait after the listening connection is lost, ms; doubled on each failed attempt up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 100;
const CLOSE_WAIT_MS = 5000;

/** One `listen` call: its callbacks (the same function given twice is two subscribers). */
interface Subscriber {
  notify(payload: string): void;
  state?: (listening: boolean) => void;
}

export interface PostgresListenerOptions {
  target: PostgresTarget;
  log: Logger;
  connectTimeoutMs: number;
}

/**
 * LISTEN on PostgreSQL: one dedicated connection per process, outside the pool (a pooled
 * connection is lent to others between queries, and its LISTENs would go with it), opened on the
 * first `listen` and shared by every channel and subscriber. A lost connection is opened again
 * with a bounded back-off (FIRST_BACKOFF_MS doubling to MAX_BACKOFF_MS) for as long as someone
 * listens, and its channels are listened to again. Notifications sent while it was gone are lost:
 * subscribers that must not miss a change also read the state now and then, and hear of the loss
 * and of the return through their `onState` (to read more often meanwhile, and once on return).
 */
export class PostgresListener {
  private readonly opts: PostgresListenerOptions;
  /** what subscribers want: channel → callbacks */
  private readonly channels = new Map<string, Set<Subscriber>>();
  /** what the current connection listens to */
  private listening = new Set<string>();
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  /** LISTEN/UNLISTEN go out one sync at a time, so the connection's channels follow `channels` */
  private syncing: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private wasLost = false;
  private closed = false;

  constructor(opts: PostgresListenerOptions) {
    this.opts = opts;
  }

  /**
   * Calls `onNotify` with the payload of each notification on `channel` until the returned function
   * is called. Resolves once the LISTEN is in effect; throws ATLAS_DB_UNREACHABLE (nothing kept)
   * when the database cannot be reached.
   */
  async listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (listening: boolean) => void,
  ): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('atlas database closed');
    let subscribers = this.channels.get(channel);
    if (!subscribers) {
      subscribers = new Set();
      this.channels.set(channel, subscribers);
    }
    // One object per call, so the same callback given twice is two subscriptions.
    const subscriber: Subscriber = { notify: onNotify, ...(onState ? { state: onState } : {}) };
    subscribers.add(subscriber);
    const remove = () => {
      subscribers.delete(subscriber);
      if (subscribers.size === 0 && this.channels.get(channel) === subscribers) this.channels.delete(channel);
    };
    try {
      await this.sync();
    } catch (err) {
      remove();
      throw err;
    }
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      remove();
      await this.sync().catch(() => undefined);
    };
  }

  /** Ends the listening connection and any reconnecting. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.channels.clear();
    const client = this.client ?? (await this.connecting?.catch(() => null)) ?? null;
    this.client = null;
    if (client) await endWithin(client, CLOSE_WAIT_MS);
  }

  /** Brings the connection's LISTENs in line with the subscribers (connecting first when someone listens). */
  private sync(): Promise<void> {
    const run = this.syncing.then(async () => {
      if (this.closed) return;
      if (this.channels.size === 0 && !this.client) return;
      const client = await this.connected();
      for (const channel of this.channels.keys()) {
        if (this.listening.has(channel)) continue;
        await this.run(client, `listen ${quoteChannel(channel)}`);
        this.listening.add(channel);
      }
      for (const channel of [...this.listening]) {
        if (this.channels.has(channel)) continue;
        await this.run(client, `unlisten ${quoteChannel(channel)}`);
        this.listening.delete(channel);
      }
    });
    this.syncing = run.catch(() => undefined);
    return run;
  }

  private async run(client: pg.Client, sql: string): Promise<void> {
    try {
      await client.query(sql);
    } catch (err) {
      throw unreachable(err, this.opts.target, 'cannot listen on');
    }
  }

  private connected(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.opts.target.url,
      application_name: 'hearth-listen',
      connectionTimeoutMillis: this.opts.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('notification', (message) => {
      for (const subscriber of this.channels.get(message.channel) ?? []) {
        try {
          subscriber.notify(message.payload ?? '');
        } catch (err) {
          this.opts.log.warn({ err, channel: message.channel }, 'atlas database: a notification handler failed');
        }
      }
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw unreachable(err, this.opts.target, 'cannot connect to');
    }
    if (this.closed) {
      await endWithin(client, CLOSE_WAIT_MS);
      throw new Error('atlas database closed');
    }
    this.client = client;
    this.listening = new Set();
    if (this.wasLost) this.opts.log.info({ database: this.opts.target.masked }, 'atlas database listening again');
    this.wasLost = false;
    this.failures = 0;
    return client;
  }

  /** The listening connection died: forget it, and get it back while someone listens. */
  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = new Set();
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.wasLost = true;
    this.opts.log.warn(
      { database: this.opts.target.masked, err: err.message },
      'atlas database listening connection lost; reconnecting',
    );
    this.tell(false);
    this.retry();
  }

  /** Tells every subscriber that the connection was lost (false) or listens again (true). */
  private tell(listening: boolean): void {
    for (const subscribers of this.channels.values()) {
      for (const subscriber of subscribers) {
        try {
          subscriber.state?.(listening);
        } catch (err) {
          this.opts.log.warn({ err }, 'atlas database: a listening-state handler failed');
        }
      }
    }
  }

  private retry(): void {
    if (this.closed || this.channels.size === 0 || this.retryTimer) return;
    const delay = Math.min(FIRST_BACKOFF_MS * 2 ** this.failures, MAX_BACKOFF_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.sync().then(
        () => {
          if (this.client) this.tell(true);
        },
        (err: unknown) => {
          this.failures++;
          this.opts.log.debug({ err, database: this.opts.target.masked }, 'atlas database: listening again failed');
          this.retry();
        },
      );
    }, delay);
    this.retryTimer.unref();
  }
}

/** A channel name as an SQL identifier (names are checked by AtlasDb.listen: lower case, digits, `_`). */
function quoteChannel(channel: string): string {
  return `"${channel}"`;
}

async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
