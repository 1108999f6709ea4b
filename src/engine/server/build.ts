import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeError, HearthError } from '../../errors.js';
import {
  buildKey,
  cpuTag,
  findPrebuilt,
  type LlamaCppSource,
  llamaCppSource,
  type PrebuiltLibraries,
  type ServerBackend,
} from './prebuilt.js';

const run = promisify(execFile);

/** What `manifest.json` of a finished build says; its presence means the build is complete. */
export interface ServerBuild {
  key: string;
  /** folder of the build (holds bin/ and manifest.json) */
  dir: string;
  backend: ServerBackend;
  nlcVersion: string;
  release: string;
  cpu: string;
  /** `linked`: only the server was compiled, against node-llama-cpp's prebuilt libraries; `full`: llama.cpp was compiled whole */
  mode: 'linked' | 'full';
  server: string;
  /** llama-quantize, built the same way */
  quantize: string;
  /** where the shared libraries are found at run time (LD_LIBRARY_PATH and the backend search folder) */
  libDir: string;
  seconds: number;
  builtAt: string;
}

export interface BuildProgress {
  /** `source`: extracting the bundle; `compile`: objects; `link`: executables */
  phase: 'source' | 'compile' | 'link' | 'done';
  done: number;
  total: number;
  /** seconds left, estimated from the objects compiled so far; null before the first */
  etaSeconds: number | null;
  /** what just finished */
  item?: string;
}

export interface BuildOptions {
  /** node.engineDir */
  engineDir: string;
  backend: ServerBackend;
  /** parallel compiler processes; default: the CPU count */
  jobs?: number;
  onProgress?: (p: BuildProgress) => void;
  /** a line for the log (why the full build was chosen, the lock being waited for) */
  onNote?: (line: string) => void;
  /** how long to wait for another process's build of the same key; default 30 min */
  lockWaitMs?: number;
  signal?: AbortSignal;
}

const MANIFEST = 'manifest.json';
const LOCK = 'build.lock';

/** The build of this node-llama-cpp, backend and CPU in `engineDir`, when it is complete. */
export async function findServerBuild(engineDir: string, backend: ServerBackend): Promise<ServerBuild | null> {
  const key = buildKey(llamaCppSource(), backend);
  return readManifest(join(engineDir, key));
}

async function readManifest(dir: string): Promise<ServerBuild | null> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch {
    return null;
  }
  const build = JSON.parse(text) as ServerBuild;
  if (build.mode === 'linked') {
    // the libraries are node-llama-cpp's: found again where it is installed now (the key pins its version)
    const libs = findPrebuilt(build.backend);
    if ('missing' in libs) return null;
    build.libDir = libs.dir;
  }
  build.dir = dir;
  build.server = join(dir, 'bin', 'llama-server');
  build.quantize = join(dir, 'bin', 'llama-quantize');
  return existsSync(build.server) ? build : null;
}

/**
 * Builds `llama-server` and `llama-quantize` from the llama.cpp source inside
 * node-llama-cpp, linked against its prebuilt libraries for `backend` (about
 * 70 objects); when those libraries are missing, compiles llama.cpp whole
 * with cmake (much slower), saying why. Returns the existing build when there
 * is one. Two processes never build one key at once: the second waits.
 */
export async function buildServer(opts: BuildOptions): Promise<ServerBuild> {
  const source = llamaCppSource();
  const key = buildKey(source, opts.backend);
  const dir = join(opts.engineDir, key);
  const existing = await readManifest(dir);
  if (existing) return existing;
  await mkdir(opts.engineDir, { recursive: true });
  const lock = await takeLock(join(opts.engineDir, `${key}.${LOCK}`), opts);
  try {
    const built = await readManifest(dir); // another process finished it while we waited
    if (built) return built;
    return await buildInto(dir, key, source, opts);
  } finally {
    await lock.release();
  }
}

