/**
 * Account passwords, stored only as scrypt hashes in the same self-describing
 * format as API keys (`scrypt$N$r$p$<salt>$<hash>`), so the cost can rise later
 * without breaking old hashes.
 */
import { randomBytes } from 'node:crypto';
import { HearthError } from '../errors.js';
import { hashSecret, verifySecret } from '../secrets.js';

/** 32 MiB and roughly 100 ms per hash: people pick weaker secrets than API keys carry. */
const COST = { N: 2 ** 15, r: 8, p: 1 } as const;

export const PASSWORD_MIN_LENGTH = 8;
const PASSWORD_MAX_LENGTH = 1024;

/** Throws USER_INVALID when a new password is too short or absurdly long. */
export function checkNewPassword(password: string): void {
  if (password.length < PASSWORD_MIN_LENGTH) {
    throw new HearthError('USER_INVALID', `the password is too short: use at least ${PASSWORD_MIN_LENGTH} characters`, {
      details: { param: 'password' },
    });
  }
  if (password.length > PASSWORD_MAX_LENGTH) {
    throw new HearthError('USER_INVALID', `the password is longer than ${PASSWORD_MAX_LENGTH} characters`, {
      details: { param: 'password' },
    });
  }
}

export function hashPassword(password: string): Promise<string> {
  return hashSecret(password, COST);
}

export function verifyPassword(password: string, stored: string): Promise<boolean> {
  return verifySecret(password, stored);
}

/** A hash of nothing in particular: verified against when a user does not exist, so timing does not tell. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(12).toString('hex'));
  return decoy;
}
