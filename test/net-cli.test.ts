// The command line around network access: `hearth serve` refusing a wildcard bind, `hearth doctor`
// printing the exposure report, and `hearth keys` both straight on Atlas and through a running
// server that holds the embedded database.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openAtlasDb } from '../src/atlas/db/index.js';
import { silentLogger } from '../src/log.js';
import { testEngineDir } from './support/engine.js';
import { type HearthDirs, hearthDirs, REPO_ROOT, startHearthProcess } from './support/hearth.js';
import { type EmbeddedAtlas, freshEmbeddedAtlas } from './support/pglite.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

const BIN = join(REPO_ROOT, 'bin', 'hearth.js');
let dirs: HearthDirs;
let atlas: EmbeddedAtlas | undefined;

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before these tests (`npm test` does)');
  }
  // An embedded database copied from the run's template: no initdb (seconds of wasm) per start.
  atlas = await freshEmbeddedAtlas();
  dirs = { ...(await hearthDirs('hearth-net-cli-')), atlas: atlas.atlasDir };
  await mkdir(dirs.home, { recursive: true });
});
afterAll(async () => {
  await dirs?.cleanup();
  await atlas?.cleanup();
});

function hearth(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: dirs.home,
          HEARTH_ATLAS_FILES: dirs.atlas,
          HEARTH_NODE_CACHE_DIR: dirs.cache,
          HEARTH_NODE_GPU: 'cpu',
          HEARTH_NODE_ENGINE_DIR: testEngineDir(),
          NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
          ...env,
        },
        cwd: dirs.root,
        timeout: 60_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('hearth serve', () => {
  it('refuses to start on 0.0.0.0 without allowPublicBind, saying why and how to override', async () => {
    const { code, stderr } = await hearth(['serve'], { HEARTH_HOST: '0.0.0.0:0', HEARTH_LOG_LEVEL: 'error' });
    expect(code).toBe(1);
    expect(stderr).toContain(
      'hearth: refusing to start: the listeners would expose hearth beyond its zones (1 problem):',
    );
    expect(stderr).toContain('listeners[0] ("default"): refusing to bind 0.0.0.0:0 is a wildcard address');
    expect(stderr).toContain('set allowPublicBind: true in the config (or HEARTH_ALLOW_PUBLIC_BIND=true)');
  });
});

describe('hearth doctor', () => {
  it('prints the exposure report and passes for a valid setup', async () => {
    const db = await createTestDatabase(sharedPostgresUrl());
    try {
      // Doctor never migrates: bring the schema up to date first, as `hearth serve` would.
      await (await openAtlasDb({ database: db.url, embeddedDir: '/nonexistent', log: silentLogger() })).close();
      const file = join(dirs.root, 'doctor.yaml');
      await writeFile(
        file,
        stringify({
          atlas: { database: db.url, files: dirs.atlas },
          node: { cacheDir: dirs.cache, gpu: 'cpu' },
          zones: { mgmt: ['10.0.99.0/24'], servers: ['10.0.20.0/24'], guest: ['10.0.40.0/24'] },
          deny: ['guest'],
          listeners: [
            { name: 'servers', address: '10.0.20.5:11434', zones: ['servers'], serves: ['inference'] },
            { name: 'mgmt', address: '10.0.99.5:11434', zones: ['mgmt'], serves: ['admin'] },
          ],
        }),
      );
      const { code, stdout } = await hearth(['--config', file, 'doctor']);
      expect(stdout).toContain('✓ network exposure: 2 listeners, nothing exposed beyond their zones');
      expect(stdout).toContain('exposure:\n  listener servers: 10.0.20.5:11434 (private address)\n');
      expect(stdout).toContain('    admits zone mgmt (10.0.99.0/24); every other peer is dropped at accept\n');
      expect(stdout).toContain('  denied everywhere: guest (10.0.40.0/24)\n');
      expect(code, stdout).toBe(0);
    } finally {
      await db.drop();
    }
  });

  it('fails the exposure check for admin served outside adminZones', async () => {
    const file = join(dirs.root, 'bad.yaml');
    await writeFile(
      file,
      stringify({
        zones: { servers: ['10.0.20.0/24'] },
        listeners: [{ name: 'all', address: '10.0.20.5:11434', zones: ['servers'] }],
      }),
    );
    const { code, stdout } = await hearth(['--config', file, 'doctor']);
    expect(code).toBe(1);
    expect(stdout).toContain('✗ network exposure: `hearth serve` would refuse to start:');
    expect(stdout).toContain('listeners[0] ("all"): serves admin to zone "servers"');
  });
});

describe('hearth keys', () => {
  it('goes through the running server when it holds the embedded database, and straight to Atlas when not', async () => {
    const server = await startHearthProcess({ dirs });
    let created: Awaited<ReturnType<typeof hearth>>;
    try {
      const env = { HEARTH_HOST: server.url };
      created = await hearth(
        ['keys', 'create', '--name', 'continue', '--scopes', 'inference,jobs', '--expires', '30d'],
        env,
      );
      expect(created.code, created.stderr).toBe(0);
      expect(created.stdout).toMatch(/^hth_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$/);
      expect(created.stderr).toMatch(
        /created key "continue" \(id [0-9a-f]{12}; scopes inference, jobs; expires \S+\) via the admin API/,
      );
      expect(created.stderr).toContain('Store it now: it is not shown again.');

      const listed = await hearth(['keys', 'list'], env);
      expect(listed.stdout).toMatch(/^NAME\s+ID\s+SCOPES\s+CREATED\s+LAST USED\s+EXPIRES\n/);
      expect(listed.stdout).toMatch(/continue\s+[0-9a-f]{12}\s+inference,jobs\s+.*never\s+\d+ (weeks|days) from now\n/);
      expect(listed.stdout).not.toContain(created.stdout.trim());

      const revoked = await hearth(['keys', 'revoke', 'continue'], env);
      expect(revoked.stdout).toMatch(/^revoked key "continue" \(id [0-9a-f]{12}\)\n$/);
      const again = await hearth(['keys', 'revoke', 'continue'], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('hearth: no active key named "continue"');

      // The database is held and nothing answers where HEARTH_HOST points: say so, and what to do.
      const nowhere = await hearth(['keys', 'list'], { HEARTH_HOST: '127.0.0.1:9' });
      expect(nowhere.code).toBe(1);
      expect(nowhere.stderr).toMatch(/hearth: atlas.database: .* is in use by hearth process \d+/);
      expect(nowhere.stderr).toContain('and http://127.0.0.1:9 did not take the request either');
      expect(nowhere.stderr).toContain('set HEARTH_HOST to a listener that serves admin');
    } finally {
      await server.stop();
    }
    // No server now: the command opens the embedded database itself.
    const direct = await hearth(['keys', 'list', '--all']);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stdout).toMatch(/REVOKED\n/);
    expect(direct.stdout).toMatch(/continue\s+.*ago\n/);
  }, 180_000); // a server start and six CLI runs
});
