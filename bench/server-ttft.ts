// Where hearth's server engine spends a one-token request's time (issue 12, time to first token):
//
//   npx tsx bench/server-ttft.ts [--samples 7] [--threads 2] [--parallel 8] [--prompt-words 32]
//
// One `hearth serve` on the server engine and one llama-server alone (the same binary and the
// command line hearth gave its own instance), then, taking turns, the same one-token request:
//   - raw:         llama-server alone, /completion, not streamed (bench/server-engine.ts's baseline);
//   - raw-stream:  llama-server alone, /completion, streamed (what hearth sends: it always streams);
//   - socket:      hearth's own llama-server on its Unix socket, hearth's exact body;
//   - hearth:      /api/generate raw, not streamed.
// For each: the client's wall time and llama-server's own timings (prompt_n, prompt_ms,
// predicted_ms; hearth's from its prompt_eval_count / prompt_eval_duration / eval_duration), so a
// difference in prompt processing shows apart from a difference in the path. For hearth, its
// engine's total_duration splits the rest: engine − server (the pool's lease, the request to
// llama-server and its stream) and wall − engine (HTTP, the model lookup on Atlas, the answer).
// Medians of the per-sample differences.
//
// Then the first token as a client sees it (the figure the ≤ 5 ms target is about): streamed
// requests, timed from sending to the first chunk that carries the token (or the end), through
// hearth and straight to the llama-server hearth runs (its Unix socket, the same process, slots and
// cache), taking turns, on the same text: hearth's /api/generate (raw) against llama-server's
// /completion, and hearth's /api/chat and /v1/chat/completions against llama-server's
// /v1/chat/completions. Every request of a way repeats one prompt, so the slot has it cached and
// evaluates one token and samples one: prompt processing, which moves by ±60 ms between fresh
// prompts, drops out, and what is left is the path. Why not llama-server alone in its own process:
// taking turns between two llama-server processes slows each (measured here, two identical servers
// on one model file: a one-token request 20 ms on one, 36–43 ms and far noisier alternating), which
// swamps milliseconds. Once with a new connection per request, once with one kept-alive connection
// to hearth (llama-server closes its connection after every streamed answer, so straight to it
// each request is a new connection); medians of the paired differences.
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median } from '../src/loadgen/stats.js';
import { buildTestEngine, testEngineDir } from '../test/support/engine.js';
import { startHearthServer } from './lib/hearth-server.js';
import { childLlamaServerArgs, samplingFor, startRawLlamaServer } from './lib/llama-server.js';
import { processCpuMs } from './lib/machine.js';
import { benchModel, benchModelName } from './lib/models.js';
import { promptOf } from './lib/prompts.js';

