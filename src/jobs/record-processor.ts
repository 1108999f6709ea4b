import * as z from 'zod';
import type { Engine } from '../engine/index.js';
import type { ChatMessage } from '../engine/types.js';
import { HearthError, isHearthError } from '../errors.js';
import type { InferencePlanner, PreparedRequest } from '../models/inference.js';
import type { DatasetRecord } from './datasets/dataset.js';
import type { EngineFaults } from './faults.js';
import type { OutputValidator } from './output-schema.js';
import type { BatchSpec } from './spec.js';
import type { ErrorRow } from './store.js';
import { fieldValue, MissingFieldError, renderTemplate } from './template.js';

/** What the job system uses of the engine: generation and embeddings, nothing else. */
export type JobEngine = Pick<Engine, 'generate' | 'embed' | 'markGpuUnhealthy'>;
/** What it uses of the inference planner: the one path from a model name and options to engine options. */
export type JobInference = Pick<
  InferencePlanner,
  'prepare' | 'withModelPrelude' | 'capabilities' | 'chat' | 'embedding'
>;

/** One output line of a shard file. */
export interface OutputRow {
  key: string | number;
  result: unknown;
  meta: { model: string; digest: string; prompt_tokens: number; eval_tokens: number; duration_ms: number };
}

export type RecordOutcome = { ok: OutputRow; tokens: number; promptTokens: number } | { error: ErrorRow };

/** Engine errors that belong to one record (its prompt), not to the node: they become error rows. */
const RECORD_ERRORS = new Set(['BAD_REQUEST', 'ENGINE_CAPABILITY']);

const messagesSchema = z.array(
  z.object({ role: z.enum(['system', 'user', 'assistant', 'tool']), content: z.string() }),
  { error: 'must be a list of {role, content} messages' },
);

/**
 * Turns one record into an output row (or an error row) through the engine. Bad input (a malformed
 * line, a missing field, an invalid output) is the record's problem and becomes an error row; an
 * engine or node failure is thrown, and fails the whole shard attempt, which is retried.
 */
export class RecordProcessor {
  constructor(
    private readonly spec: BatchSpec,
    private readonly prepared: PreparedRequest,
    private readonly engine: JobEngine,
    private readonly inference: JobInference,
    private readonly validate: OutputValidator | undefined,
    private readonly faults: EngineFaults,
  ) {}

  async process(record: DatasetRecord, signal: AbortSignal): Promise<RecordOutcome> {
    const fallbackKey = record.path ?? record.line ?? null;
    const fail = (key: string | number | null, message: string): RecordOutcome => ({
      error: { key, line: record.line ?? null, message },
    });
    if (record.error || !record.fields) return fail(fallbackKey, record.error ?? 'the record cannot be read');
    const fields = record.fields;
    let key: string | number;
    if (this.spec.key_field) {
      const value = fieldValue(fields, this.spec.key_field);
      if (typeof value !== 'string' && typeof value !== 'number') {
        return fail(fallbackKey, `the record has no key field "${this.spec.key_field}" (a string or number)`);
      }
      key = value;
    } else {
      key = fallbackKey ?? '';
    }
    const started = Date.now();
    try {
      switch (this.spec.operation) {
        case 'embed':
          return await this.embed(key, fields, started, signal);
        case 'chat': {
          const field = this.spec.messages_field ?? 'messages';
          const parsed = messagesSchema.safeParse(fieldValue(fields, field));
          if (!parsed.success)
            return fail(key, `field "${field}" ${parsed.error.issues[0]?.message ?? 'is not a messages list'}`);
          return await this.generate(key, parsed.data, started, signal);
        }
        default: {
          const prompt = renderTemplate(this.spec.template ?? '', fields);
          return await this.generate(key, [{ role: 'user', content: prompt }], started, signal);
        }
      }
    } catch (err) {
      if (err instanceof MissingFieldError) return fail(key, err.message);
      if (isHearthError(err) && RECORD_ERRORS.has(err.code) && !signal.aborted) return fail(key, err.message);
      throw err;
    }
  }

  private async generate(
    key: string | number,
    messages: ChatMessage[],
    started: number,
    signal: AbortSignal,
  ): Promise<RecordOutcome> {
    const p = this.prepared;
    this.faults.beforeEngineCall(this.engine);
    const result = await this.engine.generate(
      await this.inference.chat(p, {
        signal,
        messages: this.inference.withModelPrelude(p.entry, messages, this.spec.system),
        format: this.spec.schema ? { schema: this.spec.schema } : undefined,
      }),
    );
    let value: unknown = result.text;
    if (this.spec.schema) {
      try {
        value = JSON.parse(result.text);
      } catch {
        return {
          error: {
            key,
            line: null,
            message: `the output is not valid JSON (${describeOutput(result.text, result.doneReason)})`,
          },
        };
      }
      const problem = this.validate?.(value);
      if (problem) return { error: { key, line: null, message: `the output does not match the schema: ${problem}` } };
    }
    return {
      ok: {
        key,
        result: value,
        meta: this.meta(result.promptTokens, result.evalTokens, started),
      },
      tokens: result.evalTokens,
      promptTokens: result.promptTokens,
    };
  }

  private async embed(
    key: string | number,
    fields: Record<string, unknown>,
    started: number,
    signal: AbortSignal,
  ): Promise<RecordOutcome> {
    const field = this.spec.text_field ?? 'text';
    const text = fieldValue(fields, field);
    if (typeof text !== 'string')
      return { error: { key, line: null, message: `the record has no text field "${field}"` } };
    const p = this.prepared;
    this.faults.beforeEngineCall(this.engine);
    const result = await this.engine.embed(this.inference.embedding(p, { inputs: [text], signal, truncate: true }));
    return {
      ok: { key, result: result.embeddings[0] ?? [], meta: this.meta(result.promptTokens, 0, started) },
      tokens: result.promptTokens,
      promptTokens: result.promptTokens,
    };
  }

  private meta(promptTokens: number, evalTokens: number, started: number): OutputRow['meta'] {
    return {
      model: this.prepared.entry.name,
      digest: this.prepared.entry.digest,
      prompt_tokens: promptTokens,
      eval_tokens: evalTokens,
      duration_ms: Date.now() - started,
    };
  }
}

function describeOutput(text: string, doneReason: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return doneReason === 'length' ? `cut off by num_predict: ${JSON.stringify(shown)}` : JSON.stringify(shown);
}

/** A job-level failure: retrying the shard cannot help (the job fails with this message). */
export class JobFailure extends HearthError {
  constructor(message: string) {
    super('JOB_INVALID', message);
  }
}
