import { createHash, randomBytes } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import { type FileStore, validateKey } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import { HearthError, isHearthError } from '../errors.js';
import type { JobService, SqlRunner } from '../jobs/index.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { formatBytes } from '../units.js';
import { VectorIndexCache } from './cache.js';
import { mediaTypeOf, unsupportedMessage } from './extract.js';
import { reciprocalRankFusion } from './fusion.js';
import { KnowledgeIngestion } from './ingest.js';
import { rerankerChoice, rerankHits } from './rerank.js';
import type { SearchMode } from './vectors.js';
import { SHARING } from './vocabulary.js';

/** Knowledge settings (config `knowledge.*`). */
export interface KnowledgeSettings {
  /** the embedding model a base uses when it names none ('' = it must name one) */
  embeddingModel: string;
  chunkTokens: number;
  chunkOverlap: number;
  /** the largest document accepted, in bytes */
  maxFileBytes: number;
  /** chunks put into a chat's prompt */
  topK: number;
  /** the system text that carries retrieved chunks into a chat; `{{sources}}` becomes them */
  template: string;
  /** the reranker model that orders retrieved chunks ('' or absent: the fusion order) */
  reranker?: string;
}

/** Who is asking: a UI user, or an API key / open listener (no user: sees shared bases only). */
export interface Viewer {
  userId: string | null;
  admin?: boolean;
}

/** Where the service reports what it did (Prometheus, src/metrics). */
export interface KnowledgeObserver {
  ingested(documents: number, chunks: number): void;
  queried(seconds: number): void;
}

export interface KnowledgeServiceOptions {
  db: AtlasDb;
  files: FileStore;
  engine: Pick<Engine, 'embed' | 'rerank'>;
  inference: Pick<InferencePlanner, 'prepare' | 'capabilities' | 'embedding' | 'rerank'>;
  log: Logger;
  /** `<node.cacheDir>/knowledge`: the vector index cache */
  cacheDir: string;
  settings: KnowledgeSettings;
  observer?: KnowledgeObserver;
}

export { SHARING };
export type Sharing = (typeof SHARING)[number];

export interface KnowledgeBase {
  id: string;
  name: string;
  description: string;
  owner_id: string | null;
  sharing: Sharing;
  embedding_model: string;
  chunk_tokens: number;
  chunk_overlap: number;
  documents: number;
  documents_pending: number;
  documents_failed: number;
  chunks: number;
  created_at: string;
  updated_at: string;
}

export interface KnowledgeDocument {
  id: string;
  name: string;
  file_key: string;
  sha256: string;
  size: number;
  media_type: string;
  state: 'pending' | 'ready' | 'failed';
  error: string | null;
  chunks: number;
  tokens: number;
  job_id: string | null;
  /** pending: chunks embedded so far by the attempt working on it (null when none is) */
  embedded: number | null;
  created_at: string;
}

/** What happened to each file of an upload (a bad file never blocks the rest). */
export interface AddedFile {
  name: string;
  status: 'added' | 'duplicate' | 'refused';
  /** the document: the new one, or the one that already holds these bytes */
  document?: string;
  /** why it was refused */
  error?: string;
}

export interface AddResult {
  /** the ingestion job (null when nothing new was added) */
  job: string | null;
  files: AddedFile[];
}

/** One retrieved chunk. */
export interface KnowledgeHit {
  chunk_id: number;
  base: string;
  document: { id: string; name: string };
  position: number;
  heading: string;
  text: string;
  /** the reciprocal-rank-fusion score */
  score: number;
  /** rank on the full-text side (1 = best), null if it did not match there */
  text_rank: number | null;
  /** rank on the vector side, and the cosine similarity */
  vector_rank: number | null;
  vector_score: number | null;
  /** the reranker's relevance score, when a reranker ordered the results */
  rerank_score?: number;
}