async function buildInto(dir: string, key: string, source: LlamaCppSource, opts: BuildOptions): Promise<ServerBuild> {
  const started = Date.now();
  // work/ survives a failed or interrupted build: the next one reuses its source and objects
  const work = join(dir, 'work');
  await rm(join(dir, 'bin'), { recursive: true, force: true });
  await mkdir(join(dir, 'bin'), { recursive: true });
  const progress = opts.onProgress ?? (() => {});
  progress({ phase: 'source', done: 0, total: 1, etaSeconds: null });
  const src = join(work, 'llama.cpp');
  if (!existsSync(join(src, 'CMakeLists.txt'))) {
    await rm(src, { recursive: true, force: true });
    try {
      await run('git', ['clone', '--quiet', source.bundle, src], { signal: opts.signal });
    } catch (err) {
      throw buildFailed(`cannot extract the llama.cpp source from ${source.bundle} (is git installed?)`, err);
    }
  }
  progress({ phase: 'source', done: 1, total: 1, etaSeconds: null });
  const libs = findPrebuilt(opts.backend);
  let mode: ServerBuild['mode'];
  let libDir: string;
  if ('missing' in libs) {
    opts.onNote?.(
      `no prebuilt ${opts.backend} libraries to link against (${libs.missing}): compiling llama.cpp whole (about 25 minutes on 2 cores)`,
    );
    libDir = join(dir, 'lib');
    await fullBuild(src, join(work, 'cmake'), dir, opts);
    mode = 'full';
  } else {
    await linkedBuild(src, join(work, 'obj'), join(dir, 'bin'), libs, opts);
    libDir = libs.dir;
    mode = 'linked';
  }
  const build: ServerBuild = {
    key,
    dir,
    backend: opts.backend,
    nlcVersion: source.nlcVersion,
    release: source.release,
    cpu: cpuTag(),
    mode,
    server: join(dir, 'bin', 'llama-server'),
    quantize: join(dir, 'bin', 'llama-quantize'),
    libDir,
    seconds: Math.round((Date.now() - started) / 1000),
    builtAt: new Date().toISOString(),
  };
  await rm(work, { recursive: true, force: true });
  const tmp = join(dir, `${MANIFEST}.tmp`);
  await writeFile(tmp, `${JSON.stringify(build, null, 2)}\n`);
  await rename(tmp, join(dir, MANIFEST));
  progress({ phase: 'done', done: 1, total: 1, etaSeconds: 0 });
  return build;
}

// ---- linked build: the server parts only ----

interface CompileUnit {
  file: string;
  language: 'c' | 'c++';
  /** extra include folders */
  include?: string[];
}

/** The sources of llama-server (tools/server), mtmd, the HTTP library and the hash library; llama, ggml and common are prebuilt. */
async function serverUnits(src: string, gen: string): Promise<CompileUnit[]> {
  const units: CompileUnit[] = [];
  const server = join(src, 'tools', 'server');
  for (const f of (await readdir(server)).filter((f) => f.endsWith('.cpp')).sort()) {
    units.push({ file: join(server, f), language: 'c++' });
  }
  const mtmdCmake = await readFile(join(src, 'tools', 'mtmd', 'CMakeLists.txt'), 'utf8');
  const block = /add_library\(mtmd\b([\s\S]*?)\)/.exec(mtmdCmake)?.[1];
  if (!block)
    throw buildFailed('tools/mtmd/CMakeLists.txt has no add_library(mtmd ...): this llama.cpp is laid out differently');
  for (const f of block.match(/[\w./-]+\.cpp/g) ?? [])
    units.push({ file: join(src, 'tools', 'mtmd', f), language: 'c++' });
  const hash = join(src, 'vendor', 'hash');
  units.push(
    { file: join(src, 'vendor', 'cpp-httplib', 'httplib.cpp'), language: 'c++' },
    { file: join(hash, 'hash.cpp'), language: 'c++', include: [hash] },
    { file: join(hash, 'xxhash', 'xxhash.c'), language: 'c', include: [hash] },
    // sha1 lives in a C++ namespace (llama.cpp compiles it as C++)
    { file: join(hash, 'sha1', 'sha1.c'), language: 'c++', include: [hash] },
    { file: join(hash, 'sha256', 'sha256.c'), language: 'c', include: [hash] },
    { file: join(gen, 'ui.cpp'), language: 'c++' },
  );
  return units;
}

// llama-server's web UI is not built: hearth has its own, and the server is reachable by hearth alone.
const UI_H = `#pragma once
#include <array>
#include <string>
struct llama_ui_asset { std::string name; const unsigned char * data; std::size_t size; std::string etag; std::string type; };
const llama_ui_asset * llama_ui_find_asset(const std::string & name);
bool llama_ui_use_gzip();
const std::array<llama_ui_asset, 0> & llama_ui_get_assets();
`;
const UI_CPP = `#include "ui.h"
const llama_ui_asset * llama_ui_find_asset(const std::string &) { return nullptr; }
const std::array<llama_ui_asset, 0> & llama_ui_get_assets() { static const std::array<llama_ui_asset, 0> none{}; return none; }
bool llama_ui_use_gzip() { return false; }
`;

