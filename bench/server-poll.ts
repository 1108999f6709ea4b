// ggml's polling after work, on a node whose threads take every core: llama-server's `--poll`
// (0–100, default 50). After each graph (each token), ggml's worker threads spin waiting for the next
// one, 1024 × 128 × poll rounds of a pause instruction, before they sleep: about 150 ms at the
// default on this machine. Between the tokens of one stream that keeps them ready; after a request
// it burns the cores that hearth's own thread (writing the answer), a second model's llama-server
// (an embedder beside a chat model) or the database need next.
//
//   npx tsx bench/server-poll.ts [--rounds 3] [--tokens 64] [--threads 2]
//
// Per round and poll level (50, then 0), two llama-server processes with hearth's flags for the
// bench model (b1, 32k vocabulary, Q4_K_M), measured in this order with a pause between blocks:
//   - idle burn: CPU time the server uses in the 400 ms after a one-token request (/proc);
//   - decode: single-stream tok/s (llama-server's own timings), 3 streams of `--tokens`;
//   - aggregate: tok/s of 4 concurrent streams (client wall time, prompts included);
//   - one-token request on a cached prompt: to one server alone, and taking turns between the two
//     (two models in use at once).
// Medians over rounds; the load average per round.
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median } from '../src/loadgen/stats.js';
import { buildTestEngine } from '../test/support/engine.js';
import { type RawLlamaServer, samplingFor, startRawLlamaServer, streamCompletion } from './lib/llama-server.js';
import { processCpuMs } from './lib/machine.js';
import { benchModel } from './lib/models.js';
import { promptOf } from './lib/prompts.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    'models-dir': { type: 'string', default: join(tmpdir(), 'hearth-bench-models') },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);
const ROUNDS = Number(args.rounds);
const TOKENS = Number(args.tokens);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A streamed one-token completion; resolves its wall time once the answer is in. */
function oneToken(server: RawLlamaServer, prompt: string): Promise<number> {
  const payload = JSON.stringify({ prompt, stream: true, ...samplingFor('llama', 1, 1) });
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      {
        host: u.hostname,
        port: Number(u.port),
        path: '/completion',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - started));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const model = await benchModel(args['models-dir']!, 'b1', 'Q4_K_M', log, 32000);
const build = await buildTestEngine();
// hearth's flags for this model (src/engine/server/flags.ts), -np 4 and 1024 tokens a sequence
const flags = (poll: string) => [
  '--model',
  model.path,
  '--ctx-size',
  '4096',
  '--parallel',
  '4',
  '--no-kv-unified',
  '--batch-size',
  '512',
  '--threads',
  args.threads!,
  '--no-webui',
  '--flash-attn',
  'auto',
  '--jinja',
  '--poll',
  poll,
];

interface Row {
  idleBurnMs: number;
  decode: number;
  aggregate: number;
  oneServerMs: number;
  twoServersMs: number;
}
const rows: Record<string, Row[]> = { '50': [], '0': [] };
const loads: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  loads.push(loadavg()[0]!);
  for (const poll of ['50', '0']) {
    const a = await startRawLlamaServer(build.server, flags(poll), build.libDir);
    const b = await startRawLlamaServer(build.server, flags(poll), build.libDir);
    try {
      const cached = promptOf(4, 42);
      await oneToken(a, cached);
      await oneToken(b, cached);
      await sleep(1000);
      let burn = 0;
      for (let i = 0; i < 5; i++) {
        await oneToken(a, cached);
        const before = await processCpuMs(a.pid);
        await sleep(400);
        burn += (await processCpuMs(a.pid)) - before;
      }
      await sleep(500);
      const decodes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const run = await streamCompletion('llama', a.url, '', promptOf(16, 100 * round + i), TOKENS, 7 + i);
        decodes.push(run.serverDecodeTokS);
      }
      await sleep(500);
      const started = performance.now();
      const streams = await Promise.all(
        [0, 1, 2, 3].map((k) => streamCompletion('llama', a.url, '', promptOf(16, 1000 * round + k), TOKENS, 11 + k)),
      );
      const aggregate = streams.reduce((n, s) => n + s.tokens, 0) / ((performance.now() - started) / 1000);
      await sleep(500);
      const one: number[] = [];
      for (let i = 0; i < 10; i++) one.push(await oneToken(a, cached));
      await sleep(500);
      const two: number[] = [];
      for (let i = 0; i < 10; i++) two.push(await oneToken(i % 2 === 0 ? a : b, cached));
      rows[poll]!.push({
        idleBurnMs: burn / 5,
        decode: median(decodes),
        aggregate,
        oneServerMs: median(one),
        twoServersMs: median(two),
      });
      log(`round ${round + 1}, --poll ${poll}: ${JSON.stringify(rows[poll]!.at(-1))}`);
    } finally {
      await a.stop();
      await b.stop();
    }
    await sleep(1000);
  }
}
const cell = (poll: string, k: keyof Row, digits = 1) => median(rows[poll]!.map((r) => r[k])).toFixed(digits);
const ratio = (k: keyof Row) => (Number(cell('0', k, 3)) / Number(cell('50', k, 3))).toFixed(3);
process.stdout.write(
  [
    `load average (1 min) per round: ${loads.map((l) => l.toFixed(1)).join(', ')}; ${ROUNDS} rounds, ${args.threads} threads, ${TOKENS}-token streams`,
    '',
    '| --poll | CPU burnt in the 400 ms after a request (ms) | decode tok/s, 1 stream | 4 streams tok/s | one-token request, one server (ms) | the same, two servers in turns (ms) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...['50', '0'].map(
      (p) =>
        `| ${p}${p === '50' ? ' (llama.cpp default)' : ''} | ${cell(p, 'idleBurnMs', 0)} | ${cell(p, 'decode')} | ${cell(p, 'aggregate')} | ${cell(p, 'oneServerMs')} | ${cell(p, 'twoServersMs')} |`,
    ),
    `| 0 ÷ 50 | | ${ratio('decode')} | ${ratio('aggregate')} | ${ratio('oneServerMs')} | ${ratio('twoServersMs')} |`,
    '',
  ].join('\n'),
);
