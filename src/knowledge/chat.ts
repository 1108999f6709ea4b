import type { ChatMessage } from '../engine/types.js';
import type { Citation, KnowledgeService, Viewer } from './service.js';

/** The hearth extension on chat requests: knowledge bases (by name) to answer from. */
export const KNOWLEDGE_FIELD_MAX = 10;

/**
 * Adds retrieved sources to a chat (after the model's prelude): the chunks found for the last user
 * message, put into the system text with the configured template (merged into the first system
 * message, or a new one before the conversation). Returns the messages and the citations to send back
 * (and to store with the reply); no bases or nothing found leaves the messages as they were.
 */
export async function withKnowledge(
  knowledge: KnowledgeService,
  viewer: Viewer,
  bases: readonly string[] | undefined | null,
  messages: ChatMessage[],
): Promise<{ messages: ChatMessage[]; citations: Citation[] }> {
  if (!bases?.length) return { messages, citations: [] };
  const question = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  // Unknown or invisible bases are refused even when the question is empty.
  for (const ref of bases) await knowledge.get(viewer, ref);
  const found = await knowledge.retrieve(viewer, bases, question);
  if (!found) return { messages, citations: [] };
  const out = [...messages];
  const first = out.findIndex((m) => m.role === 'system');
  if (first >= 0) out[first] = { ...out[first]!, content: `${out[first]!.content}\n\n${found.system}` };
  else out.unshift({ role: 'system', content: found.system });
  return { messages: out, citations: found.citations };
}