const DEFINES = [
  'NDEBUG',
  'LLAMA_SHARED',
  'GGML_SHARED',
  // node-llama-cpp's libllama-common is built with it (the struct layouts of common/subproc.h depend on it)
  'LLAMA_SUBPROCESS',
  'LLAMA_BUILD',
  'CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH=1048576',
  'CPPHTTPLIB_LISTEN_BACKLOG=512',
  'CPPHTTPLIB_REQUEST_URI_MAX_LENGTH=32768',
  'CPPHTTPLIB_TCP_NODELAY=1',
];

async function linkedBuild(
  src: string,
  obj: string,
  bin: string,
  libs: PrebuiltLibraries,
  opts: BuildOptions,
): Promise<void> {
  const gen = join(obj, 'gen');
  await mkdir(gen, { recursive: true });
  await writeFile(join(gen, 'ui.h'), UI_H);
  await writeFile(join(gen, 'ui.cpp'), UI_CPP);
  const quantizeDir = join(src, 'tools', 'quantize');
  const quantizeUnits: CompileUnit[] = (await readdir(quantizeDir))
    .filter((f) => f.endsWith('.cpp'))
    .sort()
    .map((f) => ({ file: join(quantizeDir, f), language: 'c++', include: [quantizeDir] }));
  const serverSources = await serverUnits(src, gen);
  const units = [...serverSources, ...quantizeUnits];
  const include = [
    'include',
    'ggml/include',
    'common',
    'tools/mtmd',
    'tools/server',
    'vendor',
    'vendor/cpp-httplib',
  ].map((d) => join(src, d));
  include.push(gen);
  const objects = new Map<string, string>();
  const jobs = Math.max(1, opts.jobs ?? availableParallelism());
  const started = Date.now();
  let done = 0;
  // objects reused from an interrupted build cost nothing: the estimate counts only those compiled now
  let compiled = 0;
  let next = 0;
  const report = (item: string) => {
    const perObject = (Date.now() - started) / 1000 / compiled;
    const eta = compiled > 0 ? Math.round(perObject * (units.length - done) + 5) : null;
    opts.onProgress?.({ phase: 'compile', done, total: units.length, etaSeconds: eta, item });
  };
  opts.onProgress?.({ phase: 'compile', done: 0, total: units.length, etaSeconds: null });
  const worker = async () => {
    while (next < units.length) {
      const unit = units[next++]!;
      const out = join(obj, `${unit.file.slice(src.length + 1).replaceAll('/', '_')}.o`);
      const rel = unit.file.startsWith(src) ? unit.file.slice(src.length + 1) : 'ui.cpp';
      const args = [
        ...(unit.language === 'c' ? ['-std=c11'] : ['-x', 'c++', '-std=c++17']),
        '-O2',
        '-fPIC',
        '-pthread',
        '-w',
        ...DEFINES.map((d) => `-D${d}`),
        ...[...include, ...(unit.include ?? [])].map((d) => `-I${d}`),
        '-c',
        unit.file,
        '-o',
        `${out}.tmp`,
      ];
      if (!(await upToDate(out, unit.file))) {
        await compiler(unit.language === 'c' ? 'cc' : 'c++', args, opts.signal, rel);
        // renamed when complete: a killed compiler leaves no object that looks finished
        await rename(`${out}.tmp`, out);
        compiled++;
      }
      objects.set(unit.file, out);
      done++;
      report(rel);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, units.length) }, worker));
  const linkArgs = (outFile: string, files: string[]) => [
    ...files,
    '-o',
    outFile,
    `-L${libs.dir}`,
    ...libs.link.map((l) => `-l:${l}`),
    '-pthread',
    '-ldl',
    // the libraries are found at run time through LD_LIBRARY_PATH (the supervisor sets it): no rpath into node_modules
  ];
  opts.onProgress?.({ phase: 'link', done: 0, total: 2, etaSeconds: 10 });
  const serverObjects = serverSources.map((u) => objects.get(u.file)!);
  await compiler('c++', linkArgs(join(bin, 'llama-server'), serverObjects), opts.signal, 'link llama-server');
  opts.onProgress?.({ phase: 'link', done: 1, total: 2, etaSeconds: 5 });
  const quantize = quantizeUnits.map((u) => objects.get(u.file)!);
  await compiler('c++', linkArgs(join(bin, 'llama-quantize'), quantize), opts.signal, 'link llama-quantize');
  opts.onProgress?.({ phase: 'link', done: 2, total: 2, etaSeconds: 0 });
}

