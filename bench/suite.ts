// hearth's benchmark suite (issue 9), in one go:
//
//   npx tsx bench/suite.ts [--shape m125] [--type Q8_0] [--tokens 64] [--runs 5] [--b1]
//                          [--llama-server PATH] [--out results.json] [--models-dir DIR]
//
//  1. gateway overhead: hearth's API (a `hearth serve` process) against node-llama-cpp called
//     directly in this process, same model, threads and context; hearth's Engine in-process too,
//     to split the overhead between the engine and HTTP;
//  2. hearth against llama.cpp's llama-server, when a binary is given or on PATH;
//  3. aggregate throughput at concurrency 1, 2, 4 and 8 (`hearth bench`'s runner);
//  4. decode against the memory-bandwidth roofline (a copy test in the same run);
//  5. GET /api/tags requests/s with the server pinned to one core.
// Medians of repeated runs; variants take turns within each run so drift in the machine's load
// hits all of them alike. Results: a summary on stdout, everything as JSON with --out.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { defaultSampling } from '../src/engine/options.js';
import { type BenchReport, FixedWorkload, runBench } from '../src/loadgen/index.js';
import { median } from '../src/loadgen/stats.js';
import { measureBandwidth } from './lib/bandwidth.js';
import { type DecodeRun, directSetup, evaluateDecode } from './lib/direct.js';
import { engineDecode, fullLengthSeed, loadOptions, modelSpec, openEngine, sharedLlama } from './lib/engine.js';
import { startHearthServer } from './lib/hearth-server.js';
import { httpDecode, httpFirstToken } from './lib/http-decode.js';
import { startRawLlamaServer } from './lib/llama-server.js';
import { machineInfo } from './lib/machine.js';
import { type BenchModel, type BenchShape, type BenchType, benchModel } from './lib/models.js';
import { promptOf } from './lib/prompts.js';
import { requestRate } from './lib/request-rate.js';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'm125' },
    type: { type: 'string', default: 'Q8_0' },
    tokens: { type: 'string', default: '64' },
    runs: { type: 'string', default: '5' },
    'prompt-words': { type: 'string', default: '32' },
    threads: { type: 'string' },
    b1: { type: 'boolean', default: false },
    'llama-server': { type: 'string' },
    'skip-concurrency': { type: 'boolean', default: false },
    'skip-tags': { type: 'boolean', default: false },
    /** concurrency levels of section 3 */
    levels: { type: 'string', default: '1,2,4,8' },
    /** the model shape of section 3 (b1 is memory-bandwidth-bound on most machines; m125 may sit in the L3 cache) */
    'concurrency-shape': { type: 'string' },
    'concurrency-tokens': { type: 'string' },
    'hearth-entry': { type: 'string' },
    out: { type: 'string' },
    'models-dir': { type: 'string', default: join(tmpdir(), 'hearth-bench-models') },
  },
});

const log = (line: string) => process.stderr.write(`${line}\n`);
const TOKENS = Number(args.tokens);
const RUNS = Number(args.runs);
const WORDS = Number(args['prompt-words']);
const CTX = 2048;
const BATCH = 512;

const machine = await machineInfo();
const lease = await sharedLlama();
const llama = lease.llama;
// hearth's default: one core left to the JS thread on small machines (src/engine/threads.ts)
const THREADS = args.threads ? Number(args.threads) : Math.max(1, llama.cpuMathCores - 1);
log(
  `${machine.cpu}, ${machine.logicalCpus} CPUs, load average ${machine.loadAverage1m.toFixed(2)}; threads ${THREADS}`,
);

log('memory bandwidth (copy test)...');
const bandwidth = await measureBandwidth(machine.logicalCpus);
const GB = 1e9;
log(
  `  ${(bandwidth.singleThread / GB).toFixed(1)} GB/s one thread, ${(bandwidth.allThreads / GB).toFixed(1)} GB/s ${bandwidth.threads} threads`,
);

const model = await benchModel(args['models-dir']!, args.shape as BenchShape, args.type as BenchType, log);
const modelName = `bench-${model.shape}-${model.type}`.toLowerCase();
const engine = await openEngine(THREADS, 1);
const spec = await modelSpec(model.path, modelName);
const load1 = loadOptions({ numCtx: CTX, numBatch: BATCH, numThread: THREADS, numParallel: 1 });
// seeds are probed on another instance, so no prompt is in a measured instance's cache beforehand
const probeLoad = loadOptions({ numCtx: CTX / 2, numBatch: BATCH, numThread: THREADS, numParallel: 1 });
const direct = await directSetup(llama, model.path, {
  threads: THREADS,
  contextSize: CTX,
  batchSize: BATCH,
  sequences: 1,
});

