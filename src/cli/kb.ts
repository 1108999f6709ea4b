import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { JobView } from '../jobs/index.js';
import type { AddResult, KnowledgeBase, KnowledgeDocument, KnowledgeHit } from '../knowledge/index.js';
import { formatBytes, relativeTime, table } from '../units.js';
import { HearthClient } from './client.js';
import { action } from './shared.js';

/** `hearth kb create|ls|add|rm|query`: knowledge bases over /api/knowledge (service class `jobs`). */
export function registerKnowledgeCommands(program: Command): void {
  const client = () => new HearthClient();
  const kb = program.command('kb').description('knowledge bases: documents to answer from, with citations');
  const path = (name: string, rest = '') => `/api/knowledge/${encodeURIComponent(name)}${rest}`;

  kb.command('create <name>')
    .description('create a knowledge base (shared: made with an API key, it has no owning user)')
    .option('-m, --model <name>', 'the embedding model (default: knowledge.embeddingModel)')
    .option('-d, --description <text>', 'what it holds')
    .option('--chunk-tokens <n>', 'most tokens in a chunk (default: knowledge.chunkTokens)')
    .option('--chunk-overlap <n>', 'tokens repeated between chunks (default: knowledge.chunkOverlap)')
    .action(
      action(
        async (
          name: string,
          o: { model?: string; description?: string; chunkTokens?: string; chunkOverlap?: string },
        ) => {
          const base = await client().json<KnowledgeBase>('POST', '/api/knowledge', {
            name,
            ...(o.model ? { embedding_model: o.model } : {}),
            ...(o.description ? { description: o.description } : {}),
            ...(o.chunkTokens ? { chunk_tokens: Number(o.chunkTokens) } : {}),
            ...(o.chunkOverlap ? { chunk_overlap: Number(o.chunkOverlap) } : {}),
          });
          process.stdout.write(
            `created knowledge base ${base.name} (${base.embedding_model}, ${base.chunk_tokens}-token chunks)\n`,
          );
        },
      ),
    );

  kb.command('ls [name]')
    .description('list the knowledge bases, or the documents of one')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string | undefined, o: { json?: boolean }) => {
        if (!name) {
          const { bases } = await client().json<{ bases: KnowledgeBase[] }>('GET', '/api/knowledge');
          if (o.json) return void process.stdout.write(`${JSON.stringify(bases, null, 2)}\n`);
          const rows = bases.map((b) => [
            b.name,
            String(b.documents),
            String(b.chunks),
            b.documents_pending
              ? `${b.documents_pending} pending`
              : b.documents_failed
                ? `${b.documents_failed} failed`
                : 'ready',
            b.embedding_model,
            relativeTime(new Date(b.created_at)),
          ]);
          return void process.stdout.write(table(['NAME', 'DOCUMENTS', 'CHUNKS', 'STATE', 'MODEL', 'CREATED'], rows));
        }
        const { documents } = await client().json<{ documents: KnowledgeDocument[] }>('GET', path(name, '/documents'));
        if (o.json) return void process.stdout.write(`${JSON.stringify(documents, null, 2)}\n`);
        const rows = documents.map((d) => [
          d.id,
          d.name,
          formatBytes(d.size),
          d.state,
          String(d.chunks),
          d.error ?? '',
        ]);
        process.stdout.write(table(['ID', 'NAME', 'SIZE', 'STATE', 'CHUNKS', 'ERROR'], rows));
      }),
    );

  kb.command('add <name> [files...]')
    .description('add local files (uploaded to Atlas) or an Atlas folder (registered in place), and ingest them')
    .option('--folder <key>', 'an Atlas folder whose files are registered where they are')
    .option('--no-wait', 'return once the ingestion job is queued')
    .action(
      action(async (name: string, files: string[], o: { folder?: string; wait: boolean }) => {
        let result: AddResult;
        if (o.folder) {
          result = await client().json<AddResult>('POST', path(name, '/documents'), { folder: o.folder });
        } else {
          if (files.length === 0) throw new Error('name the files to add, or an Atlas folder with --folder');
          const form = new FormData();
          for (const file of files) form.append('file', new Blob([await readFile(file)]), basename(file));
          const res = await client().request(path(name, '/documents'), { method: 'POST', body: form });
          result = (await res.json()) as AddResult;
        }
        for (const f of result.files) {
          const what = f.status === 'refused' ? `refused: ${f.error}` : f.status;
          process.stderr.write(`${f.name}: ${what}\n`);
        }
        if (!result.job) return;
        process.stdout.write(`${result.job}\n`);
        if (o.wait) await followIngestion(client(), result.job);
      }),
    );

  kb.command('rm <name> [document]')
    .description('delete a knowledge base, or one document of it (by id or name) with its chunks')
    .action(
      action(async (name: string, document: string | undefined) => {
        if (!document) {
          await client().json('DELETE', path(name));
          return void process.stdout.write(`deleted knowledge base ${name}\n`);
        }
        const { documents } = await client().json<{ documents: KnowledgeDocument[] }>('GET', path(name, '/documents'));
        const doc = documents.find((d) => d.id === document) ?? documents.find((d) => d.name === document);
        if (!doc) throw new Error(`knowledge base ${name} has no document ${document}: see hearth kb ls ${name}`);
        await client().json('DELETE', path(name, `/documents/${doc.id}`));
        process.stdout.write(`deleted ${doc.name} from ${name}\n`);
      }),
    );

  kb.command('query <name> <text...>')
    .description('retrieve the chunks that best answer a question (hybrid: full text + vectors, fused by rank)')
    .option('-n, --limit <n>', 'how many chunks', '5')
    .option('--rerank [model]', 'order the chunks with a reranker model (default: knowledge.reranker)')
    .option('--no-rerank', 'keep the fusion order even when knowledge.reranker is set')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, words: string[], o: { limit: string; rerank?: boolean | string; json?: boolean }) => {
        const reply = await client().json<{ results: KnowledgeHit[]; took_ms: number }>('POST', path(name, '/query'), {
          query: words.join(' '),
          limit: Number(o.limit),
          ...(o.rerank !== undefined ? { rerank: o.rerank } : {}),
        });
        if (o.json) return void process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
        reply.results.forEach((r, i) => {
          const where = `${r.document.name}${r.heading ? ` › ${r.heading}` : ''}`;
          const rerank = r.rerank_score !== undefined ? `, rerank ${r.rerank_score.toFixed(4)}` : '';
          process.stdout.write(`[${i + 1}] ${where}  (score ${r.score.toFixed(4)}${rerank})\n${indent(r.text)}\n\n`);
        });
        process.stderr.write(`${reply.results.length} chunk(s) in ${reply.took_ms} ms\n`);
      }),
    );
}

