import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { HearthError } from '../errors.js';
import type { JobEvent, JobView } from '../jobs/index.js';
import { relativeTime, table } from '../units.js';
import { HearthClient } from './client.js';
import { action } from './shared.js';

/** How many times `--follow` reconnects to a server that went away (a restart) before giving up. */
const RECONNECTS = 60;

/** `hearth batch submit` and `hearth jobs ls|show|cancel|retry|logs`. */
export function registerJobCommands(program: Command): void {
  const client = () => new HearthClient();

  program
    .command('batch')
    .description('batch processing over datasets in the Atlas file store')
    .command('submit')
    .description(
      'run a prompt (or chat, or embeddings) over every record of a dataset; results go to an output folder on Atlas',
    )
    .requiredOption(
      '-i, --input <key>',
      'the dataset: a .jsonl or .csv file, or a folder of text files (a key in the file store)',
    )
    .requiredOption('-m, --model <name>', 'the model')
    .requiredOption('-O, --output <key>', 'the output folder, e.g. results/reviews (must be empty)')
    .option('-t, --template <text>', 'generate: the prompt, with {{field}} placeholders')
    .option('--template-file <file>', 'generate: read the prompt from a local file')
    .option('--system <text>', 'a system prompt')
    .option('--schema <file>', 'generate: a local JSON schema file; the output is constrained to it and validated')
    .option('--operation <op>', 'generate, chat or embed', 'generate')
    .option('--format <format>', 'jsonl, csv or folder (default: from the input)')
    .option('--key-field <field>', 'the field that keys each record (default: line number, or path in a folder)')
    .option('--messages-field <field>', 'chat: the field with the messages (default: messages)')
    .option('--text-field <field>', 'embed: the field with the text (default: text)')
    .option('-o, --option <name=value>', 'a model option, e.g. num_predict=64 (repeatable)', collect, [] as string[])
    .option('--shard-size <n>', 'records per shard (default: jobs.shardSize)')
    .option('--max-errors <n|fraction|percent>', 'bad records tolerated, e.g. 10, 0.01 or 1% (default 1%)')
    .option('-f, --follow', 'show a live progress bar until the job ends')
    .action(
      action(async (o: SubmitOptions) => {
        const body = await submitBody(o);
        const job = await client().json<JobView>('POST', '/api/jobs', body);
        process.stdout.write(`${job.id}\n`);
        process.stderr.write(
          `submitted job ${job.id}: ${job.spec.operation} over ${job.input} with ${job.model} → ${job.output}/\n`,
        );
        if (o.follow) await follow(client(), job.id);
      }),
    );

  const jobs = program.command('jobs').description('batch jobs: list, inspect, cancel, retry, logs');

  jobs
    .command('ls')
    .description('list jobs, newest first')
    .option('--state <states>', 'only these states (comma-separated: queued,running,succeeded,failed,cancelled)')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(
      action(async (o: { state?: string; limit: string; json?: boolean }) => {
        const query = new URLSearchParams({ limit: o.limit, ...(o.state ? { state: o.state } : {}) });
        const page = await client().json<{ jobs: JobView[] }>('GET', `/api/jobs?${query}`);
        if (o.json) return void process.stdout.write(`${JSON.stringify(page.jobs, null, 2)}\n`);
        const rows = page.jobs.map((j) => [
          j.id,
          j.state,
          j.model,
          progressText(j),
          String(j.progress.records_failed),
          j.output,
          relativeTime(new Date(j.created_at)),
        ]);
        process.stdout.write(table(['ID', 'STATE', 'MODEL', 'PROGRESS', 'ERRORS', 'OUTPUT', 'CREATED'], rows));
      }),
    );

  jobs
    .command('show')
    .description('show a job')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, o: { json?: boolean }) => {
        const job = await client().json<JobView>('GET', `/api/jobs/${encodeURIComponent(id)}`);
        if (o.json) return void process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
        const p = job.progress;
        const lines: Array<[string, string | number | null | undefined]> = [
          ['id', job.id],
          ['state', job.state],
          ['operation', job.spec.operation],
          ['model', `${job.model}${job.model_digest ? ` (${job.model_digest.slice(0, 12)})` : ''}`],
          ['input', `${job.input} (${job.spec.format})`],
          ['output', `${job.output}/`],
          [
            'records',
            `${p.records_done} of ${p.records_total ?? '?'} (${p.records_ok} ok, ${p.records_failed} failed)`,
          ],
          ['shards', `${p.shards_committed} of ${p.shards_total ?? '?'} committed, ${p.shards_running} running`],
          ['tokens', `${p.prompt_tokens} prompt, ${p.eval_tokens} generated`],
          ['attempts', job.attempts],
          ['node', job.node],
          ['created', job.created_at],
          ['started', job.started_at],
          ['finished', job.finished_at],
          ['manifest', job.manifest],
          ['error', job.error],
        ];
        for (const [name, value] of lines) {
          if (value !== null && value !== undefined) process.stdout.write(`${name.padEnd(10)}${value}\n`);
        }
      }),
    );

  jobs
    .command('cancel')
    .description('cancel a queued or running job (running work stops within seconds)')
    .argument('<id>')
    .action(
      action(async (id: string) => {
        const job = await client().json<JobView>('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`, {});
        process.stdout.write(`job ${job.id} ${job.state}\n`);
      }),
    );

  jobs
    .command('retry')
    .description('run a failed or cancelled job again (committed shards are kept)')
    .argument('<id>')
    .option('--max-errors <n|fraction|percent>', 'a new bad-record allowance')
    .option('-f, --follow', 'show a live progress bar until the job ends')
    .action(
      action(async (id: string, o: { maxErrors?: string; follow?: boolean }) => {
        const body = o.maxErrors !== undefined ? { max_errors: maxErrorsValue(o.maxErrors) } : {};
        const job = await client().json<JobView>('POST', `/api/jobs/${encodeURIComponent(id)}/retry`, body);
        process.stderr.write(`job ${job.id} queued again (attempt ${job.attempts})\n`);
        if (o.follow) await follow(client(), job.id);
      }),
    );

  jobs
    .command('logs')
    .description("print a job's log")
    .argument('<id>')
    .option('-f, --follow', 'keep printing until the job ends')
    .action(
      action(async (id: string, o: { follow?: boolean }) => {
        const c = client();
        if (!o.follow) {
          const { events } = await c.json<{ events: JobEvent[] }>('GET', `/api/jobs/${encodeURIComponent(id)}/logs`);
          for (const event of events) process.stdout.write(logLine(event));
          return;
        }
        await watchEvents(c, id, { onLog: (event) => process.stdout.write(logLine(event)) });
      }),
    );
}

