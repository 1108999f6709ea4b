// The browser's side of hearth's UI API (/api/ui, documented in docs/ui.md). The session is an
// HttpOnly cookie the browser sends by itself; writes carry the session's CSRF token in a header.

import type {
  AddAnswer,
  BasesAnswer,
  ConversationAnswer,
  ConversationInit,
  ConversationPage,
  ConversationPatch,
  ConversationWithMessages,
  CreateBaseBody,
  DocumentsAnswer,
  ImageEvent,
  ImageRequest,
  ImportAnswer,
  KnowledgeBase,
  MePatch,
  ModelsAnswer,
  NewUser,
  PresetAnswer,
  PresetBody,
  PresetsAnswer,
  ReplyBody,
  ReplyEvent,
  SearchAnswer,
  SessionInfo,
  SignedIn,
  StopAnswer,
  StopImageAnswer,
  User,
  UserAnswer,
  UserPatch,
  UsersAnswer,
} from '@contract/ui';

// The types come from the server's contract (src/http/ui/contract.ts, docs/ui.md "One contract"),
// as types only: nothing of it is in the page's bundle.
export type {
  AddedFile,
  Attachment,
  ByteAttachment,
  ChatParams,
  Conversation,
  ConversationSummary,
  Drawing,
  ImageEvent,
  ImageModelInfo,
  ImageRequest,
  KnowledgeBase,
  KnowledgeDocument,
  Message,
  MessageRole,
  MessageStats,
  MessageStatus,
  ModelInfo,
  Preset,
  ReplyEvent,
  Role,
  SearchHit,
  SessionInfo,
  Source,
  Theme,
  UnreadAttachment,
  User,
} from '@contract/ui';

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
async function uploadFiles<T>(path: string, files: File[]): Promise<T> {
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
    const out = await request<SignedIn>('POST', '/api/ui/setup', { username, password });
    csrfToken = out.csrfToken;
    return out.user;
  },
  async login(username: string, password: string): Promise<User> {
    const out = await request<SignedIn>('POST', '/api/ui/login', { username, password });
    csrfToken = out.csrfToken;
    return out.user;
  },
  async logout(): Promise<void> {
    await request('POST', '/api/ui/logout', {});
    csrfToken = '';
  },
  updateMe: (patch: MePatch) => request<UserAnswer>('PATCH', '/api/ui/me', patch).then((r) => r.user),
  /** The chat models, and the image models apart (for "Create image"). */
  models: () => request<ModelsAnswer>('GET', '/api/ui/models'),
  conversations: (after?: string, limit = 100) =>
    request<ConversationPage>(
      'GET',
      `/api/ui/conversations?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`,
    ),
  createConversation: (init: ConversationInit) =>
    request<ConversationAnswer>('POST', '/api/ui/conversations', init).then((r) => r.conversation),
  conversation: (id: string) =>
    request<ConversationWithMessages>('GET', `/api/ui/conversations/${encodeURIComponent(id)}`),
  updateConversation: (id: string, patch: ConversationPatch) =>
    request<ConversationAnswer>('PATCH', `/api/ui/conversations/${encodeURIComponent(id)}`, patch).then(
      (r) => r.conversation,
    ),
  deleteConversation: (id: string) => request('DELETE', `/api/ui/conversations/${encodeURIComponent(id)}`),
  restoreConversation: (id: string) => request('POST', `/api/ui/conversations/${encodeURIComponent(id)}/restore`, {}),
  stop: (conversationId: string, messageId: string) =>
    request<StopAnswer>(
      'POST',
      `/api/ui/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}/stop`,
      {},
    ),
  search: (q: string) =>
    request<SearchAnswer>('GET', `/api/ui/search?q=${encodeURIComponent(q)}`).then((r) => r.results),
  importChats: (data: unknown) => request<ImportAnswer>('POST', '/api/ui/import', data),
  presets: () => request<PresetsAnswer>('GET', '/api/ui/presets').then((r) => r.presets),
  createPreset: (p: PresetBody) => request<PresetAnswer>('POST', '/api/ui/presets', p).then((r) => r.preset),
  deletePreset: (id: string) => request('DELETE', `/api/ui/presets/${encodeURIComponent(id)}`),
  users: () => request<UsersAnswer>('GET', '/api/ui/users').then((r) => r.users),
  createUser: (u: NewUser) => request<UserAnswer>('POST', '/api/ui/users', u).then((r) => r.user),
  updateUser: (id: string, patch: UserPatch) =>
    request<UserAnswer>('PATCH', `/api/ui/users/${encodeURIComponent(id)}`, patch).then((r) => r.user),
  deleteUser: (id: string) => request('DELETE', `/api/ui/users/${encodeURIComponent(id)}`),

  knowledgeBases: () => request<BasesAnswer>('GET', '/api/ui/knowledge').then((r) => r.bases),
  createKnowledgeBase: (body: CreateBaseBody) => request<KnowledgeBase>('POST', '/api/ui/knowledge', body),
  knowledgeDocuments: (base: string) =>
    request<DocumentsAnswer>('GET', `/api/ui/knowledge/${encodeURIComponent(base)}/documents`).then((r) => r.documents),
  addKnowledgeFiles: (base: string, files: File[]) =>
    uploadFiles<AddAnswer>(`/api/ui/knowledge/${encodeURIComponent(base)}/documents`, files).then((r) => r.files),

  /**
   * Asks for a reply and calls `onEvent` for each event as it arrives. Resolves when the reply
   * ends; `signal` cuts the connection only: the server goes on writing the reply (follow it again
   * with `follow`; `stop` ends it).
   */
  async reply(
    conversationId: string,
    /** an image attachment may carry the page's own `preview` (an object URL): it is not sent */
    body: ReplyBody,
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

  /**
   * Follows the picture being drawn in a chat (after a reload): events as for `createImage`, from a
   * `progress` with its current step; nothing when none is being drawn. `signal` ends the following only.
   */
  async followImage(conversationId: string, onEvent: (event: ImageEvent) => void, signal: AbortSignal): Promise<void> {
    const res = await send(`/api/ui/conversations/${encodeURIComponent(conversationId)}/images/stream`, {
      credentials: 'same-origin',
      signal,
    });
    if (res.status === 204) return;
    await readEvents(res, onEvent as (event: ReplyEvent) => void);
  },

  /** Stops the picture being drawn in a chat; answers once it has ended (nothing of it is stored). */
  stopImage: (conversationId: string) =>
    request<StopImageAnswer>('POST', `/api/ui/conversations/${encodeURIComponent(conversationId)}/images/stop`, {}),

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
