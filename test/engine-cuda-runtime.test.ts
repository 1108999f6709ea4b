// What the CUDA backend needs of a node (src/engine/server/cuda-runtime.ts), on node-llama-cpp's real
// prebuilt CUDA libraries. No GPU and no CUDA runtime here: the runtime a library needs is read from
// the library itself; "found" is shown with stand-in libraries compiled here with the sonames and
// symbol versions the fallback asks for (the dynamic loader only needs those to resolve it); and the
// folder of links that makes ggml load the fallback is run for real with the CPU build, whose
// llama-server must still find its CPU backend through the links and answer.
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ServerBuild } from '../src/engine/server/build.js';
import {
  backendFolder,
  chooseCudaLibrary,
  cudaNeeds,
  cudaNeedsOf,
  describeCudaNeeds,
} from '../src/engine/server/cuda-runtime.js';
import { cudaLibraries } from '../src/engine/server/prebuilt.js';
import { LlamaServerProcess } from '../src/engine/server/process.js';
import { silentLogger } from '../src/log.js';
import { buildTestEngine } from './support/engine.js';
import { makeTestModels } from './support/models.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-cuda-runtime-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A shared library with `soname` that defines the symbol version of that name (as NVIDIA's do). */
async function standIn(soname: string): Promise<void> {
  const map = join(dir, `${soname}.map`);
  await writeFile(map, `${soname} { global: *; };\n`);
  const source = join(dir, `${soname}.c`);
  await writeFile(source, 'int hearth_stand_in(void) { return 0; }\n');
  await run('cc', [
    '-shared',
    '-fPIC',
    `-Wl,-soname,${soname}`,
    `-Wl,--version-script=${map}`,
    '-o',
    join(dir, soname),
    source,
  ]);
}

describe('the CUDA runtime the prebuilt CUDA libraries need', () => {
  it('reads each library’s CUDA runtime, cuBLAS and driver library from the library itself', async () => {
    const libraries = cudaLibraries();
    expect(libraries.map((l) => l.label)).toEqual([
      expect.stringMatching(/^main \(@node-llama-cpp\/linux-x64-cuda\)$/),
      expect.stringMatching(/^fallback \(@node-llama-cpp\/linux-x64-cuda-ext\)$/),
    ]);
    const [main, fallback] = await cudaNeeds();
    for (const n of [main!, fallback!]) {
      const major = /^CUDA (\d+)$/.exec(n.runtime ?? '')?.[1];
      expect(major, n.label).toBeDefined();
      expect(n.needs).toEqual(
        expect.arrayContaining([`libcudart.so.${major}`, `libcublas.so.${major}`, 'libcuda.so.1']),
      );
      for (const m of n.missing) expect(n.needs).toContain(m);
    }
    // the fallback is for an older CUDA than the main library
    expect(Number(fallback!.runtime!.split(' ')[1])).toBeLessThan(Number(main!.runtime!.split(' ')[1]));
    expect(describeCudaNeeds([main!, fallback!])).toMatch(
      /^main \(@node-llama-cpp\/linux-x64-cuda\) needs the CUDA \d+ runtime \(libcudart\.so\.\d+, libcublas\.so\.\d+\) and the NVIDIA driver \(libcuda\.so\.1\): .+; fallback .+ needs the CUDA \d+ runtime/,
    );
  });

  it('finds the libraries the loader can resolve, and picks the first library that has all it needs', async () => {
    const fallback = cudaLibraries()[1]!;
    const before = await cudaNeedsOf(fallback.label, fallback.path, { ...process.env, LD_LIBRARY_PATH: '' });
    for (const soname of before.needs) await standIn(soname);
    const after = await cudaNeedsOf(fallback.label, fallback.path, { ...process.env, LD_LIBRARY_PATH: dir });
    expect(after.needs).toEqual(before.needs);
    expect(after.missing).toEqual([]);
    expect(describeCudaNeeds([after])).toMatch(/: all found$/);

    const incomplete = { ...after, label: 'main', missing: ['libcublas.so.13'] };
    expect(chooseCudaLibrary([incomplete, after])).toEqual({ chosen: after, complete: true });
    expect(chooseCudaLibrary([after, incomplete])).toEqual({ chosen: after, complete: true });
    expect(chooseCudaLibrary([incomplete, { ...after, missing: ['libcuda.so.1'] }])).toEqual({
      chosen: incomplete,
      complete: false,
    });
    expect(chooseCudaLibrary([])).toBeNull();
  });
});

describe('a folder of links as ggml’s backend folder', () => {
  let build: ServerBuild;
  let proc: LlamaServerProcess | undefined;

  beforeAll(async () => {
    expect(inject('serverEngineUnavailable'), 'the global setup could not build llama-server').toBe('');
    build = await buildTestEngine();
  });

  afterAll(async () => {
    await proc?.kill();
  });

  it('links every backend library and puts the chosen CUDA library in the main one’s place', async () => {
    const cuda = cudaLibraries()[1]!.path;
    const folder = await backendFolder(join(dir, 'backends'), build.libDir, cuda);
    expect(await readlink(join(folder, 'libggml-cuda.so'))).toBe(cuda);
    expect((await lstat(join(folder, 'libggml-cpu-x64.so'))).isSymbolicLink()).toBe(true);
    // made again from scratch: no link left from before
    await writeFile(join(folder, 'stale'), '');
    await backendFolder(folder, build.libDir, cuda);
    await expect(lstat(join(folder, 'stale'))).rejects.toThrow(/ENOENT/);
  });

  it('llama-server started in that folder loads its CPU backend through the links and answers (the CUDA one fails to load here, as without a GPU)', async () => {
    await mkdir(join(dir, 'models'), { recursive: true });
    const models = await makeTestModels(join(dir, 'models'));
    const folder = await backendFolder(join(dir, 'backends'), build.libDir, cudaLibraries()[1]!.path);
    proc = await LlamaServerProcess.start({
      binary: build.server,
      libDir: build.libDir,
      backendDir: folder,
      args: ['--model', models.chat, '--ctx-size', '256', '--threads', '1', '--no-webui'],
      readyTimeoutMs: 60_000,
      log: silentLogger(),
    });
    let body = '';
    await proc.post(
      '/completion',
      { prompt: 'hello', n_predict: 2 },
      { signal: new AbortController().signal, onEvent: (e) => (body = e) },
    );
    expect(JSON.parse(body)).toMatchObject({ tokens_predicted: 2 });
  });
});
