// Where does in-process decoding lose time against llama.cpp's own tools? (issue 9, "known gap")
//
//   npx tsx bench/decode-gap.ts [--shape m125] [--type Q8_0] [--tokens 64] [--runs 5] [--models-dir DIR]
//
// Runs each way of decoding in turn (round-robin, so drift in the machine's load hits all alike)
// and prints medians: node-llama-cpp's low-level loop at 1 and 2 threads, LlamaCompletion with its
// defaults, the same loop on a context with 4 sequences (hearth's default num_parallel), and
// hearth's Engine. llama.cpp's own per-token compute time (performanceTracking) shows how much of
// each token is ggml's work and how much is dispatch around it.
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../src/loadgen/stats.js';
import { completionDecode, type DecodeRun, type DirectSetup, directSetup, evaluateDecode } from './lib/direct.js';
import { engineDecode, fullLengthSeed, loadOptions, modelSpec, openEngine, sharedLlama } from './lib/engine.js';
import { machineInfo } from './lib/machine.js';
import { type BenchShape, type BenchType, benchModel } from './lib/models.js';
import { promptOf } from './lib/prompts.js';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'm125' },
    type: { type: 'string', default: 'Q8_0' },
    tokens: { type: 'string', default: '64' },
    runs: { type: 'string', default: '5' },
    'prompt-words': { type: 'string', default: '32' },
    /** thread counts for the low-level loop (default: 1 and all math cores) */
    threads: { type: 'string' },
    'models-dir': { type: 'string', default: join(tmpdir(), 'hearth-bench-models') },
    json: { type: 'boolean', default: false },
  },
});

const log = (line: string) => process.stderr.write(`${line}\n`);
const tokens = Number(args.tokens);
const runs = Number(args.runs);
const words = Number(args['prompt-words']);
const CTX = 2048;
const BATCH = 512;

const machine = await machineInfo();
const model = await benchModel(args['models-dir']!, args.shape as BenchShape, args.type as BenchType, log);
const engine = await openEngine(1, 1);
const lease = await sharedLlama();
const llama = lease.llama;
// llama.cpp counts the hardware's cores; under taskset only the allowed ones are usable
const cores = Math.min(llama.cpuMathCores, availableParallelism());

interface Variant {
  name: string;
  run(prompt: string, seed: number): Promise<DecodeRun>;
  short?(prompt: string, seed: number): Promise<DecodeRun>;
  results: DecodeRun[];
}

const setups: DirectSetup[] = [];
const SLOW_TOK_S = 10;
const SHORT_TOKENS = 8;
async function direct(
  name: string,
  threads: number,
  sequences: number,
  kind: 'evaluate' | 'completion',
): Promise<Variant> {
  const setup = await directSetup(llama, model.path, { threads, contextSize: CTX, batchSize: BATCH, sequences });
  setups.push(setup);
  const fn = kind === 'evaluate' ? evaluateDecode : completionDecode;
  return {
    name,
    run: (p, seed) => fn(setup, p, tokens, seed),
    short: (p, seed) => fn(setup, p, SHORT_TOKENS, seed),
    results: [],
  };
}

/** The same variant with SHORT_TOKENS tokens (only the direct ones can; others run in full). */
async function shortRun(v: Variant, prompt: string, seed: number): Promise<DecodeRun> {
  return v.short ? v.short(prompt, seed) : v.run(prompt, seed);
}

const spec = await modelSpec(model.path, `${model.shape}-${model.type}`);
const engineLoad1 = loadOptions({ numCtx: CTX, numBatch: BATCH, numThread: 1, numParallel: 1 });
const engineLoad4 = loadOptions({ numCtx: CTX, numBatch: BATCH, numThread: 1, numParallel: 4 });
// seeds are probed on another instance, so no prompt is in a measured instance's cache beforehand
const probeLoad = loadOptions({ numCtx: CTX / 2, numBatch: BATCH, numThread: 1, numParallel: 1 });
const threadCounts = args.threads ? args.threads.split(',').map(Number) : [...new Set([1, cores])];
const variants: Variant[] = [];
for (const t of threadCounts)
  variants.push(await direct(`node-llama-cpp sequence.evaluate, threads ${t}`, t, 1, 'evaluate'));
variants.push(
  await direct(`node-llama-cpp LlamaCompletion, threads ${cores} (its default)`, cores, 1, 'completion'),
  await direct('node-llama-cpp sequence.evaluate, threads 1, context of 4 sequences', 1, 4, 'evaluate'),
  {
    name: 'hearth Engine.generate (raw), threads 1, num_parallel 1',
    run: (p, s) => engineDecode(engine, spec, engineLoad1, p, tokens, s),
    results: [],
  },
  {
    name: 'hearth Engine.generate (raw), threads 1, num_parallel 4',
    run: (p, s) => engineDecode(engine, spec, engineLoad4, p, tokens, s),
    results: [],
  },
);

log(
  `${machine.cpu}, ${machine.logicalCpus} CPUs, load ${machine.loadAverage1m.toFixed(2)}; ${model.shape} ${model.type} (${(model.size / 1e6).toFixed(0)} MB); ${tokens}-token decodes, ${runs} runs`,
);
for (let run = 0; run < runs; run++) {
  const prompt = promptOf(words, run);
  const seed = await fullLengthSeed(engine, spec, probeLoad, prompt, tokens);
  for (const v of variants) {
    // a variant that decodes at a crawl (oversubscribed threads) runs short decodes, so the run ends
    const slow = v.results.length > 0 && v.results.at(-1)!.decodeTokS < SLOW_TOK_S;
    v.results.push(slow ? await shortRun(v, prompt, seed) : await v.run(prompt, seed));
  }
  log(`  run ${run + 1}/${runs}: ${variants.map((v) => v.results.at(-1)!.decodeTokS.toFixed(1)).join(', ')} tok/s`);
}

const rows = variants.map((v) => ({
  variant: v.name,
  decodeTokS: median(v.results.map((r) => r.decodeTokS)),
  ttftMs: median(v.results.map((r) => r.ttftMs)),
  tokens: median(v.results.map((r) => r.tokens)),
  promptTokens: median(v.results.map((r) => r.promptTokens)),
}));
const out = { machine, model: { shape: model.shape, type: model.type, bytes: model.size }, tokens, runs, rows };
if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
else {
  const base = rows[0]!.decodeTokS;
  for (const r of rows) {
    process.stdout.write(
      `${r.variant.padEnd(72)} ${r.decodeTokS.toFixed(1).padStart(7)} tok/s  (${(r.decodeTokS / base).toFixed(2)}x)  TTFT ${r.ttftMs.toFixed(1)} ms  ${r.tokens} tokens\n`,
    );
  }
}
for (const s of setups) await s.dispose();
await engine.close();
await lease.release();
