import type { Llama, LlamaGrammar } from 'node-llama-cpp';
import { describeError, HearthError } from '../errors.js';
import type { OutputFormat } from './types.js';

/** Grammars are compiled once per format and shared (a grammar is immutable; each generation keeps its own state). */
const MAX_CACHED = 64;

/** Output grammars for `format`: `json` = any JSON object, a schema = JSON that validates against it. */
export class OutputGrammars {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  get(format: OutputFormat): Promise<LlamaGrammar> {
    const key = format === 'json' ? 'json' : JSON.stringify(format.schema);
    const cached = this.cache.get(key);
    if (cached) {
      // least recently used goes first
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const made = format === 'json' ? this.llama.getGrammarFor('json') : this.schemaGrammar(format.schema);
    this.cache.set(key, made);
    made.catch(() => this.cache.delete(key));
    while (this.cache.size > MAX_CACHED) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    return made;
  }

  private async schemaGrammar(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new HearthError('BAD_REQUEST', 'format must be "json" or a JSON schema object', {
        details: { param: 'format' },
      });
    }
    try {
      // the parameter's type is inferred from a literal schema; a client's schema is only known at run time
      return await this.llama.createGrammarForJsonSchema(schema as never);
    } catch (err) {
      throw new HearthError(
        'BAD_REQUEST',
        `format: this JSON schema cannot be turned into a grammar (${describeError(err)}): use the supported subset (type, properties, required, items, enum, const, anyOf/oneOf, $ref)`,
        { details: { param: 'format' }, cause: err },
      );
    }
  }
}
