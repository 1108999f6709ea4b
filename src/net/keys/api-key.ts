/**
 * API keys as text: `hth_<id>_<secret>`. The id (12 hex digits) is stored in
 * clear and finds the key's row in one indexed lookup; the secret (32 random
 * bytes) is stored only as an scrypt hash, so a copy of the Atlas database
 * does not hand out working keys.
 */
import { randomBytes } from 'node:crypto';
import { parseDuration } from '../../config/index.js';
import { hashSecret, type ScryptCost, verifySecret } from '../../secrets.js';

import { KEY_SCOPES } from './scopes.js';

export { KEY_SCOPES };
export type KeyScope = (typeof KEY_SCOPES)[number];

export const KEY_PREFIX = 'hth_';
const KEY_PATTERN = /^hth_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** scrypt cost: 16 MiB and a few tens of ms per check; verified keys are remembered (key-store.ts), so this is paid once per key per process. */
const SCRYPT: ScryptCost = { N: 2 ** 14, r: 8, p: 1 };

export interface GeneratedKey {
  /** The whole key, shown to the person once. */
  key: string;
  /** The lookup id (`hth_<id>_...`). */
  id: string;
  secret: string;
}

export function generateApiKey(): GeneratedKey {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { key: `${KEY_PREFIX}${id}_${secret}`, id, secret };
}

/** The id and secret of a well-formed key; undefined for anything else. */
export function parseApiKey(text: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(text.trim());
  return match ? { id: match[1] ?? '', secret: match[2] ?? '' } : undefined;
}

export function hashKeySecret(secret: string): Promise<string> {
  return hashSecret(secret, SCRYPT);
}

/** Whether `secret` matches a stored hash (constant-time compare). */
export function verifyKeySecret(secret: string, stored: string): Promise<boolean> {
  return verifySecret(secret, stored);
}

export const EXPIRY_HINT = 'use a number with a unit: 90d, 12w, 24h, 30m (or "never")';

/** `90d`, `12w`, `24h`, `30m`, `1h30m` → ms; `never` → undefined. */
export function parseKeyExpiry(text: string): number | undefined {
  const value = text.trim().toLowerCase();
  if (value === 'never') return undefined;
  const days = /^(\d+(?:\.\d+)?)([dw])$/.exec(value);
  let ms: number;
  if (days) {
    ms = Number(days[1]) * (days[2] === 'w' ? 7 : 1) * 86_400_000;
  } else if (/^\d+(?:\.\d+)?$/.test(value)) {
    // A bare number would be seconds to parseDuration: too easy to mean days.
    throw new RangeError(`${JSON.stringify(text)} has no unit; ${EXPIRY_HINT}`);
  } else {
    try {
      ms = parseDuration(value);
    } catch {
      throw new RangeError(`${JSON.stringify(text)} is not a key lifetime; ${EXPIRY_HINT}`);
    }
  }
  if (!(ms > 0) || !Number.isSafeInteger(Math.round(ms))) {
    throw new RangeError(`${JSON.stringify(text)} is not a key lifetime; ${EXPIRY_HINT}`);
  }
  return Math.round(ms);
}
