// `hearth serve` as a separate process, as users run it, on a temporary Atlas and cache.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';

const REPO = new URL('../../', import.meta.url).pathname;

export interface HearthServer {
  url: string;
  /** the `hearth serve` process */
  pid: number;
  /** uploads a GGUF and creates a model of that name */
  addModel(name: string, path: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startHearthServer(opts: {
  threads: number;
  numParallel: number;
  /** CPU list for `taskset -c` (e.g. "0"), to pin the server's process */
  pin?: string;
  /** a built entry point to run with node (e.g. dist/cli/main.js); default: src/cli/main.ts through tsx */
  entry?: string;
  /** more environment (HEARTH_* settings), over the defaults */
  env?: Record<string, string>;
  log?: (line: string) => void;
}): Promise<HearthServer> {
  const root = await mkdtemp(join(tmpdir(), 'hearth-bench-server-'));
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: join(root, 'home'),
    HEARTH_ATLAS_FILES: join(root, 'atlas'),
    HEARTH_ATLAS_DATABASE: 'embedded',
    HEARTH_NODE_CACHE_DIR: join(root, 'cache'),
    HEARTH_NODE_THREADS: String(opts.threads),
    HEARTH_NODE_GPU: 'cpu',
    HEARTH_INFERENCE_NUM_PARALLEL: String(opts.numParallel),
    HEARTH_INFERENCE_KEEP_ALIVE: '-1',
    HEARTH_HOST: '127.0.0.1:0',
    HEARTH_LOG_LEVEL: 'info',
    NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
    ...opts.env,
  };
  const node = opts.entry
    ? [process.execPath, resolve(opts.entry), 'serve']
    : [process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'serve'];
  const argv = opts.pin ? ['taskset', '-c', opts.pin, ...node] : node;
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { env, cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`hearth did not start within 120 s:\n${logs.slice(-4000)}`)),
      120_000,
    );
    child.stderr!.on('data', (chunk: Buffer) => {
      // keep only the start-up logs: every request is logged at info level
      if (logs.length < 200_000) logs += chunk.toString();
      const m = /"urls":\["(http:\/\/[^"]+)"/.exec(logs);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`hearth exited before it was ready:\n${logs.slice(-4000)}`));
    });
  });
  let url: string;
  try {
    url = await started;
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  opts.log?.(
    `hearth serve at ${url} (threads ${opts.threads}, num_parallel ${opts.numParallel}${opts.pin ? `, pinned to CPU ${opts.pin}` : ''})`,
  );
  return {
    url,
    pid: child.pid!,
    addModel: async (name, path) => {
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
      const digest = `sha256:${hash.digest('hex')}`;
      const up = await fetch(`${url}/api/blobs/${digest}`, {
        method: 'POST',
        body: Readable.toWeb(createReadStream(path)) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      if (!up.ok) throw new Error(`upload failed: ${up.status} ${await up.text()}`);
      const created = await fetch(`${url}/api/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: name, files: { [`${name}.gguf`]: digest }, stream: false }),
      });
      if (!created.ok) throw new Error(`create failed: ${created.status} ${await created.text()}`);
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
      await rm(root, { recursive: true, force: true });
    },
  };
}
