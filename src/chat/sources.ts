/**
 * The knowledge source a reply cites as [n] (src/chat/conversations.ts ChatSource), as a schema: the UI
 * contract's answer (src/http/ui/contract.ts) and the chat import's check (src/chat/transfer.ts) are
 * both this. Imports zod only, so the contract stays node-free (docs/ui.md, "One contract").
 */
import * as z from 'zod';

export const chatSource = z.object({
  n: z.int().min(1),
  base: z.string(),
  document: z.string(),
  document_id: z.string(),
  chunk_id: z.number(),
  heading: z.string(),
  text: z.string(),
  score: z.number(),
  /** the reranker's score, when the retrieval was reranked */
  rerank_score: z.number().optional(),
});