/** A numbered source of an answer, as stored with the reply and shown in the UI. */
export interface Citation {
  n: number;
  base: string;
  document: string;
  document_id: string;
  chunk_id: number;
  heading: string;
  text: string;
  score: number;
  rerank_score?: number;
}

export interface QueryOptions {
  /** chunks returned (default 5, at most 50) */
  limit?: number;
  /** vector side: 'indexed' (default) or 'exact' */
  mode?: SearchMode;
  /** rerank the fused candidates: false (no), true (with knowledge.reranker), a reranker model's name; default: knowledge.reranker if set */
  rerank?: boolean | string;
  /** a reranker that fails is logged and the fusion order kept (chat retrieval), instead of an error */
  rerankFallback?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Candidates each side of the hybrid search hands to fusion. */
const CANDIDATES = 40;

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));

/**
 * Knowledge bases: documents whose originals are on Atlas files and whose chunks (text, heading path,
 * embedding, full-text vector) are rows on the Atlas database; ingestion runs as jobs on the batch-job
 * machinery (exactly once, resumable, any node); retrieval fuses PostgreSQL full-text search with a
 * vector search over a node-cached index (docs/knowledge.md).
 */
export class KnowledgeService {
  private readonly o: KnowledgeServiceOptions;
  readonly index: VectorIndexCache;
  /** the job kind's shard handler, for JobService.open */
  readonly ingestion: KnowledgeIngestion;
  private jobs: JobService | undefined;

  constructor(opts: KnowledgeServiceOptions) {
    this.o = opts;
    this.index = new VectorIndexCache({ dir: opts.cacheDir, db: opts.db, log: opts.log });
    this.ingestion = new KnowledgeIngestion({
      db: opts.db,
      files: opts.files,
      engine: opts.engine,
      inference: opts.inference,
      log: opts.log,
      ...(opts.observer ? { observer: opts.observer } : {}),
    });
  }

  get settings(): KnowledgeSettings {
    return this.o.settings;
  }

  /** The job service ingestion is submitted to (made after this service, since it runs its handler). */
  attachJobs(jobs: JobService): void {
    this.jobs = jobs;
  }

  // ---- bases ----

