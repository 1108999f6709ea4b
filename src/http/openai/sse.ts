import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorBody, toHearthError } from '../errors.js';

/**
 * OpenAI's streaming: server-sent events, one `data: {json}` event per chunk,
 * ending with `data: [DONE]`. Headers go out with the first event, so an error
 * before any output keeps its status code; an error after it becomes a final
 * `data: {"error": {...}}` event in OpenAI's error shape, which the SDKs raise
 * as an APIError.
 */
export class SseStream {
  private started = false;
  private ended = false;

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  get hasStarted(): boolean {
    return this.started;
  }

  send(event: unknown): void {
    this.writeData(JSON.stringify(event));
  }

  /** `data: [DONE]`, then the end of the response. */
  done(): void {
    this.writeData('[DONE]');
    this.end();
  }

  /** After output has begun, reports the error in-band; before, rethrows it for the normal error path. */
  fail(err: unknown): void {
    if (!this.started) throw err;
    const he = toHearthError(err);
    if (he.status >= 500) this.request.log.error({ err }, he.message);
    this.writeData(JSON.stringify(errorBody('openai', he)));
    this.end();
  }

  private writeData(data: string): void {
    if (this.ended || this.reply.raw.destroyed) return;
    if (!this.started) {
      this.started = true;
      this.reply.hijack();
      // Headers set by hooks (CORS, request ids) travel with the hijacked response.
      for (const [name, value] of Object.entries(this.reply.getHeaders())) {
        if (value !== undefined) this.reply.raw.setHeader(name, value);
      }
      this.reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        // Reverse proxies (nginx) would otherwise hold events back.
        'x-accel-buffering': 'no',
      });
    }
    this.reply.raw.write(`data: ${data}\n\n`);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.started) this.reply.raw.end();
  }
}
