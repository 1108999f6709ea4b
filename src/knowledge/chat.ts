import type { ChatMessage } from '../engine/types.js';
import type { Citation, KnowledgeService, Viewer } from './service.js';

export { KNOWLEDGE_FIELD_MAX } from './vocabulary.js';

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

const TAG = /(?:^|\s)#([A-Za-z0-9][A-Za-z0-9._-]{0,63})/g;

/** The `#name` tags of a chat message (as in Open WebUI's composer), without trailing punctuation. */
export function knowledgeTags(text: string): string[] {
  return [...new Set([...text.matchAll(TAG)].map((m) => m[1]!.replace(/[.]+$/, '')))];
}

/**
 * Knowledge for a chat-UI reply: the bases the message tags with `#name` and those the conversation has
 * attached (from a preset), as far as the user sees them (other tags are just text; an attached base
 * deleted since is skipped), searched with the message. Null when there is none or nothing is found.
 */
export async function knowledgeForMessage(
  knowledge: KnowledgeService,
  viewer: Viewer,
  text: string,
  attached: readonly string[] = [],
): Promise<{ system: string; sources: Citation[] } | null> {
  const tags = [...new Set([...attached, ...knowledgeTags(text)])];
  if (tags.length === 0) return null;
  const visible = new Set((await knowledge.list(viewer)).map((b) => b.name));
  const bases = tags.filter((t) => visible.has(t));
  if (bases.length === 0) return null;
  const question = text.replace(TAG, ' ').trim() || text;
  const found = await knowledge.retrieve(viewer, bases, question);
  return found ? { system: found.system, sources: found.citations } : null;
}
