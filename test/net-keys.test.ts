import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { isHearthError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { ApiKeyStore } from '../src/net/index.js';
import { freshEmbeddedAtlas } from './support/pglite.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

const backends = [
  {
    name: 'pglite',
    async open() {
      const atlas = await freshEmbeddedAtlas();
      const db = await openAtlasDb({ database: 'embedded', embeddedDir: atlas.embeddedDir, log: silentLogger() });
      return { db, cleanup: atlas.cleanup };
    },
  },
  {
    name: 'postgres',
    async open() {
      const made = await createTestDatabase(sharedPostgresUrl());
      const db = await openAtlasDb({ database: made.url, embeddedDir: '/nonexistent', log: silentLogger() });
      return { db, cleanup: made.drop };
    },
  },
];

describe.each(backends)('API keys on Atlas ($name)', (backend) => {
  let db: AtlasDb;
  let cleanup: () => Promise<void>;
  let keys: ApiKeyStore;

  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    keys = new ApiKeyStore({ db });
  });
  afterAll(async () => {
    await db?.close();
    await cleanup?.();
  });

  it('creates a key shown once, stores only its hash, and checks it with its scopes', async () => {
    const { key, info } = await keys.create({ name: 'n8n', scopes: ['inference', 'jobs', 'inference'] });
    expect(info).toMatchObject({ name: 'n8n', scopes: ['inference', 'jobs'], expiresAt: null, revokedAt: null });
    const [row] = await db.query<{ hash: string }>('select hash from api_keys where id = $1', [info.id]);
    expect(row?.hash).toMatch(/^scrypt\$/);
    expect(JSON.stringify(await db.query('select * from api_keys'))).not.toContain(
      /^hth_[0-9a-f]{12}_(.+)$/.exec(key)![1],
    );

    const check = await keys.check(key);
    expect(check).toMatchObject({ ok: true, key: { name: 'n8n', scopes: ['inference', 'jobs'] } });
    // a second check of the same key skips scrypt but still reads the row
    expect((await keys.check(key)).ok).toBe(true);
  });

  it('lists keys with their last use, never the key itself', async () => {
    const { key } = await keys.create({ name: 'home-assistant', scopes: ['inference'] });
    await keys.check(key);
    const listed = await keys.list();
    const ha = listed.find((k) => k.name === 'home-assistant');
    expect(ha?.lastUsedAt).toBeInstanceOf(Date);
    expect(JSON.stringify(listed)).not.toContain(key);
  });

  it('refuses a second active key with one name, and bad names and scopes', async () => {
    await keys.create({ name: 'dup', scopes: ['admin'] });
    await expect(keys.create({ name: 'dup', scopes: ['admin'] })).rejects.toSatisfy(
      (err) => isHearthError(err, 'KEY_EXISTS') && /revoke it first/.test((err as Error).message),
    );
    await expect(keys.create({ name: 'bad name', scopes: ['admin'] })).rejects.toThrow(
      /key name "bad name" is not valid/,
    );
    await expect(keys.create({ name: 'x', scopes: ['inference', 'root'] })).rejects.toThrow(
      'unknown scope "root"; allowed: inference, workflows, jobs, admin',
    );
    await expect(keys.create({ name: 'x', scopes: [] })).rejects.toThrow(/at least one scope/);
  });

  it('revokes by name: the key stops working, the name can be reused, revoking again says so', async () => {
    const { key, info } = await keys.create({ name: 'laptop', scopes: ['inference'] });
    expect((await keys.check(key)).ok).toBe(true);
    const revoked = await keys.revoke('laptop');
    expect(revoked.id).toBe(info.id);
    expect(revoked.revokedAt).toBeInstanceOf(Date);
    expect(await keys.check(key)).toEqual({ ok: false, reason: 'revoked' });
    expect((await keys.list()).map((k) => k.name)).not.toContain('laptop');
    expect((await keys.list({ includeRevoked: true })).map((k) => k.name)).toContain('laptop');
    await expect(keys.revoke('laptop')).rejects.toSatisfy((err) => isHearthError(err, 'KEY_NOT_FOUND'));
    const again = await keys.create({ name: 'laptop', scopes: ['inference'] });
    expect(await keys.revoke(again.info.id)).toMatchObject({ name: 'laptop' });
  });

  it('refuses expired, unknown, forged and malformed keys', async () => {
    const { key } = await keys.create({ name: 'short-lived', scopes: ['inference'], expires: 1 });
    await sleep(20);
    expect(await keys.check(key)).toEqual({ ok: false, reason: 'expired' });
    const forged = `${key.slice(0, 17)}${'A'.repeat(43)}`;
    expect(await keys.check(forged)).toEqual({ ok: false, reason: 'mismatch' });
    expect(await keys.check(`hth_ffffffffffff_${'A'.repeat(43)}`)).toEqual({ ok: false, reason: 'unknown' });
    expect(await keys.check('ollama')).toEqual({ ok: false, reason: 'malformed' });
    const { info } = await keys.create({ name: 'quarterly', scopes: ['jobs'], expires: '90d' });
    const days = ((info.expiresAt?.getTime() ?? 0) - info.createdAt.getTime()) / 86_400_000;
    expect(days).toBeCloseTo(90, 3);
  });
});
