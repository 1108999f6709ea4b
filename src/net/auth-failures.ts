/**
 * Rate limit on failed authentication, per source address: after
 * `maxFailures` wrong keys within `windowMs`, that address gets 429 until the
 * window ends, before any key is checked (so guessing also costs no scrypt
 * time). Memory is bounded: past `maxTracked` addresses, the oldest go.
 */

/** Options for {@link FailedAuthLimiter}. */
export interface FailedAuthLimiterOptions {
  /** Failures allowed per address and window (default 10). */
  maxFailures?: number;
  /** The window, ms (default 60 000). */
  windowMs?: number;
  /** Most addresses remembered (default 10 000). */
  maxTracked?: number;
  /** The clock, for tests. */
  now?: () => number;
}

export class FailedAuthLimiter {
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(opts: FailedAuthLimiterOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxTracked = opts.maxTracked ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** 0 when `source` may try; otherwise how long until it may, ms. */
  retryAfterMs(source: string): number {
    const window = this.windows.get(source);
    if (!window) return 0;
    const left = window.start + this.windowMs - this.now();
    if (left <= 0) {
      this.windows.delete(source);
      return 0;
    }
    return window.failures >= this.maxFailures ? left : 0;
  }

  recordFailure(source: string): void {
    const now = this.now();
    const window = this.windows.get(source);
    if (window && now - window.start < this.windowMs) {
      window.failures++;
      return;
    }
    this.windows.delete(source);
    if (this.windows.size >= this.maxTracked) this.evict(now);
    this.windows.set(source, { start: now, failures: 1 });
  }

  /** Addresses currently remembered (for tests and metrics). */
  get tracked(): number {
    return this.windows.size;
  }

  private evict(now: number): void {
    for (const [source, window] of this.windows) {
      if (now - window.start >= this.windowMs) this.windows.delete(source);
    }
    // Map order is insertion order: the first entries are the oldest windows.
    for (const source of this.windows.keys()) {
      if (this.windows.size < this.maxTracked) break;
      this.windows.delete(source);
    }
  }
}
