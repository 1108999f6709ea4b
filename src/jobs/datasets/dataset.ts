import type { Readable } from 'node:stream';
import type { FileStore } from '../../atlas/files/index.js';
import { HearthError, isHearthError } from '../../errors.js';
import type { DatasetFormat } from '../spec.js';
import { parseCsvRecord, type RecordSpan, RecordSplitter, recordText } from './records.js';

/** One input record, as read from the dataset. */
export interface DatasetRecord {
  /** 1-based line of the record (JSONL and CSV) */
  line?: number;
  /** path relative to the dataset folder (folders) */
  path?: string;
  /** the record's fields: a JSONL object, a CSV row by header, or `{ path, text }` for a file */
  fields?: Record<string, unknown>;
  /** why the record could not be read (a malformed line or row); such records become error rows */
  error?: string;
}

/** Where one shard's records are: a byte range of a file, or a list of files. */
export type ShardRange = { start: number; end: number; line: number } | { files: string[] };

/** What planning found: the shards, and what reading them needs (the CSV header). */
export interface DatasetPlan {
  format: DatasetFormat;
  /** CSV: the header's column names */
  columns?: string[];
  records: number;
  shards: Array<{ range: ShardRange; records: number }>;
}

/** A dataset in the Atlas file store, by key and format. */
export interface DatasetRef {
  input: string;
  format: DatasetFormat;
}

const SAMPLE_BYTES = 4 << 20;

/**
 * Finds the dataset and its format: the one given, or from the extension, or a folder when the key
 * names no file but files exist under it. Throws JOB_DATASET_NOT_FOUND or JOB_INVALID.
 */
export async function locateDataset(files: FileStore, input: string, format?: DatasetFormat): Promise<DatasetRef> {
  const key = input.replace(/\/+$/, '');
  const file = await files.stat(key);
  if (file && format !== 'folder') {
    const found = format ?? formatFromExtension(key);
    if (!found) {
      throw new HearthError(
        'JOB_INVALID',
        `input ${JSON.stringify(key)}: cannot tell its format from the name: name it .jsonl or .csv, or set format (jsonl, csv)`,
        { details: { param: 'format' } },
      );
    }
    return { input: key, format: found };
  }
  if (format !== 'jsonl' && format !== 'csv' && (await folderFiles(files, key)).length > 0) {
    return { input: key, format: 'folder' };
  }
  throw new HearthError(
    'JOB_DATASET_NOT_FOUND',
    [JSON.stringify(key), format === 'folder' ? 'folder' : 'dataset', files.describe],
    { details: { param: 'input', key } },
  );
}

function formatFromExtension(key: string): DatasetFormat | undefined {
  if (/\.(jsonl|ndjson)$/i.test(key)) return 'jsonl';
  if (/\.csv$/i.test(key)) return 'csv';
  return undefined;
}

/** The files of a folder dataset, as keys, sorted (the store skips its temporary files). */
async function folderFiles(files: FileStore, folder: string): Promise<string[]> {
  const listed = await files.list(`${folder}/`);
  return listed
    .map((f) => f.key)
    .filter(
      (key) =>
        !key
          .slice(folder.length + 1)
          .split('/')
          .some((s) => s.startsWith('.')),
    );
}

/**
 * Cuts the dataset into shards of `shardSize` records. Reads a JSONL or CSV file once, from start to
 * end, noting where every shard's first record starts; lists a folder.
 */
export async function planDataset(files: FileStore, ref: DatasetRef, shardSize: number): Promise<DatasetPlan> {
  if (ref.format === 'folder') {
    const keys = (await folderFiles(files, ref.input)).map((key) => key.slice(ref.input.length + 1));
    const shards: DatasetPlan['shards'] = [];
    for (let i = 0; i < keys.length; i += shardSize) {
      const slice = keys.slice(i, i + shardSize);
      shards.push({ range: { files: slice }, records: slice.length });
    }
    return { format: 'folder', records: keys.length, shards };
  }
  const splitter = new RecordSplitter(ref.format);
  const starts: RecordSpan[] = [];
  let records = 0;
  let headerSeen = ref.format !== 'csv';
  const take = (spans: RecordSpan[]) => {
    for (const span of spans) {
      if (!headerSeen) {
        headerSeen = true;
        continue;
      }
      if (records % shardSize === 0) starts.push(span);
      records++;
    }
  };
  const stream = await files.read(ref.input);
  for await (const chunk of stream as AsyncIterable<Buffer>) take(splitter.push(chunk));
  take(splitter.end());
  const end = splitter.offset;
  const shards = starts.map((span, i) => {
    const next = starts[i + 1];
    const count = i === starts.length - 1 ? records - i * shardSize : shardSize;
    return { range: { start: span.start, end: next ? next.start : end, line: span.line }, records: count };
  });
  const plan: DatasetPlan = { format: ref.format, records, shards };
  if (ref.format === 'csv') plan.columns = (await readHead(files, ref, 0)).columns ?? [];
  return plan;
}

