// /api/files uploads refused before their body is read: every client gets the status and the
// message (not an "Empty reply from server"), the connection stays usable, and `hearth files put`
// prints the server's reason instead of "could not connect".
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  runHearthCli,
  startHearthInProcess,
} from './support/hearth.js';
import { type Mount, readOnlyFolder } from './support/mounts.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let readOnly: Mount;
const BIG = Buffer.alloc(4 << 20, 1);

beforeAll(async () => {
  dirs = await hearthDirs('hearth-files-api-');
  hearth = await startHearthInProcess(dirs);
  await writeFile(join(dirs.atlas, 'existing'), 'kept');
  await mkdir(join(dirs.atlas, 'locked'));
  readOnly = await readOnlyFolder(join(dirs.atlas, 'locked'));
});
afterAll(async () => {
  readOnly?.unmount();
  await hearth?.close();
  await dirs?.cleanup();
});

/** A PUT over one keep-alive socket of node:http, then a second request on the same agent. */
function put(path: string, body: Buffer): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(hearth.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method: 'PUT', path, headers: { 'content-length': body.length } });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to PUT ${path}`)));
    req.end(body);
  });
}

const REFUSED: Array<{ what: string; path: string; status: number; message: RegExp }> = [
  { what: 'a key under .hearth/', path: '/api/files/.hearth/db.lock', status: 400, message: /\.hearth/ },
  {
    what: 'overwrite=false on an existing key',
    path: '/api/files/existing?overwrite=false',
    status: 409,
    message: /already stored/,
  },
  { what: 'a key whose parent is a file', path: '/api/files/existing/child', status: 409, message: /is a file/ },
  { what: 'a read-only folder', path: '/api/files/locked/new', status: 503, message: /EROFS/ },
];

describe('uploads refused before their body is read', () => {
  for (const c of REFUSED) {
    it(`${c.what}: ${c.status} with the reason, over node:http and fetch`, async () => {
      const answer = await put(c.path, BIG);
      expect(answer.status).toBe(c.status);
      const message = (JSON.parse(answer.text) as { error: string }).error;
      expect(message).toMatch(c.message);
      // Paths in messages are relative to Atlas: the server's folders are nobody's business.
      expect(message).not.toContain(dirs.root);
      const res = await fetch(`${hearth.url}${c.path}`, { method: 'PUT', body: BIG });
      expect(res.status).toBe(c.status);
      expect(((await res.json()) as { error: string }).error).toBe(message);
      // The server still serves, and the refused upload left nothing behind.
      expect((await fetch(`${hearth.url}/api/version`)).status).toBe(200);
    });
  }

  it('left no temporary files on Atlas', async () => {
    const top = await readdir(dirs.atlas);
    expect(top.filter((name) => name.includes('.tmp-'))).toEqual([]);
    expect(await readdir(join(dirs.atlas, 'locked'))).toEqual([]);
  });

  it('hearth files put prints the server’s reason, not "could not connect"', async () => {
    const file = join(dirs.root, 'upload.bin');
    await writeFile(file, BIG);
    const run = await runHearthCli(dirs, ['files', 'put', '--no-overwrite', file, 'existing'], {
      env: { HEARTH_HOST: hearth.url },
    });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/already stored/);
    expect(run.stderr).not.toMatch(/could not connect/);
  });
});