  async create(
    viewer: Viewer,
    input: {
      name: string;
      description?: string;
      sharing?: Sharing;
      embedding_model?: string;
      chunk_tokens?: number;
      chunk_overlap?: number;
    },
  ): Promise<KnowledgeBase> {
    const s = this.o.settings;
    if (!NAME.test(input.name)) {
      throw invalid(
        'name',
        `name ${JSON.stringify(input.name)} is not valid: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (chats attach it as #name)`,
      );
    }
    const sharing = input.sharing ?? (viewer.userId ? 'private' : 'shared');
    if (!viewer.userId && sharing === 'private') {
      throw invalid(
        'sharing',
        'a base made with an API key has no owning user, so it must be shared: create private bases in the chat UI',
      );
    }
    const model = input.embedding_model ?? s.embeddingModel;
    if (!model) {
      throw invalid(
        'embedding_model',
        'embedding_model is required (no knowledge.embeddingModel is configured): name an embedding model from the library',
      );
    }
    await this.checkEmbeddingModel(model);
    const chunkTokens = input.chunk_tokens ?? s.chunkTokens;
    const overlap = input.chunk_overlap ?? Math.min(s.chunkOverlap, Math.floor(chunkTokens / 2));
    if (overlap > chunkTokens / 2) {
      throw invalid('chunk_overlap', `chunk_overlap ${overlap} must be at most half of chunk_tokens (${chunkTokens})`);
    }
    const id = randomBytes(8).toString('hex');
    try {
      await this.o.db.query(
        `insert into knowledge_bases (id, name, description, owner_id, sharing, embedding_model, chunk_tokens, chunk_overlap)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [id, input.name, input.description ?? '', viewer.userId, sharing, model, chunkTokens, overlap],
      );
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new HearthError('KNOWLEDGE_EXISTS', [JSON.stringify(input.name)], {
          details: { param: 'name' },
        });
      }
      throw err;
    }
    return this.get(viewer, id);
  }

  /** The bases `viewer` sees: their own and the shared ones (API keys: shared only). */
  async list(viewer: Viewer): Promise<KnowledgeBase[]> {
    const rows = await this.o.db.query(`${BASE_SQL} where ${VISIBLE} order by b.name`, [viewer.userId]);
    return rows.map(toBase);
  }

  /** A base by id or name, if `viewer` sees it. */
  async get(viewer: Viewer, ref: string): Promise<KnowledgeBase> {
    return toBase(await this.baseRow(viewer, ref));
  }

  /** The base's row (its `generation` included: a query needs it to know whether its index is current). */
  private async baseRow(viewer: Viewer, ref: string): Promise<Record<string, unknown>> {
    const [row] = await this.o.db.query(`${BASE_SQL} where (b.id = $2 or b.name = $2) and ${VISIBLE}`, [
      viewer.userId,
      ref,
    ]);
    if (!row) throw notFound(ref);
    return row;
  }

  async update(
    viewer: Viewer,
    ref: string,
    patch: { description?: string; sharing?: Sharing },
  ): Promise<KnowledgeBase> {
    const base = await this.writable(viewer, ref);
    if (patch.sharing === 'private' && !base.owner_id) {
      throw invalid('sharing', 'this base has no owning user (it was made with an API key), so it stays shared');
    }
    await this.o.db.query(
      `update knowledge_bases set description = coalesce($2, description), sharing = coalesce($3, sharing), updated_at = now()
        where id = $1`,
      [base.id, patch.description ?? null, patch.sharing ?? null],
    );
    return this.get(viewer, base.id);
  }

  /** Deletes a base, its documents and chunks, and the originals it uploaded (files registered in place stay). */
  async remove(viewer: Viewer, ref: string): Promise<void> {
    const base = await this.writable(viewer, ref);
    const uploaded = await this.o.db.query<{ file_key: string }>(
      `select file_key from knowledge_documents where base_id = $1 and file_key like $2`,
      [base.id, `${uploadFolder(base.id)}/%`],
    );
    await this.o.db.query(`delete from knowledge_bases where id = $1`, [base.id]);
    await this.index.drop(base.id);
    for (const { file_key } of uploaded) await this.o.files.delete(file_key).catch(() => false);
  }

  // ---- documents ----

  async documents(viewer: Viewer, ref: string): Promise<KnowledgeDocument[]> {
    const base = await this.get(viewer, ref);
    // A pending document's live progress: chunks embedded so far by the attempt that holds its shard.
    const rows = await this.o.db.query(
      `select d.*, s.done as embedded
         from knowledge_documents d
         left join job_shards s on s.job_id = d.job_id and s.state = 'running' and s.range ->> 'document' = d.id
        where d.base_id = $1 order by d.created_at, d.name, d.id`,
      [base.id],
    );
    return rows.map(toDocument);
  }

  /**
   * Stores uploaded files on Atlas (with their sha256) and queues their ingestion. Identical bytes
   * already in the base are a no-op ('duplicate'); an unsupported type or a file over the size limit is
   * refused with its reason, and the other files go on.
   */
  async addFiles(
    viewer: Viewer,
    ref: string,
    files: ReadonlyArray<{ name: string; bytes: Buffer }>,
  ): Promise<AddResult> {
    const base = await this.writable(viewer, ref);
    const results: AddedFile[] = [];
    const fresh: NewDocument[] = [];
    for (const file of files) {
      const name = displayName(file.name);
      const problem = this.refusal(name, file.bytes.length);
      if (problem) {
        results.push({ name, status: 'refused', error: problem });
        continue;
      }
      const sha256 = createHash('sha256').update(file.bytes).digest('hex');
      const known = await this.existing(base.id, sha256, fresh);
      if (known) {
        results.push({ name, status: 'duplicate', document: known });
        continue;
      }
      const key = `${uploadFolder(base.id)}/${sha256.slice(0, 16)}/${safeSegment(name)}`;
      await this.o.files.put(key, file.bytes, { expectedSha256: sha256 });
      const doc: NewDocument = {
        id: randomBytes(8).toString('hex'),
        name,
        key,
        sha256,
        size: file.bytes.length,
        mediaType: mediaTypeOf(name)!,
      };
      fresh.push(doc);
      results.push({ name, status: 'added', document: doc.id });
    }
    return { job: await this.ingest(base, fresh), files: results };
  }

  /** Registers every file under an Atlas folder in place (no copy) and queues their ingestion. */
  async addFolder(viewer: Viewer, ref: string, folder: string): Promise<AddResult> {
    const base = await this.writable(viewer, ref);
    const prefix = folder.replace(/\/+$/, '');
    validateKey(prefix);
    const listed = await this.o.files.list(`${prefix}/`);
    if (listed.length === 0) {
      throw invalid('folder', `the Atlas folder ${prefix}/ holds no files: upload them first (hearth files put)`);
    }
    const results: AddedFile[] = [];
    const fresh: NewDocument[] = [];
    for (const file of listed) {
      const name = file.key.slice(prefix.length + 1);
      const problem = this.refusal(name, file.size);
      if (problem) {
        results.push({ name, status: 'refused', error: problem });
        continue;
      }
      const sha256 = await this.o.files.hash(file.key);
      const known = await this.existing(base.id, sha256, fresh);
      if (known) {
        results.push({ name, status: 'duplicate', document: known });
        continue;
      }
      const doc: NewDocument = {
        id: randomBytes(8).toString('hex'),
        name,
        key: file.key,
        sha256,
        size: file.size,
        mediaType: mediaTypeOf(name)!,
      };
      fresh.push(doc);
      results.push({ name, status: 'added', document: doc.id });
    }
    return { job: await this.ingest(base, fresh), files: results };
  }

  /** Deletes a document and its chunks (and its original, when the base uploaded it). */
  async removeDocument(viewer: Viewer, ref: string, documentId: string): Promise<void> {
    const base = await this.writable(viewer, ref);
    // One statement: the chunks go with the document (on delete cascade), and the index goes stale.
    const rows = await this.o.db.query<{ file_key: string }>(
      `with gone as (delete from knowledge_documents where base_id = $1 and id = $2 returning file_key),
            bumped as (update knowledge_bases set generation = generation + 1, updated_at = now()
                        where id = $1 and exists (select 1 from gone) returning id)
       select file_key from gone, (select count(*) from bumped) b`,
      [base.id, documentId],
    );
    const [row] = rows;
    if (!row) {
      throw new HearthError('KNOWLEDGE_DOCUMENT_NOT_FOUND', [base.name, JSON.stringify(documentId), base.name], {
        details: { document: documentId },
      });
    }
    if (row.file_key.startsWith(`${uploadFolder(base.id)}/`))
      await this.o.files.delete(row.file_key).catch(() => false);
  }

  // ---- retrieval ----

  /**
   * Hybrid retrieval over one or more bases: PostgreSQL full-text search (any of the query's words,
   * ranked by ts_rank_cd) and vector similarity (the node-cached index), fused by reciprocal rank.
   */
  async query(viewer: Viewer, refs: readonly string[], text: string, opts: QueryOptions = {}): Promise<KnowledgeHit[]> {
    const started = performance.now();
    const limit = Math.min(Math.max(opts.limit ?? 5, 1), 50);
    if (text.trim() === '') throw invalid('query', 'query is empty: send the text to search for');
    const reranker = rerankerChoice(opts.rerank, this.o.settings.reranker ?? '');
    const candidates = Math.max(CANDIDATES, limit * 4);
    // The full-text side names the bases as the caller did and checks visibility itself, so it runs
    // while the bases are looked up (the vector side needs their model and generation first).
    const textSide = this.textSearch(viewer, refs, text, candidates);
    textSide.catch(() => undefined); // awaited below; a base that is not found throws first
    const rows = await Promise.all(refs.map((ref) => this.baseRow(viewer, ref)));
    const bases = rows.map((row) => ({ ...toBase(row), generation: num(row['generation']) }));
    const [textIds, vectorHits] = await Promise.all([
      textSide,
      this.vectorSearch(bases, text, candidates, opts.mode ?? 'indexed'),
    ]);
    const vectorIds = vectorHits.map((h) => h.id);
    // A reranker orders all the candidates; without one, the fusion order is cut to the limit.
    const fused = reciprocalRankFusion([textIds, vectorIds]).slice(0, reranker ? candidates : limit);
    const chunks = await this.o.db.query(
      `select c.id, c.position, c.heading, c.text, d.id as document_id, d.name as document_name, b.name as base
         from knowledge_chunks c join knowledge_documents d on d.id = c.document_id join knowledge_bases b on b.id = c.base_id
        where c.id = any($1::bigint[])`,
      [fused.map((f) => f.id)],
    );
    const byId = new Map(chunks.map((r) => [Number(r['id']), r]));
    const similarity = new Map(vectorHits.map((h) => [h.id, h.score]));
    const hits: KnowledgeHit[] = [];
    for (const f of fused) {
      const row = byId.get(f.id);
      if (!row) continue; // deleted since the index was built
      hits.push({
        chunk_id: f.id,
        base: String(row['base']),
        document: { id: String(row['document_id']), name: String(row['document_name']) },
        position: num(row['position']),
        heading: String(row['heading']),
        text: String(row['text']),
        score: f.score,
        text_rank: f.ranks[0] ?? null,
        vector_rank: f.ranks[1] ?? null,
        vector_score: similarity.get(f.id) ?? null,
      });
    }
    const ranked = reranker
      ? await rerankHits(this.o, reranker, text, hits, limit, opts.rerankFallback === true)
      : hits;
    this.o.observer?.queried((performance.now() - started) / 1000);
    return ranked;
  }

  /**
   * What a chat with knowledge attached needs: the system text (the configured template with the
   * numbered sources) and the citations to store with the reply. Null when nothing was found.
   */
  async retrieve(
    viewer: Viewer,
    refs: readonly string[],
    question: string,
  ): Promise<{ system: string; citations: Citation[] } | null> {
    if (refs.length === 0 || question.trim() === '') return null;
    const hits = await this.query(viewer, refs, question, { limit: this.o.settings.topK, rerankFallback: true });
    if (hits.length === 0) return null;
    const citations = hits.map((h, i) => ({
      n: i + 1,
      base: h.base,
      document: h.document.name,
      document_id: h.document.id,
      chunk_id: h.chunk_id,
      heading: h.heading,
      text: h.text,
      score: h.score,
      ...(h.rerank_score !== undefined ? { rerank_score: h.rerank_score } : {}),
    }));
    const sources = citations
      .map((c) => `[${c.n}] ${c.document}${c.heading ? ` › ${c.heading}` : ''}\n${c.text}`)
      .join('\n\n');
    return { system: this.o.settings.template.replaceAll('{{sources}}', sources), citations };
  }

  /**
   * Full-text side: chunk ids matching any of the query's words, best ts_rank_cd first, in the bases
   * `refs` names (ids or names) that `viewer` sees. The GIN index on the stored `search` column finds
   * the matches; ranking them costs little next to reading their rows (docs/knowledge.md, Speed).
   */
  private async textSearch(viewer: Viewer, refs: readonly string[], text: string, limit: number): Promise<number[]> {
    const rows = await this.o.db.query<{ id: string | number }>(
      `with q as (select nullif(replace(plainto_tsquery('english', $3)::text, ' & ', ' | '), '') as t)
       select c.id from knowledge_chunks c, q
        where q.t is not null and c.search @@ q.t::tsquery
          and c.base_id in (select b.id from knowledge_bases b
                             where (b.id = any($2::text[]) or b.name = any($2::text[])) and ${VISIBLE})
        order by ts_rank_cd(c.search, q.t::tsquery) desc, c.id
        limit $4`,
      [viewer.userId, [...refs], text, limit],
    );
    return rows.map((r) => Number(r.id));
  }

  /** Vector side: the query embedded with each base's model, searched in each base's index. */
  private async vectorSearch(
    bases: Array<KnowledgeBase & { generation: number }>,
    text: string,
    limit: number,
    mode: SearchMode,
  ): Promise<Array<{ id: number; score: number }>> {
    const vectors = new Map<string, number[]>();
    const hits: Array<{ id: number; score: number }> = [];
    for (const base of bases) {
      if (base.chunks === 0) continue;
      let vector = vectors.get(base.embedding_model);
      if (!vector) {
        vector = await this.ingestion.embedQuery(base.embedding_model, text);
        vectors.set(base.embedding_model, vector);
      }
      const index = await this.index.get(base.id, base.generation);
      if (index.dims !== vector.length) continue;
      hits.push(...index.search(vector, limit, mode));
    }
    return hits.sort((a, b) => b.score - a.score).slice(0, limit);
  }

  private async checkEmbeddingModel(model: string): Promise<void> {
    const prepared = await this.o.inference.prepare(model, {}, undefined).catch((err: unknown) => {
      if (isHearthError(err, 'MODEL_NOT_FOUND')) {
        throw new HearthError(
          'MODEL_NOT_FOUND',
          `embedding model ${JSON.stringify(model)} is not in the library: create or pull it first (hearth models ls lists them)`,
          {
            details: { param: 'embedding_model' },
          },
        );
      }
      throw err;
    });
    const caps = await this.o.inference.capabilities(prepared.entry);
    if (!caps.includes('embedding')) {
      throw new HearthError(
        'ENGINE_CAPABILITY',
        `model ${JSON.stringify(model)} cannot make embeddings: choose an embedding model`,
        {
          details: { param: 'embedding_model' },
        },
      );
    }
  }

  /** The base, if `viewer` may change it: its owner, an admin, or (for an ownerless base) an API key. */
  private async writable(viewer: Viewer, ref: string): Promise<KnowledgeBase> {
    const base = await this.get(viewer, ref);
    if (viewer.admin || base.owner_id === viewer.userId) return base;
    throw new HearthError(
      'AUTH_FORBIDDEN',
      `knowledge base ${base.name} belongs to another user: only its owner or an admin can change it`,
    );
  }

  private refusal(name: string, size: number): string | null {
    if (!mediaTypeOf(name)) return unsupportedMessage(name);
    const max = this.o.settings.maxFileBytes;
    if (size > max) {
      return `${name}: is ${formatBytes(size)}, over the ${formatBytes(max)} limit for documents (knowledge.maxFileSize): split it, or raise the limit`;
    }
    if (size === 0) return `${name}: is empty`;
    return null;
  }

  private async existing(baseId: string, sha256: string, fresh: NewDocument[]): Promise<string | null> {
    const same = fresh.find((d) => d.sha256 === sha256);
    if (same) return same.id;
    const [row] = await this.o.db.query<{ id: string }>(
      `select id from knowledge_documents where base_id = $1 and sha256 = $2`,
      [baseId, sha256],
    );
    return row?.id ?? null;
  }

  /** Records the documents and queues one ingestion job over them (one shard per document), atomically. */
  private async ingest(base: KnowledgeBase, docs: NewDocument[]): Promise<string | null> {
    if (docs.length === 0) return null;
    if (!this.jobs) throw new HearthError('INTERNAL', 'knowledge: no job service to run ingestion on');
    const prepared = await this.o.inference.prepare(base.embedding_model, {}, undefined);
    const output = `${uploadFolder(base.id)}/jobs/${randomBytes(6).toString('hex')}`;
    return this.jobs.submitPlanned(
      {
        kind: 'knowledge',
        spec: {
          type: 'knowledge',
          base: base.id,
          model: base.embedding_model,
          input: `knowledge:${base.name}`,
          output,
        },
        modelDigest: prepared.entry.digest,
        shards: docs.map((d) => ({ range: { document: d.id }, records: 1 })),
        summary: `ingest ${docs.length} document(s) into knowledge base ${base.name} with ${base.embedding_model}`,
      },
      async (tx: SqlRunner, jobId: string) => {
        for (const d of docs) {
          await tx.query(
            `insert into knowledge_documents (id, base_id, name, file_key, sha256, size, media_type, state, job_id)
             values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) on conflict (base_id, sha256) do nothing`,
            [d.id, base.id, d.name, d.key, d.sha256, d.size, d.mediaType, jobId],
          );
        }
      },
    );
  }
}

interface NewDocument {
  id: string;
  name: string;
  key: string;
  sha256: string;
  size: number;
  mediaType: string;
}

const VISIBLE = `(b.sharing = 'shared' or ($1::text is not null and b.owner_id = $1::text))`;
const BASE_SQL = `
  select b.*, coalesce(d.documents, 0) as documents, coalesce(d.pending, 0) as pending, coalesce(d.failed, 0) as failed,
         coalesce(d.chunks, 0) as chunk_count
    from knowledge_bases b
    left join lateral (
      select count(*) as documents, count(*) filter (where state = 'pending') as pending,
             count(*) filter (where state = 'failed') as failed, sum(chunks) as chunks
        from knowledge_documents where base_id = b.id
    ) d on true`;

function toBase(row: Record<string, unknown>): KnowledgeBase {
  return {
    id: String(row['id']),
    name: String(row['name']),
    description: String(row['description']),
    owner_id: (row['owner_id'] as string | null) ?? null,
    sharing: row['sharing'] as Sharing,
    embedding_model: String(row['embedding_model']),
    chunk_tokens: num(row['chunk_tokens']),
    chunk_overlap: num(row['chunk_overlap']),
    documents: num(row['documents']),
    documents_pending: num(row['pending']),
    documents_failed: num(row['failed']),
    chunks: num(row['chunk_count']),
    created_at: iso(row['created_at']),
    updated_at: iso(row['updated_at']),
  };
}

function toDocument(row: Record<string, unknown>): KnowledgeDocument {
  return {
    id: String(row['id']),
    name: String(row['name']),
    file_key: String(row['file_key']),
    sha256: String(row['sha256']),
    size: num(row['size']),
    media_type: String(row['media_type']),
    state: row['state'] as KnowledgeDocument['state'],
    error: (row['error'] as string | null) ?? null,
    chunks: num(row['chunks']),
    tokens: num(row['tokens']),
    job_id: (row['job_id'] as string | null) ?? null,
    embedded: row['embedded'] === null || row['embedded'] === undefined ? null : num(row['embedded']),
    created_at: iso(row['created_at']),
  };
}

function uploadFolder(baseId: string): string {
  return `knowledge/${baseId}`;
}

/** A file name as shown: its last path segment, without control characters. */
function displayName(name: string): string {
  const cleaned =
    name
      .replace(/[\x00-\x1f\x7f]/g, '')
      .split(/[\\/]/)
      .pop() ?? '';
  return cleaned.slice(0, 200) || 'unnamed';
}

/** A name that is a valid file-store segment. */
function safeSegment(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._ -]/g, '_').replace(/^\.+/, '_');
  return safe.slice(0, 120) || 'document';
}

function invalid(param: string, message: string): HearthError {
  return new HearthError('KNOWLEDGE_INVALID', message, { details: { param } });
}

function notFound(ref: string): HearthError {
  return new HearthError('KNOWLEDGE_NOT_FOUND', [JSON.stringify(ref)], { details: { base: ref } });
}
