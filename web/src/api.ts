// The browser's side of hearth's UI API (/api/ui, documented in docs/ui.md). The session is an
// HttpOnly cookie the browser sends by itself; writes carry the session's CSRF token in a header.

export type Role = 'admin' | 'user';
export type Theme = 'system' | 'light' | 'dark';
export type MessageRole = 'system' | 'user' | 'assistant';
export type MessageStatus = 'streaming' | 'done' | 'stopped' | 'error' | 'interrupted';
export type ChatParams = Record<string, number | boolean | string[]>;

export interface User {
  id: string;
  username: string;
  role: Role;
  defaultModel: string | null;
  theme: Theme;
  createdAt: string;
  /** the latest use of one of the account's sessions (the Users list, for admins) */
  lastSeenAt?: string | null;
}

export interface Attachment {
  name: string;
  size: number;
  text: string;
  truncated: boolean;
  /** an image: its name under GET /api/ui/images/ */
  image?: string;
}

export interface MessageStats {
  promptTokens?: number;
  evalTokens?: number;
  tokensPerSecond?: number;
  timeToFirstTokenMs?: number;
  totalMs?: number;
  doneReason?: string;
  /** how long the reply's `<think>` reasoning took, from its first token */
  reasoningMs?: number;
  /** knowledge-base passages the reply was given (`#name` in the message), numbered as cited */
  sources?: Source[];
}

/** A retrieved passage a reply cites as [n]. */
export interface Source {
  n: number;
  base: string;
  document: string;
  document_id: string;
  chunk_id: number;
  heading: string;
  text: string;
  score: number;
}

export interface KnowledgeBase {
  id: string;
  name: string;
  description: string;
  sharing: 'private' | 'shared';
  embedding_model: string;
  documents: number;
  documents_pending: number;
  documents_failed: number;
  chunks: number;
}

export interface KnowledgeDocument {
  id: string;
  name: string;
  size: number;
  state: 'pending' | 'ready' | 'failed';
  error: string | null;
  chunks: number;
  embedded: number | null;
}

export interface AddedFile {
  name: string;
  status: 'added' | 'duplicate' | 'refused';
  error?: string;
}

export interface Message {
  id: string;
  parentId: string | null;
  role: MessageRole;
  content: string;
  attachments: Attachment[];
  model: string | null;
  status: MessageStatus;
  error: string | null;
  stats: MessageStats | null;
  createdAt: string;
}

