import { describe, expect, it } from 'vitest';
import { FailedAuthLimiter } from './auth-failures.js';

describe('the failed-authentication limit', () => {
  it('blocks an address after maxFailures in a window, until the window ends; others are unaffected', () => {
    let now = 1_000;
    const limiter = new FailedAuthLimiter({ maxFailures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 2; i++) limiter.recordFailure('10.0.20.7');
    expect(limiter.retryAfterMs('10.0.20.7')).toBe(0);
    limiter.recordFailure('10.0.20.7');
    now += 10_000;
    expect(limiter.retryAfterMs('10.0.20.7')).toBe(50_000);
    expect(limiter.retryAfterMs('10.0.20.8')).toBe(0);
    now += 50_000;
    expect(limiter.retryAfterMs('10.0.20.7')).toBe(0);
  });

  it('remembers a bounded number of addresses', () => {
    let now = 0;
    const limiter = new FailedAuthLimiter({ maxFailures: 1, maxTracked: 100, now: () => now });
    for (let i = 0; i < 1000; i++) {
      now++;
      limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    }
    expect(limiter.tracked).toBeLessThanOrEqual(100);
    expect(limiter.retryAfterMs('10.0.3.231')).toBeGreaterThan(0); // the newest are kept
  });
});
