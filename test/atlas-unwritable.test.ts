// Atlas that cannot take writes: a full disk under the database answers 503 with a hint (as file
// writes do) and the server serves on; a read-only Atlas at start-up is one line naming the folder.
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  runHearthCli,
  startHearthInProcess,
} from './support/hearth.js';
import { type Mount, readOnlyFolder, smallFilesystem } from './support/mounts.js';
import { freshEmbeddedAtlas } from './support/pglite.js';
import { UiClient } from './support/ui-client.js';

describe('a full disk under the Atlas database', () => {
  let root: string;
  let disk: Mount;
  let hearth: InProcessHearth;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'hearth-atlas-full-'));
    const atlas = join(root, 'atlas');
    disk = await smallFilesystem(atlas, 96 << 20);
    const embedded = await freshEmbeddedAtlas();
    try {
      await cp(join(embedded.atlasDir, '.hearth'), join(atlas, '.hearth'), { recursive: true });
    } finally {
      await embedded.cleanup();
    }
    const dirs = { root, atlas, cache: join(root, 'cache'), home: join(root, 'home'), cleanup: async () => {} };
    hearth = await startHearthInProcess(dirs);
  });
  afterAll(async () => {
    await hearth?.close();
    disk?.unmount();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('answers 503 ATLAS_DB_FULL with what to do, stores nothing, and serves on', async () => {
    const ui = new UiClient(hearth.url);
    const setup = await ui.call(
      'POST',
      '/api/ui/setup',
      { username: 'admin', password: 'pw-123456' },
      { 'x-hearth-csrf': '1' },
    );
    expect(setup.status).toBe(201);
    await expect(writeFile(join(disk.path, 'filler'), Buffer.alloc(200 << 20))).rejects.toThrow(/ENOSPC/);
    const res = await ui.post('/api/ui/presets', { name: 'big', systemPrompt: 'x'.repeat(90_000) });
    expect(res.status).toBe(503);
    expect(res.json.error).toMatch(/out of disk space.*free space/);
    await rm(join(disk.path, 'filler'));
    expect((await ui.get('/api/ui/presets')).json.presets).toEqual([]);
    expect((await fetch(`${hearth.url}/api/version`)).status).toBe(200);
  });
});

describe('a read-only Atlas at start-up', () => {
  let dirs: HearthDirs;
  let readOnly: Mount;
  beforeAll(async () => {
    dirs = await hearthDirs('hearth-atlas-ro-');
    readOnly = await readOnlyFolder(dirs.atlas);
  });
  afterAll(async () => {
    readOnly?.unmount();
    await dirs?.cleanup();
  });

  it('hearth serve exits with one line naming the folder and what to do', async () => {
    const run = await runHearthCli(dirs, ['serve'], {
      env: {
        HEARTH_ATLAS_FILES: dirs.atlas,
        HEARTH_ATLAS_DATABASE: 'embedded',
        HEARTH_NODE_CACHE_DIR: dirs.cache,
        HEARTH_HOST: '127.0.0.1:0',
        HEARTH_LOG_LEVEL: 'warn',
      },
    });
    expect(run.code).not.toBe(0);
    const lines = run.stderr.trim().split('\n');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toContain(dirs.atlas);
    expect(lines[0]).toMatch(/read-only|EROFS/);
    expect(lines[0]).toMatch(/mount the share read-write/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
