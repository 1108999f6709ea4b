// Knowledge bases: documents on Atlas, chunks and embeddings as Atlas rows, hybrid retrieval over a
// node-cached vector index, answers with citations (docs/knowledge.md).

export { KNOWLEDGE_FIELD_MAX, knowledgeForMessage, knowledgeTags, withKnowledge } from './chat.js';
export { type Chunk, chunkText, estimateTokens } from './chunk.js';
export { extractText, htmlToText, mediaTypeOf, SUPPORTED_FORMATS } from './extract.js';
export { type Fused, RRF_K, reciprocalRankFusion } from './fusion.js';
export {
  type AddResult,
  type Citation,
  type KnowledgeBase,
  type KnowledgeDocument,
  type KnowledgeHit,
  type KnowledgeObserver,
  KnowledgeService,
  type KnowledgeServiceOptions,
  type KnowledgeSettings,
  SHARING,
  type Sharing,
  type Viewer,
} from './service.js';
export { decodeVector, encodeVector, type SearchMode, VectorIndex } from './vectors.js';