const { values: args } = parseArgs({
  options: {
    samples: { type: 'string', default: '7' },
    /** one-token requests through hearth whose CPU time is counted (load-independent) */
    'cpu-requests': { type: 'string', default: '20' },
    threads: { type: 'string', default: '2' },
    parallel: { type: 'string', default: '8' },
    ctx: { type: 'string', default: '1024' },
    'prompt-words': { type: 'string', default: '32' },
    /** streamed requests per way in the client's first-token comparison */
    'ttft-samples': { type: 'string', default: '41' },
    'models-dir': { type: 'string', default: join(tmpdir(), 'hearth-bench-models') },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);
const SAMPLES = Number(args.samples);
const WORDS = Number(args['prompt-words']);

interface Sample {
  wallMs: number;
  promptN: number;
  promptMs: number;
  predictedMs: number;
  /** hearth only: its engine's total_duration (Engine.generate start to end) */
  engineMs?: number;
}

/** POST over TCP (url) or a Unix socket; resolves the whole body. */
function post(
  target: { url: string } | { socket: string },
  path: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const where =
      'socket' in target
        ? { socketPath: target.socket }
        : { host: new URL(target.url).hostname, port: Number(new URL(target.url).port) };
    const req = request(
      {
        ...where,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The first chunk of a stream that carries generated text, or its last: Ollama NDJSON or server-sent events. */
const TOKEN_OR_END = /"(?:response|content)":"[^"]|"done":true|"stop":true|"finish_reason":"/;

/**
 * A streamed POST over TCP; resolves the ms from sending to the first chunk that carries the token
 * (TOKEN_OR_END), once the whole answer is in (so the next request starts on an idle server).
 */
function firstToken(
  target: { url: string } | { socket: string },
  path: string,
  body: unknown,
  agent: Agent | false,
): Promise<number> {
  const payload = JSON.stringify(body);
  const where =
    'socket' in target
      ? { socketPath: target.socket }
      : { host: new URL(target.url).hostname, port: Number(new URL(target.url).port) };
  return new Promise((resolve, reject) => {
    const sent = performance.now();
    let first = -1;
    let text = '';
    const req = request(
      {
        ...where,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          if (first < 0 && TOKEN_OR_END.test(text)) first = performance.now() - sent;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`${path} answered ${res.statusCode}: ${text.slice(0, 300)}`));
          else if (first < 0) reject(new Error(`${path}: no token in ${text.slice(0, 300)}`));
          else resolve(first);
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err) =>
      reject(new Error(`${'socket' in target ? target.socket : target.url}${path}: ${err.message}`)),
    );
    req.end(payload);
  });
}

/** llama-server's timings from a plain answer or the last event of a stream. */
function timingsOf(text: string): { prompt_n: number; prompt_ms: number; predicted_ms: number } {
  const last = text.includes('data: ')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: ') && !l.includes('[DONE]'))
        .at(-1)!
        .slice(6)
    : text;
  return (JSON.parse(last) as { timings: { prompt_n: number; prompt_ms: number; predicted_ms: number } }).timings;
}

const model = await benchModel(args['models-dir']!, 'b1', 'Q4_K_M', log, 32000);
const name = benchModelName('b1', 'Q4_K_M', 32000).toLowerCase().replace(/_/g, '-');
const build = await buildTestEngine();
const hearth = await startHearthServer({
  threads: Number(args.threads),
  numParallel: Number(args.parallel),
  env: {
    HEARTH_INFERENCE_ENGINE: 'server',
    HEARTH_NODE_ENGINE_DIR: testEngineDir(),
    HEARTH_INFERENCE_NUM_CTX: args.ctx!,
    HEARTH_INFERENCE_NUM_BATCH: '512',
  },
  log,
});
let raw: Awaited<ReturnType<typeof startRawLlamaServer>> | null = null;
try {
  await hearth.addModel(name, model.path);
  const warm = await post({ url: hearth.url }, '/api/generate', {
    model: name,
    prompt: 'hello',
    raw: true,
    stream: false,
    options: samplingFor('ollama', 1, 1),
  });
  if (warm.status !== 200) throw new Error(`hearth answered ${warm.status}: ${warm.text}`);
  const hearthArgs = (await childLlamaServerArgs(hearth.pid))!;
  const socket = hearthArgs[hearthArgs.indexOf('--host') + 1]!;
  log(`hearth's llama-server: ${hearthArgs.filter((a) => !a.includes('/')).join(' ')}`);
  raw = await startRawLlamaServer(build.server, hearthArgs, build.libDir);
  const rawUrl = raw.url;

  // hearth's own body for a raw one-token completion (src/engine/server/requests.ts completionBody)
  const hearthBody = (prompt: string, seed: number) => ({
    stream: true,
    ...samplingFor('llama', 1, seed),
    prompt,
  });
  const ways: Record<string, (prompt: string, seed: number) => Promise<Sample>> = {
    raw: async (prompt, seed) => {
      const t = performance.now();
      const r = await post({ url: rawUrl }, '/completion', { prompt, stream: false, ...samplingFor('llama', 1, seed) });
      const wallMs = performance.now() - t;
      const x = timingsOf(r.text);
      return { wallMs, promptN: x.prompt_n, promptMs: x.prompt_ms, predictedMs: x.predicted_ms };
    },
    'raw-stream': async (prompt, seed) => {
      const t = performance.now();
      const r = await post({ url: rawUrl }, '/completion', hearthBody(prompt, seed));
      const wallMs = performance.now() - t;
      const x = timingsOf(r.text);
      return { wallMs, promptN: x.prompt_n, promptMs: x.prompt_ms, predictedMs: x.predicted_ms };
    },
    socket: async (prompt, seed) => {
      const t = performance.now();
      const r = await post({ socket }, '/completion', hearthBody(prompt, seed));
      const wallMs = performance.now() - t;
      const x = timingsOf(r.text);
      return { wallMs, promptN: x.prompt_n, promptMs: x.prompt_ms, predictedMs: x.predicted_ms };
    },
    hearth: async (prompt, seed) => {
      const t = performance.now();
      const r = await post({ url: hearth.url }, '/api/generate', {
        model: name,
        prompt,
        raw: true,
        stream: false,
        options: samplingFor('ollama', 1, seed),
      });
      const wallMs = performance.now() - t;
      if (r.status !== 200) throw new Error(`hearth answered ${r.status}: ${r.text}`);
      const x = JSON.parse(r.text) as {
        prompt_eval_count: number;
        prompt_eval_duration: number;
        eval_duration: number;
        total_duration: number;
      };
      return {
        engineMs: x.total_duration / 1e6,
        wallMs,
        promptN: x.prompt_eval_count,
        promptMs: x.prompt_eval_duration / 1e6,
        predictedMs: x.eval_duration / 1e6,
      };
    },
  };
  const names = Object.keys(ways);
  const samples: Record<string, Sample[]> = Object.fromEntries(names.map((n) => [n, []]));
  const loads: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    loads.push(loadavg()[0]!);
    // a fresh prompt per sample, the same on every way (each server has its own cache; the socket
    // and hearth ways share one, so each gets its own prompt of the same length)
    for (const way of names.map((_, k) => names[(k + i) % names.length]!)) {
      samples[way]!.push(await ways[way]!(promptOf(WORDS, 5000 + i * 10 + names.indexOf(way)), 7 + i));
    }
  }
  // The client's first token: hearth and llama-server alone, in turns, one cached prompt per way.
  const TTFT = Number(args['ttft-samples']);
  const chatPrompt = promptOf(WORDS, 7777);
  const completionPrompt = promptOf(WORDS, 8888);
  const messages = [{ role: 'user', content: chatPrompt }];
  const openaiSampling = { temperature: 0.8, top_p: 0.9, seed: 7, max_tokens: 1 };
  const pairs: Array<{ name: string; hearth: [string, unknown]; alone: [string, unknown] }> = [
    {
      name: 'raw completion: /api/generate vs /completion',
      hearth: [
        '/api/generate',
        { model: name, prompt: completionPrompt, raw: true, stream: true, options: samplingFor('ollama', 1, 7) },
      ],
      alone: ['/completion', { prompt: completionPrompt, stream: true, ...samplingFor('llama', 1, 7) }],
    },
    {
      name: 'chat: /api/chat vs /v1/chat/completions',
      hearth: ['/api/chat', { model: name, messages, stream: true, options: samplingFor('ollama', 1, 7) }],
      alone: ['/v1/chat/completions', { messages, stream: true, ...samplingFor('llama', 1, 7) }],
    },
    {
      name: 'chat: /v1/chat/completions vs /v1/chat/completions',
      hearth: ['/v1/chat/completions', { model: name, messages, stream: true, ...openaiSampling }],
      alone: ['/v1/chat/completions', { messages, stream: true, ...openaiSampling }],
    },
  ];
  const ttftRows: string[] = [];
  const ttftLoads: number[] = [];
  for (const keepAlive of [false, true]) {
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    try {
      for (const pair of pairs) {
        ttftLoads.push(loadavg()[0]!);
        const viaHearth = () => firstToken({ url: hearth.url }, pair.hearth[0], pair.hearth[1], agent);
        const alone = () => firstToken({ socket }, pair.alone[0], pair.alone[1], false);
        // two untimed requests each: the prompt into the slot's cache, and the connection opened
        for (let w = 0; w < 2; w++) {
          await viaHearth();
          await alone();
        }
        const h: number[] = [];
        const a: number[] = [];
        for (let i = 0; i < TTFT; i++) {
          if (i % 2 === 0) {
            h.push(await viaHearth());
            a.push(await alone());
          } else {
            a.push(await alone());
            h.push(await viaHearth());
          }
        }
        const diff = median(h.map((x, k) => x - a[k]!));
        ttftRows.push(
          `| ${pair.name} | ${keepAlive ? 'kept alive' : 'new each'} | ${median(a).toFixed(2)} | ${median(h).toFixed(2)} | **${diff >= 0 ? '+' : ''}${diff.toFixed(2)}** |`,
        );
      }
    } finally {
      if (agent) agent.destroy();
    }
  }
  // hearth's own CPU per request: the time it adds on a quiet machine, whatever the load here
  const cpuRequests = Number(args['cpu-requests']);
  // less what it uses idle (timers, the embedded database), measured over 10 s first
  const idleFrom = await processCpuMs(hearth.pid);
  const idleStart = performance.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const idlePerMs = ((await processCpuMs(hearth.pid)) - idleFrom) / (performance.now() - idleStart);
  const cpuBefore = await processCpuMs(hearth.pid);
  const cpuStart = performance.now();
  for (let i = 0; i < cpuRequests; i++) await ways['hearth']!(promptOf(2, 9000 + i), 1);
  const busy = (await processCpuMs(hearth.pid)) - cpuBefore - idlePerMs * (performance.now() - cpuStart);
  const hearthCpuMs = busy / cpuRequests;
  const rows = names.map((n) => {
    const s = samples[n]!;
    const wall = median(s.map((x) => x.wallMs));
    const engine = s[0]!.engineMs === undefined ? null : s.map((x) => x.engineMs!);
    const split = engine
      ? `${median(engine.map((e, k) => e - s[k]!.promptMs - s[k]!.predictedMs)).toFixed(1)} | ${median(s.map((x, k) => x.wallMs - engine[k]!)).toFixed(1)}`
      : ' | ';
    return `| ${n} | ${wall.toFixed(1)} | ${median(s.map((x) => x.promptN))} | ${median(s.map((x) => x.promptMs)).toFixed(1)} | ${median(s.map((x) => x.predictedMs)).toFixed(1)} | ${median(s.map((x) => x.wallMs - x.promptMs - x.predictedMs)).toFixed(1)} | ${split} |`;
  });
  process.stdout.write(
    [
      `load average (1 min) per sample: ${loads.map((l) => l.toFixed(1)).join(', ')}; ${SAMPLES} samples, ${WORDS}-word prompts`,
      `hearth serve's CPU time per one-token request (${cpuRequests} requests, 2-word prompts, its idle use taken off): ${hearthCpuMs.toFixed(1)} ms`,
      '',
      '| way | wall ms | prompt_n | prompt_ms | predicted_ms | wall − server ms | engine − server ms | wall − engine ms |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      `The client's first token, streamed, one cached prompt per way (${TTFT} requests each, taking turns; load ${Math.min(...ttftLoads).toFixed(1)}–${Math.max(...ttftLoads).toFixed(1)}):`,
      '',
      '| requests | connection to hearth | straight to its llama-server ms | through hearth ms | hearth adds (median of pairs) ms |',
      '| --- | --- | --- | --- | --- |',
      ...ttftRows,
      '',
    ].join('\n'),
  );
} finally {
  await raw?.stop();
  await hearth.stop();
}
