// hearth's server engine against llama.cpp's llama-server run alone (issue 12, "Speed"):
//
//   npx tsx bench/server-engine.ts [--rounds 3] [--tokens 64] [--threads 2] [--parallel 8]
//                                  [--levels 4,8] [--ttft-samples 3] [--prompt-words 32]
//                                  [--shape b1] [--type Q4_K_M] [--vocab 32000] [--out results.json]
//
// Three paths, each a separate process with the model loaded, taking turns within every round so
// drift in the machine's load hits them alike:
//   - raw:       the same llama-server binary hearth built, run alone with the exact command line
//                hearth gave its own instance (read from /proc), on a loopback port;
//   - server:    `hearth serve` on the server engine (its llama-server behind hearth's HTTP API);
//   - inprocess: `hearth serve` on the in-process engine (node-llama-cpp).
// Per round and path: one streamed decode (single-stream tok/s, client-side), whole one-token
// requests (time to first token), and 4 and 8 concurrent streams (aggregate tok/s, prompts
// included). Every request of a round uses the same prompts and seeds on every path (each path has
// its own KV cache, so none is a cache hit). Figures are medians over rounds; the TTFT overhead is
// the median of the per-round differences. The load average is recorded per round.
import { writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { median } from '../src/loadgen/stats.js';
import { buildTestEngine, testEngineDir } from '../test/support/engine.js';
import { type HearthServer, startHearthServer } from './lib/hearth-server.js';
import {
  childLlamaServerArgs,
  firstTokenMs,
  type RawLlamaServer,
  type StreamRun,
  startRawLlamaServer,
  streamCompletion,
} from './lib/llama-server.js';
import { machineInfo } from './lib/machine.js';
import { type BenchShape, type BenchType, benchModel, benchModelName } from './lib/models.js';
import { promptOf } from './lib/prompts.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    tokens: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    parallel: { type: 'string', default: '8' },
    /** context per sequence (hearth's num_ctx; llama-server gets num_ctx × parallel) */
    ctx: { type: 'string', default: '1024' },
    levels: { type: 'string', default: '4,8' },
    'ttft-samples': { type: 'string', default: '3' },
    'prompt-words': { type: 'string', default: '32' },
    shape: { type: 'string', default: 'b1' },
    type: { type: 'string', default: 'Q4_K_M' },
    vocab: { type: 'string', default: '32000' },
    'skip-inprocess': { type: 'boolean', default: false },
    out: { type: 'string' },
    'models-dir': { type: 'string', default: join(tmpdir(), 'hearth-bench-models') },
  },
});

const log = (line: string) => process.stderr.write(`${line}\n`);
const ROUNDS = Number(args.rounds);
const TOKENS = Number(args.tokens);
const THREADS = Number(args.threads);
const PARALLEL = Number(args.parallel);
const CTX = Number(args.ctx);
const LEVELS = args.levels!.split(',').map(Number);
const TTFT_SAMPLES = Number(args['ttft-samples']);
const WORDS = Number(args['prompt-words']);
const VOCAB = args.vocab === 'none' ? undefined : Number(args.vocab);

type PathName = 'raw' | 'server' | 'inprocess';
interface Path {
  name: PathName;
  api: 'ollama' | 'llama';
  url: string;
  stop(): Promise<void>;
}

