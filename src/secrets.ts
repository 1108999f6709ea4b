import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Secrets at rest (account passwords, API keys) are scrypt hashes in one
 * self-describing format, `scrypt$N$r$p$<salt>$<hash>` (base64url): the cost
 * travels with the hash, so it can rise later without breaking old ones.
 */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

const HASH_BYTES = 32;

export async function hashSecret(secret: string, cost: ScryptCost): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(secret, salt, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

/** Constant-time check against a stored hash; a hash it cannot read never matches. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (!N || !r || !p || N > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || expected.length !== HASH_BYTES) return false;
  const actual = await derive(secret, salt, { N, r, p });
  return timingSafeEqual(actual, expected);
}

function derive(secret: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // NFC: the same password typed on two keyboards hashes the same.
    scrypt(secret.normalize('NFC'), salt, HASH_BYTES, { ...cost, maxmem: 256 * cost.N * cost.r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}
