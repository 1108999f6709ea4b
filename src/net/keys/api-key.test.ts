import { describe, expect, it } from 'vitest';
import { generateApiKey, hashKeySecret, parseApiKey, parseKeyExpiry, verifyKeySecret } from './api-key.js';

describe('API key text', () => {
  it('is hth_<id>_<secret>, and parses back', () => {
    const { key, id, secret } = generateApiKey();
    expect(key).toMatch(/^hth_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(parseApiKey(key)).toEqual({ id, secret });
    expect(parseApiKey(` ${key}\n`)).toEqual({ id, secret });
    expect(generateApiKey().key).not.toBe(key);
  });

  it('refuses anything else', () => {
    for (const bad of [
      '',
      'ollama',
      'sk-abc',
      'hth_',
      `hth_XYZ456789012_${'a'.repeat(43)}`,
      `hth_0123456789ab_${'a'.repeat(42)}`,
    ]) {
      expect(parseApiKey(bad), bad).toBeUndefined();
    }
  });

  it('is stored as an scrypt hash that verifies only the right secret', async () => {
    const { secret } = generateApiKey();
    const stored = await hashKeySecret(secret);
    expect(stored).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(stored).not.toContain(secret);
    expect(await verifyKeySecret(secret, stored)).toBe(true);
    expect(await verifyKeySecret(`${secret.slice(0, -1)}x`, stored)).toBe(false);
    expect(await verifyKeySecret(secret, 'plain')).toBe(false);
    expect(await verifyKeySecret(secret, stored.replace('16384', '1048577'))).toBe(false);
  });
});

describe('key lifetimes', () => {
  it('reads days, weeks and durations; never means no expiry', () => {
    expect(parseKeyExpiry('90d')).toBe(90 * 86_400_000);
    expect(parseKeyExpiry('2w')).toBe(14 * 86_400_000);
    expect(parseKeyExpiry('24h')).toBe(86_400_000);
    expect(parseKeyExpiry('1h30m')).toBe(5_400_000);
    expect(parseKeyExpiry('never')).toBeUndefined();
  });

  it('refuses a bare number, zero and nonsense, saying what to write', () => {
    expect(() => parseKeyExpiry('90')).toThrow('"90" has no unit; use a number with a unit: 90d');
    expect(() => parseKeyExpiry('0d')).toThrow(/not a key lifetime/);
    expect(() => parseKeyExpiry('soon')).toThrow(/not a key lifetime/);
  });
});
