// Batch-job throughput against the engine's aggregate throughput at the same parallelism (issue 7).
//
//   npx tsx bench/jobs-throughput.ts [--shape m125] [--type Q8_0] [--records 256] [--tokens 32]
//                                    [--parallel 4] [--threads N] [--gpu auto] [--runs 3] [--poll 1s] [--models-dir DIR]
//
// One process, one engine, one generated model. Each run measures, in turn:
//  - engine: the job's exact prompts sent straight to Engine.generate, `parallel` in flight, through the
//    same InferencePlanner path the job uses (so the same model instance and options);
//  - job: a batch job over the same records (the dataset in the Atlas file store, shards, commits,
//    manifest), from the first claim (started_at) to the commit of the last shard (finished_at).
// Throughput is generated tokens per second; the ratio job/engine is the number the issue asks for.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { configFromObject } from '../src/config/index.js';
import { closeContext, openContext } from '../src/context.js';
import { renderTemplate } from '../src/jobs/template.js';
import { median } from '../src/loadgen/stats.js';
import { createLogger } from '../src/log.js';
import { parseOptions } from '../src/models/options.js';
import { type BenchShape, type BenchType, benchModel } from './lib/models.js';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'm125' },
    type: { type: 'string', default: 'Q8_0' },
    records: { type: 'string', default: '256' },
    tokens: { type: 'string', default: '32' },
    parallel: { type: 'string', default: '4' },
    threads: { type: 'string', default: '0' },
    gpu: { type: 'string', default: 'auto' },
    runs: { type: 'string', default: '3' },
    poll: { type: 'string', default: '1s' },
    'models-dir': { type: 'string', default: join(tmpdir(), 'hearth-bench-models') },
  },
});

const log = (line: string) => process.stderr.write(`${line}\n`);
const records = Number(args.records);
const tokens = Number(args.tokens);
const parallel = Number(args.parallel);
const TEMPLATE = 'Write a short note about {{text}}.';
const OPTIONS = { num_predict: tokens, temperature: 0, seed: 1 };

const model = await benchModel(args['models-dir']!, args.shape as BenchShape, args.type as BenchType, log);
const root = await mkdtemp(join(tmpdir(), 'hearth-bench-jobs-'));
const { config } = configFromObject({
  atlas: { files: join(root, 'atlas'), database: 'embedded' },
  node: {
    cacheDir: join(root, 'cache'),
    id: 'bench',
    threads: Number(args.threads),
    gpu: args.gpu,
    jobs: { concurrency: 2 },
  },
  inference: { numParallel: parallel, numCtx: 512, keepAlive: -1 },
  jobs: { pollInterval: args.poll },
  log: { level: 'warn' },
});
const ctx = await openContext(config, createLogger(config.log));
try {
  const bytes = await readFile(model.path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await ctx.models.putBlob(digest, Readable.from([bytes]));
  await ctx.models.create({ model: 'bench', files: { 'model.gguf': digest } });
  const rows = Array.from({ length: records }, (_, i) => ({
    id: `r${i}`,
    text: `item number ${i} of the benchmark dataset`,
  }));
  await ctx.atlas.files.put('datasets/bench.jsonl', `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

  const prepared = await ctx.inference.prepare('bench', parseOptions(OPTIONS), undefined);
  const request = (text: string) => ({
    kind: 'chat' as const,
    model: prepared.spec,
    load: prepared.load,
    keepAliveMs: prepared.keepAliveMs,
    sampling: prepared.sampling,
    messages: ctx.inference.withModelPrelude(prepared.entry, [
      { role: 'user', content: renderTemplate(TEMPLATE, { text }) },
    ]),
  });
  await ctx.engine.generate(request('warm-up'));
  log(
    `model ${model.shape} ${model.type} on ${ctx.engine.backend}, ${records} records × ${tokens} tokens, ${parallel} parallel sequences`,
  );

  const engineRates: number[] = [];
  const jobRates: number[] = [];
  for (let run = 0; run < Number(args.runs); run++) {
    // engine: the same prompts, `parallel` in flight
    let next = 0;
    let generated = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < rows.length) {
          const row = rows[next++]!;
          const result = await ctx.engine.generate(request(row.text));
          generated += result.evalTokens;
        }
      }),
    );
    const engineRate = generated / ((performance.now() - started) / 1000);
    engineRates.push(engineRate);

    // job: the same records through the whole job system
    const job = await ctx.jobs.submit({
      type: 'batch',
      input: 'datasets/bench.jsonl',
      model: 'bench',
      operation: 'generate',
      template: TEMPLATE,
      key_field: 'id',
      options: OPTIONS,
      output: `results/bench-${run}`,
    });
    let view = await ctx.jobs.get(job.id);
    while (!['succeeded', 'failed', 'cancelled'].includes(view.state)) {
      await sleep(1000);
      view = await ctx.jobs.get(job.id);
    }
    if (view.state !== 'succeeded') throw new Error(`job ${view.state}: ${view.error}`);
    const seconds = (Date.parse(view.finished_at!) - Date.parse(view.started_at!)) / 1000;
    const jobRate = view.progress.eval_tokens / seconds;
    jobRates.push(jobRate);
    log(
      `run ${run + 1}: engine ${engineRate.toFixed(1)} tok/s (${generated} tokens), job ${jobRate.toFixed(1)} tok/s (${view.progress.eval_tokens} tokens, ${seconds.toFixed(2)} s), ratio ${(jobRate / engineRate).toFixed(3)}`,
    );
  }
  const engine = median(engineRates);
  const job = median(jobRates);
  process.stdout.write(
    `${JSON.stringify({ model: `${model.shape}-${model.type}`, backend: ctx.engine.backend, records, tokens, parallel, engineTokensPerSecond: engine, jobTokensPerSecond: job, ratio: job / engine })}\n`,
  );
} finally {
  await closeContext(ctx);
  await rm(root, { recursive: true, force: true });
}
