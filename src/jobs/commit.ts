import type { AtlasDb } from '../atlas/db/index.js';
import type { FileStore, StoredFile } from '../atlas/files/index.js';
import { isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { JobFailure } from './record-processor.js';
import { type CommittedShard, type JobCore, jobStore } from './store.js';

/** The name of shard `index`'s output file in the output folder. */
export function shardFileName(index: number): string {
  return `part-${String(index).padStart(5, '0')}.jsonl`;
}

export const MANIFEST_FILE = '_manifest.json';
export const ERRORS_FILE = '_errors.jsonl';
export const STAGING_FOLDER = '_staging';

/**
 * The file side of the commit protocol (docs/jobs.md): a shard's rows are staged under a name unique to
 * the attempt, the database commit records that staged file as the shard's, and only then is it copied
 * to its final name (atomically, checked against the recorded sha256) and the staged copy removed. An
 * attempt that loses its lease never commits, so it never publishes; a crash after the commit leaves
 * a staged file that any node can publish again. The manifest is written last, by finalize.
 */
export class ShardCommitter {
  constructor(
    private readonly files: FileStore,
    private readonly db: AtlasDb,
    private readonly log: Logger,
    private readonly version: string,
  ) {}

  /** Writes an attempt's rows under its staging name (atomic put, sha256 computed while writing). */
  stage(output: string, index: number, token: string, content: string): Promise<StoredFile> {
    return this.files.put(
      `${output}/${STAGING_FOLDER}/${shardFileName(index).replace(/\.jsonl$/, `.${token}.jsonl`)}`,
      content,
    );
  }

  /** Removes a staged file whose attempt did not commit (best effort: finalize sweeps leftovers). */
  async discard(key: string): Promise<void> {
    await this.files
      .delete(key)
      .catch((err: unknown) => this.log.warn({ err, key }, 'jobs: cannot remove a staged file'));
  }

  /**
   * Puts a committed shard under its final name. Idempotent: a shard already published (its staged
   * file gone, the final one the recorded size) is left alone.
   */
  async publish(shard: CommittedShard): Promise<void> {
    if (await this.files.stat(shard.stagingKey)) {
      try {
        await this.files.put(shard.outputKey, await this.files.read(shard.stagingKey), {
          expectedSha256: shard.sha256,
        });
        await this.files.delete(shard.stagingKey);
        return;
      } catch (err) {
        // Another node published it between our look and our read.
        if (!isHearthError(err, 'ATLAS_FILES_NOT_FOUND')) throw err;
      }
    }
    const published = await this.files.stat(shard.outputKey);
    if (!published || published.size !== shard.bytes) {
      throw new JobFailure(
        `shard ${shard.index}'s committed output is gone: neither ${shard.stagingKey} nor ${shard.outputKey} (${shard.bytes} bytes) is in the file store; something removed it: retry the job to redo it from scratch in a new output folder`,
      );
    }
  }

  /**
   * Makes the output complete: publishes every shard (again, if a crash came between commit and
   * publish), writes the errors file, removes staging leftovers and writes the manifest, last.
   * Returns the manifest's sha256. Everything it writes is derived from the database, so running it
   * twice writes the same files (the manifest's `completed_at` aside).
   */
  async finalize(job: JobCore, model: { name: string; digest: string | null }): Promise<string> {
    const db = this.db;
    const shards = await jobStore.committedShards(db, job.id);
    if (shards.length !== job.shards_total) {
      throw new Error(`finalize found ${shards.length} of ${job.shards_total} shards committed`);
    }
    for (const shard of shards) await this.publish(shard);
    const errors = await jobStore.errors(db, job.id);
    const errorsFile = await this.files.put(
      `${job.output}/${ERRORS_FILE}`,
      errors
        .map((e) => JSON.stringify({ key: e.key, ...(e.line !== null ? { line: e.line } : {}), error: e.message }))
        .join('\n') + (errors.length ? '\n' : ''),
    );
    for (const left of await this.files.list(`${job.output}/${STAGING_FOLDER}/`)) await this.discard(left.key);
    const totals = await jobStore.totals(db, job.id);
    const manifest = {
      hearth: this.version,
      job: job.id,
      spec: job.spec,
      model,
      counts: {
        records: totals.records,
        ok: totals.ok,
        failed: totals.failed,
        prompt_tokens: totals.promptTokens,
        eval_tokens: totals.evalTokens,
      },
      shards: shards.map((s) => ({
        file: shardFileName(s.index),
        rows: s.rows,
        errors: s.errorRows,
        bytes: s.bytes,
        sha256: s.sha256,
      })),
      errors: { file: ERRORS_FILE, rows: errors.length, bytes: errorsFile.size, sha256: errorsFile.sha256 },
      attempts: totals.attempts,
      created_at: totals.createdAt,
      started_at: totals.startedAt,
      completed_at: new Date().toISOString(),
    };
    const written = await this.files.put(`${job.output}/${MANIFEST_FILE}`, `${JSON.stringify(manifest, null, 2)}\n`);
    return written.sha256;
  }
}
