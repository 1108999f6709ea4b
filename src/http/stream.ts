import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorShape, errorBody, toHearthError } from './errors.js';

/**
 * The one way hearth streams a response (NDJSON for Ollama and the chat UI,
 * server-sent events for OpenAI and jobs). Modelled on hono's
 * `utils/stream.ts` + `helper/streaming/`: a byte stream that owns the socket,
 * with the framings on top.
 *
 * - Headers go out with the first write, so an error before any output still
 *   takes the normal error path with its status code.
 * - The reply is hijacked at that first write; headers that hooks set on the
 *   reply (CORS, `vary`, `cache-control`, request ids) travel with it, because
 *   Fastify's onSend hooks never run for a hijacked reply.
 * - `signal` aborts when the client leaves before the end; writes after that
 *   (or after `end()`) are refused and return false.
 * - `write()` resolves once the socket has taken the chunk: when the kernel
 *   buffer is full it waits for 'drain' (or the close). Callers that can await
 *   (the jobs event loop) get backpressure; callbacks that cannot (token
 *   callbacks of the engine) still write in order.
 */

const gone = new WeakMap<FastifyReply, AbortSignal>();

/**
 * An AbortSignal that fires when the client goes away before the response is
 * complete. (The request's own 'close' fires once its body has been read, so
 * only the response's tells that the connection is gone.) One signal a reply,
 * however often it is asked for.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  let signal = gone.get(reply);
  if (signal) return signal;
  const controller = new AbortController();
  signal = controller.signal;
  gone.set(reply, signal);
  if (reply.raw.destroyed && !reply.raw.writableFinished) {
    controller.abort(new Error('client closed the connection'));
  } else {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection'));
    });
  }
  return signal;
}

export interface ResponseStreamOptions {
  /** The content type of the framing; it always wins over one a hook set. */
  contentType: string;
  /** Headers of the framing, used where no hook set the same header. */
  headers?: Record<string, string>;
}

/** A streamed HTTP response: raw text chunks, sent in order. */
export class ResponseStream {
  readonly signal: AbortSignal;
  private isStarted = false;
  private ended = false;

  constructor(
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    private readonly options: ResponseStreamOptions,
  ) {
    this.signal = clientGone(reply);
  }

  /** True once the headers went out (the reply is then hijacked). */
  get started(): boolean {
    return this.isStarted;
  }

  /** True after `end()` or once the client is gone: writes are refused. */
  get closed(): boolean {
    return this.ended || this.signal.aborted || this.reply.raw.destroyed;
  }

  /**
   * Sends one chunk, starting the response on the first. Resolves true once
   * the socket took it (after 'drain' when its buffer was full), false when
   * the stream is closed and nothing was written.
   */
  write(chunk: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.start();
    const raw = this.reply.raw;
    if (raw.write(chunk)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        raw.off('drain', drained);
        raw.off('close', closed);
        resolve(ok);
      };
      const drained = () => done(true);
      const closed = () => done(false);
      raw.once('drain', drained);
      raw.once('close', closed);
    });
  }

  /** Ends the response (once; a no-op if it never started: the route answers instead). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.isStarted && !this.reply.raw.destroyed) this.reply.raw.end();
  }

  /** Sends the headers now, for a stream that may wait long for its first chunk (no-op once started or closed). */
  start(): void {
    if (this.isStarted || this.closed) return;
    this.isStarted = true;
    const { reply } = this;
    reply.hijack();
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) reply.raw.setHeader(name, value);
    }
    for (const [name, value] of Object.entries(this.options.headers ?? {})) {
      if (!reply.raw.hasHeader(name)) reply.raw.setHeader(name, value);
    }
    reply.raw.setHeader('content-type', this.options.contentType);
    reply.raw.writeHead(reply.statusCode);
  }
}

/** Logs a server-side failure reported in-band (a 4xx is the client's business). */
function logFailure(request: FastifyRequest, err: unknown): ReturnType<typeof toHearthError> {
  const he = toHearthError(err);
  if (he.status >= 500) request.log.error({ err }, he.message);
  return he;
}

/**
 * NDJSON: one JSON object a line (Ollama's streams and the chat UI's replies).
 * An error after output began becomes a final `{"error": message}` line, the
 * status staying 200, as Ollama does; before, it is rethrown for the normal
 * error path.
 */
