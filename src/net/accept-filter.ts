/**
 * The first enforcement point: a peer outside a listener's zones is dropped
 * when the kernel hands its connection over, before a single byte is read.
 * The client sees its connection closed or reset, never an HTTP answer, so a
 * scan from the guest VLAN learns nothing about what runs here.
 */
import type { Server, Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { ZonePolicy } from './zones.js';

/** Options for {@link AcceptFilter.install}. */
export interface AcceptFilterOptions {
  /** The listener's name, for logs. */
  listener: string;
  policy: ZonePolicy;
  log: Logger;
  /** At most one drop log line per this many ms; the lines in between are counted in the next one (default 10 000). */
  logIntervalMs?: number;
  /** Called on every drop (e.g. to count it in metrics). */
  onDrop?: (reason: DropReason) => void;
}

export type DropReason = 'denied' | 'outside' | 'malformed';

/** Counts of one listener's drops, by reason. */
export interface DropCounts {
  total: number;
  denied: number;
  outside: number;
  malformed: number;
}

export class AcceptFilter {
  private readonly opts: AcceptFilterOptions;
  private readonly _counts: DropCounts = { total: 0, denied: 0, outside: 0, malformed: 0 };
  private lastLog = Number.NEGATIVE_INFINITY;
  private unlogged = 0;

  private constructor(opts: AcceptFilterOptions) {
    this.opts = opts;
  }

  /**
   * Puts the filter in front of every `connection` listener the server has
   * (http.Server's own parser among them), so those never see a dropped
   * socket. Call it before `listen`, after the server is constructed.
   */
  static install(server: Server, opts: AcceptFilterOptions): AcceptFilter {
    const filter = new AcceptFilter(opts);
    const downstream = server.listeners('connection') as Array<(socket: Socket) => void>;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (!filter.accepts(socket)) return;
      for (const listener of downstream) listener.call(server, socket);
    });
    return filter;
  }

  /** Drops so far. */
  get counts(): Readonly<DropCounts> {
    return { ...this._counts };
  }

  /** Logs drops not yet logged. */
  close(): void {
    if (this.unlogged > 0) {
      this.opts.log.warn(
        { listener: this.opts.listener, dropped: this.unlogged, droppedTotal: this._counts.total },
        `listener ${this.opts.listener}: dropped ${this.unlogged} more connection(s) from peers outside its zones`,
      );
      this.unlogged = 0;
    }
  }

  private accepts(socket: Socket): boolean {
    const admission = this.opts.policy.admit(socket.remoteAddress);
    if (admission.admitted) return true;
    // destroy() without reading: unread data makes the kernel answer with a reset.
    socket.destroy();
    this._counts.total++;
    this._counts[admission.reason]++;
    this.opts.onDrop?.(admission.reason);
    this.unlogged++;
    const now = Date.now();
    if (now - this.lastLog >= (this.opts.logIntervalMs ?? 10_000)) {
      const why =
        admission.reason === 'denied'
          ? `it is in the denied zone ${JSON.stringify(admission.zone)}`
          : admission.reason === 'outside'
            ? 'it is in none of the listener’s zones'
            : 'its address could not be read';
      this.opts.log.warn(
        {
          listener: this.opts.listener,
          peer: admission.address?.text ?? String(socket.remoteAddress),
          reason: admission.reason,
          dropped: this.unlogged,
          droppedTotal: this._counts.total,
        },
        `listener ${this.opts.listener}: dropped a connection from ${admission.address?.text ?? 'an unreadable address'}: ${why}` +
          (this.unlogged > 1 ? ` (${this.unlogged} drops since the last line)` : ''),
      );
      this.lastLog = now;
      this.unlogged = 0;
    }
    return false;
  }
}
