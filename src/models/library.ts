import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readlink, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AtlasDb } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import type { ModelSpec } from '../engine/types.js';
import { HearthError, isHearthError } from '../errors.js';
import { type ImageModelLayout, readLayout } from '../images/layout.js';
import type { Logger } from '../log.js';
import type { NodeCache } from '../node/index.js';
import { type GgufSummary, summariseGguf } from './gguf-info.js';
import { MANIFEST_TTL_MS, ManifestCache } from './library-cache.js';
import { normaliseModelName } from './names.js';
import { type ModelOptions, parseOptions } from './options.js';
import { checkQuantizeSource, type Quantizer, type QuantizeType, runQuantize } from './quantize.js';

/** A model in the library: a manifest row on the Atlas database pointing at a GGUF blob in the Atlas file store. */
export interface ModelEntry {
  name: string;
  digest: string;
  /** FileStore key of the GGUF (models/blobs/sha256-<hex>, or a registered file elsewhere on Atlas) */
  blobKey: string;
  size: number;
  details: GgufSummary['details'] & { parent_model: string };
  modelInfo: Record<string, unknown>;
  chatTemplate: string | null;
  parameters: ModelOptions;
  system: string | null;
  template: string | null;
  license: string[];
  messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>;
  createdAt: Date;
  modifiedAt: Date;
}

export interface CreateModelRequest {
  model: string;
  /** an existing model's name, or `atlas:<key>` for a GGUF already in the Atlas file store (registered, not copied) */
  from?: string;
  /** file name → `sha256:<hex>` of blobs uploaded with POST /api/blobs (one GGUF) */
  files?: Record<string, string>;
  parameters?: ModelOptions;
  system?: string;
  template?: string;
  license?: string | string[];
  messages?: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>;
  /** `sha256:<hex>` of an uploaded vision projector (an mmproj GGUF); a `files` GGUF of architecture `clip` is one too */
  projector?: string;
  /** quantize the GGUF to this type with llama-quantize (Ollama's `quantize`) */
  quantize?: { type: QuantizeType; quantizer: Quantizer };
}

/** A vision projector layer (llama.cpp's mmproj GGUF), kept in the manifest's model_info under `hearth.projector`. */
export interface ProjectorLayer {
  key: string;
  digest: string;
  size: number;
  /** the projector's GGUF metadata (what `ollama show` prints as projector_info) */
  info: Record<string, unknown>;
}

export const PROJECTOR_INFO = 'hearth.projector';

/** The model's vision projector, or null. */
export function projectorOf(entry: Pick<ModelEntry, 'modelInfo'>): ProjectorLayer | null {
  return (entry.modelInfo[PROJECTOR_INFO] as ProjectorLayer | undefined) ?? null;
}

/** An image model's files: path in the diffusers layout → where the bytes are on Atlas. */
export type ImageFiles = Record<string, { key: string; digest: string; size: number }>;

const DIGEST = /^sha256[:-]([a-f0-9]{64})$/;

export function parseDigest(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) {
    throw new HearthError('BAD_REQUEST', `invalid digest "${digest}": expected sha256:<64 lowercase hex digits>`, {
      details: { param: 'digest' },
    });
  }
  return m[1]!;
}

export const blobKeyFor = (hex: string) => `models/blobs/sha256-${hex}`;

interface ModelRow {
  key: string;
  name: string;
  digest: string;
  blob_key: string;
  size: string | number;
  details: ModelEntry['details'];
  model_info: Record<string, unknown>;
  chat_template: string | null;
  parameters: ModelOptions;
  system: string | null;
  template: string | null;
  license: string[];
  messages: ModelEntry['messages'];
  created_at: Date | string;
  modified_at: Date | string;
}

function fromRow(r: ModelRow): ModelEntry {
  return {
    name: r.name,
    digest: r.digest,
    blobKey: r.blob_key,
    size: Number(r.size),
    details: r.details,
    modelInfo: r.model_info,
    chatTemplate: r.chat_template,
    parameters: r.parameters ?? {},
    system: r.system,
    template: r.template,
    license: r.license ?? [],
    messages: r.messages ?? [],
    createdAt: new Date(r.created_at),
    modifiedAt: new Date(r.modified_at),
  };
}

