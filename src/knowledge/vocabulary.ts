/**
 * Knowledge words and limits that the HTTP contracts share (src/http/knowledge/contract.ts,
 * src/http/ui/contract.ts): no imports, so web/ can type-check the contracts.
 */

export const SHARING = ['private', 'shared'] as const;
/** The hearth extension on chat requests: at most this many knowledge bases (by name) to answer from. */
export const KNOWLEDGE_FIELD_MAX = 10;
