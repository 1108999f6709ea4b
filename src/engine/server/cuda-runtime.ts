// What the CUDA backend needs from the node: the CUDA runtime and cuBLAS of one major version, and the
// NVIDIA driver's libcuda. ggml loads its CUDA library at run time (dlopen); when a library it needs
// is missing, the load fails and llama-server quietly runs on the CPU. So `hearth doctor` and the
// start-up log name them, read from the prebuilt library itself with the system's dynamic loader
// (`ldd`, glibc's, always present where glibc is), so the answer is this node's, not a table's.
import { execFile } from 'node:child_process';
import { mkdir, readdir, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { cudaLibraries } from './prebuilt.js';

const run = promisify(execFile);

/** NVIDIA's libraries among a library's dependencies (the rest, libc and libstdc++, are the system's). */
const NVIDIA = /^lib(cudart|cublas|cublasLt|cuda|nvrtc|nvJitLink|cudnn)\.so(\.\d+)*$/;

export interface CudaNeeds {
  /** which prebuilt: "main (@node-llama-cpp/linux-x64-cuda)" or "fallback (…-cuda-ext)" */
  label: string;
  /** the libggml-cuda.so read */
  library: string;
  /** "CUDA 13", from the libcudart soname it needs (null when it needs none) */
  runtime: string | null;
  /** NVIDIA libraries it needs, by soname */
  needs: string[];
  /** those the dynamic loader does not find on this node */
  missing: string[];
}

/** The NVIDIA libraries one ggml CUDA library needs, and which the loader finds here (`ldd`). */
export async function cudaNeedsOf(label: string, library: string, env = process.env): Promise<CudaNeeds> {
  // its own folder first: libggml-base.so is found beside it, as llama-server's LD_LIBRARY_PATH does
  const path = [dirname(library), env['LD_LIBRARY_PATH']].filter(Boolean).join(':');
  const { stdout } = await run('ldd', [library], { env: { ...env, LD_LIBRARY_PATH: path }, timeout: 10_000 });
  const needs: string[] = [];
  const missing: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\S+) => (.+)$/.exec(line);
    if (!m || !NVIDIA.test(m[1]!)) continue;
    needs.push(m[1]!);
    if (m[2]!.startsWith('not found')) missing.push(m[1]!);
  }
  const cudart = needs.find((n) => n.startsWith('libcudart.so.'));
  return { label, library, runtime: cudart ? `CUDA ${cudart.split('.so.')[1]}` : null, needs, missing };
}

/** Every installed prebuilt CUDA library's needs; empty when node-llama-cpp's CUDA packages are not installed. */
export async function cudaNeeds(env = process.env): Promise<CudaNeeds[]> {
  return Promise.all(cudaLibraries().map(({ label, path }) => cudaNeedsOf(label, path, env)));
}

/** One line on what the CUDA backend needs here and what is missing, for `hearth doctor` and the log. */
export function describeCudaNeeds(all: CudaNeeds[]): string {
  if (all.length === 0) return 'no prebuilt CUDA libraries installed (@node-llama-cpp/*-cuda)';
  return all
    .map((n) => {
      const runtime = n.needs.filter((x) => x !== 'libcuda.so.1');
      const wants = `${n.runtime ?? 'CUDA'} runtime (${runtime.join(', ')}) and the NVIDIA driver (libcuda.so.1)`;
      const state = n.missing.length === 0 ? 'all found' : `missing here: ${n.missing.join(', ')}`;
      return `${n.label} needs the ${wants}: ${state}`;
    })
    .join('; ');
}

/**
 * The CUDA library llama-server should load on this node: the first (main, then fallback, as
 * node-llama-cpp tries them) whose NVIDIA libraries are all found; else the main one, incomplete.
 * Null when none is installed.
 */
export function chooseCudaLibrary(all: CudaNeeds[]): { chosen: CudaNeeds; complete: boolean } | null {
  const complete = all.find((n) => n.missing.length === 0);
  if (complete) return { chosen: complete, complete: true };
  return all[0] ? { chosen: all[0], complete: false } : null;
}

/**
 * A folder that makes ggml load `cudaLibrary` instead of the libggml-cuda.so beside the other
 * prebuilt libraries: links to every backend library of `libDir` (libggml-cpu-*.so, …), with
 * libggml-cuda.so linked to `cudaLibrary`. ggml loads backends from the executable's folder and the
 * working folder, following links, so llama-server runs with this as its working folder. Made
 * afresh each time (a few links; they name node_modules paths, which may move), through a
 * temporary folder renamed into place.
 */
export async function backendFolder(dir: string, libDir: string, cudaLibrary: string): Promise<string> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const file of await readdir(libDir)) {
    if (!/^libggml-.+\.so$/.test(file) || file === 'libggml-base.so' || file === 'libggml-cuda.so') continue;
    await symlink(join(libDir, file), join(tmp, file));
  }
  await symlink(cudaLibrary, join(tmp, 'libggml-cuda.so'));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}