function indent(text: string): string {
  const shown = text.length > 600 ? `${text.slice(0, 600)}…` : text;
  return shown
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

/** A progress bar over the ingestion job's documents until it ends; fails when the job does. */
async function followIngestion(client: HearthClient, id: string): Promise<void> {
  const bar = new SingleBar({
    format: 'ingesting ▕{bar}▏ {value}/{total} documents | {failed} failed',
    barCompleteChar: '█',
    barIncompleteChar: ' ',
    barsize: 24,
    hideCursor: true,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 5000,
    stream: process.stderr,
  });
  let job = await client.json<JobView>('GET', `/api/jobs/${id}`);
  bar.start(Math.max(job.progress.shards_total ?? 1, 1), 0, { failed: 0 });
  try {
    for (;;) {
      bar.update(job.progress.shards_committed, { failed: job.progress.records_failed });
      if (['succeeded', 'failed', 'cancelled'].includes(job.state)) break;
      await sleep(500);
      job = await client.json<JobView>('GET', `/api/jobs/${id}`);
    }
  } finally {
    bar.stop();
  }
  if (job.state !== 'succeeded') throw new Error(`ingestion job ${id} ${job.state}: ${job.error ?? ''}`);
  if (job.progress.records_failed) {
    process.stderr.write(`${job.progress.records_failed} document(s) could not be read: see hearth kb ls <name>\n`);
  }
}
