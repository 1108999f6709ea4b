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
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median } from '../src/loadgen/stats.js';
import { buildTestEngine, testEngineDir } from '../test/support/engine.js';
import { startHearthServer } from './lib/hearth-server.js';
import { childLlamaServerArgs, samplingFor, startRawLlamaServer } from './lib/llama-server.js';
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

/** CPU time (user + system) a process has used so far, in ms (/proc, clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
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
  // hearth's own CPU per request: the time it adds on a quiet machine, whatever the load here
  const cpuRequests = Number(args['cpu-requests']);
  // less what it uses idle (timers, the embedded database), measured over 10 s first
  const idleFrom = await cpuMs(hearth.pid);
  const idleStart = performance.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const idlePerMs = ((await cpuMs(hearth.pid)) - idleFrom) / (performance.now() - idleStart);
  const cpuBefore = await cpuMs(hearth.pid);
  const cpuStart = performance.now();
  for (let i = 0; i < cpuRequests; i++) await ways['hearth']!(promptOf(2, 9000 + i), 1);
  const busy = (await cpuMs(hearth.pid)) - cpuBefore - idlePerMs * (performance.now() - cpuStart);
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
    ].join('\n'),
  );
} finally {
  await raw?.stop();
  await hearth.stop();
}