export class NdjsonStream {
  private readonly stream: ResponseStream;

  constructor(request: FastifyRequest, reply: FastifyReply) {
    this.stream = new ResponseStream(request, reply, { contentType: 'application/x-ndjson' });
  }

  get hasStarted(): boolean {
    return this.stream.started;
  }

  /** Aborts when the client leaves before the end. */
  get signal(): AbortSignal {
    return this.stream.signal;
  }

  write(obj: unknown): Promise<boolean> {
    return this.stream.write(`${JSON.stringify(obj)}\n`);
  }

  end(): void {
    this.stream.end();
  }

  /** After output has begun, reports the error in-band; before, rethrows it for the normal error path. */
  fail(err: unknown): void {
    if (!this.stream.started) throw err;
    const he = logFailure(this.stream.request, err);
    void this.write({ error: he.message });
    this.end();
  }
}

export interface SseEvent {
  /** `event:` name; absent for data-only events (OpenAI's chunks). */
  event?: string;
  /** `id:`, which a client sends back as Last-Event-ID when it reconnects. */
  id?: string | number;
}

export interface SseStreamOptions {
  /** The shape of an in-band error (`fail`); default the route's `errorShape`, else 'openai'. */
  errorShape?: ErrorShape;
  /** The `event:` name of an in-band error (Anthropic's `error`); default none (data-only, as OpenAI). */
  errorEvent?: string;
}

/**
 * Server-sent events: `data:` events (JSON), optionally named (`event:`) and
 * numbered (`id:`), and comments for keep-alive. An error after output began
 * becomes a final event in the route family's error shape (OpenAI:
 * `data: {"error": {...}}`, which the SDKs raise as an APIError); before, it is
 * rethrown for the normal error path.
 */
export class SseStream {
  private readonly stream: ResponseStream;

  constructor(
    request: FastifyRequest,
    reply: FastifyReply,
    private readonly options: SseStreamOptions = {},
  ) {
    this.stream = new ResponseStream(request, reply, {
      contentType: 'text/event-stream; charset=utf-8',
      headers: {
        'cache-control': 'no-cache',
        // Reverse proxies (nginx) would otherwise hold events back.
        'x-accel-buffering': 'no',
      },
    });
  }

  get hasStarted(): boolean {
    return this.stream.started;
  }

  /** Aborts when the client leaves before the end. */
  get signal(): AbortSignal {
    return this.stream.signal;
  }

  get closed(): boolean {
    return this.stream.closed;
  }

  /** Sends the headers now, for a stream that may wait long for its first event. */
  open(): void {
    this.stream.start();
  }

  /** One event whose data is `data` as JSON. */
  send(data: unknown, event: SseEvent = {}): Promise<boolean> {
    return this.event(JSON.stringify(data), event);
  }

  /** A comment line (`: text`), which clients ignore: keeps idle connections open through proxies. */
  comment(text: string): Promise<boolean> {
    return this.stream.write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
  }

  /** OpenAI's end: `data: [DONE]`, then the end of the response. */
  done(): void {
    void this.event('[DONE]', {});
    this.end();
  }

  end(): void {
    this.stream.end();
  }

  /** After output has begun, reports the error in-band; before, rethrows it for the normal error path. */
  fail(err: unknown): void {
    if (!this.stream.started) throw err;
    const he = logFailure(this.stream.request, err);
    const shape = this.options.errorShape ?? this.stream.request.routeOptions.config?.errorShape ?? 'openai';
    void this.send(errorBody(shape, he), this.options.errorEvent ? { event: this.options.errorEvent } : {});
    this.end();
  }

  private event(data: string, { event, id }: SseEvent): Promise<boolean> {
    let text = '';
    if (id !== undefined) text += `id: ${String(id).replace(/[\r\n]+/g, ' ')}\n`;
    if (event !== undefined) text += `event: ${event.replace(/[\r\n]+/g, ' ')}\n`;
    // JSON.stringify never yields a raw newline, but [DONE]-style data could: one data: line each.
    for (const line of data.split('\n')) text += `data: ${line}\n`;
    return this.stream.write(`${text}\n`);
  }
}
