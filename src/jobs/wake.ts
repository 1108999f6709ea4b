import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { QueueSignal } from './queue.js';

/**
 * While the listening connection is down (or not yet up), a node looks for work this often at most,
 * as it did before it listened: notifications sent meanwhile are lost, so only polling finds that work.
 */
export const UNHEARD_POLL_MS = 1000;
/** A failed LISTEN is tried again at most this often (the fallback poll runs meanwhile). */
const LISTEN_RETRY_MS = 5000;

/** What a QueueWake needs of its queue (JobQueue provides it). */
export interface WakeSource {
  listen(onSignal: (signal: QueueSignal) => void, onState: (listening: boolean) => void): Promise<() => Promise<void>>;
}

export interface QueueWakeOptions {
  source: WakeSource;
  log: Logger;
  /** for log lines: 'jobs' or 'workflow queue' */
  what: string;
  /**
   * `jobs.pollInterval` / `workflows.pollInterval`: while this node listens, how often it looks for
   * work that no notification announces (chiefly a retry whose announcing node stopped before it came
   * due); while it does not listen, it polls every min(this, UNHEARD_POLL_MS).
   */
  pollMs: number;
  /** the shortest wait whatever the configuration says (an idle loop must not spin) */
  minPollMs: number;
}

/**
 * When an idle worker loop looks at its queue again: at once when woken (work queued here, a
 * notification from any node on the queue's channel, a slot freed), else after the poll interval.
 *
 * Notifications are PostgreSQL LISTEN/NOTIFY (in-process on PGlite): every path that makes a ticket
 * fetchable announces it (JobQueue.send/release/fail/maintain). The timed poll stays only for what no
 * notification announces, so it is slow while this node listens; when the listening connection is
 * lost (PostgreSQL restarting) the loop polls as often as it did before notifications, until it is
 * back, and looks once more then (what was announced meanwhile was not heard).
 *
 * A wake that comes while the loop is busy (fetching, or full) is kept, not lost: the next `wait`
 * returns at once.
 */
export class QueueWake {
  private readonly o: QueueWakeOptions;
  private readonly heardPollMs: number;
  private readonly unheardPollMs: number;
  private listening = false;
  private unlisten: (() => Promise<void>) | undefined;
  private lastListenTry = 0;
  private pending = false;
  private deadPending = true;
  private lastDeadCheck = 0;
  private resolve: (() => void) | undefined;
  private closed = false;

  constructor(opts: QueueWakeOptions) {
    this.o = opts;
    this.heardPollMs = Math.max(opts.minPollMs, opts.pollMs);
    this.unheardPollMs = Math.max(opts.minPollMs, Math.min(opts.pollMs, UNHEARD_POLL_MS));
  }

  /** Whether the loop is woken by notifications now (else it polls often). */
  get heard(): boolean {
    return this.listening;
  }

  /** Wakes the loop now (work queued or a slot freed on this node). */
  wake(): void {
    this.pending = true;
    this.resolve?.();
  }

  /**
   * Whether the loop should look at the dead-letter queue now: a notification said a ticket went
   * there, or a while passed (each poll while listening; every 5th of the frequent polls otherwise).
   */
  deadDue(): boolean {
    const every = this.listening ? this.heardPollMs : this.unheardPollMs * 5;
    if (!this.deadPending && Date.now() - this.lastDeadCheck < every) return false;
    this.deadPending = false;
    this.lastDeadCheck = Date.now();
    return true;
  }

  /** Waits until woken, or until the poll interval (slow while listening, frequent while not) passes. */
  async wait(): Promise<void> {
    if (!this.listening) await this.tryListen();
    if (this.pending || this.closed) {
      this.pending = false;
      return;
    }
    const woken = new Promise<void>((resolve) => {
      this.resolve = resolve;
    });
    // An unreferenced timer: an idle loop never keeps the process alive.
    await Promise.race([
      woken,
      sleep(this.listening ? this.heardPollMs : this.unheardPollMs, undefined, { ref: false }),
    ]);
    this.resolve = undefined;
    this.pending = false;
  }

  /** Stops listening and wakes the loop (to see that it is stopping). */
  async close(): Promise<void> {
    this.closed = true;
    this.resolve?.();
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    this.listening = false;
    await unlisten?.();
  }

  private async tryListen(): Promise<void> {
    if (this.closed || this.unlisten || Date.now() - this.lastListenTry < LISTEN_RETRY_MS) return;
    this.lastListenTry = Date.now();
    try {
      const unlisten = await this.o.source.listen(
        (signal) => {
          if (signal === 'dead') this.deadPending = true;
          this.wake();
        },
        (listening) => this.onState(listening),
      );
      if (this.closed) {
        await unlisten();
        return;
      }
      this.unlisten = unlisten;
      this.listening = true;
      // Work announced between the last look and the LISTEN was not heard: look once more.
      this.pending = true;
    } catch (err) {
      this.o.log.warn(
        { err: describeError(err) },
        `${this.o.what}: cannot listen for queued work; looking for it every ${this.unheardPollMs} ms`,
      );
    }
  }

  private onState(listening: boolean): void {
    if (this.closed || !this.unlisten) return;
    this.listening = listening;
    // Back: what was announced while the connection was down was not heard; look once now. Lost:
    // wake so the next wait uses the frequent poll.
    this.deadPending ||= listening;
    this.wake();
  }
}
