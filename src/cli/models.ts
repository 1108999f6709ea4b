import { createHash } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { HearthError } from '../errors.js';
import { parseModelfile } from '../models/modelfile.js';
import { formatBytes, relativeTime, table } from '../units.js';
import { HearthClient } from './client.js';
import { action } from './shared.js';

interface TagsResponse {
  models: Array<{ name: string; size: number; digest: string; modified_at: string }>;
}
interface PsResponse {
  models: Array<{
    name: string;
    size: number;
    digest: string;
    size_vram: number;
    expires_at: string;
    context_length: number;
  }>;
}
interface ShowResponse {
  license: string;
  modelfile: string;
  parameters: string;
  template: string;
  system: string;
  details: { family: string; parameter_size: string; quantization_level: string };
  model_info: Record<string, unknown>;
  capabilities: string[];
}

export function registerModelCommands(program: Command): void {
  const client = () => new HearthClient();

  program
    .command('list')
    .alias('ls')
    .description('list models in the library')
    .action(
      action(async () => {
        const { models } = await client().json<TagsResponse>('GET', '/api/tags');
        const rows = models.map((m) => [
          m.name,
          m.digest.slice(0, 12),
          formatBytes(m.size),
          relativeTime(new Date(m.modified_at)),
        ]);
        process.stdout.write(table(['NAME', 'ID', 'SIZE', 'MODIFIED'], rows));
      }),
    );

  program
    .command('ps')
    .description('list loaded models')
    .action(
      action(async () => {
        const { models } = await client().json<PsResponse>('GET', '/api/ps');
        const rows = models.map((m) => {
          const gpu = m.size > 0 ? Math.round((m.size_vram / m.size) * 100) : 0;
          const processor = gpu === 0 ? '100% CPU' : gpu === 100 ? '100% GPU' : `${100 - gpu}%/${gpu}% CPU/GPU`;
          return [
            m.name,
            m.digest.slice(0, 12),
            formatBytes(m.size),
            processor,
            String(m.context_length),
            relativeTime(new Date(m.expires_at)),
          ];
        });
        process.stdout.write(table(['NAME', 'ID', 'SIZE', 'PROCESSOR', 'CONTEXT', 'UNTIL'], rows));
      }),
    );

  program
    .command('show')
    .description('show information for a model')
    .argument('<model>')
    .option('--license', 'show the license')
    .option('--modelfile', 'show the Modelfile')
    .option('--parameters', 'show the parameters')
    .option('--system', 'show the system prompt')
    .option('--template', 'show the chat template')
    .option('-v, --verbose', 'show all metadata')
    .action(
      action(async (model: string, o: Record<string, boolean>) => {
        const info = await client().json<ShowResponse>('POST', '/api/show', { model, verbose: !!o['verbose'] });
        const out = (s: string): void => {
          process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
        };
        if (o['license']) return out(info.license);
        if (o['modelfile']) return out(info.modelfile);
        if (o['parameters']) return out(info.parameters);
        if (o['system']) return out(info.system);
        if (o['template']) return out(info.template);
        const arch = info.details.family;
        const mi = info.model_info;
        const rows: Array<[string, unknown]> = [
          ['architecture', arch],
          ['parameters', info.details.parameter_size],
          ['context length', mi[`${arch}.context_length`]],
          ['embedding length', mi[`${arch}.embedding_length`]],
          ['quantization', info.details.quantization_level],
        ];
        const section = (title: string, lines: string[]) => {
          if (!lines.length) return '';
          return `  ${title}\n${lines.map((l) => `    ${l}`).join('\n')}\n\n`;
        };
        let text = section(
          'Model',
          rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${k.padEnd(20)}${String(v)}`),
        );
        text += section('Capabilities', info.capabilities);
        if (info.parameters) text += section('Parameters', info.parameters.split('\n'));
        if (info.system) text += section('System', info.system.split('\n').slice(0, 4));
        if (info.license) text += section('License', info.license.split('\n').filter(Boolean).slice(0, 2));
        process.stdout.write(`${text}`);
      }),
    );

  program
    .command('rm')
    .description('remove models')
    .argument('<models...>')
    .action(
      action(async (models: string[]) => {
        for (const model of models) {
          await client().json('DELETE', '/api/delete', { model });
          process.stdout.write(`deleted '${model}'\n`);
        }
      }),
    );

  program
    .command('cp')
    .description('copy a model')
    .argument('<source>')
    .argument('<destination>')
    .action(
      action(async (source: string, destination: string) => {
        await client().json('POST', '/api/copy', { source, destination });
        process.stdout.write(`copied '${source}' to '${destination}'\n`);
      }),
    );

  program
    .command('stop')
    .description('unload a running model')
    .argument('<model>')
    .action(
      action(async (model: string) => {
        await client().json('POST', '/api/generate', { model, prompt: '', keep_alive: 0, stream: false });
      }),
    );

  program
    .command('pull')
    .description('pull a model: an Ollama registry name, hf:owner/repo/file.gguf, or an https:// URL of a GGUF')
    .argument('<model>')
    .option('--insecure', 'use plain http for the registry')
    .action(
      action(async (model: string, o: { insecure?: boolean }) => {
        await showProgress(client().stream<Progress>('/api/pull', { model, insecure: !!o.insecure, stream: true }));
      }),
    );

  program
    .command('create')
    .description('create a model from a Modelfile')
    .argument('<model>')
    .option('-f, --file <path>', 'the Modelfile', 'Modelfile')
    .action(
      action(async (model: string, o: { file: string }) => {
        const path = resolve(o.file);
        const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw new HearthError(
            'MODELFILE_INVALID',
            `cannot read Modelfile ${o.file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
          );
        });
        const mf = parseModelfile(text);
        const c = client();
        const body: Record<string, unknown> = { model, stream: true, parameters: mf.parameters };
        if (mf.system !== undefined) body['system'] = mf.system;
        if (mf.template !== undefined) body['template'] = mf.template;
        if (mf.license.length) body['license'] = mf.license;
        if (mf.messages.length) body['messages'] = mf.messages;
        const from = mf.from.replace(/^~(?=\/)/, process.env['HOME'] ?? '~');
        const isFile = from.toLowerCase().endsWith('.gguf') || from.startsWith('.') || isAbsolute(from);
        if (isFile && !from.startsWith('atlas:')) {
          const file = isAbsolute(from) ? from : resolve(dirname(path), from);
          const info = await stat(file).catch(() => {
            throw new HearthError('MODELFILE_INVALID', `FROM ${mf.from}: no such file (${file})`);
          });
          process.stdout.write('gathering model components\n');
          const hash = createHash('sha256');
          await pipeline(createReadStream(file), hash);
          const digest = `sha256:${hash.digest('hex')}`;
          if ((await c.head(`/api/blobs/${digest}`)) !== 200) {
            process.stdout.write(`copying file ${digest} 100%\n`);
            await c.upload(`/api/blobs/${digest}`, await openAsBlob(file), info.size);
          } else {
            process.stdout.write(`using existing layer ${digest}\n`);
          }
          body['files'] = { [file.split('/').pop()!]: digest };
        } else {
          body['from'] = from;
        }
        // The server's last line is its own `success`: printed once, as Ollama's CLI does.
        for await (const p of c.stream<{ status: string }>('/api/create', body)) process.stdout.write(`${p.status}\n`);
      }),
    );
}

interface Progress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** Ollama-style pull output: one bar per layer, plain lines for the other steps. */
async function showProgress(lines: AsyncIterable<Progress>): Promise<void> {
  let bar: SingleBar | null = null;
  let barStatus = '';
  const tty = process.stderr.isTTY;
  for await (const p of lines) {
    if (p.total && p.completed !== undefined) {
      if (!bar || barStatus !== p.status) {
        bar?.stop();
        barStatus = p.status;
        bar = new SingleBar({
          format: `${p.status}: {percentage}% ▕{bar}▏ {done}/{size}`,
          barCompleteChar: '█',
          barIncompleteChar: ' ',
          barsize: 20,
          noTTYOutput: !tty,
          notTTYSchedule: 5000,
          stream: process.stderr,
        });
        bar.start(p.total, p.completed, { done: formatBytes(p.completed), size: formatBytes(p.total) });
      }
      bar.update(p.completed, { done: formatBytes(p.completed), size: formatBytes(p.total) });
      continue;
    }
    bar?.stop();
    bar = null;
    if (p.status !== 'success') process.stderr.write(`${p.status}\n`);
  }
  bar?.stop();
  process.stderr.write('success\n');
}