const entry = args['hearth-entry'] ? { entry: args['hearth-entry'] } : {};
const server = await startHearthServer({ threads: THREADS, numParallel: 1, log, ...entry });
await server.addModel(modelName, model.path);
const httpOptions = { num_ctx: CTX, num_batch: BATCH, num_thread: THREADS, num_parallel: 1, num_gpu: 0 };
// load it before measuring
await httpFirstToken(server.url, modelName, 'hello', httpOptions);

// ---- 1. gateway overhead ----
log(`gateway: ${RUNS} runs of ${TOKENS}-token decodes and first-token requests...`);
type Path = 'direct' | 'engine' | 'http';
const decodes: Record<Path, DecodeRun[]> = { direct: [], engine: [], http: [] };
const clientDecode: number[] = [];
const firstToken: Record<Path, number[]> = { direct: [], engine: [], http: [] };
for (let run = 0; run < RUNS; run++) {
  const prompt = promptOf(WORDS, run);
  const seed = await fullLengthSeed(engine, spec, probeLoad, prompt, TOKENS);
  const firstPrompt = promptOf(WORDS, 1000 + run);
  const order: Path[] = (['direct', 'engine', 'http'] as Path[]).map((_, i, a) => a[(i + run) % a.length]!);
  for (const path of order) {
    if (path === 'direct') {
      decodes.direct.push(await evaluateDecode(direct, prompt, TOKENS, seed));
      firstToken.direct.push((await evaluateDecode(direct, firstPrompt, 1, seed)).ttftMs);
    } else if (path === 'engine') {
      decodes.engine.push(await engineDecode(engine, spec, load1, prompt, TOKENS, seed));
      const t = performance.now();
      await engine.generate({
        kind: 'completion',
        model: spec,
        load: load1,
        keepAliveMs: -1,
        prompt: firstPrompt,
        sampling: defaultSampling({ numPredict: 1, seed }),
      });
      firstToken.engine.push(performance.now() - t);
    } else {
      const r = await httpDecode(server.url, modelName, prompt, TOKENS, { ...httpOptions, seed });
      decodes.http.push(r);
      clientDecode.push(r.clientDecodeTokS);
      firstToken.http.push(await httpFirstToken(server.url, modelName, firstPrompt, { ...httpOptions, seed }));
    }
  }
  log(
    `  run ${run + 1}/${RUNS}: direct ${decodes.direct.at(-1)!.decodeTokS.toFixed(1)}, engine ${decodes.engine.at(-1)!.decodeTokS.toFixed(1)}, http ${decodes.http.at(-1)!.decodeTokS.toFixed(1)} tok/s`,
  );
}
const med = (path: Path) => ({
  decodeTokS: median(decodes[path].map((r) => r.decodeTokS)),
  firstTokenMs: median(firstToken[path]),
  tokens: median(decodes[path].map((r) => r.tokens)),
  promptTokens: median(decodes[path].map((r) => r.promptTokens)),
});
const gateway = {
  direct: med('direct'),
  engine: med('engine'),
  http: { ...med('http'), clientDecodeTokS: median(clientDecode) },
};
const ratios = {
  engineDecode: gateway.engine.decodeTokS / gateway.direct.decodeTokS,
  httpDecode: gateway.http.decodeTokS / gateway.direct.decodeTokS,
  httpClientDecode: gateway.http.clientDecodeTokS / gateway.direct.decodeTokS,
  engineFirstTokenOverheadMs: gateway.engine.firstTokenMs - gateway.direct.firstTokenMs,
  httpFirstTokenOverheadMs: gateway.http.firstTokenMs - gateway.direct.firstTokenMs,
};

