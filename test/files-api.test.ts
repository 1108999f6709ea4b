// /api/files uploads refused before their body is read: every client gets the status and the
// message (not an "Empty reply from server"), the connection stays usable, and `hearth files put`
// prints the server's reason instead of "could not connect".
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
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

describe('hearth create FROM a local file that is not a GGUF', () => {
  it('is refused before anything is uploaded', async () => {
    const before = await (await fetch(`${hearth.url}/api/files`)).json();
    const notGguf = join(dirs.root, 'passwd');
    await writeFile(notGguf, 'root:x:0:0:root:/root:/bin/bash\n');
    const modelfile = join(dirs.root, 'Modelfile.bad');
    await writeFile(modelfile, `FROM ${notGguf}\n`);
    const run = await runHearthCli(dirs, ['create', 'bad', '-f', modelfile], { env: { HEARTH_HOST: hearth.url } });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/not a GGUF model file/);
    expect(run.stdout).not.toMatch(/copying file/);
    expect(await (await fetch(`${hearth.url}/api/files`)).json()).toEqual(before);
  });
});

describe('temporaries left by a write that was killed', () => {
  it('hearth doctor counts them and hearth serve removes them at start-up', async () => {
    const other = await hearthDirs('hearth-files-tmp-');
    try {
      const leftover = join(other.atlas, 'models', '.big.gguf.tmp-0123abcd');
      await mkdir(join(other.atlas, 'models'), { recursive: true });
      await writeFile(leftover, Buffer.alloc(1000));
      const past = new Date(Date.now() - 24 * 60 * 60 * 1000);
      await utimes(leftover, past, past);
      const env = { HEARTH_ATLAS_FILES: other.atlas, HEARTH_NODE_CACHE_DIR: other.cache };
      const doctor = await runHearthCli(other, ['doctor'], { env });
      expect(doctor.stdout).toMatch(/1 temporary file\(s\) \(1\.0 KB\) left by interrupted writes/);
      const started = await startHearthInProcess(other);
      await started.close();
      expect(await readdir(join(other.atlas, 'models'))).toEqual([]);
    } finally {
      await other.cleanup();
    }
  });
});
