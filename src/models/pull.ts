import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describeError, HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ModelLibrary } from './library.js';
import { normaliseModelName, parseModelName } from './names.js';
import { parseOptions } from './options.js';

/** One progress line, in the shape `ollama pull` prints. */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface PullOptions {
  /** allow plain http for registries (Ollama's --insecure) */
  insecure?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: PullProgress) => void;
}

export interface ModelPullerDeps {
  library: ModelLibrary;
  /** where partial downloads wait (disposable node storage; survives restarts so pulls resume) */
  partialDir: string;
  log: Logger;
  /** Hugging Face endpoint (HF_ENDPOINT-style mirrors); default https://huggingface.co */
  hfEndpoint?: string;
}

interface Source {
  /** model name to create */
  name: string;
  kind: 'file' | 'registry';
  url: string;
  /** expected sha256 hex when the source says it */
  sha256?: string;
  /** a Hugging Face repository: its file list names a vision projector (mmproj*.gguf) to take along */
  hf?: { endpoint: string; owner: string; repo: string; file: string };
}

const OLLAMA_REGISTRY = 'registry.ollama.ai';

/**
 * Pulls a model into the library: downloads to the node (resumable), checks the
 * digest, then commits the blob to Atlas atomically and writes the manifest.
 *
 * Sources: `https://host/path/model.gguf[#sha256=<hex>]`, `hf:owner/repo/file.gguf`
 * (or `hf.co/owner/repo/file.gguf`), and Ollama registry names
 * (`llama3.2`, `namespace/model:tag`, `host:port/namespace/model:tag`).
 */
export class ModelPuller {
  constructor(private readonly deps: ModelPullerDeps) {}

  resolve(input: string): Source {
    const trimmed = input.trim();
    if (/^https?:\/\//i.test(trimmed)) {
      const url = new URL(trimmed);
      const sha = /(?:^|&)sha256=([a-f0-9]{64})/.exec(url.hash.slice(1))?.[1];
      url.hash = '';
      return {
        name: nameFromFile(basename(url.pathname)),
        kind: 'file',
        url: url.toString(),
        ...(sha ? { sha256: sha } : {}),
      };
    }
    const hf = /^(?:hf:|hf\.co\/|huggingface\.co\/)([^/]+)\/([^/]+)\/(.+\.gguf)$/i.exec(trimmed);
    if (hf) {
      const [, owner, repo, file] = hf as unknown as [string, string, string, string];
      const endpoint = (this.deps.hfEndpoint ?? 'https://huggingface.co').replace(/\/$/, '');
      const tag = basename(file, '.gguf')
        .replace(/[^a-zA-Z0-9_.-]/g, '-')
        .slice(0, 80);
      return {
        name: `hf.co/${owner}/${repo}:${tag}`,
        kind: 'file',
        url: `${endpoint}/${owner}/${repo}/resolve/main/${file}`,
        hf: { endpoint, owner, repo, file },
      };
    }
    if (/^hf:|^hf\.co\//i.test(trimmed)) {
      throw new HearthError('BAD_REQUEST', `"${input}": name the GGUF file, e.g. hf:owner/repo/model-Q4_K_M.gguf`);
    }
    const name = parseModelName(trimmed);
    return { name: trimmed, kind: 'registry', url: name.host ?? OLLAMA_REGISTRY };
  }

  async pull(input: string, opts: PullOptions = {}): Promise<void> {
    const source = this.resolve(input);
    const progress = opts.onProgress ?? (() => {});
    try {
      if (source.kind === 'file') {
        progress({ status: 'pulling manifest' });
        const hex = await this.download(source.url, source.sha256, opts, progress);
        const mmproj = source.hf ? await this.hfProjector(source.hf, opts) : null;
        const projector = mmproj ? await this.download(mmproj, undefined, opts, progress) : null;
        progress({ status: 'writing manifest' });
        await this.deps.library.create({
          model: source.name,
          files: { [basename(new URL(source.url).pathname)]: `sha256:${hex}` },
          ...(projector ? { projector: `sha256:${projector}` } : {}),
        });
      } else {
        await this.pullRegistry(source.name, opts, progress);
      }
    } catch (err) {
      if (opts.signal?.aborted)
        throw new HearthError(
          'CLIENT_CLOSED',
          'pull cancelled: the client went away (it resumes where it stopped next time)',
        );
      if (err instanceof HearthError) throw err;
      throw new HearthError('PULL_FAILED', `pull ${input}: ${describeError(err, { causes: true })}`, { cause: err });
    }
  }