const machine = await machineInfo();
log(
  `${machine.cpu}, ${machine.logicalCpus} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const model = await benchModel(args['models-dir']!, args.shape as BenchShape, args.type as BenchType, log, VOCAB);
const modelName = benchModelName(model.shape, model.type, model.vocab).toLowerCase().replace(/_/g, '-');
const build = await buildTestEngine();

const hearthEnv = (engine: 'server' | 'inprocess'): Record<string, string> => ({
  HEARTH_INFERENCE_ENGINE: engine,
  HEARTH_NODE_ENGINE_DIR: testEngineDir(),
  HEARTH_INFERENCE_NUM_CTX: String(CTX),
  HEARTH_INFERENCE_NUM_BATCH: '512',
});

async function startHearth(engine: 'server' | 'inprocess'): Promise<HearthServer> {
  const server = await startHearthServer({
    threads: THREADS,
    numParallel: PARALLEL,
    env: hearthEnv(engine),
    log,
  });
  await server.addModel(modelName, model.path);
  // load it before measuring
  await firstTokenMs('ollama', server.url, modelName, 'hello', 1);
  return server;
}

const paths: Path[] = [];
let raw: RawLlamaServer | null = null;
let results: unknown = null;
try {
  log('hearth serve on the server engine...');
  const server = await startHearth('server');
  paths.push({ name: 'server', api: 'ollama', url: server.url, stop: () => server.stop() });
  const hearthArgs = await childLlamaServerArgs(server.pid);
  if (!hearthArgs) throw new Error('no llama-server process under hearth serve: is the server engine built?');
  log(`hearth's llama-server: ${hearthArgs.filter((a) => !a.includes('/')).join(' ')}`);
  raw = await startRawLlamaServer(build.server, hearthArgs, build.libDir);
  const rawServer = raw;
  paths.push({ name: 'raw', api: 'llama', url: raw.url, stop: () => rawServer.stop() });
  // warm its first request too
  await firstTokenMs('llama', raw.url, modelName, 'hello', 1);
  if (!args['skip-inprocess']) {
    log('hearth serve on the in-process engine...');
    const inprocess = await startHearth('inprocess');
    paths.push({ name: 'inprocess', api: 'ollama', url: inprocess.url, stop: () => inprocess.stop() });
  }

  interface RoundFigures {
    single: StreamRun;
    ttftMs: number[];
    aggregate: Record<number, { tokS: number; tokens: number; wallMs: number }>;
  }
  const rounds: Array<{ load1m: number; figures: Partial<Record<PathName, RoundFigures>> }> = [];
  // medians and ratios of the rounds so far (written after every round: a cut-off run keeps its data)
  const summarize = () => {
    const of = (name: PathName) => rounds.map((r) => r.figures[name]).filter((f): f is RoundFigures => f !== undefined);
    const summary = (name: PathName) => {
      const f = of(name);
      if (f.length === 0) return null;
      return {
        decodeTokS: median(f.map((x) => x.single.clientDecodeTokS)),
        serverDecodeTokS: median(f.map((x) => x.single.serverDecodeTokS)),
        singleTokens: median(f.map((x) => x.single.tokens)),
        ttftMs: median(f.map((x) => median(x.ttftMs))),
        aggregateTokS: Object.fromEntries(LEVELS.map((l) => [l, median(f.map((x) => x.aggregate[l]!.tokS))])),
      };
    };
    const medians = { raw: summary('raw')!, server: summary('server')!, inprocess: summary('inprocess') };
    const versus = (name: 'server' | 'inprocess') => {
      const m = medians[name];
      if (!m) return null;
      // paired per round: the other paths ran within seconds of each other
      const paired = rounds
        .map((r) => [r.figures[name], r.figures.raw] as const)
        .filter((x): x is [RoundFigures, RoundFigures] => x[0] !== undefined && x[1] !== undefined);
      return {
        decode: m.decodeTokS / medians.raw.decodeTokS,
        aggregate: Object.fromEntries(LEVELS.map((l) => [l, m.aggregateTokS[l]! / medians.raw.aggregateTokS[l]!])),
        ttftOverheadMs: median(paired.map(([a, b]) => median(a.ttftMs) - median(b.ttftMs))),
      };
    };
    return {
      startedAt: new Date().toISOString(),
      machine,
      loadAverage1mPerRound: rounds.map((r) => r.load1m),
      loadAverageAtEnd: loadavg(),
      settings: {
        model: benchModelName(model.shape, model.type, model.vocab),
        modelBytes: model.size,
        rounds: ROUNDS,
        tokens: TOKENS,
        threads: THREADS,
        parallel: PARALLEL,
        ctxPerSequence: CTX,
        levels: LEVELS,
        ttftSamples: TTFT_SAMPLES,
        promptWords: WORDS,
        llamaServerArgs: hearthArgs.filter((a) => !a.includes('/')),
      },
      medians,
      vsRaw: { server: versus('server'), inprocess: versus('inprocess') },
      rounds,
    };
  };
  for (let round = 0; round < ROUNDS; round++) {
    const load1m = loadavg()[0]!;
    const figures: Partial<Record<PathName, RoundFigures>> = {};
    const base = round * 1000;
    const seed = 100 + round;
    const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
    for (const p of order) {
      const single = await streamCompletion(p.api, p.url, modelName, promptOf(WORDS, base), TOKENS, seed);
      const ttftMs: number[] = [];
      for (let i = 0; i < TTFT_SAMPLES; i++) {
        ttftMs.push(await firstTokenMs(p.api, p.url, modelName, promptOf(WORDS, base + 100 + i), seed));
      }
      const aggregate: RoundFigures['aggregate'] = {};
      for (const level of LEVELS) {
        const started = performance.now();
        const runs = await Promise.all(
          Array.from({ length: level }, (_, j) =>
            streamCompletion(p.api, p.url, modelName, promptOf(WORDS, base + 200 + level * 10 + j), TOKENS, seed + j),
          ),
        );
        const wallMs = performance.now() - started;
        const tokens = runs.reduce((n, r) => n + r.tokens, 0);
        aggregate[level] = { tokS: tokens / (wallMs / 1000), tokens, wallMs };
      }
      figures[p.name] = { single, ttftMs, aggregate };
      log(
        `  round ${round + 1}/${ROUNDS} ${p.name}: ${single.clientDecodeTokS.toFixed(1)} tok/s, TTFT ${median(ttftMs).toFixed(0)} ms, ${LEVELS.map((l) => `c${l} ${aggregate[l]!.tokS.toFixed(1)}`).join(', ')} tok/s (load ${loadavg()[0]!.toFixed(1)})`,
      );
    }
    rounds.push({ load1m, figures });
    if (args.out) await writeFile(args.out, `${JSON.stringify(summarize(), null, 2)}\n`);
  }
  results = summarize();

  if (args.out) await writeFile(args.out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(markdown(results as Results));
} finally {
  for (const p of paths) await p.stop().catch(() => {});
  if (raw && !paths.some((p) => p.name === 'raw')) await raw.stop();
}

interface Results {
  machine: { cpu: string; logicalCpus: number };
  loadAverage1mPerRound: number[];
  loadAverageAtEnd: number[];
  settings: { model: string; modelBytes: number; rounds: number; tokens: number; threads: number; parallel: number };
  medians: Record<
    PathName,
    { decodeTokS: number; serverDecodeTokS: number; ttftMs: number; aggregateTokS: Record<number, number> } | null
  >;
  vsRaw: Record<
    'server' | 'inprocess',
    { decode: number; aggregate: Record<number, number>; ttftOverheadMs: number } | null
  >;
}

function markdown(r: Results): string {
  const f = (n: number | undefined, d = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : '-');
  const s = r.settings;
  const lines = [
    `# hearth server engine vs llama-server, ${new Date().toISOString()}`,
    '',
    `${r.machine.cpu}, ${r.machine.logicalCpus} CPUs; load average (1 min) per round: ${r.loadAverage1mPerRound.map((l) => f(l, 1)).join(', ')}; at the end ${r.loadAverageAtEnd.map((l) => f(l, 1)).join(' ')}`,
    `${s.model} (${f(s.modelBytes / 2 ** 20, 0)} MiB), threads ${s.threads}, -np ${s.parallel}, ${s.tokens}-token streams, medians of ${s.rounds} rounds`,
    '',
    `| path | decode tok/s (1 stream) | vs raw | ${LEVELS.map((l) => `${l} streams tok/s | vs raw`).join(' | ')} | TTFT ms | overhead ms |`,
    `| --- | --- | --- | ${LEVELS.map(() => '--- | ---').join(' | ')} | --- | --- |`,
  ];
  for (const name of ['raw', 'server', 'inprocess'] as const) {
    const m = r.medians[name];
    if (!m) continue;
    const v = name === 'raw' ? null : r.vsRaw[name];
    const label = {
      raw: 'llama-server alone',
      server: 'hearth, server engine',
      inprocess: 'hearth, in-process engine',
    }[name];
    lines.push(
      `| ${label} | ${f(m.decodeTokS)} | ${v ? f(v.decode, 3) : '1'} | ${LEVELS.map((l) => `${f(m.aggregateTokS[l])} | ${v ? f(v.aggregate[l], 3) : '1'}`).join(' | ')} | ${f(m.ttftMs, 0)} | ${v ? f(v.ttftOverheadMs, 1) : ''} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}