interface SubmitOptions {
  input: string;
  model: string;
  output: string;
  template?: string;
  templateFile?: string;
  system?: string;
  schema?: string;
  operation: string;
  format?: string;
  keyField?: string;
  messagesField?: string;
  textField?: string;
  option: string[];
  shardSize?: string;
  maxErrors?: string;
  follow?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function submitBody(o: SubmitOptions): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = { input: o.input, model: o.model, output: o.output, operation: o.operation };
  if (o.template !== undefined && o.templateFile !== undefined) {
    throw new HearthError('BAD_REQUEST', 'give --template or --template-file, not both');
  }
  if (o.templateFile !== undefined) body['template'] = await readLocal(o.templateFile, 'template file');
  if (o.template !== undefined) body['template'] = o.template;
  if (o.schema !== undefined) {
    const text = await readLocal(o.schema, 'schema file');
    try {
      body['schema'] = JSON.parse(text);
    } catch (err) {
      throw new HearthError('BAD_REQUEST', `--schema ${o.schema} is not JSON: ${(err as Error).message}`);
    }
  }
  if (o.system !== undefined) body['system'] = o.system;
  if (o.format !== undefined) body['format'] = o.format;
  if (o.keyField !== undefined) body['key_field'] = o.keyField;
  if (o.messagesField !== undefined) body['messages_field'] = o.messagesField;
  if (o.textField !== undefined) body['text_field'] = o.textField;
  if (o.shardSize !== undefined) body['shard_size'] = Number(o.shardSize);
  if (o.maxErrors !== undefined) body['max_errors'] = maxErrorsValue(o.maxErrors);
  if (o.option.length) {
    const options: Record<string, unknown> = {};
    for (const pair of o.option) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new HearthError('BAD_REQUEST', `--option ${pair}: write name=value, e.g. num_predict=64`);
      options[pair.slice(0, eq)] = optionValue(pair.slice(eq + 1));
    }
    body['options'] = options;
  }
  return body;
}