// ---- 3. aggregate throughput by concurrency ----
let concurrency: {
  report: BenchReport;
  levels: Array<{ concurrency: number; outputTokS: number; vsSingle: number }>;
} | null = null;
if (!args['skip-concurrency']) {
  const levels = args.levels!.split(',').map(Number);
  const shape = (args['concurrency-shape'] ?? model.shape) as BenchShape;
  let name = modelName;
  if (shape !== model.shape) {
    const other = await benchModel(args['models-dir']!, shape, model.type, log);
    name = `bench-${other.shape}-${other.type}`.toLowerCase();
    await server.addModel(name, other.path);
  }
  const parallel = Math.max(...levels);
  log(`concurrency ${levels.join(', ')} on ${shape} (num_parallel ${parallel})...`);
  const report = await runBench({
    target: {
      url: server.url,
      api: 'ollama',
      mode: 'completion',
      model: name,
      options: { num_ctx: 1024, num_batch: BATCH, num_thread: THREADS, num_parallel: parallel, num_gpu: 0 },
    },
    workload: new FixedWorkload(WORDS, Number(args['concurrency-tokens'] ?? TOKENS)),
    concurrency: levels,
    requests: Math.max(RUNS, parallel),
    stream: true,
    warmup: 2,
    timeoutMs: 10 * 60_000,
  });
  const single = report.levels[0]!.outputThroughput;
  concurrency = {
    report,
    levels: report.levels.map((l) => ({
      concurrency: l.concurrency,
      outputTokS: l.outputThroughput,
      vsSingle: l.outputThroughput / single,
    })),
  };
}

// ---- 5. request path: GET /api/tags on one core ----
await server.stop();
let tags: { rps: number; failures: number; pinned: boolean; versionRps: number } | null = null;
if (!args['skip-tags']) {
  const pinned = hasTaskset();
  const tagServer = await startHearthServer({
    threads: 1,
    numParallel: 1,
    log,
    ...entry,
    ...(pinned ? { pin: '0' } : {}),
  });
  try {
    log('GET /api/tags, 8 connections, 3 s...');
    const listed = await requestRate(`${tagServer.url}/api/tags`, { connections: 8, durationMs: 3_000 });
    // the same request path without the Atlas database query /api/tags makes
    const version = await requestRate(`${tagServer.url}/api/version`, { connections: 8, durationMs: 3_000 });
    tags = { ...listed, pinned, versionRps: version.rps };
  } finally {
    await tagServer.stop();
  }
}

// ---- 2. llama-server ----
const llamaServerPath = args['llama-server'] ?? which('llama-server');
let llamaServer: { available: false; note: string } | { available: true; path: string; report: BenchReport } = {
  available: false,
  note: 'no llama-server binary was given (--llama-server PATH) or found on PATH: comparison skipped',
};
if (llamaServerPath)
  llamaServer = { available: true, path: 'llama-server', report: await benchLlamaServer(llamaServerPath, model) };

// ---- 4. roofline ----
const roofline = [rooflineRow(model, gateway.direct.decodeTokS)];
await direct.dispose();
if (args.b1) {
  const b1 = await benchModel(args['models-dir']!, 'b1', args.type as BenchType, log);
  const setup = await directSetup(llama, b1.path, {
    threads: THREADS,
    contextSize: CTX,
    batchSize: BATCH,
    sequences: 1,
  });
  const rates: number[] = [];
  for (let run = 0; run < Math.min(RUNS, 3); run++) {
    rates.push((await evaluateDecode(setup, promptOf(WORDS, 2000 + run), Math.min(TOKENS, 32), 1)).decodeTokS);
    log(`  b1 run ${run + 1}: ${rates.at(-1)!.toFixed(2)} tok/s`);
  }
  roofline.push(rooflineRow(b1, median(rates)));
  await setup.dispose();
}

await engine.close();
await lease.release();

