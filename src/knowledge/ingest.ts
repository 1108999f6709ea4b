import { createHash } from 'node:crypto';
import type { AtlasDb } from '../atlas/db/index.js';
import type { FileStore } from '../atlas/files/index.js';
import type { Engine } from '../engine/index.js';
import { isHearthError } from '../errors.js';
import {
  type ErrorRow,
  type JobCore,
  JobFailure,
  type ShardHandler,
  type ShardOutcome,
  type ShardWork,
  type SqlRunner,
} from '../jobs/index.js';
import type { Logger } from '../log.js';
import type { InferencePlanner } from '../models/inference.js';
import { chunkText } from './chunk.js';
import { extractText, UnreadableDocument } from './extract.js';
import type { KnowledgeObserver } from './service.js';
import { encodeVector } from './vectors.js';

export interface KnowledgeIngestionOptions {
  db: AtlasDb;
  files: FileStore;
  engine: Pick<Engine, 'embed'>;
  inference: Pick<InferencePlanner, 'prepare' | 'embedding'>;
  log: Logger;
  observer?: KnowledgeObserver;
}

interface DocumentRow {
  id: string;
  base_id: string;
  name: string;
  file_key: string;
  sha256: string;
  media_type: string;
  state: string;
  embedding_model: string;
  chunk_tokens: number;
  chunk_overlap: number;
}

/** Chunk rows per insert statement. */
const INSERT_BATCH = 200;

/**
 * Ingestion of one document: one shard of a `knowledge` job (src/jobs runs it: lease, heartbeat, retry
 * on any node). Reads the original from Atlas (checking its sha256), extracts the text, chunks it and
 * embeds each chunk; the chunks are written in the shard's commit transaction, fenced by its lease, so
 * each is stored exactly once however often the work is retried. A document that cannot be read is
 * marked failed with the reason, and is the job's error row; the other documents go on.
 */
export class KnowledgeIngestion implements ShardHandler {
  private readonly o: KnowledgeIngestionOptions;
  /** PGlite only (no autovacuum there): chunks committed since the last ANALYZE, and the table's size then. */
  private sinceAnalyze = 0;
  private chunksAtAnalyze = 0;
  private analyzeTimer: NodeJS.Timeout | undefined;

  constructor(opts: KnowledgeIngestionOptions) {
    this.o = opts;
  }

  async run(
    _job: JobCore,
    shard: ShardWork,
    signal: AbortSignal,
    progress: (done: number) => void,
  ): Promise<ShardOutcome> {
    const documentId = String((shard.range as unknown as { document?: unknown }).document ?? '');
    const [doc] = await this.o.db.query<DocumentRow>(
      `select d.id, d.base_id, d.name, d.file_key, d.sha256, d.media_type, d.state, b.embedding_model,
              b.chunk_tokens, b.chunk_overlap
         from knowledge_documents d join knowledge_bases b on b.id = d.base_id where d.id = $1`,
      [documentId],
    );
    // Deleted since it was queued, or done by an attempt that committed: nothing to do.
    if (doc?.state !== 'pending') return { rows: 0, errors: [], tokens: 0, commit: async () => {} };

    let text: Awaited<ReturnType<typeof extractText>>;
    try {
      const bytes = await this.read(doc);
      text = await extractText(doc.name, doc.media_type, bytes);
    } catch (err) {
      if (err instanceof UnreadableDocument) return this.failed(doc, err.message);
      throw err;
    }
    const chunks = chunkText(text.text.replaceAll('\u0000', ''), text.shape, {
      size: doc.chunk_tokens,
      overlap: doc.chunk_overlap,
    });
    if (chunks.length === 0) return this.failed(doc, `${doc.name}: holds no text`);

    const prepared = await this.o.inference.prepare(doc.embedding_model, {}, undefined).catch((err: unknown) => {
      if (isHearthError(err, 'MODEL_NOT_FOUND')) {
        throw new JobFailure(
          `embedding model "${doc.embedding_model}" is no longer in the library: create it again and retry the job`,
        );
      }
      throw err;
    });
    const rows: Array<{ position: number; text: string; heading: string; tokens: number; embedding: string }> = [];
    let tokens = 0;
    for (const [position, chunk] of chunks.entries()) {
      signal.throwIfAborted();
      const result = await this.o.engine.embed(
        this.o.inference.embedding(prepared, {
          inputs: [passageText(chunk.heading, chunk.text)],
          signal,
          truncate: true,
        }),
      );
      tokens += result.promptTokens;
      rows.push({
        position,
        text: chunk.text,
        heading: chunk.heading,
        tokens: result.promptTokens,
        embedding: encodeVector(result.embeddings[0] ?? []).toString('base64'),
      });
      progress(position + 1);
    }
    return {
      rows: 1,
      errors: [],
      tokens,
      commit: async (tx: SqlRunner) => {
        for (let i = 0; i < rows.length; i += INSERT_BATCH) {
          await tx.query(
            `insert into knowledge_chunks (document_id, base_id, position, text, heading, tokens, embedding)
             select $1, $2, x.position, x.text, x.heading, x.tokens, decode(x.embedding, 'base64')
               from json_to_recordset($3::json) as x(position int, text text, heading text, tokens int, embedding text)`,
            [doc.id, doc.base_id, JSON.stringify(rows.slice(i, i + INSERT_BATCH))],
          );
        }
        await tx.query(
          `update knowledge_documents set state = 'ready', error = null, chunks = $2, tokens = $3, updated_at = now()
            where id = $1`,
          [doc.id, rows.length, tokens],
        );
        await tx.query(`update knowledge_bases set generation = generation + 1, updated_at = now() where id = $1`, [
          doc.base_id,
        ]);
        // Counted at commit: a retried attempt is not counted twice (a rolled-back one is, rarely).
        this.o.observer?.ingested(1, rows.length);
        this.analyzeLater(rows.length);
      },
    };
  }

