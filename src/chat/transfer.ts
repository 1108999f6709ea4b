/**
 * Export and import of conversations: hearth's own JSON (every branch, so an
 * export imported again gives an equal tree), Markdown for reading one chat
 * (its shown branch), and Open WebUI's chat export JSON so people can move over.
 */

import * as z from 'zod';
import { HearthError } from '../errors.js';
import { KNOWLEDGE_FIELD_MAX } from '../knowledge/chat.js';
import { IMAGE_NAME } from './attachments.js';
import type {
  ChatParams,
  ChatSource,
  Conversation,
  ConversationMessage,
  ConversationTree,
  MessageStatus,
} from './conversations.js';
import { DEFAULT_TITLE, MESSAGE_ROLES, MESSAGE_STATUSES } from './conversations.js';
import { chatSource } from './sources.js';

export const EXPORT_FORMAT = 'hearth.chat';
export const EXPORT_VERSION = 1;

/** A conversation in hearth's export file. */
export interface ExportedConversation {
  id: string;
  title: string;
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases (names) every reply of the chat answers from */
  knowledge: string[];
  pinned: boolean;
  createdAt: string;
  updatedAt: string;
  currentLeafId: string | null;
  /** each reply's knowledge sources are in its `stats.sources`, as stored */
  messages: Array<{
    id: string;
    parentId: string | null;
    role: ConversationMessage['role'];
    content: string;
    attachments: ConversationMessage['attachments'];
    model: string | null;
    status: MessageStatus;
    error: string | null;
    stats: ConversationMessage['stats'];
    createdAt: string;
  }>;
}

export interface HearthExport {
  format: typeof EXPORT_FORMAT;
  version: number;
  exportedAt: string;
  conversations: ExportedConversation[];
}

export function exportConversation(conversation: Conversation, messages: ConversationMessage[]): ExportedConversation {
  return {
    id: conversation.id,
    title: conversation.title,
    model: conversation.model,
    systemPrompt: conversation.systemPrompt,
    params: conversation.params,
    knowledge: conversation.knowledge,
    pinned: conversation.pinned,
    createdAt: conversation.createdAt.toISOString(),
    updatedAt: conversation.updatedAt.toISOString(),
    currentLeafId: conversation.currentLeafId,
    messages: messages.map((m) => ({
      id: m.id,
      parentId: m.parentId,
      role: m.role,
      content: m.content,
      attachments: m.attachments,
      model: m.model,
      status: m.status,
      error: m.error,
      stats: m.stats,
      createdAt: m.createdAt.toISOString(),
    })),
  };
}

export function exportFile(conversations: ExportedConversation[], now = new Date()): HearthExport {
  return { format: EXPORT_FORMAT, version: EXPORT_VERSION, exportedAt: now.toISOString(), conversations };
}

/** The branch shown, as Markdown: a heading per turn, the system prompt first. */
export function conversationMarkdown(conversation: Conversation, messages: ConversationMessage[]): string {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const branch: ConversationMessage[] = [];
  let at = conversation.currentLeafId ? byId.get(conversation.currentLeafId) : messages.at(-1);
  for (let guard = 0; at && guard <= messages.length; guard++) {
    branch.unshift(at);
    at = at.parentId ? byId.get(at.parentId) : undefined;
  }
  const out = [`# ${conversation.title}`, ''];
  if (conversation.model) out.push(`Model: ${conversation.model}`, '');
  if (conversation.systemPrompt) out.push('## System', '', conversation.systemPrompt, '');
  for (const m of branch) {
    const who =
      m.role === 'user' ? 'User' : m.role === 'assistant' ? `Assistant${m.model ? ` (${m.model})` : ''}` : 'System';
    out.push(`## ${who}`, '');
    for (const a of m.attachments)
      out.push(`Attached${a.image ? ' image' : ''}: ${a.name}${a.truncated ? ' (cut to fit)' : ''}`, '');
    out.push(m.content, '');
    if (m.status === 'stopped') out.push('*(stopped)*', '');
    if (m.stats?.sources?.length) out.push(...sourcesMarkdown(m.stats.sources));
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** A reply's knowledge sources as Markdown: `[n] document › heading (base)` and the passage quoted. */
function sourcesMarkdown(sources: ChatSource[]): string[] {
  const out = ['### Sources', ''];
  for (const s of sources) {
    out.push(`[${s.n}] ${s.document}${s.heading ? ` › ${s.heading}` : ''}${s.base ? ` (${s.base})` : ''}`, '');
    out.push(...s.text.split('\n').map((line) => (line ? `> ${line}` : '>')), '');
  }
  return out;
}

const date = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const d = typeof v === 'number' ? new Date(v < 1e11 ? v * 1000 : v) : new Date(v);
  if (Number.isNaN(d.getTime())) {
    ctx.issues.push({ code: 'custom', input: v, message: 'not a date' });
    return z.NEVER;
  }
  return d;
});

const BASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const hearthMessage = z.object({
  id: z.string().min(1),
  parentId: z.string().nullable(),
  role: z.enum(MESSAGE_ROLES),
  content: z.string(),
  attachments: z
    .array(
      z.object({
        name: z.string(),
        size: z.number(),
        text: z.string(),
        truncated: z.boolean(),
        // an image on this Atlas (the person's own chat images: an export imported back keeps them)
        image: z.string().regex(IMAGE_NAME).optional(),
      }),
    )
    .default([]),
  model: z.string().nullable().default(null),
  status: z.enum(MESSAGE_STATUSES).default('done'),
  error: z.string().nullable().default(null),
  stats: z
    .looseObject({ sources: z.array(chatSource).optional() })
    .nullable()
    .default(null),
  createdAt: date,
});

const hearthConversation = z.object({
  title: z.string().default(DEFAULT_TITLE),
  model: z.string().nullable().default(null),
  systemPrompt: z.string().nullable().default(null),
  params: z.record(z.string(), z.unknown()).default({}),
  // bases that do not exist here are kept by name and skipped when a reply searches (as a deleted base is)
  knowledge: z.array(z.string().regex(BASE_NAME, 'not a knowledge base name')).max(KNOWLEDGE_FIELD_MAX).default([]),
  pinned: z.boolean().default(false),
  createdAt: date,
  updatedAt: date,
  currentLeafId: z.string().nullable().default(null),
  messages: z.array(hearthMessage),
});

const hearthFile = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z
    .number()
    .int()
    .max(EXPORT_VERSION, { error: `made by a newer hearth (version > ${EXPORT_VERSION}): upgrade hearth` }),
  conversations: z.array(hearthConversation),
});

// Open WebUI: "Export All Chats" (an array of chat rows) or one chat's JSON export.
const webuiMessage = z.object({
  id: z.string(),
  parentId: z.string().nullable().optional(),
  role: z.string(),
  content: z.unknown(),
  model: z.string().optional(),
  timestamp: z.number().optional(),
  // retrieval sources (`citations` in older versions): read leniently, see webuiSources
  sources: z.array(z.unknown()).optional().nullable(),
  citations: z.array(z.unknown()).optional().nullable(),
});

const webuiChat = z.object({
  title: z.string().optional(),
  models: z.array(z.string()).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  system: z.string().optional(),
  history: z.object({
    messages: z.record(z.string(), webuiMessage),
    currentId: z.string().nullable().optional(),
  }),
  timestamp: z.number().optional(),
});

const webuiRow = z.object({
  title: z.string().optional(),
  chat: webuiChat,
  pinned: z.boolean().nullable().optional(),
  created_at: z.number().optional(),
  updated_at: z.number().optional(),
});

/** Which kind of file an import is, by its shape. */
export function detectImportFormat(data: unknown): 'hearth' | 'open-webui' | null {
  if (data && typeof data === 'object' && (data as { format?: unknown }).format === EXPORT_FORMAT) return 'hearth';
  const first = Array.isArray(data) ? data[0] : data;
  if (first && typeof first === 'object' && ('chat' in first || 'history' in first)) return 'open-webui';
  return null;
}

/** Reads an import file into conversation trees; CHAT_IMPORT_INVALID names what is wrong and where. */
export function parseImport(data: unknown): { format: 'hearth' | 'open-webui'; trees: ConversationTree[] } {
  const format = detectImportFormat(data);
  if (format === 'hearth') {
    const file = check(hearthFile, data, 'hearth export');
    return {
      format,
      trees: file.conversations.map((c) => ({
        ...c,
        params: c.params as ChatParams,
        messages: c.messages.map((m) => ({ ...m, stats: m.stats as ConversationMessage['stats'] })),
      })),
    };
  }
  if (format === 'open-webui') {
    const rows = (Array.isArray(data) ? data : [data]).map((row) =>
      row && typeof row === 'object' && 'chat' in row ? row : { chat: row },
    );
    const parsed = check(z.array(webuiRow), rows, 'Open WebUI export');
    return { format, trees: parsed.map(fromWebui) };
  }
  throw new HearthError(
    'CHAT_IMPORT_INVALID',
    'this file is neither a hearth export (format "hearth.chat") nor an Open WebUI chat export (chats with a "history")',
  );
}

