import { writeFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { API_KEY_VARIABLE } from '../config/env.js';
import { parseDuration } from '../config/index.js';
import { HearthError } from '../errors.js';
import {
  type BenchApi,
  type BenchMode,
  type BenchReport,
  DatasetWorkload,
  FixedWorkload,
  formatComparison,
  formatReport,
  readReport,
  runBench,
  type Workload,
} from '../loadgen/index.js';
import { serverUrl } from './client.js';
import { action } from './shared.js';

interface BenchCliOptions {
  url?: string;
  api: BenchApi;
  mode: BenchMode;
  model?: string;
  concurrency: string;
  requests: string;
  duration?: string;
  promptTokens: string;
  outputTokens: string;
  dataset?: string;
  stream: boolean;
  warmup: string;
  timeout: string;
  temperature?: string;
  option?: string[];
  apiKey?: string;
  label?: string;
  json?: boolean;
  output?: string;
  compare?: string[];
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      'load-test an Ollama- or OpenAI-compatible endpoint (hearth, Ollama, llama-server, vLLM): TTFT, TPOT, ITL, latency and throughput per concurrency level',
    )
    .option('--url <url>', 'server base URL (default: $HEARTH_HOST, else http://127.0.0.1:11434)')
    .addOption(new Option('--api <api>', 'API the server speaks').choices(['ollama', 'openai']).default('ollama'))
    .addOption(
      new Option('--mode <mode>', 'chat (template applied) or completion (raw prompt)')
        .choices(['chat', 'completion'])
        .default('chat'),
    )
    .option('-m, --model <name>', 'model to load-test')
    .option('--concurrency <levels>', 'requests in flight; several levels comma-separated, e.g. 1,2,4,8', '1')
    .option('-n, --requests <count>', 'requests per concurrency level', '10')
    .option('-d, --duration <duration>', 'run each level this long instead of a request count (e.g. 30s, 2m)')
    .option('--prompt-tokens <count>', 'prompt length of the synthetic prompts', '128')
    .option('--output-tokens <count>', 'tokens to generate per request (num_predict / max_tokens)', '64')
    .option(
      '--dataset <file.jsonl>',
      'prompts from a JSONL file: {"prompt": ...} or {"messages": [...]}, optional "max_tokens"',
    )
    .option('--no-stream', 'ask for whole responses (no TTFT, TPOT or ITL then)')
    .option('--warmup <count>', 'unmeasured requests first (load the model, size the prompts, check the endpoint)', '1')
    .option('--timeout <duration>', 'a request running longer counts as failed', '5m')
    .option('--temperature <t>', "sampling temperature (default: the server's)")
    .option(
      '-O, --option <key=value>',
      'extra request field, repeatable: an Ollama option (num_ctx=2048, seed=1) or an OpenAI body field (ignore_eos=true)',
      (value: string, all: string[] = []) => [...all, value],
    )
    .option('--api-key <key>', 'bearer token (default: $HEARTH_API_KEY, then $OPENAI_API_KEY for --api openai)')
    .option('--label <name>', 'name of this run in comparisons')
    .option('--json', 'print the report as JSON instead of a table')
    .option('-o, --output <file>', 'also write the JSON report to a file (for --compare)')
    .option('--compare <reports...>', 'print saved reports side by side instead of running')
    .addHelpText(
      'after',
      `
Examples:
  hearth bench -m llama3.2 -c 1,2,4,8 -n 20 -o hearth.json
  hearth bench --api openai --url http://127.0.0.1:8080 -m any -c 1,2,4,8 -n 20 -o llama-server.json
  hearth bench --compare hearth.json llama-server.json`,
    )
    .action(action(bench));
}

async function bench(o: BenchCliOptions): Promise<void> {
  if (o.compare?.length) {
    const reports = await Promise.all(o.compare.map((path) => readReport(path)));
    process.stdout.write(o.json ? `${JSON.stringify(reports, null, 2)}\n` : formatComparison(reports));
    return;
  }
  if (!o.model) throw invalid('no model given: name one with --model (see `hearth bench --help`)');
  const outputTokens = wholeNumber(o.outputTokens, '--output-tokens', 1);
  const workload: Workload = o.dataset
    ? await DatasetWorkload.open(o.dataset, { mode: o.mode, outputTokens })
    : new FixedWorkload(wholeNumber(o.promptTokens, '--prompt-tokens', 1), outputTokens);
  const apiKey =
    o.apiKey ?? process.env[API_KEY_VARIABLE] ?? (o.api === 'openai' ? process.env['OPENAI_API_KEY'] : undefined);
  const temperature = o.temperature === undefined ? undefined : Number(o.temperature);
  if (temperature !== undefined && !(temperature >= 0))
    throw invalid(`--temperature ${o.temperature} is not a number >= 0`);

  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping: reporting the levels finished so far (Ctrl-C again to quit at once)\n');
    stop.abort();
  };
  process.on('SIGINT', onSigint);
  const progress = process.stderr.isTTY;
  let report: BenchReport;
  try {
    report = await runBench(
      {
        target: {
          url: o.url ?? serverUrl(),
          api: o.api,
          mode: o.mode,
          model: o.model,
          ...(apiKey ? { apiKey } : {}),
          ...(temperature !== undefined ? { temperature } : {}),
          ...(o.option?.length ? { options: parseRequestOptions(o.option) } : {}),
        },
        workload,
        concurrency: o.concurrency.split(',').map((c) => wholeNumber(c.trim(), '--concurrency', 1)),
        ...(o.duration !== undefined
          ? { durationMs: duration(o.duration, '--duration') }
          : { requests: wholeNumber(o.requests, '--requests', 1) }),
        stream: o.stream,
        warmup: wholeNumber(o.warmup, '--warmup', 0),
        timeoutMs: duration(o.timeout, '--timeout'),
        signal: stop.signal,
        ...(progress
          ? {
              onProgress: (p) =>
                process.stderr.write(
                  `\r\x1b[Kc=${p.concurrency}: ${p.completed}${p.total !== null ? `/${p.total}` : ''} done, ${p.failed} failed`,
                ),
            }
          : {}),
      },
      o.label,
    );
  } finally {
    process.off('SIGINT', onSigint);
    if (progress) process.stderr.write('\r\x1b[K');
  }
  if (o.output) await writeFile(o.output, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  const completed = report.levels.reduce((n, l) => n + l.completed, 0);
  const firstError = report.levels.flatMap((l) => l.errors)[0];
  if (completed === 0 && firstError) {
    throw new HearthError('BENCH_TARGET_FAILED', [`every request failed: ${firstError.message}`]);
  }
}

/** `key=value` pairs; values are read as JSON when they parse (numbers, booleans), else kept as text. */
function parseRequestOptions(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw invalid(`--option ${pair} is not key=value`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {}
    out[pair.slice(0, eq)] = value;
  }
  return out;
}

function invalid(message: string): HearthError {
  return new HearthError('BENCH_OPTIONS_INVALID', [`${message}`]);
}

function wholeNumber(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < min)
    throw invalid(`${flag} ${text} is not a whole number >= ${min}`);
  return n;
}

function duration(text: string, flag: string): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
  } catch {}
  throw invalid(`${flag} ${text} is not a duration; use e.g. 30s, 5m or 1h`);
}