/** An object of an earlier, interrupted build of the same source (written after it) is reused. */
async function upToDate(object: string, source: string): Promise<boolean> {
  try {
    const [o, s] = await Promise.all([stat(object), stat(source)]);
    return o.mtimeMs >= s.mtimeMs && o.size > 0;
  } catch {
    return false;
  }
}

function compiler(cmd: string, args: string[], signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // nice: the build shares the machine with a serving hearth
    const child = spawn('nice', ['-n', '10', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 8000) stderr += chunk.toString();
    });
    child.on('error', (err) => reject(buildFailed(`${what}: cannot run ${cmd} (install a C/C++ compiler)`, err)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(buildFailed(`${what} failed (exit ${code}):\n${stderr.trim().slice(-4000)}`));
    });
  });
}

// ---- full build: llama.cpp whole, when there are no prebuilt libraries to link against ----

async function fullBuild(src: string, cmakeDir: string, dir: string, opts: BuildOptions): Promise<void> {
  const flags = [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DLLAMA_BUILD_TESTS=OFF',
    '-DLLAMA_BUILD_UI=OFF',
    '-DBUILD_SHARED_LIBS=ON',
  ];
  if (opts.backend === 'cuda') flags.push('-DGGML_CUDA=ON');
  if (opts.backend === 'vulkan') flags.push('-DGGML_VULKAN=ON');
  try {
    await run('cmake', ['-S', src, '-B', cmakeDir, ...flags], { signal: opts.signal, maxBuffer: 16 << 20 });
  } catch (err) {
    throw buildFailed('cmake could not configure llama.cpp (install cmake and a C/C++ compiler)', err);
  }
  const jobs = String(Math.max(1, opts.jobs ?? availableParallelism()));
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'nice',
      ['-n', '10', 'cmake', '--build', cmakeDir, '--target', 'llama-server', 'llama-quantize', '-j', jobs],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        signal: opts.signal,
      },
    );
    const started = Date.now();
    let tail = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      const percent = [...text.matchAll(/\[\s*(\d+)%\]/g)].at(-1)?.[1];
      if (percent !== undefined) {
        const p = Number(percent);
        const elapsed = (Date.now() - started) / 1000;
        opts.onProgress?.({
          phase: 'compile',
          done: p,
          total: 100,
          etaSeconds: p > 0 ? Math.round((elapsed / p) * (100 - p)) : null,
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(buildFailed('cannot run cmake', err)));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(buildFailed(`llama.cpp build failed (exit ${code}):\n${tail}`)),
    );
  });
  const lib = join(dir, 'lib');
  await mkdir(lib, { recursive: true });
  const binOut = join(cmakeDir, 'bin');
  for (const f of await readdir(binOut)) {
    const from = join(binOut, f);
    if (f === 'llama-server' || f === 'llama-quantize') await rename(from, join(dir, 'bin', f));
    else if (f.endsWith('.so') || f.includes('.so.')) await rename(from, join(lib, f));
  }
  await chmod(join(dir, 'bin', 'llama-server'), 0o755);
}

// ---- the build lock ----

interface Lock {
  release(): Promise<void>;
}

/**
 * An exclusive lock file (O_EXCL) holding the builder's host and pid; a lock
 * whose process is gone (same host) is taken over. Waits, polling, while
 * another live process builds.
 */
async function takeLock(path: string, opts: BuildOptions): Promise<Lock> {
  const deadline = Date.now() + (opts.lockWaitMs ?? 30 * 60_000);
  let noted = false;
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify({ host: hostname(), pid: process.pid, since: new Date().toISOString() }));
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw buildFailed(`cannot create the build lock ${path}`, err);
      }
    }
    const holder = await readLockHolder(path);
    if (holder && holder.host === hostname() && !processAlive(holder.pid)) {
      await rm(path, { force: true });
      continue;
    }
    if (!noted) {
      opts.onNote?.(
        `another process (${holder ? `pid ${holder.pid} on ${holder.host}` : 'unknown'}) is building the server engine; waiting for it`,
      );
      noted = true;
    }
    if (Date.now() > deadline) {
      throw buildFailed(`timed out waiting for the build lock ${path}: remove it if no build is running`);
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function readLockHolder(path: string): Promise<{ host: string; pid: number } | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as { host: string; pid: number };
  } catch {
    return null; // being written right now, or gone
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function buildFailed(message: string, cause?: unknown): HearthError {
  return new HearthError(
    'ENGINE_BUILD_FAILED',
    `engine build: ${message}${cause ? `: ${describeError(cause)}` : ''}`,
    cause ? { cause } : undefined,
  );
}
