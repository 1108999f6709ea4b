import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, openAsBlob } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { HearthError } from '../errors.js';
import { formatBytes, relativeTime, table } from '../units.js';
import { HearthClient } from './client.js';
import { action } from './shared.js';

interface FileEntry {
  key: string;
  size: number;
  modified_at: string;
}

/** `/api/files/<key>`, each segment escaped. */
export function filePath(key: string): string {
  return `/api/files/${key.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')}`;
}

/** `hearth files put|get|ls|rm`: the Atlas file store through the API (service class `admin`). */
export function registerFileCommands(program: Command): void {
  const files = program.command('files').description('datasets and results in the Atlas file store (through the API)');
  const client = () => new HearthClient();

  files
    .command('put')
    .description('upload a local file to a key in the Atlas file store (atomic; checked by sha256)')
    .argument('<file>', 'the local file')
    .argument('[key]', 'where to store it, e.g. datasets/reviews.jsonl (default: datasets/<file name>)')
    .option('--no-overwrite', 'refuse if the key already exists')
    .action(
      action(async (file: string, key: string | undefined, o: { overwrite: boolean }) => {
        const info = await stat(file).catch(() => {
          throw new HearthError('BAD_REQUEST', `${file}: no such file`);
        });
        if (!info.isFile()) throw new HearthError('BAD_REQUEST', `${file} is not a file: upload files one by one`);
        const target = key ?? `datasets/${basename(file)}`;
        const hash = createHash('sha256');
        await pipeline(createReadStream(file), hash);
        const sha256 = hash.digest('hex');
        const query = `?sha256=${sha256}${o.overwrite ? '' : '&overwrite=false'}`;
        await client().upload(`${filePath(target)}${query}`, await openAsBlob(file), info.size);
        process.stdout.write(`stored ${target} (${formatBytes(info.size)}, sha256 ${sha256.slice(0, 12)})\n`);
      }),
    );

  files
    .command('get')
    .description('download a file from the Atlas file store')
    .argument('<key>')
    .argument('[dest]', 'local file, or - for standard output (default: the key’s file name)')
    .action(
      action(async (key: string, dest: string | undefined) => {
        const res = await client().request(filePath(key));
        const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
        if (dest === '-') {
          await pipeline(body, process.stdout);
          return;
        }
        const target = dest ?? basename(key);
        // Written beside the target and renamed, so an interrupted download leaves no partial file.
        const partial = `${target}.partial`;
        try {
          await pipeline(body, createWriteStream(partial));
          await rename(partial, target);
        } catch (err) {
          await rm(partial, { force: true });
          throw err;
        }
        process.stderr.write(`saved ${key} to ${target}\n`);
      }),
    );

  files
    .command('ls')
    .description('list files (recursively) under a prefix')
    .argument('[prefix]', 'e.g. datasets/ or results/reviews/', '')
    .action(
      action(async (prefix: string) => {
        const { files: listed } = await client().json<{ files: FileEntry[] }>(
          'GET',
          `/api/files?prefix=${encodeURIComponent(prefix)}`,
        );
        const rows = listed.map((f) => [f.key, formatBytes(f.size), relativeTime(new Date(f.modified_at))]);
        process.stdout.write(table(['KEY', 'SIZE', 'MODIFIED'], rows));
      }),
    );

  files
    .command('rm')
    .description('delete files from the Atlas file store')
    .argument('<keys...>')
    .option('-r, --recursive', 'delete every file under each key taken as a folder')
    .action(
      action(async (keys: string[], o: { recursive?: boolean }) => {
        const c = client();
        for (const key of keys) {
          const targets = o.recursive
            ? (
                await c.json<{ files: FileEntry[] }>(
                  'GET',
                  `/api/files?prefix=${encodeURIComponent(`${key.replace(/\/+$/, '')}/`)}`,
                )
              ).files.map((f) => f.key)
            : [key];
          for (const target of targets) {
            await c.json('DELETE', filePath(target));
            process.stdout.write(`deleted ${target}\n`);
          }
        }
      }),
    );
}
