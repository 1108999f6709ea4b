import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedAtlas, freshEmbeddedAtlas } from '../../test/support/pglite.js';
import { type AtlasDb, openAtlasDb } from '../atlas/db/index.js';
import { silentLogger } from '../log.js';
import { ResponseStore } from './store.js';

let atlas: EmbeddedAtlas;
let db: AtlasDb;

beforeAll(async () => {
  atlas = await freshEmbeddedAtlas();
  db = await openAtlasDb({ database: 'embedded', embeddedDir: atlas.embeddedDir, log: silentLogger() });
});

afterAll(async () => {
  await db?.close();
  await atlas?.cleanup();
});

const response = (id: string, owner: string | null) => ({
  id,
  owner,
  model: 'm',
  response: { id, object: 'response', output: [] },
  conversation: [{ type: 'message', role: 'user', content: 'hi' }],
});

describe('ResponseStore', () => {
  it('shows a response to the key that made it and to loopback callers only', async () => {
    const store = new ResponseStore({ db, retentionMs: 0, nodeId: 'n1' });
    await store.save(response('resp_a', 'key-a'));
    await store.save(response('resp_local', null));
    expect((await store.get('resp_a', { key: 'key-a' }))?.conversation).toEqual(response('resp_a', null).conversation);
    expect(await store.get('resp_a', { key: 'key-b' })).toBeNull();
    expect((await store.get('resp_a', { key: null }))?.owner).toBe('key-a');
    expect(await store.get('resp_local', { key: 'key-a' })).toBeNull();
    expect(await store.delete('resp_a', { key: 'key-b' })).toBe(false);
    expect(await store.delete('resp_a', { key: 'key-a' })).toBe(true);
    expect(await store.get('resp_a', { key: null })).toBeNull();
  });

  it('forgets responses past inference.responsesRetention, and sweeps them on the next save', async () => {
    // Long enough that a loaded machine still reads it back before it expires.
    const brief = new ResponseStore({ db, retentionMs: 3000, nodeId: 'n1' });
    await brief.save(response('resp_brief', null));
    expect(await brief.get('resp_brief', { key: null })).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 3100));
    expect(await brief.get('resp_brief', { key: null })).toBeNull();
    const before = await brief.count();
    await new ResponseStore({ db, retentionMs: 0, nodeId: 'n1' }).save(response('resp_kept', null));
    // One more stored, the expired one swept.
    expect(await brief.count()).toBe(before);
    expect(await brief.get('resp_kept', { key: null })).not.toBeNull();
  });
});
