import { isHearthError } from '../../errors.js';
import type { LlamaServerProcess } from './process.js';
import { ServerExited } from './process.js';

/**
 * A forced tool call (`tool_choice: required`, or a named tool) on llama-server.
 *
 * llama-server's grammar for `required` lets any text come before the first
 * call when the template has a call marker (`until(<tool_call>) tool-calls`),
 * so a model may write text until `num_predict` runs out. The server also
 * continues a trailing assistant message (prefill): the message's text goes
 * into the prompt after the generation prompt, the tool-call grammar is fed
 * that text first (it advances past the marker), and its parser reads the
 * prompt's tail with the output, so the answer still comes back as
 * `tool_calls`. So a forced call is asked for as `tool_choice: required` with
 * the template's call marker prefilled: after it the grammar admits only a
 * call of the offered tools, in the model's own format.
 *
 * The marker is llama.cpp's own: the word its lazy tool-call grammar waits for
 * under `tool_choice: auto` (`<tool_call>` for Qwen and Hermes, `[TOOL_CALLS]`
 * for Mistral, `<|tool_call>` for Gemma 4 ...), read once per process from a
 * one-token probe's `__verbose.generation_settings.grammar_triggers`. A
 * template whose calls have no marker word (raw JSON calls; gpt-oss and
 * Functionary, whose triggers are patterns), or a llama-server that does not
 * take the probe (an older `inference.llamaServer`), gets plain `required`.
 */

/** llama.cpp's grammar trigger types: a token, a word (the two with a fixed text), a pattern, a full pattern. */
const TRIGGER_TOKEN = 0;
const TRIGGER_WORD = 1;

const markers = new WeakMap<LlamaServerProcess, Promise<string | null>>();

const PROBE_TOOL = {
  type: 'function',
  function: { name: 'probe', description: 'probe', parameters: { type: 'object', properties: {} } },
};
const PROBE_TURN = { role: 'user', content: 'hi' };

/** The probe: `auto`, one token; `verbose` returns the generation settings with the grammar's triggers. */
const ASK_MARKER = {
  messages: [PROBE_TURN],
  tools: [PROBE_TOOL],
  tool_choice: 'auto',
  n_predict: 1,
  stream: false,
  verbose: true,
};

interface ProbeAnswer {
  __verbose?: { generation_settings?: { grammar_triggers?: Array<{ type?: number; value?: unknown }> } };
}

/** Bounded: the probe is one token on a tiny prompt; a process too busy to answer in time gets plain `required`. */
const PROBE_TIMEOUT_MS = 30_000;

/** What the probe found: the marker, none (cached), or no answer (asked again next time). */
type ProbeResult = { marker: string | null } | 'no answer';

/** The text that opens a tool call in this process's template, or null when there is none to prefill. */
export async function callMarker(proc: LlamaServerProcess): Promise<string | null> {
  let known = markers.get(proc);
  if (!known) {
    const asked = probe(proc);
    known = asked.then((r) => (r === 'no answer' ? null : r.marker));
    markers.set(proc, known);
    // a dead process or a timeout says nothing about the template: the next request asks again
    void asked.then(
      (r) => r === 'no answer' && markers.delete(proc),
      () => markers.delete(proc),
    );
  }
  return known;
}

/** POSTs a probe: its answer, or why there is none (the server's error answer, or no answer in time). */
async function ask(
  proc: LlamaServerProcess,
  body: Record<string, unknown>,
): Promise<{ answer: ProbeAnswer } | { refused: number } | 'no answer'> {
  let answer: ProbeAnswer = {};
  try {
    await proc.post('/v1/chat/completions', body, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      onEvent: (data) => {
        answer = JSON.parse(data) as ProbeAnswer;
      },
    });
  } catch (err) {
    if (err instanceof ServerExited) throw err;
    return isHearthError(err) ? { refused: err.status } : 'no answer';
  }
  return { answer };
}

async function probe(proc: LlamaServerProcess): Promise<ProbeResult> {
  const asked = await ask(proc, ASK_MARKER);
  if (asked === 'no answer') return asked;
  // 4xx: this llama-server does not take the probe (an older one); 5xx: the one token did not parse (ask again)
  if ('refused' in asked) return asked.refused < 500 ? { marker: null } : 'no answer';
  const triggers = asked.answer.__verbose?.generation_settings?.grammar_triggers ?? [];
  const first = triggers.find(
    (t) => (t.type === TRIGGER_WORD || t.type === TRIGGER_TOKEN) && typeof t.value === 'string',
  );
  return { marker: typeof first?.value === 'string' && first.value !== '' ? first.value : null };
}

type Message = Record<string, unknown> & { role?: unknown; content?: unknown; tool_calls?: unknown };

/**
 * Prefills the call marker into a chat body that forces a call (`tool_choice:
 * required`, which a named tool has become with only that tool offered): a
 * trailing assistant turn with the marker, or the marker after the text of a
 * trailing assistant turn the client sent. Leaves the body as it is when the
 * template has no marker, or the conversation ends with calls already made.
 */
export async function prefillCallMarker(proc: LlamaServerProcess, body: Record<string, unknown>): Promise<void> {
  if (body['tool_choice'] !== 'required' || !Array.isArray(body['tools']) || body['tools'].length === 0) return;
  const messages = body['messages'] as Message[];
  const last = messages.at(-1);
  if (last?.role === 'assistant' && (last.tool_calls !== undefined || typeof last.content !== 'string')) return;
  const marker = await callMarker(proc);
  if (marker === null) return;
  if (last?.role === 'assistant') {
    messages[messages.length - 1] = { ...last, content: `${last.content as string}${marker}` };
  } else {
    messages.push({ role: 'assistant', content: marker });
  }
}