export interface ModelLibraryDeps {
  db: AtlasDb;
  files: FileStore;
  cache: NodeCache;
  log: Logger;
  /** how long get() may serve a manifest from memory (library-cache.ts); 0: always read Atlas */
  manifestTtlMs?: number;
}

/**
 * The model library. Authoritative on Atlas: blobs in the file store, manifests
 * in the database. The node only ever holds verified cache copies.
 */
export class ModelLibrary {
  private readonly manifests: ManifestCache<ModelEntry>;

  constructor(private readonly deps: ModelLibraryDeps) {
    this.manifests = new ManifestCache({
      db: deps.db,
      log: deps.log,
      ttlMs: deps.manifestTtlMs ?? MANIFEST_TTL_MS,
    });
  }

  async list(): Promise<ModelEntry[]> {
    const rows = await this.deps.db.query<ModelRow>('select * from models order by modified_at desc, key');
    return rows.map(fromRow);
  }

  async find(name: string): Promise<ModelEntry | null> {
    const { key } = normaliseModelName(name);
    const rows = await this.deps.db.query<ModelRow>('select * from models where key = $1', [key]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /**
   * The model, or Ollama's 404: `model "x" not found, try pulling it first`. The request path's
   * lookup: served from the node's copy of the manifest while no change was made or announced
   * (library-cache.ts); find() always reads Atlas.
   */
  async get(name: string): Promise<ModelEntry> {
    const entry = await this.manifests.get(normaliseModelName(name).key, () => this.find(name));
    if (!entry) throw new HearthError('MODEL_NOT_FOUND', `model "${name}" not found, try pulling it first`);
    return entry;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const hex = parseDigest(digest);
    const rows = await this.deps.db.query<{ blob_key: string }>('select blob_key from model_blobs where digest = $1', [
      hex,
    ]);
    const key = rows[0]?.blob_key ?? blobKeyFor(hex);
    return (await this.deps.files.stat(key)) !== null;
  }

  /** Stores an uploaded blob on Atlas, verifying its digest while it streams (nothing is kept on a mismatch). */
  async putBlob(digest: string, body: Readable): Promise<{ created: boolean }> {
    const hex = parseDigest(digest);
    if (await this.hasBlob(digest)) {
      body.resume();
      return { created: false };
    }
    const key = blobKeyFor(hex);
    let stored: { size: number };
    try {
      stored = await this.deps.files.put(key, body, { expectedSha256: hex });
    } catch (err) {
      if (isHearthError(err, 'ATLAS_FILES_DIGEST_MISMATCH')) {
        throw new HearthError('BAD_REQUEST', `digest mismatch: the uploaded data does not hash to sha256:${hex}`, {
          cause: err,
        });
      }
      throw err;
    }
    await this.recordBlob(hex, key, stored.size, false);
    return { created: true };
  }

  private async recordBlob(hex: string, key: string, size: number, registered: boolean): Promise<void> {
    await this.deps.db.query(
      `insert into model_blobs (digest, blob_key, size, registered) values ($1, $2, $3, $4)
       on conflict (digest) do nothing`,
      [hex, key, size, registered],
    );
  }

  /** Creates (or replaces) a model. `progress` gets Ollama-style status lines. */
  async create(req: CreateModelRequest, progress: (status: string) => void = () => {}): Promise<ModelEntry> {
    const target = normaliseModelName(req.model);
    const parameters = parseOptions(req.parameters ?? {}, 'parameters');
    let base: Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>;
    let fileDigests = Object.entries(req.files ?? {});
    let projector: ProjectorLayer | null = null;
    if (req.projector) projector = await this.describeProjector(req.projector, 'projector');
    // Ollama's rule: a GGUF of architecture "clip" among the files is the vision projector layer.
    if (fileDigests.length > 1 || (req.from && fileDigests.length > 0)) {
      const rest: Array<[string, string]> = [];
      for (const [name, digest] of fileDigests) {
        const found = name.toLowerCase().endsWith('.gguf') ? await this.describeProjector(digest, name, true) : null;
        if (!found) rest.push([name, digest]);
        else if (projector) throw new HearthError('BAD_REQUEST', `more than one vision projector: ${name} and another`);
        else projector = found;
      }
      fileDigests = rest;
    }
    if (fileDigests.some(([n]) => n === 'model_index.json')) {
      if (req.from) throw new HearthError('BAD_REQUEST', 'give either "from" or "files", not both');
      base = await this.describeImageUpload(fileDigests, progress);
    } else if (req.from?.startsWith('atlas:') && (await this.isImageFolder(req.from.slice('atlas:'.length)))) {
      base = await this.describeImageFolder(req.from.slice('atlas:'.length).replace(/\/+$/, ''), progress);
    } else if (fileDigests.length > 0) {
      if (req.from) throw new HearthError('BAD_REQUEST', 'give either "from" or "files", not both');
      const ggufs = fileDigests.filter(([n]) => n.toLowerCase().endsWith('.gguf') || fileDigests.length === 1);
      if (ggufs.length !== 1) {
        throw new HearthError(
          'BAD_REQUEST',
          `"files" must hold exactly one GGUF file, got ${fileDigests.map(([n]) => n).join(', ')}`,
        );
      }
      const [fileName, digest] = ggufs[0]!;
      const hex = parseDigest(digest);
      if (!(await this.hasBlob(digest))) {
        throw new HearthError(
          'BAD_REQUEST',
          `blob sha256:${hex} for "${fileName}" has not been uploaded: POST it to /api/blobs/sha256:${hex} first`,
        );
      }
      progress('parsing GGUF');
      base = await this.describeBlob(hex, blobKeyFor(hex), fileName);
    } else if (req.from?.startsWith('atlas:')) {
      const key = req.from.slice('atlas:'.length);
      const stat = await this.deps.files.stat(key);
      if (!stat)
        throw new HearthError(
          'MODEL_INVALID',
          `from: ${key} does not exist in the Atlas file store (${this.deps.files.describe})`,
        );
      progress(`hashing ${key}`);
      const hex = await this.deps.files.hash(key);
      base = await this.describeBlob(hex, key, key);
      await this.recordBlob(hex, key, stat.size, true);
    } else if (req.from) {
      const parent = await this.get(req.from);
      base = { ...parent, details: { ...parent.details, parent_model: parent.name } };
    } else {
      throw new HearthError('BAD_REQUEST', 'nothing to create from: give "from" (a model or atlas:<path>) or "files"');
    }

    if (req.template !== undefined && req.template.trim() !== '' && req.template !== base.chatTemplate) {
      throw new HearthError(
        'MODELFILE_INVALID',
        'TEMPLATE cannot be honoured: hearth formats prompts with the chat template embedded in the GGUF ' +
          '(tokenizer.chat_template), through llama.cpp. Remove TEMPLATE, or use a GGUF that carries the template you want.',
      );
    }
    if (req.quantize) base = await this.quantized(base, req.quantize, progress);
    const license = req.license === undefined ? base.license : Array.isArray(req.license) ? req.license : [req.license];
    if (projector) {
      if (this.imageFiles(base as ModelEntry)) {
        throw new HearthError('BAD_REQUEST', 'a vision projector belongs to a GGUF language model, not an image model');
      }
      progress(`using projector sha256:${projector.digest}`);
      base = { ...base, modelInfo: { ...base.modelInfo, [PROJECTOR_INFO]: projector } };
    }
    const entry = {
      ...base,
      parameters: { ...base.parameters, ...parameters },
      system: req.system ?? base.system,
      template: req.template ?? base.template,
      license,
      messages: req.messages ?? base.messages,
    };
    progress('writing manifest');
    const rows = await this.deps.db.query<ModelRow>(
      `insert into models (key, name, digest, blob_key, size, details, model_info, chat_template, parameters, system, template, license, messages)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       on conflict (key) do update set name = excluded.name, digest = excluded.digest, blob_key = excluded.blob_key,
         size = excluded.size, details = excluded.details, model_info = excluded.model_info,
         chat_template = excluded.chat_template, parameters = excluded.parameters, system = excluded.system,
         template = excluded.template, license = excluded.license, messages = excluded.messages, modified_at = now()
       returning *`,
      [
        target.key,
        target.display,
        entry.digest,
        entry.blobKey,
        entry.size,
        JSON.stringify(entry.details),
        JSON.stringify(entry.modelInfo),
        entry.chatTemplate,
        JSON.stringify(entry.parameters),
        entry.system,
        entry.template,
        JSON.stringify(entry.license),
        JSON.stringify(entry.messages),
      ],
    );
    await this.manifests.changed(target.key);
    return fromRow(rows[0]!);
  }

  /**
   * The model quantized by llama-quantize: the source comes through the node
   * cache, the result goes to Atlas through the blob writer (temporary name,
   * then rename: never half-written), and the manifest points at it.
   */
  private async quantized(
    base: Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>,
    quantize: NonNullable<CreateModelRequest['quantize']>,
    progress: (status: string) => void,
  ): Promise<Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>> {
    if (this.imageFiles(base as ModelEntry)) {
      throw new HearthError('BAD_REQUEST', 'quantize applies to GGUF language models, not image models', {
        details: { param: 'quantize' },
      });
    }
    const level = base.details.quantization_level;
    checkQuantizeSource(level);
    progress(`quantizing ${level} model to ${quantize.type.toUpperCase()}`);
    const source = await this.deps.cache.ensureBlob(this.deps.files, base.blobKey, base.digest);
    let out: Awaited<ReturnType<typeof runQuantize>>;
    try {
      out = await runQuantize(quantize.quantizer, source.path, quantize.type, this.deps.cache.dir, (line) =>
        this.deps.log.debug({ component: 'llama-quantize' }, line),
      );
    } finally {
      source.release();
    }
    try {
      const hash = createHash('sha256');
      await pipeline(createReadStream(out.path), hash);
      const hex = hash.digest('hex');
      await this.putBlob(`sha256:${hex}`, createReadStream(out.path));
      const described = await this.describeBlob(hex, blobKeyFor(hex), `${quantize.type} model`);
      return {
        ...base,
        ...described,
        details: { ...described.details, parent_model: base.details.parent_model },
        // a parent's projector stays with the quantized model
        modelInfo: { ...described.modelInfo, ...(projectorOf(base) ? { [PROJECTOR_INFO]: projectorOf(base) } : {}) },
        parameters: base.parameters,
        system: base.system,
        template: base.template,
        license: base.license,
        messages: base.messages,
      };
    } finally {
      await out.cleanup();
    }
  }

  /**
   * An uploaded mmproj GGUF as a projector layer. `onlyIfClip`: null when the
   * file is not one (architecture other than `clip`) instead of an error.
   */
  private async describeProjector(digest: string, label: string, onlyIfClip = false): Promise<ProjectorLayer | null> {
    const hex = parseDigest(digest);
    if (!(await this.hasBlob(digest))) {
      throw new HearthError(
        'BAD_REQUEST',
        `blob sha256:${hex} for "${label}" has not been uploaded: POST it to /api/blobs/sha256:${hex} first`,
      );
    }
    const described = await this.describeBlob(hex, blobKeyFor(hex), label);
    if (described.details.family !== 'clip') {
      if (onlyIfClip) return null;
      throw new HearthError(
        'MODEL_INVALID',
        `${label} is not a vision projector: its GGUF architecture is "${described.details.family}", a projector's (mmproj) is "clip"`,
      );
    }
    return { key: described.blobKey, digest: hex, size: described.size, info: described.modelInfo };
  }

  private async describeBlob(
    hex: string,
    key: string,
    label: string,
  ): Promise<Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>> {
    const stat = await this.deps.files.stat(key);
    if (!stat) throw new HearthError('MODEL_INVALID', `${label}: blob ${key} is missing from Atlas`);
    const local = this.deps.files.localPath(key);
    let summary: GgufSummary;
    if (local) {
      summary = await summariseGguf(local, label);
    } else {
      const cached = await this.deps.cache.ensureBlob(this.deps.files, key, hex);
      try {
        summary = await summariseGguf(cached.path, label);
      } finally {
        cached.release();
      }
    }
    return {
      digest: hex,
      blobKey: key,
      size: stat.size,
      details: { ...summary.details, parent_model: '' },
      modelInfo: summary.modelInfo,
      chatTemplate: summary.chatTemplate,
      parameters: {},
      system: null,
      template: null,
      license: [],
      messages: [],
    };
  }

  /** An Atlas key that is a folder holding model_index.json (a diffusers layout registered in place). */
  private async isImageFolder(key: string): Promise<boolean> {
    const folder = key.replace(/\/+$/, '');
    return (await this.deps.files.stat(`${folder}/model_index.json`)) !== null;
  }

  /** A diffusers ONNX layout registered in place on Atlas: every file hashed, nothing copied. */
  private async describeImageFolder(
    folder: string,
    progress: (status: string) => void,
  ): Promise<Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>> {
    const files: ImageFiles = {};
    for (const f of await this.deps.files.list(`${folder}/`)) {
      progress(`hashing ${f.key}`);
      files[f.key.slice(folder.length + 1)] = { key: f.key, digest: await this.deps.files.hash(f.key), size: f.size };
    }
    return this.describeImage(files, `${folder}/model_index.json`);
  }

  /** A diffusers ONNX layout uploaded file by file (hearth create with FROM ./folder): blobs on Atlas. */
  private async describeImageUpload(
    fileDigests: Array<[string, string]>,
    progress: (status: string) => void,
  ): Promise<Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>> {
    const files: ImageFiles = {};
    for (const [name, digest] of fileDigests) {
      const rel = name.replace(/\\/g, '/');
      if (rel.startsWith('/') || rel.split('/').some((p) => p === '..' || p === ''))
        throw new HearthError('BAD_REQUEST', `"files": ${JSON.stringify(name)} must be a relative path without ..`);
      const hex = parseDigest(digest);
      const stat = await this.deps.files.stat(blobKeyFor(hex));
      if (!stat)
        throw new HearthError(
          'BAD_REQUEST',
          `blob sha256:${hex} for "${name}" has not been uploaded: POST it to /api/blobs/sha256:${hex} first`,
        );
      files[rel] = { key: blobKeyFor(hex), digest: hex, size: stat.size };
    }
    progress('checking the diffusers layout');
    return this.describeImage(files, files['model_index.json']!.key);
  }

  /** Checks the layout through a node-cache view of it and describes the image model. */
  private async describeImage(
    files: ImageFiles,
    indexKey: string,
  ): Promise<Omit<ModelEntry, 'name' | 'createdAt' | 'modifiedAt'>> {
    const manifest = JSON.stringify(
      Object.entries(files)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([rel, f]) => [rel, f.digest]),
    );
    const digest = createHash('sha256').update(manifest).digest('hex');
    const view = await this.imageView({ digest, files });
    let layout: ImageModelLayout;
    try {
      layout = await readLayout(view.dir);
    } finally {
      view.release();
    }
    const size = Object.values(files).reduce((a, f) => a + f.size, 0);
    return {
      digest,
      blobKey: indexKey,
      size,
      details: {
        parent_model: '',
        format: 'onnx',
        family: layout.family === 'sdxl' ? 'sdxl' : 'stable-diffusion',
        families: [layout.family === 'sdxl' ? 'sdxl' : 'stable-diffusion'],
        parameter_size: '',
        quantization_level: '',
      },
      modelInfo: { 'hearth.type': 'image', 'image.pipeline': layout.pipelineClass, 'image.files': files },
      chatTemplate: null,
      parameters: {},
      system: null,
      template: null,
      license: [],
      messages: [],
    };
  }

  /**
   * A folder on the node that looks like the layout: each file a link to its verified copy in the node
   * cache (pinned until `release`). ONNX Runtime reads models and their external data from there.
   */
  async imageView(entry: { digest: string; files: ImageFiles }): Promise<{ dir: string; release: () => void }> {
    const dir = join(this.deps.cache.dir, 'images', entry.digest);
    const pins: Array<{ release(): void }> = [];
    try {
      for (const [rel, f] of Object.entries(entry.files)) {
        const blob = await this.deps.cache.ensureBlob(this.deps.files, f.key, f.digest);
        pins.push(blob);
        const link = join(dir, rel);
        await mkdir(dirname(link), { recursive: true });
        const current = await readlink(link).catch(() => null);
        if (current !== blob.path) {
          await rm(link, { force: true });
          await symlink(blob.path, link);
        }
      }
    } catch (err) {
      for (const p of pins) p.release();
      throw err;
    }
    return { dir, release: () => pins.forEach((p) => void p.release()) };
  }

  /** The files of an image model (null for a GGUF model). */
  imageFiles(entry: ModelEntry): ImageFiles | null {
    return entry.modelInfo['hearth.type'] === 'image' ? (entry.modelInfo['image.files'] as ImageFiles) : null;
  }

  async copy(source: string, destination: string): Promise<void> {
    const src = await this.get(source);
    const dst = normaliseModelName(destination);
    await this.deps.db.query(
      `insert into models (key, name, digest, blob_key, size, details, model_info, chat_template, parameters, system, template, license, messages, created_at)
       select $2, $3, digest, blob_key, size, details, model_info, chat_template, parameters, system, template, license, messages, now()
       from models where key = $1
       on conflict (key) do update set name = excluded.name, digest = excluded.digest, blob_key = excluded.blob_key,
         size = excluded.size, details = excluded.details, model_info = excluded.model_info, chat_template = excluded.chat_template,
         parameters = excluded.parameters, system = excluded.system, template = excluded.template,
         license = excluded.license, messages = excluded.messages, modified_at = now()`,
      [normaliseModelName(src.name).key, dst.key, dst.display],
    );
    await this.manifests.changed(dst.key);
  }

  /** Deletes a model; its blob goes too when no other model uses it (registered files on Atlas are never deleted). */
  async delete(name: string): Promise<ModelEntry> {
    const entry = await this.get(name);
    const { key } = normaliseModelName(name);
    await this.deps.db.query('delete from models where key = $1', [key]);
    await this.manifests.changed(key);
    await this.dropBlobIfUnused(entry.digest, entry.blobKey);
    const projector = projectorOf(entry);
    if (projector) await this.dropBlobIfUnused(projector.digest, projector.key);
    return entry;
  }

  /** Deletes a blob no model uses any more, as the model or as its projector (registered files on Atlas stay). */
  private async dropBlobIfUnused(digest: string, blobKey: string): Promise<void> {
    const users = await this.deps.db.query<{ n: string | number }>(
      `select count(*) as n from models where digest = $1 or model_info->'${PROJECTOR_INFO}'->>'digest' = $1`,
      [digest],
    );
    if (Number(users[0]?.n ?? 0) > 0) return;
    const blobs = await this.deps.db.query<{ registered: boolean }>(
      'select registered from model_blobs where digest = $1',
      [digest],
    );
    if (!blobs[0]?.registered && blobKey === blobKeyFor(digest)) {
      await this.deps.db.query('delete from model_blobs where digest = $1', [digest]);
      await this.deps.files.delete(blobKey);
    }
  }

  /** The blob's path on Atlas when the file store is a local folder or mount (metadata reads only; loads use the cache). */
  localPath(entry: ModelEntry): string | undefined {
    return this.deps.files.localPath(entry.blobKey);
  }

  /** The engine's view of a model: the blob comes through the node cache, verified. */
  spec(entry: ModelEntry): ModelSpec {
    const { files, cache } = this.deps;
    if (this.imageFiles(entry))
      throw new HearthError(
        'MODEL_INVALID',
        `"${entry.name}" is an image model: use it in a workflow (CheckpointLoaderSimple), /v1/images/generations or hearth imagine`,
      );
    const resolver = (key: string, digest: string) => async () => {
      const cached = await cache.ensureBlob(files, key, digest);
      return { path: cached.path, release: () => cached.release() };
    };
    const projector = projectorOf(entry);
    return {
      name: entry.name,
      digest: entry.digest,
      size: entry.size,
      resolveFile: resolver(entry.blobKey, entry.digest),
      ...(projector
        ? { projector: { digest: projector.digest, resolveFile: resolver(projector.key, projector.digest) } }
        : {}),
    };
  }
}
