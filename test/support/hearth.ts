// Starting hearth for tests: as a real child process (`node bin/hearth.js serve`,
// for drills that SIGKILL it) or in-process (fast, for API tests that need a
// special configuration).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromObject } from '../../src/config/index.js';
import { type AppContext, type ContextOptions, closeContext, openContext } from '../../src/context.js';
import { startHttp } from '../../src/http/server.js';
import { type Logger, silentLogger } from '../../src/log.js';
import { testEngineDir } from './engine.js';
import { freshEmbeddedAtlas } from './pglite.js';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(REPO_ROOT, 'bin', 'hearth.js');

export interface HearthDirs {
  root: string;
  atlas: string;
  cache: string;
  home: string;
  cleanup(): Promise<void>;
}

/**
 * A temp Atlas folder, node cache and HOME, removed by cleanup(). The Atlas
 * folder's embedded database starts as a copy of the run's empty PGlite
 * template (creating one from scratch costs seconds of CPU); hearth applies
 * its migrations on start as it would on a fresh install.
 */
export async function hearthDirs(prefix = 'hearth-test-'): Promise<HearthDirs> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const atlas = join(root, 'atlas');
  const embedded = await freshEmbeddedAtlas();
  try {
    await mkdir(atlas, { recursive: true });
    await cp(join(embedded.atlasDir, '.hearth'), join(atlas, '.hearth'), { recursive: true });
  } finally {
    await embedded.cleanup();
  }
  return {
    root,
    atlas,
    cache: join(root, 'cache'),
    home: join(root, 'home'),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

export interface HearthProcess {
  url: string;
  child: ChildProcess;
  /** everything the process wrote to stderr (its logs) */
  logs(): string;
  /** SIGTERM (or the given signal) and wait for exit; resolves the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** resolves the exit code when the process exits, without signalling it */
  exited: Promise<number | null>;
}

/** Runs `hearth serve` as a child process on a free loopback port. Needs `npm run build` (npm test does it). */
export async function startHearthProcess(opts: {
  dirs: HearthDirs;
  database?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<HearthProcess> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before these tests (`npm test` does)');
  }
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: opts.dirs.home,
    HEARTH_ATLAS_FILES: opts.dirs.atlas,
    HEARTH_ATLAS_DATABASE: opts.database ?? 'embedded',
    HEARTH_NODE_CACHE_DIR: opts.dirs.cache,
    HEARTH_NODE_THREADS: '1',
    HEARTH_NODE_ENGINE_DIR: testEngineDir(),
    HEARTH_HOST: '127.0.0.1:0',
    HEARTH_LOG_LEVEL: 'info',
    NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
    ...opts.env,
  };
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.dirs.root,
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hearth did not start within ${opts.timeoutMs ?? 60_000} ms; logs:\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /"urls":\["(http:\/\/[^"]+)"/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.stdout!.resume();
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hearth exited with ${code} before it was ready; logs:\n${stderr}`));
    });
  });
  return {
    url,
    child,
    logs: () => stderr,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
}

/** Runs the `hearth` command (bin/hearth.js) as a person would, with HOME and cwd in `dirs`. */
export function runHearthCli(dirs: HearthDirs, args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? dirs.root,
      env: { PATH: process.env['PATH'] ?? '', HOME: dirs.home, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface InProcessHearth {
  url: string;
  /** every listener's address, in the order of the config's listeners (`url` is the first) */
  urls: string[];
  ctx: AppContext;
  close(): Promise<void>;
}

/**
 * hearth in this process on a free loopback port, with config overrides (deep-merged one level) and
 * the context's test hooks.
 */
export async function startHearthInProcess(
  dirs: HearthDirs,
  overrides: Record<string, Record<string, unknown> | unknown> = {},
  contextOptions: ContextOptions = {},
  /** where its logs go (default: nowhere) */
  log: Logger = silentLogger(),
): Promise<InProcessHearth> {
  const base: Record<string, Record<string, unknown>> = {
    atlas: { files: dirs.atlas, database: 'embedded' },
    node: { cacheDir: dirs.cache, threads: 1, id: 'test-node', engineDir: testEngineDir() },
    log: { level: 'silent' },
  };
  const input: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    input[k] = v && typeof v === 'object' && !Array.isArray(v) ? { ...(base[k] ?? {}), ...v } : v;
  }
  // As easy as the embedded default: loopback clients need no API key.
  input['listeners'] ??= [{ name: 'test', address: '127.0.0.1:0', zones: ['loopback'], auth: 'loopback-exempt' }];
  const { config } = configFromObject(input);
  const ctx = await openContext(config, log, contextOptions);
  const server = await startHttp(ctx).catch(async (err) => {
    await closeContext(ctx);
    throw err;
  });
  return {
    url: server.urls[0]!,
    urls: server.urls,
    ctx,
    close: async () => {
      await server.close();
      await closeContext(ctx);
    },
  };
}
