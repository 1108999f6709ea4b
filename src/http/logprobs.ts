import type { TokenLogprob } from '../engine/types.js';

/** Token log-probabilities as Ollama and OpenAI's chat API both send them: `{token, logprob, bytes, top_logprobs}`. */
export function wireLogprobs(entries: TokenLogprob[]) {
  return entries.map((e) => ({
    token: e.token,
    logprob: e.logprob,
    bytes: e.bytes,
    top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
  }));
}