async function readLocal(file: string, what: string): Promise<string> {
  return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new HearthError(
      'BAD_REQUEST',
      `cannot read the ${what} ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
    );
  });
}

/** `64` → 64, `true` → true, `["a","b"]` → a list; anything else stays text (the server checks types). */
function optionValue(raw: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw.startsWith('[')) {
    try {
      return JSON.parse(raw);
    } catch {}
  }
  return raw;
}

function maxErrorsValue(raw: string): number | string {
  return raw.endsWith('%') ? raw : Number(raw);
}

function progressText(job: JobView): string {
  const p = job.progress;
  if (p.records_total === null) return job.state === 'queued' ? 'queued' : 'planning';
  const pct = p.records_total > 0 ? Math.floor((p.records_done / p.records_total) * 100) : 100;
  return `${p.records_done}/${p.records_total} (${pct}%)`;
}

function logLine(event: JobEvent): string {
  return `${event.at}  ${event.level.padEnd(5)}  ${event.message}\n`;
}

/**
 * Follows a job's server-sent events until it ends (reconnecting across a server restart, resuming
 * the log after the last line seen). Resolves with the finished job.
 */
async function watchEvents(
  client: HearthClient,
  id: string,
  handlers: { onProgress?: (job: JobView) => void; onLog?: (event: JobEvent) => void },
): Promise<JobView> {
  let lastLogId = 0;
  for (let attempt = 0; attempt <= RECONNECTS; attempt++) {
    try {
      const res = await client.request(`/api/jobs/${encodeURIComponent(id)}/events`, {
        headers: lastLogId ? { 'last-event-id': String(lastLogId) } : {},
      });
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let end = buffered.indexOf('\n\n');
        while (end >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          end = buffered.indexOf('\n\n');
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!event || data === undefined) continue;
          const value = JSON.parse(data);
          if (event === 'log') {
            lastLogId = (value as JobEvent).id;
            handlers.onLog?.(value as JobEvent);
          } else if (event === 'progress') {
            handlers.onProgress?.(value as JobView);
          } else if (event === 'end') {
            handlers.onProgress?.(value as JobView);
            return value as JobView;
          }
        }
      }
    } catch (err) {
      // A job that does not exist will not appear by waiting.
      if (err instanceof HearthError && err.status === 404) throw err;
    }
    await sleep(2000);
  }
  throw new HearthError(
    'BAD_REQUEST',
    `lost the connection to hearth while following job ${id}: follow it again with hearth jobs logs -f ${id}`,
  );
}

/** The live progress bar of `--follow`: records, records/s, tokens/s, ETA and errors; exits non-zero unless the job succeeded. */
async function follow(client: HearthClient, id: string): Promise<void> {
  const tty = process.stderr.isTTY;
  const bar = new SingleBar({
    format:
      '{state} ▕{bar}▏ {percentage}% | {value}/{total} records | {rps} rec/s | {tps} tok/s | ETA {eta_text} | {errors} errors',
    barCompleteChar: '█',
    barIncompleteChar: ' ',
    barsize: 24,
    hideCursor: true,
    noTTYOutput: !tty,
    notTTYSchedule: 5000,
    stream: process.stderr,
  });
  const rate = new RateWindow(10_000);
  let started = false;
  const show = (job: JobView) => {
    const p = job.progress;
    rate.add(p.records_done, p.eval_tokens);
    const { rps, tps } = rate.rates();
    const total = p.records_total ?? 0;
    const remaining = total - p.records_done;
    const payload = {
      state: job.state === 'running' && p.records_total === null ? 'planning' : job.state,
      rps: rps.toFixed(1),
      tps: tps.toFixed(0),
      errors: p.records_failed,
      eta_text: rps > 0 && remaining > 0 ? formatDuration(remaining / rps) : remaining <= 0 && total > 0 ? '0s' : '-',
    };
    if (!started) {
      bar.start(Math.max(total, 1), p.records_done, payload);
      started = true;
    }
    bar.setTotal(Math.max(total, 1));
    bar.update(p.records_done, payload);
  };
  let job: JobView;
  try {
    job = await watchEvents(client, id, { onProgress: show });
  } finally {
    bar.stop();
  }
  const p = job.progress;
  if (job.state === 'succeeded') {
    process.stderr.write(
      `job ${id} succeeded: ${p.records_ok} rows, ${p.records_failed} errors → ${job.output}/ (manifest ${job.manifest})\n`,
    );
    return;
  }
  throw new HearthError('BAD_REQUEST', `job ${id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
}

/** Records/s and tokens/s over the last `windowMs`. */
class RateWindow {
  private readonly samples: Array<{ at: number; records: number; tokens: number }> = [];
  constructor(private readonly windowMs: number) {}

  add(records: number, tokens: number): void {
    const at = Date.now();
    this.samples.push({ at, records, tokens });
    while (this.samples.length > 2 && at - this.samples[0]!.at > this.windowMs) this.samples.shift();
  }

  rates(): { rps: number; tps: number } {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at === first.at) return { rps: 0, tps: 0 };
    const seconds = (last.at - first.at) / 1000;
    return {
      rps: Math.max(0, (last.records - first.records) / seconds),
      tps: Math.max(0, (last.tokens - first.tokens) / seconds),
    };
  }
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
