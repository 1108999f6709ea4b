// A browser-like client of the chat UI API for tests: keeps the session cookie and sends the CSRF header.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ConversationMessage, ConversationStore } from '../../src/chat/conversations.js';

/** Parsed JSON in tests: shapes are asserted, not typed. */
export type Json = any;

/** The smallest PNG, base64: one pixel. */
export const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** A reply the test model writes for about 2 s (about 1,800 greedy tokens before its end-of-turn): long enough to stop. */
export const LONG = { prompt: 'Count to a thousand', params: { num_predict: 3000, temperature: 0, repeat_penalty: 1 } };

export interface UiResponse {
  status: number;
  json: Json;
  text: string;
  headers: Headers;
}

export class UiClient {
  cookie: string | undefined;
  csrf: string | undefined;

  constructor(public baseUrl: string) {}

  async call(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<UiResponse> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (this.cookie) headers['cookie'] = this.cookie;
    if (method !== 'GET' && this.csrf !== undefined && !('x-hearth-csrf' in extraHeaders))
      headers['x-hearth-csrf'] = this.csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      redirect: 'manual',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) {
      const value = /hearth_session=([^;]*)/.exec(setCookie)?.[1];
      this.cookie = value ? `hearth_session=${value}` : undefined;
    }
    const text = await res.text();
    let json: Json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    if (json?.csrfToken) this.csrf = json.csrfToken;
    return { status: res.status, json, text, headers: res.headers };
  }

  get(path: string) {
    return this.call('GET', path);
  }
  post(path: string, body: unknown = {}) {
    return this.call('POST', path, body);
  }
  patch(path: string, body: unknown) {
    return this.call('PATCH', path, body);
  }
  delete(path: string) {
    return this.call('DELETE', path);
  }

  /** Signs in (the public routes only need some CSRF header value). */
  async login(username: string, password: string): Promise<UiResponse> {
    this.csrf ??= 'x';
    return this.post('/api/ui/login', { username, password });
  }

  /** POSTs a reply request and returns its NDJSON events; `onEvent` sees each as it arrives; `signal` cuts the connection. */
  async reply(
    conversationId: string,
    body: unknown,
    onEvent?: (event: Json) => void,
    signal?: AbortSignal,
  ): Promise<{ status: number; events: Json[]; headers: Headers }> {
    return this.stream(`/api/ui/conversations/${conversationId}/replies`, body, onEvent, signal);
  }

  /** Continues a reply that ended early (POST .../messages/:id/continue): its NDJSON events. */
  async continueReply(
    conversationId: string,
    messageId: string,
    onEvent?: (event: Json) => void,
  ): Promise<{ status: number; events: Json[]; headers: Headers }> {
    return this.stream(`/api/ui/conversations/${conversationId}/messages/${messageId}/continue`, {}, onEvent);
  }

  /** "Create image" (POST .../images): its NDJSON events; `onEvent` sees each as it arrives. */
  async createImage(
    conversationId: string,
    body: unknown,
    onEvent?: (event: Json) => void,
  ): Promise<{ status: number; events: Json[]; headers: Headers }> {
    return this.stream(`/api/ui/conversations/${conversationId}/images`, body, onEvent);
  }

  /** Follows the picture being drawn in a chat (GET .../images/stream): its NDJSON events (none: 204). */
  async followImage(
    conversationId: string,
    onEvent?: (event: Json) => void,
  ): Promise<{ status: number; events: Json[]; headers: Headers }> {
    const res = await fetch(`${this.baseUrl}/api/ui/conversations/${conversationId}/images/stream`, {
      headers: { cookie: this.cookie ?? '' },
    });
    if (res.status === 204) return { status: 204, events: [], headers: res.headers };
    return readEvents(res, onEvent);
  }

  private async stream(
    path: string,
    body: unknown,
    onEvent?: (event: Json) => void,
    signal?: AbortSignal,
  ): Promise<{ status: number; events: Json[]; headers: Headers }> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method: 'POST',
      headers: { cookie: this.cookie ?? '', 'x-hearth-csrf': this.csrf ?? '', 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    return readEvents(res, onEvent);
  }

  /** Follows a reply from character `from` of its text (GET .../stream): its NDJSON events. */
  async follow(
    conversationId: string,
    messageId: string,
    from: number,
    onEvent?: (event: Json) => void,
  ): Promise<{ status: number; events: Json[]; headers: Headers }> {
    const res = await fetch(
      `${this.baseUrl}/api/ui/conversations/${conversationId}/messages/${messageId}/stream?from=${from}`,
      { headers: { cookie: this.cookie ?? '' } },
    );
    return readEvents(res, onEvent);
  }
}

/** Reads an NDJSON answer event by event; an error status gives its JSON body as the one event. */
async function readEvents(
  res: Response,
  onEvent?: (event: Json) => void,
): Promise<{ status: number; events: Json[]; headers: Headers }> {
  if (!res.ok || !res.body) return { status: res.status, events: [await res.json()], headers: res.headers };
  const events: Json[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const event = JSON.parse(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      events.push(event);
      onEvent?.(event);
      nl = buffered.indexOf('\n');
    }
  }
  return { status: res.status, events, headers: res.headers };
}

/** Uploads a file to a running hearth as a blob (POST /api/blobs/:digest); returns its digest. */
export async function uploadBlob(baseUrl: string, path: string): Promise<string> {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const up = await fetch(`${baseUrl}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  if (up.status !== 200 && up.status !== 201) throw new Error(`blob upload failed: ${up.status} ${await up.text()}`);
  return digest;
}

/**
 * Puts a GGUF into a running hearth as `name` (blob upload, then create); with `projector`, a vision
 * model: that mmproj GGUF goes with it as its projector layer.
 */
export async function importModel(
  baseUrl: string,
  name: string,
  path: string,
  extra: Record<string, unknown> = {},
  projector?: string,
) {
  const files: Record<string, string> = { 'model.gguf': await uploadBlob(baseUrl, path) };
  if (projector) files['mmproj.gguf'] = await uploadBlob(baseUrl, projector);
  const created = await fetch(`${baseUrl}/api/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: name, files, stream: false, ...extra }),
  });
  if (created.status !== 200) throw new Error(`model create failed: ${created.status} ${await created.text()}`);
}

/**
 * A reply left behind by a node that died while writing it: `half a rep` saved, status `streaming`,
 * a lease of `leaseMs` that nobody renews (under a new user message `hello` in `conversationId`).
 */
export async function orphanReply(
  conversations: ConversationStore,
  conversationId: string,
  leaseMs: number,
): Promise<ConversationMessage> {
  const question = await conversations.addMessage(conversationId, { parentId: null, role: 'user', content: 'hello' });
  return conversations.addMessage(conversationId, {
    parentId: question.id,
    role: 'assistant',
    content: 'half a rep',
    status: 'streaming',
    nodeId: 'a-node-that-died',
    leaseMs,
  });
}
