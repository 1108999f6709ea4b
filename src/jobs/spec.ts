import * as z from 'zod';

/** A job's life: queued → running → succeeded | failed | cancelled; failed and cancelled jobs can be retried. */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const LIVE_STATES: readonly JobState[] = ['queued', 'running'];
export const FINISHED_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export const DATASET_FORMATS = ['jsonl', 'csv', 'folder'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

export const OPERATIONS = ['generate', 'chat', 'embed'] as const;
export type Operation = (typeof OPERATIONS)[number];

const DEFAULT_MAX_ERRORS = 0.01;

/**
 * `max_errors`: a count of bad records (an integer ≥ 1, or 0 for none), a fraction of all records
 * (0 < x < 1), or a percentage string ('5%'). The job fails once the bad records pass it.
 */
const maxErrorsField = z.union([
  z.number().min(0),
  z.string().regex(/^\d+(\.\d+)?%$/, { error: 'must be a number or a percentage like "5%"' }),
]);

/**
 * The body of `POST /api/jobs` for a batch job (snake_case, like the Ollama API hearth serves).
 * Paths are keys in the Atlas file store.
 */
export const batchRequestSchema = z.strictObject({
  type: z.literal('batch').default('batch'),
  /** the dataset: a .jsonl or .csv file, or a folder of text/markdown files */
  input: z.string().min(1),
  /** the dataset's format; default: from the extension (.jsonl/.ndjson, .csv), or `folder` for a folder */
  format: z.enum(DATASET_FORMATS).optional(),
  /** the field whose value keys each record; default: the line number (files) or relative path (folders) */
  key_field: z.string().min(1).optional(),
  model: z.string().min(1),
  operation: z.enum(OPERATIONS).default('generate'),
  /** generate: the prompt, with {{field}} placeholders */
  template: z.string().optional(),
  /** generate and chat: a system prompt (instead of the model's own) */
  system: z.string().optional(),
  /** generate: a JSON schema; the output is grammar-constrained to it and validated */
  schema: z.record(z.string(), z.unknown()).optional(),
  /** chat: the field holding the messages array (default `messages`) */
  messages_field: z.string().min(1).optional(),
  /** embed: the field holding the text (default `text`) */
  text_field: z.string().min(1).optional(),
  /** model options, as in Ollama's `options` (num_predict, temperature, num_ctx, ...) */
  options: z.record(z.string(), z.unknown()).optional(),
  /** the output folder: a key prefix in the file store, e.g. results/reviews */
  output: z.string().min(1),
  /** records per shard (the unit of work and of commit); default `jobs.shardSize` */
  shard_size: z.int().min(1).max(100_000).optional(),
  /** bad records tolerated: a count, a fraction or "5%" (default 1%) */
  max_errors: maxErrorsField.optional(),
});

export type BatchRequest = z.output<typeof batchRequestSchema>;

/** A batch job's spec as stored: the request with every default resolved. */
export interface BatchSpec {
  type: 'batch';
  input: string;
  format: DatasetFormat;
  key_field?: string;
  model: string;
  operation: Operation;
  template?: string;
  system?: string;
  schema?: Record<string, unknown>;
  messages_field?: string;
  text_field?: string;
  options: Record<string, unknown>;
  output: string;
  shard_size: number;
  max_errors: number | string;
}

/** The number of bad records a job tolerates, given how many records it has. */
export function errorLimit(maxErrors: number | string | undefined, records: number): number {
  const value = maxErrors ?? DEFAULT_MAX_ERRORS;
  if (typeof value === 'string') return Math.floor((Number.parseFloat(value) / 100) * records);
  if (value > 0 && value < 1) return Math.floor(value * records);
  return Math.floor(value);
}

export function defaultMaxErrors(): number {
  return DEFAULT_MAX_ERRORS;
}
