/**
 * The knowledge API's contract (docs/knowledge.md; docs/ui.md, "One contract"): the zod schemas its
 * routes validate requests with, and the shapes of the answers the chat UI reads. Served as
 * /api/knowledge and /api/ui/knowledge. Node-free (zod and vocabulary leaves only): web/ imports its
 * types through the `@contract/*` alias.
 */
import * as z from 'zod';
import { SHARING } from '../../knowledge/vocabulary.js';

// ---- requests

export const createBaseBody = z.strictObject({
  name: z.string().min(1).max(64),
  description: z.string().max(2000).optional(),
  sharing: z.enum(SHARING).optional(),
  embedding_model: z.string().min(1).max(200).optional(),
  chunk_tokens: z.int().min(16).max(8192).optional(),
  chunk_overlap: z.int().min(0).max(4096).optional(),
});
export const patchBaseBody = z.strictObject({
  description: z.string().max(2000).optional(),
  sharing: z.enum(SHARING).optional(),
});
export const folderBody = z.strictObject({
  /** an Atlas folder whose files are registered in place */
  folder: z.string().min(1).max(1024),
});
export const rawQuery = z.strictObject({ name: z.string().min(1).max(255) });
export const queryBody = z.strictObject({
  query: z.string().min(1).max(10_000),
  limit: z.int().min(1).max(50).optional(),
  mode: z.enum(['indexed', 'exact']).optional(),
  /** false: no reranking; true: with knowledge.reranker; a name: that reranker model */
  rerank: z
    .union([z.boolean(), z.string().min(1).max(200)], { error: 'rerank is true, false or a reranker model name' })
    .optional(),
});

// ---- answers

export const knowledgeBase = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  owner_id: z.string().nullable(),
  sharing: z.enum(SHARING),
  embedding_model: z.string(),
  chunk_tokens: z.number(),
  chunk_overlap: z.number(),
  documents: z.number(),
  documents_pending: z.number(),
  documents_failed: z.number(),
  chunks: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const knowledgeDocument = z.object({
  id: z.string(),
  name: z.string(),
  file_key: z.string(),
  sha256: z.string(),
  size: z.number(),
  media_type: z.string(),
  state: z.enum(['pending', 'ready', 'failed']),
  error: z.string().nullable(),
  chunks: z.number(),
  tokens: z.number(),
  job_id: z.string().nullable(),
  /** pending: chunks embedded so far by the attempt working on it (null when none is) */
  embedded: z.number().nullable(),
  created_at: z.string(),
});
/** What happened to each file of an upload (a bad file never blocks the rest). */
export const addedFile = z.object({
  name: z.string(),
  status: z.enum(['added', 'duplicate', 'refused']),
  document: z.string().optional(),
  error: z.string().optional(),
});
export const basesAnswer = z.object({ bases: z.array(knowledgeBase) });
export const documentsAnswer = z.object({ documents: z.array(knowledgeDocument) });
export const addAnswer = z.object({ job: z.string().nullable(), files: z.array(addedFile) });

export type KnowledgeBase = z.output<typeof knowledgeBase>;
export type KnowledgeDocument = z.output<typeof knowledgeDocument>;
export type AddedFile = z.output<typeof addedFile>;
export type BasesAnswer = z.output<typeof basesAnswer>;
export type DocumentsAnswer = z.output<typeof documentsAnswer>;
export type AddAnswer = z.output<typeof addAnswer>;
export type CreateBaseBody = z.input<typeof createBaseBody>;
