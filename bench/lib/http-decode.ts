// One decode through hearth's Ollama API, timed by the client and by the server's own figures.
import { performance } from 'node:perf_hooks';
import type { DecodeRun } from './direct.js';

export interface HttpDecodeRun extends DecodeRun {
  /** the client's view: tokens after the first streamed chunk per second until the final line */
  clientDecodeTokS: number;
}

/** A streamed raw completion of `tokens` tokens; the decode rate is the server's eval figures. */
export async function httpDecode(
  url: string,
  model: string,
  prompt: string,
  tokens: number,
  options: Record<string, unknown>,
): Promise<HttpDecodeRun> {
  const started = performance.now();
  const res = await fetch(`${url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, raw: true, stream: true, options: { ...options, num_predict: tokens } }),
  });
  if (!res.ok || !res.body) throw new Error(`hearth answered ${res.status}: ${await res.text()}`);
  let firstAt = 0;
  let lastAt = 0;
  let final: Record<string, number> | null = null;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const now = performance.now();
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const obj = JSON.parse(buffered.slice(0, nl)) as { response?: string; done?: boolean; error?: string };
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      if (obj.error) throw new Error(obj.error);
      if (obj.response && firstAt === 0) firstAt = now;
      if (obj.done) {
        final = obj as unknown as Record<string, number>;
        lastAt = now;
      }
    }
  }
  if (!final) throw new Error('no final line');
  const evalCount = final['eval_count'] ?? 0;
  return {
    promptTokens: final['prompt_eval_count'] ?? 0,
    ttftMs: firstAt > 0 ? firstAt - started : Number.NaN,
    tokens: evalCount,
    decodeTokS: evalCount > 1 ? (evalCount - 1) / ((final['eval_duration'] ?? 0) / 1e9) : Number.NaN,
    clientDecodeTokS:
      evalCount > 1 && firstAt > 0 && lastAt > firstAt ? (evalCount - 1) / ((lastAt - firstAt) / 1000) : Number.NaN,
  };
}

/**
 * Time to first token as a client sees it: a whole (not streamed) response of one token, so
 * nothing waits on the stream's text (a token that is part of a UTF-8 character is held back).
 */
export async function httpFirstToken(
  url: string,
  model: string,
  prompt: string,
  options: Record<string, unknown>,
): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, raw: true, stream: false, options: { ...options, num_predict: 1 } }),
  });
  const body = (await res.json()) as { eval_count?: number; error?: string };
  if (!res.ok || body.error) throw new Error(`hearth answered ${res.status}: ${body.error}`);
  return performance.now() - started;
}