function check<S extends z.ZodType>(schema: S, data: unknown, what: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new HearthError('CHAT_IMPORT_INVALID', `not a valid ${what}${where}: ${issue?.message ?? 'unreadable'}`);
}

const WEBUI_PARAMS: Record<string, string> = {
  temperature: 'temperature',
  top_p: 'top_p',
  top_k: 'top_k',
  seed: 'seed',
  num_ctx: 'num_ctx',
  max_tokens: 'num_predict',
  num_predict: 'num_predict',
  repeat_penalty: 'repeat_penalty',
};

function fromWebui(row: z.output<typeof webuiRow>): ConversationTree {
  const chat = row.chat;
  const params: ChatParams = {};
  let system: string | null = chat.system ?? null;
  for (const [key, value] of Object.entries(chat.params ?? {})) {
    if (key === 'system' && typeof value === 'string' && value) system = value;
    const name = WEBUI_PARAMS[key];
    if (name && typeof value === 'number' && Number.isFinite(value)) params[name] = value;
  }
  const messages = Object.values(chat.history.messages)
    .filter((m) => m.role === 'user' || m.role === 'assistant' || m.role === 'system')
    .map((m) => ({
      id: m.id,
      parentId: m.parentId ?? null,
      role: m.role as ConversationMessage['role'],
      content: typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? ''),
      attachments: [],
      model: m.model ?? null,
      status: 'done' as const,
      error: null,
      stats: webuiStats(m.sources ?? m.citations),
      createdAt: epochDate(m.timestamp ?? chat.timestamp),
    }))
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  return {
    title: row.title ?? chat.title ?? DEFAULT_TITLE,
    model: chat.models?.[0] ?? null,
    systemPrompt: system,
    params,
    pinned: row.pinned ?? false,
    createdAt: epochDate(row.created_at),
    updatedAt: epochDate(row.updated_at ?? row.created_at),
    currentLeafId: chat.history.currentId ?? null,
    messages,
  };
}

const webuiSource = z.object({
  source: z.looseObject({ id: z.string().optional(), name: z.string().optional() }).optional().nullable(),
  document: z.array(z.string()),
  metadata: z.array(z.looseObject({}).nullable()).optional().nullable(),
  distances: z.array(z.number()).optional().nullable(),
});

/**
 * Open WebUI's sources of a reply (`[{source: {id, name}, document: [passage...], metadata: [{source,
 * name, file_id}...], distances}]`) as hearth's: numbered as Open WebUI numbers them for the model (one
 * number per distinct source, in order), the passages of one number joined. Entries of another shape
 * (a web search's, a tool's) are left out.
 */
function webuiStats(raw: unknown[] | null | undefined): ConversationMessage['stats'] {
  const byCitation = new Map<string, ChatSource>();
  for (const item of raw ?? []) {
    const parsed = webuiSource.safeParse(item);
    if (!parsed.success) continue;
    const { source, document, metadata, distances } = parsed.data;
    document.forEach((text, i) => {
      const meta = (metadata?.[i] ?? {}) as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
      const id = str(meta['source']) ?? source?.id ?? 'N/A';
      const known = byCitation.get(id);
      if (known) {
        known.text += `\n\n${text}`;
        return;
      }
      byCitation.set(id, {
        n: byCitation.size + 1,
        base: source?.name ?? '',
        document: str(meta['name']) ?? str(meta['source']) ?? source?.name ?? 'source',
        document_id: str(meta['file_id']) ?? source?.id ?? '',
        chunk_id: 0,
        heading: '',
        text,
        score: distances?.[i] ?? 0,
      });
    });
  }
  return byCitation.size > 0 ? { sources: [...byCitation.values()] } : null;
}

/** Open WebUI writes epoch seconds (and, in places, milliseconds or nanoseconds): read each by its size. */
function epochDate(n: number | undefined): Date {
  if (n === undefined || !Number.isFinite(n)) return new Date();
  return new Date(n < 1e11 ? n * 1000 : n < 1e14 ? n : n / 1e6);
}