function csvHeader(bytes: Uint8Array): string[] {
  try {
    return parseCsvRecord(recordText(bytes)).map((name) => name.trim());
  } catch (err) {
    throw new HearthError('JOB_INVALID', `the CSV header cannot be read: ${(err as Error).message}`, {
      details: { param: 'input' },
    });
  }
}

/** Reads one shard's records, in dataset order. */
export async function* readShard(
  files: FileStore,
  ref: DatasetRef,
  plan: Pick<DatasetPlan, 'columns'>,
  range: ShardRange,
): AsyncGenerator<DatasetRecord> {
  if ('files' in range) {
    for (const path of range.files) yield await readFileRecord(files, ref.input, path);
    return;
  }
  if (range.end <= range.start) return;
  const bytes = await readAll(await files.read(ref.input, { start: range.start, end: range.end - 1 }));
  const splitter = new RecordSplitter(ref.format as 'jsonl' | 'csv', range.start, range.line);
  for (const span of [...splitter.push(bytes), ...splitter.end()]) {
    yield parseRecord(
      ref.format,
      bytes.subarray(span.start - range.start, span.end - range.start),
      span.line,
      plan.columns,
    );
  }
}

async function readFileRecord(files: FileStore, folder: string, path: string): Promise<DatasetRecord> {
  try {
    const text = (await readAll(await files.read(`${folder}/${path}`))).toString('utf8');
    return { path, fields: { path, text } };
  } catch (err) {
    if (isHearthError(err, 'ATLAS_FILES_NOT_FOUND'))
      return { path, error: `${path} is no longer in the dataset folder` };
    throw err;
  }
}

/** The first `count` records (for checks at submit): reads at most a few MiB of a file. */
export async function sampleDataset(files: FileStore, ref: DatasetRef, count: number): Promise<DatasetRecord[]> {
  if (ref.format === 'folder') {
    const keys = (await folderFiles(files, ref.input)).slice(0, count);
    return Promise.all(keys.map((key) => readFileRecord(files, ref.input, key.slice(ref.input.length + 1))));
  }
  return (await readHead(files, ref, count)).records;
}

/** The CSV header (if any) and the first `count` records, from at most the first few MiB of the file. */
async function readHead(
  files: FileStore,
  ref: DatasetRef,
  count: number,
): Promise<{ columns?: string[]; records: DatasetRecord[] }> {
  const stream = await files.read(ref.input, { start: 0, end: SAMPLE_BYTES - 1 });
  const chunks: Buffer[] = [];
  const splitter = new RecordSplitter(ref.format as 'jsonl' | 'csv');
  const spans: RecordSpan[] = [];
  const wanted = ref.format === 'csv' ? count + 1 : count;
  let ended = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      spans.push(...splitter.push(chunk));
      if (spans.length >= Math.max(1, wanted)) break;
    }
    ended = spans.length < Math.max(1, wanted);
  } finally {
    stream.destroy();
  }
  if (ended) spans.push(...splitter.end());
  const bytes = Buffer.concat(chunks);
  let columns: string[] | undefined;
  if (ref.format === 'csv') {
    const header = spans.shift();
    columns = header ? csvHeader(bytes.subarray(header.start, header.end)) : [];
  }
  const records = spans
    .slice(0, count)
    .map((span) => parseRecord(ref.format, bytes.subarray(span.start, span.end), span.line, columns));
  return columns ? { columns, records } : { records };
}

/**
 * Where JSON.parse gave up, without its quote of the text: the message reaches clients, and a file
 * that is not a dataset at all (a key file, /etc/passwd) must not have its first line echoed.
 */
function jsonProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  if (/Unexpected end of JSON input/.test(message)) return 'it ends too early';
  const position = /at position (\d+)/.exec(message)?.[1];
  return position === undefined ? 'not JSON' : `a syntax error at character ${Number(position) + 1}`;
}

function parseRecord(
  format: DatasetFormat,
  bytes: Uint8Array,
  line: number,
  columns: string[] | undefined,
): DatasetRecord {
  const text = recordText(bytes);
  if (format === 'jsonl') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { line, error: `line ${line} is not valid JSON (${jsonProblem(err)})` };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { line, error: `line ${line} is not a JSON object` };
    }
    return { line, fields: value as Record<string, unknown> };
  }
  let values: string[];
  try {
    values = parseCsvRecord(text);
  } catch (err) {
    return { line, error: `CSV row at line ${line}: ${(err as Error).message}` };
  }
  const names = columns ?? [];
  if (values.length !== names.length) {
    return { line, error: `CSV row at line ${line} has ${values.length} fields; the header has ${names.length}` };
  }
  return { line, fields: Object.fromEntries(names.map((name, i) => [name, values[i]])) };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