  /**
   * The embedded database (PGlite) runs no autovacuum, so nothing gathers the chunk table's statistics,
   * and without them its planner scans every chunk of a base instead of using the full-text GIN index
   * (a hybrid query at 20k chunks: p50 45 ms analysed, 110–240 ms not; docs/knowledge.md). This does
   * what autovacuum's analyze does on PostgreSQL, with its threshold (50 rows + 10% of the table):
   * `analyze knowledge_chunks` a moment after the last commit that crossed it. A rolled-back commit
   * only makes an ANALYZE come early, which is harmless.
   */
  private analyzeLater(chunks: number): void {
    if (this.o.db.kind !== 'pglite') return;
    this.sinceAnalyze += chunks;
    if (this.sinceAnalyze < 50 + 0.1 * this.chunksAtAnalyze) return;
    clearTimeout(this.analyzeTimer);
    this.analyzeTimer = setTimeout(() => {
      this.analyzeTimer = undefined;
      const counted = this.sinceAnalyze;
      this.o.db
        .query<{ n: string }>('analyze knowledge_chunks')
        .then(() => this.o.db.query<{ n: string }>('select count(*) as n from knowledge_chunks'))
        .then(([row]) => {
          this.sinceAnalyze -= counted;
          this.chunksAtAnalyze = Number(row?.n ?? 0);
        })
        .catch((err: unknown) => this.o.log.debug({ err }, 'knowledge: analyze of the chunk table skipped'));
    }, 2000);
    this.analyzeTimer.unref();
  }

  /** Embeds a query with a base's model (the vector side of retrieval). */
  async embedQuery(model: string, text: string): Promise<number[]> {
    const prepared = await this.o.inference.prepare(model, {}, undefined);
    const result = await this.o.engine.embed(this.o.inference.embedding(prepared, { inputs: [text], truncate: true }));
    return result.embeddings[0] ?? [];
  }

  private async read(doc: DocumentRow): Promise<Buffer> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.o.files.read(doc.file_key);
    } catch (err) {
      if (isHearthError(err, 'ATLAS_FILES_NOT_FOUND')) {
        throw new UnreadableDocument(
          `${doc.name}: its original ${doc.file_key} is no longer on Atlas: add the file again`,
        );
      }
      throw err;
    }
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
    const bytes = Buffer.concat(parts);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== doc.sha256) {
      throw new UnreadableDocument(
        `${doc.name}: ${doc.file_key} changed since it was added (sha256 ${sha256.slice(0, 12)}…, expected ${doc.sha256.slice(0, 12)}…): delete the document and add the file again`,
      );
    }
    return bytes;
  }

  private failed(doc: DocumentRow, message: string): ShardOutcome {
    this.o.log.warn({ document: doc.id, error: message }, 'knowledge: a document cannot be ingested');
    const error: ErrorRow = { key: doc.name, line: null, message };
    return {
      rows: 0,
      errors: [error],
      tokens: 0,
      commit: async (tx: SqlRunner) => {
        await tx.query(
          `update knowledge_documents set state = 'failed', error = $2, updated_at = now() where id = $1`,
          [doc.id, message],
        );
      },
    };
  }
}

/** What is embedded (and reranked) for a chunk: its heading path gives a short passage its context. */
export function passageText(heading: string, text: string): string {
  return heading ? `${heading}\n\n${text}` : text;
}
