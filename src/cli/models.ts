import { createHash } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { HearthError } from '../errors.js';
import { listFiles } from '../images/layout.js';
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
    .command('imagine')
    .description('make an image with an image model: hearth imagine MODEL "prompt" -o out.png')
    .argument('<model>')
    .argument('<prompt>')
    .option('-o, --output <path>', 'where to write the PNG (image_2.png, ... for --n above 1)', 'image.png')
    .option('--steps <n>', 'sampling steps', '20')
    .option('--seed <n>', 'noise seed (random when left out)')
    .option('--size <WxH>', "image size, e.g. 512x512 (default: the model family's own)")
    .option('--negative <text>', 'what the image should not contain')
    .option('--n <n>', 'how many images', '1')
    .action(
      action(
        async (
          model: string,
          prompt: string,
          o: { output: string; steps: string; seed?: string; size?: string; negative?: string; n: string },
        ) => {
          const body: Record<string, unknown> = { model, prompt, steps: Number(o.steps), n: Number(o.n), stream: true };
          if (o.seed !== undefined) body['seed'] = Number(o.seed);
          if (o.size) body['size'] = o.size;
          if (o.negative) body['negative_prompt'] = o.negative;
          const bar = new SingleBar({
            format: 'sampling {bar} {value}/{total} steps',
            barCompleteChar: '█',
            barIncompleteChar: ' ',
            barsize: 30,
            noTTYOutput: !process.stderr.isTTY,
            notTTYSchedule: 5000,
            stream: process.stderr,
          });
          let started = false;
          let images: string[] = [];
          for await (const line of client().stream<{
            status: string;
            completed?: number;
            total?: number;
            images?: string[];
          }>('/api/images/generate', body)) {
            if (line.status === 'sampling' && line.total) {
              if (!started) bar.start(line.total, 0);
              started = true;
              bar.update(line.completed ?? 0);
            } else if (line.images) images = line.images;
          }
          bar.stop();
          const out = resolve(o.output);
          for (const [i, b64] of images.entries()) {
            const path = i === 0 ? out : out.replace(/(\.png)?$/i, `_${i + 1}.png`);
            await writeFile(path, Buffer.from(b64, 'base64'));
            process.stdout.write(`${path}\n`);
          }
        },
      ),
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
    .option('-q, --quantize <type>', 'quantize the model: q4_K_M, q5_K_M or q8_0 (from an F16 or F32 GGUF)')
    .action(
      action(async (model: string, o: { file: string; quantize?: string }) => {
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
        if (o.quantize) body['quantize'] = o.quantize;
        if (mf.system !== undefined) body['system'] = mf.system;
        if (mf.template !== undefined) body['template'] = mf.template;
        if (mf.license.length) body['license'] = mf.license;
        if (mf.messages.length) body['messages'] = mf.messages;
        const from = mf.from.replace(/^~(?=\/)/, process.env['HOME'] ?? '~');
        const isFile = from.toLowerCase().endsWith('.gguf') || from.startsWith('.') || isAbsolute(from);
        const files: Record<string, string> = {};
        const uploadOne = async (path: string, size: number) => {
          const hash = createHash('sha256');
          await pipeline(createReadStream(path), hash);
          const digest = `sha256:${hash.digest('hex')}`;
          if ((await c.head(`/api/blobs/${digest}`)) !== 200) {
            process.stdout.write(`copying file ${digest} 100%\n`);
            await c.upload(`/api/blobs/${digest}`, await openAsBlob(path), size);
          } else {
            process.stdout.write(`using existing layer ${digest}\n`);
          }
          return digest;
        };
        if (isFile && !from.startsWith('atlas:')) {
          const file = isAbsolute(from) ? from : resolve(dirname(path), from);
          const info = await stat(file).catch(() => {
            throw new HearthError('MODELFILE_INVALID', `FROM ${mf.from}: no such file (${file})`);
          });
          // Checked before anything is hashed or uploaded: the server would refuse it after storing a blob.
          if (!info.isDirectory()) await assertGgufFile(file, mf.from);
          process.stdout.write('gathering model components\n');
          if (info.isDirectory()) {
            // an image model: a diffusers ONNX layout, every file a blob, keyed by its path in the layout
            for (const rel of await listFiles(file)) {
              const st = await stat(join(file, rel));
              files[rel] = await uploadOne(join(file, rel), st.size);
            }
          } else {
            files[file.split('/').pop()!] = await uploadOne(file, info.size);
          }
        } else {
          body['from'] = from;
        }
        if (mf.projector) {
          // hearth's PROJECTOR line: the mmproj GGUF goes up as one more file; the server knows it by its clip architecture
          const file = resolve(dirname(path), mf.projector.replace(/^~(?=\/)/, process.env['HOME'] ?? '~'));
          const info = await stat(file).catch(() => {
            throw new HearthError('MODELFILE_INVALID', `PROJECTOR ${mf.projector}: no such file (${file})`);
          });
          await assertGgufFile(file, mf.projector);
          const name = `projector-${file.split('/').pop()!}`;
          files[name.toLowerCase().endsWith('.gguf') ? name : `${name}.gguf`] = await uploadOne(file, info.size);
        }
        if (Object.keys(files).length > 0) body['files'] = files;
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

/** Refuses a local FROM file that does not start with the GGUF magic ("GGUF"). */
async function assertGgufFile(file: string, named: string): Promise<void> {
  const magic = Buffer.alloc(4);
  const fh = await open(file, 'r');
  try {
    await fh.read(magic, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (magic.toString('latin1') !== 'GGUF') {
    throw new HearthError(
      'MODELFILE_INVALID',
      `FROM ${named}: not a GGUF model file (it does not start with "GGUF"): point FROM at a .gguf file or a model name`,
    );
  }
}
