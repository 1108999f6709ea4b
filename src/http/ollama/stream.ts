import type { FastifyReply, FastifyRequest } from 'fastify';
import { toHearthError } from '../errors.js';

/**
 * Ollama's NDJSON streaming: one JSON object a line. Headers go out with the
 * first line, so an error before any output is still a proper status code; an
 * error after it becomes a final `{"error": ...}` line (the status stays 200),
 * as Ollama does.
 */
export class NdjsonStream {
  private started = false;
  private ended = false;

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  get hasStarted(): boolean {
    return this.started;
  }

  write(obj: unknown): void {
    if (this.ended) return;
    if (!this.started) {
      this.started = true;
      this.reply.hijack();
      this.reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
    }
    this.reply.raw.write(`${JSON.stringify(obj)}\n`);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.started) this.reply.raw.end();
  }

  /** After output has begun, reports the error in-band; before, rethrows it for the normal error path. */
  fail(err: unknown): void {
    if (!this.started) throw err;
    const he = toHearthError(err);
    if (he.status >= 500) this.request.log.error({ err }, he.message);
    this.write({ error: he.message });
    this.end();
  }
}

/**
 * An AbortSignal that fires when the client goes away before the response is
 * complete. (The request's own 'close' fires once its body has been read, so
 * only the response's tells that the connection is gone.)
 */
export function clientGone(_request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection'));
  });
  return controller.signal;
}

/**
 * Ollama's two answers to one request: `stream: false` gets the final object
 * as JSON; otherwise `run` writes progress lines to the stream and its result
 * is the last line. Errors follow NdjsonStream's rules.
 */
export async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  streaming: boolean,
  run: (stream: NdjsonStream | null) => Promise<unknown>,
): Promise<unknown> {
  const stream = streaming ? new NdjsonStream(request, reply) : null;
  try {
    const final = await run(stream);
    if (!stream) return final;
    stream.write(final);
    stream.end();
    return reply;
  } catch (err) {
    if (!stream) throw err;
    stream.fail(err);
    return reply;
  }
}