export interface Conversation {
  id: string;
  title: string;
  titleSource: string;
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases every reply answers from (applied from a preset) */
  knowledge?: string[];
  currentLeafId: string | null;
  pinned: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ConversationSummary {
  id: string;
  title: string;
  pinned: boolean;
  model: string | null;
  updatedAt: string;
  /** a reply is being written in this chat */
  streaming?: boolean;
}

export interface SearchHit extends ConversationSummary {
  snippet: string;
}

export interface ModelInfo {
  name: string;
  size: number;
  family: string;
  parameterSize: string;
  quantization: string;
  contextLength: number | null;
  defaultNumCtx: number;
  /** the Modelfile's parameters (Ollama option names) */
  parameters?: ChatParams;
  /** what the model can do (`completion`, `vision`, `thinking`, ...) */
  capabilities?: string[];
}

/** An image model of the library (for "Create image"). */
export interface ImageModelInfo {
  name: string;
  size: number;
  family: string;
}

/** What "Create image" asks for: the OpenAI images route's options, one image. */
export interface ImageRequest {
  parentId: string | null;
  prompt: string;
  model: string;
  size?: string;
  steps?: number;
  seed?: number;
}

/** Events of POST .../images (NDJSON): a sampling step, then the two stored messages and `done`. */
export type ImageEvent = { type: 'progress'; step: number; total: number } | ReplyEvent;

export interface Preset {
  id: string;
  name: string;
  model: string | null;
  systemPrompt: string | null;
  params: ChatParams;
  /** knowledge bases a chat started from it answers from */
  knowledge?: string[];
  shared: boolean;
  editable: boolean;
}

export interface SessionInfo {
  user: User | null;
  csrfToken: string | null;
  setupRequired: boolean;
}

/** An error the API answered with: its status and hearth's message (which says what to do). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** the error's whole JSON body (the workflow editor reads `node_errors` from it) */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/** Said when the server cannot be reached at all (not an answer with an error): the page shows a banner and retries. */
export const UNREACHABLE =
  'Server unreachable: hearth is not answering. Your draft is kept; the page reconnects by itself.';

/** fetch, with "no answer at all" turned into an ApiError (status 0) the page can show, and announced. */
async function send(path: string, init: RequestInit): Promise<Response> {
  try {
    const res = await fetch(path, init);
    window.dispatchEvent(new CustomEvent('hearth:reachable'));
    return res;
  } catch (err) {
    if (init.signal?.aborted) throw err;
    window.dispatchEvent(new CustomEvent('hearth:unreachable'));
    throw new ApiError(0, UNREACHABLE);
  }
}

/** Events of a reply being written (NDJSON lines of POST .../replies). */
export type ReplyEvent =
  | { type: 'message'; message: Message }
  | { type: 'text'; text: string }
  | { type: 'notice'; text: string }
  | { type: 'done'; message: Message };

let csrfToken = '';

/** Every write needs the session's token; sign-in and setup accept any value (the header itself is the point). */
function headers(json: boolean): Record<string, string> {
  return { 'x-hearth-csrf': csrfToken || 'none', ...(json ? { 'content-type': 'application/json' } : {}) };
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let body: { error?: string } | undefined;
  try {
    body = (await res.json()) as { error?: string };
    if (typeof body.error === 'string') message = body.error;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message, body);
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(path, {
    method,
    credentials: 'same-origin',
    headers: method === 'GET' ? {} : headers(body !== undefined),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401) window.dispatchEvent(new CustomEvent('hearth:signed-out'));
    throw err;
  }
  return (await res.json()) as T;
}

/** Uploads files as multipart/form-data (the one write that is not JSON). */
export async function uploadFiles<T>(path: string, files: File[]): Promise<T> {
  const form = new FormData();
  for (const file of files) form.append('file', file, file.name);
  const res = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: headers(false), body: form });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export const api = {
  async session(): Promise<SessionInfo> {
    const info = await request<SessionInfo>('GET', '/api/ui/session');
    csrfToken = info.csrfToken ?? '';
    return info;
  },
  async setup(username: string, password: string): Promise<User> {
    const out = await request<{ user: User; csrfToken: string }>('POST', '/api/ui/setup', { username, password });
    csrfToken = out.csrfToken;
    return out.user;
  },
  async login(username: string, password: string): Promise<User> {
    const out = await request<{ user: User; csrfToken: string }>('POST', '/api/ui/login', { username, password });
    csrfToken = out.csrfToken;
    return out.user;
  },
  async logout(): Promise<void> {
    await request('POST', '/api/ui/logout', {});
    csrfToken = '';
  },
  updateMe: (patch: { defaultModel?: string | null; theme?: Theme; currentPassword?: string; newPassword?: string }) =>
    request<{ user: User }>('PATCH', '/api/ui/me', patch).then((r) => r.user),
  /** The chat models, and the image models apart (for "Create image"). */
  models: () => request<{ models: ModelInfo[]; imageModels: ImageModelInfo[] }>('GET', '/api/ui/models'),
  conversations: (after?: string, limit = 100) =>
    request<{ conversations: ConversationSummary[]; next: string | null }>(
      'GET',
      `/api/ui/conversations?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`,
    ),
  createConversation: (init: {
    model?: string | null;
    systemPrompt?: string | null;
    params?: ChatParams;
    knowledge?: string[];
    title?: string;
  }) => request<{ conversation: Conversation }>('POST', '/api/ui/conversations', init).then((r) => r.conversation),
  conversation: (id: string) =>
    request<{ conversation: Conversation; messages: Message[] }>(
      'GET',
      `/api/ui/conversations/${encodeURIComponent(id)}`,
    ),
  updateConversation: (
    id: string,
    patch: Partial<Pick<Conversation, 'title' | 'pinned' | 'model' | 'systemPrompt' | 'params' | 'currentLeafId'>>,
  ) =>
    request<{ conversation: Conversation }>('PATCH', `/api/ui/conversations/${encodeURIComponent(id)}`, patch).then(
      (r) => r.conversation,
    ),
  deleteConversation: (id: string) => request('DELETE', `/api/ui/conversations/${encodeURIComponent(id)}`),
  restoreConversation: (id: string) => request('POST', `/api/ui/conversations/${encodeURIComponent(id)}/restore`, {}),
  stop: (conversationId: string, messageId: string) =>
    request<{ message?: Message; requested?: boolean }>(
      'POST',
      `/api/ui/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}/stop`,
      {},
    ),
  search: (q: string) =>
    request<{ results: SearchHit[] }>('GET', `/api/ui/search?q=${encodeURIComponent(q)}`).then((r) => r.results),
  importChats: (data: unknown) =>
    request<{ format: string; imported: number; conversations: Array<{ id: string; title: string }> }>(
      'POST',
      '/api/ui/import',
      data,
    ),
  presets: () => request<{ presets: Preset[] }>('GET', '/api/ui/presets').then((r) => r.presets),
  createPreset: (p: Omit<Preset, 'id' | 'editable'>) =>
    request<{ preset: Preset }>('POST', '/api/ui/presets', p).then((r) => r.preset),
  deletePreset: (id: string) => request('DELETE', `/api/ui/presets/${encodeURIComponent(id)}`),
  users: () => request<{ users: User[] }>('GET', '/api/ui/users').then((r) => r.users),
  createUser: (u: { username: string; password: string; role: Role }) =>
    request<{ user: User }>('POST', '/api/ui/users', u).then((r) => r.user),
  updateUser: (id: string, patch: { role?: Role; password?: string }) =>
    request<{ user: User }>('PATCH', `/api/ui/users/${encodeURIComponent(id)}`, patch).then((r) => r.user),
  deleteUser: (id: string) => request('DELETE', `/api/ui/users/${encodeURIComponent(id)}`),

  /**
   * Asks for a reply and calls `onEvent` for each event as it arrives. Resolves when the reply
   * ends; `signal` cuts the connection only: the server goes on writing the reply (follow it again
   * with `follow`; `stop` ends it).
   */
  async reply(
    conversationId: string,
    body: {
      parentId: string | null;
      content?: string;
      attachments?: Array<{ name: string; text: string } | { name: string; data: string; preview?: string }>;
      model?: string;
    },
    onEvent: (event: ReplyEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await send(`/api/ui/conversations/${encodeURIComponent(conversationId)}/replies`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers(true),
      // An image's preview is the page's own (an object URL): not sent.
      body: JSON.stringify(body, (key, value) => (key === 'preview' ? undefined : value)),
      signal,
    });
    await readEvents(res, onEvent);
  },

  /** "Create image": an image model draws the prompt; the page sees each step, then the two stored messages. */
  async createImage(conversationId: string, body: ImageRequest, onEvent: (event: ImageEvent) => void): Promise<void> {
    const res = await send(`/api/ui/conversations/${encodeURIComponent(conversationId)}/images`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers(true),
      body: JSON.stringify(body),
    });
    await readEvents(res, onEvent as (event: ReplyEvent) => void);
  },

  /** Continues a reply that ended early: its saved text stays, the new text is appended (events as for `reply`). */
  async continueReply(
    conversationId: string,
    messageId: string,
    onEvent: (event: ReplyEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await send(
      `/api/ui/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}/continue`,
      { method: 'POST', credentials: 'same-origin', headers: headers(true), body: '{}', signal },
    );
    await readEvents(res, onEvent);
  },

  /** Follows a reply being written, from character `from` of its text: `text` events, then `done`. */
  async follow(
    conversationId: string,
    messageId: string,
    from: number,
    onEvent: (event: ReplyEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await send(
      `/api/ui/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}/stream?from=${from}`,
      { credentials: 'same-origin', signal },
    );
    if (res.status === 204) return;
    await readEvents(res, onEvent);
  },
};

/** Reads an NDJSON answer, calling `onEvent` for each line; a connection lost midway is "unreachable". */
async function readEvents(res: Response, onEvent: (event: ReplyEvent) => void): Promise<void> {
  if (!res.ok || !res.body) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read().catch((err: Error) => {
      if (err.name === 'AbortError') throw err;
      window.dispatchEvent(new CustomEvent('hearth:unreachable'));
      throw new ApiError(0, UNREACHABLE);
    });
    if (done) break;
    buffered += value;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      if (!line.trim()) continue;
      const event = JSON.parse(line) as ReplyEvent | { error: string };
      if ('error' in event) throw new ApiError(500, event.error);
      onEvent(event);
    }
  }
}
