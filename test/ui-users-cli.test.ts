// `hearth users add|list|passwd|rm`: accounts for headless setups, straight on the Atlas database,
// and a clear message when a running server holds the embedded one.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAtlasDb } from '../src/atlas/db/index.js';
import { UserStore } from '../src/chat/index.js';
import { silentLogger } from '../src/log.js';
import { type HearthDirs, hearthDirs, REPO_ROOT } from './support/hearth.js';

const BIN = join(REPO_ROOT, 'bin', 'hearth.js');
let dirs: HearthDirs;

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before these tests (`npm test` does)');
  }
  dirs = await hearthDirs('hearth-users-cli-');
  await mkdir(dirs.home, { recursive: true });
});
afterAll(async () => {
  await dirs?.cleanup();
});

function hearth(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: dirs.home,
          HEARTH_ATLAS_FILES: dirs.atlas,
          HEARTH_NODE_CACHE_DIR: dirs.cache,
          NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
        },
        cwd: dirs.root,
        timeout: 60_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}

describe('hearth users', () => {
  it('adds, lists, changes passwords and removes accounts on Atlas', async () => {
    const weak = await hearth(['users', 'add', 'weak', '--password-stdin'], 'short\n');
    expect(weak.code).toBe(1);
    expect(weak.stderr).toMatch(/^hearth: the password is too short: use at least 8 characters/);
    const noTty = await hearth(['users', 'add', 'x']);
    expect(noTty.stderr).toMatch(/--password-stdin/);

    const added = await hearth(['users', 'add', 'root', '--role', 'admin', '--password-stdin'], 'first-password\n');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toBe('created admin root\n');
    expect((await hearth(['users', 'add', 'kid', '--password-stdin'], 'kid-password\n')).code).toBe(0);

    const list = await hearth(['users', 'list']);
    expect(list.stdout).toMatch(
      /^USERNAME +ROLE +CREATED\nkid +user +\d{4}-\d\d-\d\d\nroot +admin +\d{4}-\d\d-\d\d\n$/,
    );

    expect((await hearth(['users', 'passwd', 'root', '--password-stdin'], 'second-password\n')).code).toBe(0);
    expect((await hearth(['users', 'rm', 'kid'])).stdout).toMatch(/deleted kid/);

    const db = await openAtlasDb({
      database: 'embedded',
      embeddedDir: join(dirs.atlas, '.hearth', 'db'),
      log: silentLogger(),
    });
    try {
      const users = new UserStore({ db });
      expect(await users.authenticate('root', 'second-password')).toMatchObject({ username: 'root', role: 'admin' });
      expect(await users.authenticate('root', 'first-password')).toBeNull();
      expect((await users.list()).map((u) => u.username)).toEqual(['root']);
      // While another process holds the embedded database, the command says where to go instead.
      const held = await hearth(['users', 'list']);
      expect(held.code).toBe(1);
      expect(held.stderr).toMatch(/held by a running `hearth serve`: manage accounts in the web UI/);
    } finally {
      await db.close();
    }
  });
});