  private async pullRegistry(input: string, opts: PullOptions, progress: (p: PullProgress) => void): Promise<void> {
    const n = parseModelName(input);
    const host = n.host ?? OLLAMA_REGISTRY;
    const scheme = opts.insecure ? 'http' : 'https';
    const base = `${scheme}://${host}/v2/${n.namespace ?? 'library'}/${n.model}`;
    progress({ status: 'pulling manifest' });
    const res = await fetch(`${base}/manifests/${n.tag}`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (res.status === 404)
      throw new HearthError(
        'MODEL_NOT_FOUND',
        `pull model manifest: file does not exist (${normaliseModelName(input).display} is not on ${host})`,
      );
    if (!res.ok)
      throw new HearthError('PULL_FAILED', `pull model manifest: ${host} answered ${res.status} ${res.statusText}`);
    const manifest = (await res.json()) as { layers?: Array<{ mediaType: string; digest: string; size: number }> };
    const layers = manifest.layers ?? [];
    const modelLayer = layers.find((l) => l.mediaType === 'application/vnd.ollama.image.model');
    if (!modelLayer) throw new HearthError('PULL_FAILED', `${input}: the manifest has no model layer`);
    const text = async (mediaType: string): Promise<string | undefined> => {
      const layer = layers.find((l) => l.mediaType === mediaType);
      if (!layer) return undefined;
      const r = await fetch(`${base}/blobs/${layer.digest}`, opts.signal ? { signal: opts.signal } : {});
      if (!r.ok) throw new HearthError('PULL_FAILED', `pull ${layer.digest}: ${host} answered ${r.status}`);
      return r.text();
    };
    const blob = async (layer: { digest: string; size: number }): Promise<string> => {
      const wantHex = layer.digest.replace(/^sha256:/, '');
      if (!(await this.deps.library.hasBlob(`sha256:${wantHex}`))) {
        return this.download(`${base}/blobs/${layer.digest}`, wantHex, opts, progress);
      }
      progress({
        status: `pulling ${wantHex.slice(0, 12)}`,
        digest: layer.digest,
        total: layer.size,
        completed: layer.size,
      });
      return wantHex;
    };
    const hex = await blob(modelLayer);
    // a vision model's projector (llama.cpp mmproj) is a layer of its own
    const projectorLayer = layers.find((l) => l.mediaType === 'application/vnd.ollama.image.projector');
    const projector = projectorLayer ? await blob(projectorLayer) : null;
    const [params, system, license, messages] = await Promise.all([
      text('application/vnd.ollama.image.params'),
      text('application/vnd.ollama.image.system'),
      text('application/vnd.ollama.image.license'),
      text('application/vnd.ollama.image.messages'),
    ]);
    progress({ status: 'writing manifest' });
    await this.deps.library.create({
      model: input,
      files: { 'model.gguf': `sha256:${hex}` },
      ...(projector ? { projector: `sha256:${projector}` } : {}),
      ...(params ? { parameters: parseOptions(JSON.parse(params), 'params layer') } : {}),
      ...(system !== undefined ? { system } : {}),
      ...(license !== undefined ? { license } : {}),
      ...(messages ? { messages: JSON.parse(messages) } : {}),
    });
  }

  /**
   * The download URL of a Hugging Face repository's vision projector
   * (`mmproj*.gguf`, the F16 one when there are several), or null. A repository
   * listing that fails only leaves the projector out (the model still pulls).
   */
  private async hfProjector(hf: NonNullable<Source['hf']>, opts: PullOptions): Promise<string | null> {
    const listing = `${hf.endpoint}/api/models/${hf.owner}/${hf.repo}`;
    let files: string[];
    try {
      const res = await fetch(listing, opts.signal ? { signal: opts.signal } : {});
      if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
      const body = (await res.json()) as { siblings?: Array<{ rfilename?: string }> };
      files = (body.siblings ?? []).map((s) => s.rfilename ?? '');
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      this.deps.log.warn(
        { err, listing },
        `pull: could not list ${hf.owner}/${hf.repo} for a vision projector; pulling the model alone`,
      );
      return null;
    }
    const projectors = files
      .filter((f) => /(^|\/)mmproj[^/]*\.gguf$/i.test(f) && f !== hf.file)
      .sort((a, b) => Number(/f16/i.test(b)) - Number(/f16/i.test(a)) || a.localeCompare(b));
    const pick = projectors[0];
    return pick ? `${hf.endpoint}/${hf.owner}/${hf.repo}/resolve/main/${pick}` : null;
  }

  /**
   * Downloads to `<partialDir>/<sha256(url)>`, resuming with a Range request
   * when a partial file is there, then verifies and commits the blob to Atlas.
   * Returns the blob's sha256.
   */
  private async download(
    url: string,
    expected: string | undefined,
    opts: PullOptions,
    progress: (p: PullProgress) => void,
  ): Promise<string> {
    await mkdir(this.deps.partialDir, { recursive: true });
    const partial = join(this.deps.partialDir, createHash('sha256').update(url).digest('hex'));
    let have = (await stat(partial).catch(() => null))?.size ?? 0;
    const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
    const res = await fetch(url, { headers, redirect: 'follow', ...(opts.signal ? { signal: opts.signal } : {}) });
    if (res.status === 416 && have > 0) {
      // The partial file is already complete.
    } else if (!res.ok) {
      if (res.status === 404) throw new HearthError('PULL_FAILED', `${url}: not found (404)`);
      throw new HearthError('PULL_FAILED', `${url}: the server answered ${res.status} ${res.statusText}`);
    }
    const resumed = res.status === 206;
    if (!resumed) have = 0;
    // Hugging Face's LFS files carry their sha256 in X-Linked-Etag.
    const etag = (res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? '')
      .replace(/^W\//, '')
      .replace(/"/g, '');
    const want = expected ?? (/^[a-f0-9]{64}$/.test(etag) ? etag : undefined);
    const length = Number(res.headers.get('content-length') ?? 0);
    const total = res.status === 416 ? have : have + length;
    const label = want ? want.slice(0, 12) : basename(new URL(url).pathname);
    const digestLabel = want ? `sha256:${want}` : undefined;
    if (res.status !== 416 && res.body) {
      let completed = have;
      let lastReport = 0;
      const body = Readable.fromWeb(res.body as never);
      body.on('data', (chunk: Buffer) => {
        completed += chunk.length;
        const t = Date.now();
        if (t - lastReport > 200) {
          lastReport = t;
          progress({ status: `pulling ${label}`, ...(digestLabel ? { digest: digestLabel } : {}), total, completed });
        }
      });
      await pipeline(body, createWriteStream(partial, { flags: resumed ? 'a' : 'w' }));
    }
    progress({ status: `pulling ${label}`, ...(digestLabel ? { digest: digestLabel } : {}), total, completed: total });
    progress({ status: 'verifying sha256 digest' });
    const hash = createHash('sha256');
    await pipeline(createReadStream(partial), hash);
    const got = hash.digest('hex');
    if (want && got !== want) {
      await rm(partial, { force: true });
      throw new HearthError(
        'PULL_FAILED',
        `digest mismatch: expected sha256:${want}, got sha256:${got}; the download was discarded, pull again`,
      );
    }
    await this.deps.library.putBlob(`sha256:${got}`, createReadStream(partial));
    await rm(partial, { force: true });
    return got;
  }
}

function nameFromFile(file: string): string {
  const stem = basename(file, '.gguf')
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 80);
  if (!stem) throw new HearthError('BAD_REQUEST', `cannot name a model after "${file}"`);
  return `${stem}:latest`;
}
