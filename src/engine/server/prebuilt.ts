import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, cpus, platform } from 'node:os';
import { dirname, join } from 'node:path';

/** The backends a server engine can be linked for (node-llama-cpp ships prebuilt libraries of each). */
export type ServerBackend = 'cpu' | 'cuda' | 'vulkan';

/** What the installed node-llama-cpp ships: the llama.cpp source it was built from, and its prebuilt libraries. */
export interface LlamaCppSource {
  /** node-llama-cpp's version (part of the build key) */
  nlcVersion: string;
  /** llama.cpp release the bundle holds (llama.cpp.info.json's tag) */
  release: string;
  /** the git bundle of that release */
  bundle: string;
}

/** A prebuilt backend of node-llama-cpp: a folder with libllama, libggml*, libllama-common. */
export interface PrebuiltLibraries {
  backend: ServerBackend;
  /** the @node-llama-cpp/* package folder of the libraries */
  dir: string;
  /** file names, in link order: llama-common, llama, ggml, ggml-base */
  link: string[];
}

const require = createRequire(import.meta.url);

/** A package's folder (their exports do not include package.json: found from the main entry, walking up). */
function packageRoot(name: string, paths?: string[]): string {
  let dir = dirname(require.resolve(name, paths ? { paths } : undefined));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`${name}: package folder not found`);
    dir = up;
  }
}

function nlcRoot(): string {
  return packageRoot('node-llama-cpp');
}

export function llamaCppSource(): LlamaCppSource {
  const root = nlcRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const info = JSON.parse(readFileSync(join(root, 'llama', 'llama.cpp.info.json'), 'utf8')) as { tag: string };
  return { nlcVersion: pkg.version, release: info.tag, bundle: join(root, 'llama', 'gitRelease.bundle') };
}

/** The @node-llama-cpp packages that can hold a backend's libraries, in the order node-llama-cpp prefers them. */
function packagesFor(backend: ServerBackend): string[] {
  const base = `${platform()}-${arch()}`;
  if (backend === 'cuda') return [`${base}-cuda-ext`, `${base}-cuda`];
  if (backend === 'vulkan') return [`${base}-vulkan`];
  return [base];
}

const WANTED: Array<[string, RegExp]> = [
  ['llama-common', /^libllama-common(\.v[\d.]+)?\.so$/],
  ['llama', /^libllama(\.v[\d.]+)?\.so$/],
  ['ggml', /^libggml(\.v[\d.]+)?\.so$/],
  ['ggml-base', /^libggml-base(\.v[\d.]+)?\.so$/],
];

/**
 * Finds the prebuilt libraries of a backend, or says why there are none
 * (package not installed, or installed without its binaries, e.g. with
 * NODE_LLAMA_CPP_SKIP_DOWNLOAD and no prebuilt package for this platform).
 */
export function findPrebuilt(backend: ServerBackend): PrebuiltLibraries | { missing: string } {
  const problems: string[] = [];
  for (const name of packagesFor(backend)) {
    let dir: string;
    try {
      dir = join(packageRoot(`@node-llama-cpp/${name}`, [nlcRoot()]), 'bins', name);
    } catch {
      problems.push(`@node-llama-cpp/${name} is not installed`);
      continue;
    }
    const files = existsSync(dir) ? readdirSync(dir) : [];
    const link: string[] = [];
    const absent: string[] = [];
    for (const [label, pattern] of WANTED) {
      const file = files.find((f) => pattern.test(f));
      if (file) link.push(file);
      else absent.push(`lib${label}`);
    }
    if (absent.length === 0) return { backend, dir, link };
    problems.push(`@node-llama-cpp/${name} has no ${absent.join(', ')}`);
  }
  return { missing: problems.join('; ') };
}

/**
 * The prebuilt ggml CUDA libraries node-llama-cpp ships, in the order it tries them: the main one
 * (@node-llama-cpp/<platform>-cuda) and the fallback built for an older CUDA runtime
 * (@node-llama-cpp/<platform>-cuda-ext, `fallback/`). Only those installed.
 */
export function cudaLibraries(): Array<{ label: string; path: string }> {
  const base = `${platform()}-${arch()}`;
  const found: Array<{ label: string; path: string }> = [];
  for (const [pkg, sub, label] of [
    [`${base}-cuda`, '', 'main'],
    [`${base}-cuda-ext`, 'fallback', 'fallback'],
  ] as const) {
    try {
      const path = join(
        packageRoot(`@node-llama-cpp/${pkg}`, [nlcRoot()]),
        'bins',
        `${base}-cuda`,
        sub,
        'libggml-cuda.so',
      );
      if (existsSync(path)) found.push({ label: `${label} (@node-llama-cpp/${pkg})`, path });
    } catch {
      // not installed
    }
  }
  return found;
}

/** The CPU part of the build key: the architecture and a short hash of the CPU model. */
export function cpuTag(): string {
  const model = cpus()[0]?.model ?? 'unknown';
  return `${arch()}-${createHash('sha256').update(model).digest('hex').slice(0, 8)}`;
}

/** The folder name of a build: node-llama-cpp version, llama.cpp release, backend and CPU. */
export function buildKey(source: LlamaCppSource, backend: ServerBackend): string {
  return `nlc${source.nlcVersion}-${source.release}-${backend}-${cpuTag()}`;
}