const results = {
  startedAt: new Date().toISOString(),
  machine,
  bandwidth,
  settings: {
    concurrencyShape: args['concurrency-shape'] ?? model.shape,
    shape: model.shape,
    type: model.type,
    tokens: TOKENS,
    runs: RUNS,
    promptWords: WORDS,
    threads: THREADS,
    contextSize: CTX,
    batchSize: BATCH,
  },
  gateway,
  ratios,
  concurrency: concurrency && { levels: concurrency.levels, report: concurrency.report },
  roofline,
  tags,
  llamaServer,
};
if (args.out) await writeFile(args.out, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(summary());

function rooflineRow(m: BenchModel, decodeTokS: number) {
  const bytesPerSecond = decodeTokS * m.size;
  return {
    shape: m.shape,
    type: m.type,
    bytesPerToken: m.size,
    decodeTokS,
    bytesPerSecond,
    ofSingleThreadCopy: bytesPerSecond / bandwidth.singleThread,
    ofAllThreadsCopy: bytesPerSecond / bandwidth.allThreads,
  };
}

function hasTaskset(): boolean {
  return which('taskset') !== null;
}

function which(name: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

async function benchLlamaServer(path: string, m: BenchModel): Promise<BenchReport> {
  const args = ['-m', m.path, '-t', String(THREADS), '-c', String(CTX), '-b', String(BATCH), '-np', '1'];
  const server = await startRawLlamaServer(path, args);
  try {
    log('llama-server: concurrency 1...');
    return await runBench({
      target: { url: server.url, api: 'openai', mode: 'completion', model: 'any' },
      workload: new FixedWorkload(WORDS, TOKENS),
      concurrency: [1],
      requests: RUNS,
      stream: true,
      warmup: 2,
      timeoutMs: 10 * 60_000,
    });
  } finally {
    await server.stop();
  }
}

function summary(): string {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const lines = [
    `# hearth benchmark suite, ${results.startedAt}`,
    '',
    `machine: ${machine.cpu}, ${machine.logicalCpus} CPUs (${machine.simd.join(' ')}), ${machine.memoryGiB} GiB; load average ${f(machine.loadAverage1m, 2)} at start`,
    `node ${machine.node}, node-llama-cpp ${machine.nodeLlamaCpp}; ${model.shape} ${model.type} (${f(model.size / 1e6, 0)} MB); threads ${THREADS}; ${TOKENS}-token decodes; medians of ${RUNS} runs`,
    `bandwidth (copy): ${f(bandwidth.singleThread / GB)} GB/s one thread, ${f(bandwidth.allThreads / GB)} GB/s ${bandwidth.threads} threads`,
    '',
    '| path | decode tok/s | vs direct | first token ms | overhead ms |',
    '| --- | --- | --- | --- | --- |',
    `| node-llama-cpp direct (sequence.evaluate) | ${f(gateway.direct.decodeTokS)} | 1.00 | ${f(gateway.direct.firstTokenMs)} | 0 |`,
    `| hearth Engine in-process | ${f(gateway.engine.decodeTokS)} | ${f(ratios.engineDecode, 3)} | ${f(gateway.engine.firstTokenMs)} | ${f(ratios.engineFirstTokenOverheadMs)} |`,
    `| hearth HTTP (/api/generate, server figures) | ${f(gateway.http.decodeTokS)} | ${f(ratios.httpDecode, 3)} | ${f(gateway.http.firstTokenMs)} | ${f(ratios.httpFirstTokenOverheadMs)} |`,
    `| hearth HTTP (client-side stream) | ${f(gateway.http.clientDecodeTokS)} | ${f(ratios.httpClientDecode, 3)} | | |`,
    '',
  ];
  if (concurrency) {
    lines.push(
      `concurrency on ${results.settings.concurrencyShape}:`,
      '',
      '| concurrency | output tok/s | vs 1 stream |',
      '| --- | --- | --- |',
    );
    for (const l of concurrency.levels) lines.push(`| ${l.concurrency} | ${f(l.outputTokS)} | ${f(l.vsSingle, 2)} |`);
    lines.push('');
  }
  lines.push(
    '| model | decode tok/s | GB/s read | of 1-thread copy | of all-thread copy |',
    '| --- | --- | --- | --- | --- |',
  );
  for (const r of roofline) {
    lines.push(
      `| ${r.shape} ${r.type} | ${f(r.decodeTokS, 2)} | ${f(r.bytesPerSecond / GB, 2)} | ${f(100 * r.ofSingleThreadCopy, 0)}% | ${f(100 * r.ofAllThreadsCopy, 0)}% |`,
    );
  }
  lines.push('');
  if (tags) {
    lines.push(
      `GET /api/tags: ${f(tags.rps, 0)} requests/s${tags.pinned ? ' (server pinned to one core)' : ''}, ${tags.failures} failures; GET /api/version (no database): ${f(tags.versionRps, 0)} requests/s`,
    );
  }
  lines.push(
    llamaServer.available
      ? `llama-server c=1: ${f(llamaServer.report.levels[0]!.outputThroughput)} output tok/s, TTFT p50 ${f(llamaServer.report.levels[0]!.ttftMs?.p50 ?? Number.NaN)} ms`
      : `llama-server: ${llamaServer.note}`,
    '',
  );
  return lines.join('\n');
}
