import { readFileSync } from 'node:fs';
import { link, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { HearthError } from '../../../errors.js';

/** Tuning for {@link EmbeddedDirLock.acquire}; the defaults suit hearth. */
export interface EmbeddedDirLockOptions {
  /** How often the holder touches the lock file, ms (default 15 000). */
  heartbeatMs?: number;
  /**
   * A lock written on another host whose heartbeat is older than this is taken over, ms
   * (default 60 000). Another host's pid cannot be checked, so the heartbeat is the only sign of life.
   */
  staleAfterMs?: number;
}

/** What a lock file holds. */
interface LockOwner {
  pid: number;
  hostname: string;
  /** Linux boot id: a lock from before a reboot is stale even if its pid is alive again. */
  bootId?: string;
  since: string;
}

// Locks this process holds, so that "pid === our pid" tells a second open in this process
// (refused) from a lock left by an earlier process that had our pid (taken over; common in containers).
const heldHere = new Set<string>();

/**
 * An exclusive lock on an embedded (PGlite) database directory. PGlite is one
 * process's database: two processes opening one directory corrupt it, so the
 * second gets ATLAS_DB_IN_USE. A lock whose owner is gone is taken over.
 */
export class EmbeddedDirLock {
  readonly path: string;
  private readonly heartbeat: NodeJS.Timeout;
  private released = false;

  private constructor(path: string, heartbeatMs: number) {
    this.path = path;
    this.heartbeat = setInterval(() => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  /**
   * Takes the lock at `lockPath` (its directory must exist) or throws
   * ATLAS_DB_IN_USE naming the holder. `what` names the guarded thing in that message.
   */
  static async acquire(lockPath: string, what: string, opts: EmbeddedDirLockOptions = {}): Promise<EmbeddedDirLock> {
    const staleAfterMs = opts.staleAfterMs ?? 60_000;
    const me: LockOwner = { pid: process.pid, hostname: hostname(), since: new Date().toISOString() };
    const bootId = readBootId();
    if (bootId) me.bootId = bootId;
    // Write the whole record under a private name, then link it into place: link fails if the
    // lock exists, atomically (also over NFS), and no one ever reads a half-written lock.
    const scratch = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(scratch, JSON.stringify(me) + '\n', { mode: 0o644 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await link(scratch, lockPath);
          heldHere.add(lockPath);
          return new EmbeddedDirLock(lockPath, opts.heartbeatMs ?? 15_000);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = await readHolder(lockPath);
        if (holder === undefined) continue; // released meanwhile
        const stale = staleReason(holder, lockPath, staleAfterMs, bootId);
        if (!stale) throw inUse(lockPath, what, holder, staleAfterMs);
        // Two takers of one stale lock can both get here; the loser's link then fails and it re-reads.
        await unlink(lockPath).catch(() => undefined);
      }
      throw new HearthError(
        'ATLAS_DB_IN_USE',
        `atlas.database: could not take the lock ${lockPath} for ${what}: other processes keep taking it; ` +
          `stop the other hearth processes using this folder`,
      );
    } finally {
      await unlink(scratch).catch(() => undefined);
    }
  }

  /** Gives the lock up (idempotent). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    heldHere.delete(this.path);
    await unlink(this.path).catch(() => undefined);
  }
}

interface Holder {
  owner: LockOwner | undefined;
  ageMs: number;
}

async function readHolder(lockPath: string): Promise<Holder | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    return { owner: parseOwner(text), ageMs: Date.now() - info.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.hostname === 'string') return value as LockOwner;
  } catch {
    // unreadable: judged by age below
  }
  return undefined;
}

/** Why the lock may be taken over, or undefined while its owner may still be alive. */
function staleReason(holder: Holder, lockPath: string, staleAfterMs: number, bootId: string | undefined) {
  const { owner, ageMs } = holder;
  if (owner === undefined || owner.hostname !== hostname()) {
    return ageMs > staleAfterMs ? 'no heartbeat' : undefined;
  }
  if (owner.bootId && bootId && owner.bootId !== bootId) return 'written before a reboot';
  if (owner.pid === process.pid) return heldHere.has(lockPath) ? undefined : 'left by an earlier process';
  return isAlive(owner.pid) ? undefined : 'its process is gone';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function inUse(lockPath: string, what: string, holder: Holder, staleAfterMs: number): HearthError {
  const { owner } = holder;
  const who = owner
    ? owner.hostname === hostname()
      ? `hearth process ${owner.pid}`
      : `hearth process ${owner.pid} on host ${owner.hostname} (last heartbeat ${Math.round(holder.ageMs / 1000)} s ago)`
    : 'another process';
  const remote = owner?.hostname !== hostname();
  return new HearthError(
    'ATLAS_DB_IN_USE',
    `atlas.database: ${what} is in use by ${who} (lock ${lockPath}): the embedded database serves one process; ` +
      `stop that process, or give several nodes a PostgreSQL server (atlas.database: postgres://...)` +
      (remote ? `; a lock not refreshed for ${Math.round(staleAfterMs / 1000)} s is taken over` : ''),
    { details: { lock: lockPath, pid: owner?.pid, hostname: owner?.hostname } },
  );
}
