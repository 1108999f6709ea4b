import type { FastifyReply, FastifyRequest } from 'fastify';
import { NdjsonStream } from '../stream.js';

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
    await stream.write(final);
    stream.end();
    return reply;
  } catch (err) {
    if (!stream) throw err;
    stream.fail(err);
    return reply;
  }
}
