import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHearthError } from '../../../errors.js';
import { EmbeddedDirLock } from './dir-lock.js';

let dir: string;
let lockPath: string;
const held: EmbeddedDirLock[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-dirlock-'));
  lockPath = join(dir, 'db.lock');
});
afterEach(async () => {
  await Promise.all(held.splice(0).map((lock) => lock.release()));
  await rm(dir, { recursive: true, force: true });
});

async function acquire(opts?: Parameters<typeof EmbeddedDirLock.acquire>[2]) {
  const lock = await EmbeddedDirLock.acquire(lockPath, 'the test database', opts);
  held.push(lock);
  return lock;
}

async function refusal(): Promise<Error> {
  const err = await EmbeddedDirLock.acquire(lockPath, 'the test database').catch((e: unknown) => e);
  expect(isHearthError(err, 'ATLAS_DB_IN_USE')).toBe(true);
  return err as Error;
}

describe('EmbeddedDirLock', () => {
  it('records its holder and refuses a second holder until released', async () => {
    const lock = await acquire();
    expect(JSON.parse(await readFile(lockPath, 'utf8'))).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect((await refusal()).message).toContain(`in use by hearth process ${process.pid}`);

    await lock.release();
    await expect(readFile(lockPath)).rejects.toThrow(/ENOENT/);
    await acquire();
  });

  it('takes over a lock whose process is gone', async () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    await writeFile(lockPath, JSON.stringify({ pid: gone, hostname: hostname(), since: 'earlier' }));
    await acquire();
    expect(JSON.parse(await readFile(lockPath, 'utf8')).pid).toBe(process.pid);
  });

  it('takes over a lock left by an earlier process that had our pid (containers restart as pid 1)', async () => {
    await writeFile(lockPath, JSON.stringify({ pid: process.pid, hostname: hostname(), since: 'earlier' }));
    await acquire();
  });

  it("respects another host's lock while its heartbeat is fresh, and takes it over once it stops", async () => {
    await writeFile(lockPath, JSON.stringify({ pid: 4242, hostname: 'other-node', since: 'earlier' }));
    const err = await refusal();
    expect(err.message).toContain('on host other-node');

    const old = new Date(Date.now() - 120_000);
    await utimes(lockPath, old, old);
    await acquire();
  });

  it('keeps its heartbeat going while held, so other hosts keep respecting it', async () => {
    await acquire({ heartbeatMs: 20 });
    const old = new Date(Date.now() - 120_000);
    await utimes(lockPath, old, old);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(Date.now() - (await stat(lockPath)).mtimeMs).toBeLessThan(5_000);
  });
});
