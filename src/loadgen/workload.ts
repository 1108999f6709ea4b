import { readFile } from 'node:fs/promises';
import { HearthError } from '../errors.js';

/** A chat message as the Ollama and OpenAI chat APIs take it. */
export interface BenchMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One request's input: raw text (completion mode) or messages (chat mode), and how many tokens to generate. */
export interface BenchPrompt {
  text: string;
  /** chat mode: the conversation (default: `text` as one user message) */
  messages?: BenchMessage[];
  /** tokens to generate (num_predict / max_tokens) */
  maxTokens: number;
}

/** What the report says about the prompts. */
export type WorkloadDescription =
  | { kind: 'fixed'; promptTokens: number; outputTokens: number }
  | { kind: 'dataset'; path: string; entries: number; outputTokens: number };

export interface Workload {
  readonly description: WorkloadDescription;
  /** The prompt of request number `i` (0-based, counted over the whole run). */
  prompt(i: number): BenchPrompt;
  /** The prompt of warm-up request number `i` (not measured). */
  warmupPrompt(i: number): BenchPrompt;
  /**
   * Tells the workload how many tokens the server counted for a prompt it made (from a warm-up
   * request), so later synthetic prompts come out at the asked length on any tokenizer and template.
   */
  calibrate(prompt: BenchPrompt, promptTokens: number): void;
}

// Common English words: every tokenizer has most of them as single tokens (with the leading space).
const WORDS = (
  'the of and to in is it you that he was for on are as with his they at be this have from or one had by word but ' +
  'not what all were we when your can said there use an each which she do how their if will up other about out many ' +
  'then them these so some her would make like him into time has look two more write go see number no way could ' +
  'people my than first water been call who oil its now find long down day did get come made may part over new sound ' +
  'take only little work know place year live me back give most very after thing our just name good sentence man ' +
  'think say great where help through much before line right too mean old any same tell boy follow came want show ' +
  'also around form three small set put end does another well large must big even such because turn here why ask ' +
  'went men read need land different home us move try kind hand picture again change off play spell air away animal ' +
  'house point page letter mother answer found study still learn should world high every near add food between own ' +
  'below country plant last school father keep tree never start city earth eye light thought head under story saw'
).split(' ');

/** A small seeded PRNG (mulberry32): the same run makes the same prompts. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Synthetic prompts of about `promptTokens` tokens: random common words, different for every
 * request from the first word on, so a server's prompt cache cannot serve one request from another's.
 * The word count starts at one word per token and follows `calibrate` (a straight line through the
 * server's counts, which also absorbs a chat template's fixed overhead).
 */
export class FixedWorkload implements Workload {
  readonly description: WorkloadDescription;
  private readonly points = new Map<number, number>();
  private tokensPerWord = 1;
  private overheadTokens = 0;

  constructor(
    private readonly promptTokens: number,
    private readonly outputTokens: number,
    private readonly seed = 1,
  ) {
    if (!Number.isInteger(promptTokens) || promptTokens < 1) {
      throw new HearthError('BENCH_OPTIONS_INVALID', [
        `prompt tokens must be a whole number >= 1, got ${promptTokens}`,
      ]);
    }
    checkOutputTokens(outputTokens);
    this.description = { kind: 'fixed', promptTokens, outputTokens };
  }

  prompt(i: number): BenchPrompt {
    return { text: this.words(i, this.wordCount()), maxTokens: this.outputTokens };
  }

  calibrate(prompt: BenchPrompt, promptTokens: number): void {
    const words = prompt.text.split(' ').length;
    if (!(promptTokens > 0) || words < 1) return;
    this.points.set(words, promptTokens);
    const xs = [...this.points.keys()];
    if (xs.length === 1) {
      this.tokensPerWord = promptTokens / words;
      this.overheadTokens = 0;
      return;
    }
    // least squares through the points seen so far
    const ys = xs.map((x) => this.points.get(x)!);
    const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
    const my = ys.reduce((s, y) => s + y, 0) / ys.length;
    const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    const slope = xs.reduce((s, x, k) => s + (x - mx) * (ys[k]! - my), 0) / sxx;
    if (!(slope > 0)) return;
    this.tokensPerWord = slope;
    this.overheadTokens = Math.max(0, my - slope * mx);
  }

  /** Warm-up requests alternate between the full and half length, so calibration gets two points. */
  warmupPrompt(i: number): BenchPrompt {
    const full = this.wordCount();
    return {
      text: this.words(-1 - i, i % 2 === 1 ? Math.max(1, Math.round(full / 2)) : full),
      maxTokens: this.outputTokens,
    };
  }

  private wordCount(): number {
    return Math.max(1, Math.round((this.promptTokens - this.overheadTokens) / this.tokensPerWord));
  }

  private words(i: number, count: number): string {
    const next = random(this.seed * 1_000_003 + i + 0x9e3779b9);
    const out: string[] = [];
    for (let k = 0; k < count; k++) out.push(WORDS[Math.floor(next() * WORDS.length)]!);
    return out.join(' ');
  }
}

/**
 * Prompts from a JSONL file, one request a line, used in order and cycled: `{"prompt": "..."}` or
 * `{"messages": [{"role": "user", "content": "..."}]}`, with an optional `max_tokens` (or
 * `output_tokens`) overriding the run's output length.
 */
export class DatasetWorkload implements Workload {
  readonly description: WorkloadDescription;

  private constructor(
    path: string,
    private readonly entries: BenchPrompt[],
    outputTokens: number,
  ) {
    this.description = { kind: 'dataset', path, entries: entries.length, outputTokens };
  }

  static async open(
    path: string,
    opts: { mode: 'chat' | 'completion'; outputTokens: number },
  ): Promise<DatasetWorkload> {
    checkOutputTokens(opts.outputTokens);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new HearthError(
        'BENCH_OPTIONS_INVALID',
        [`cannot read the dataset ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}): check the path`],
        { cause: err },
      );
    }
    const entries: BenchPrompt[] = [];
    const lines = text.split('\n');
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n]!.trim();
      if (line === '') continue;
      entries.push(parseEntry(line, `${path}:${n + 1}`, opts));
    }
    if (entries.length === 0) {
      throw new HearthError('BENCH_OPTIONS_INVALID', [
        `the dataset ${path} has no entries: write one JSON object a line`,
      ]);
    }
    return new DatasetWorkload(path, entries, opts.outputTokens);
  }

  prompt(i: number): BenchPrompt {
    return this.entries[((i % this.entries.length) + this.entries.length) % this.entries.length]!;
  }

  warmupPrompt(i: number): BenchPrompt {
    return this.prompt(i);
  }

  calibrate(): void {}
}

function parseEntry(
  line: string,
  where: string,
  opts: { mode: 'chat' | 'completion'; outputTokens: number },
): BenchPrompt {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    throw new HearthError('BENCH_OPTIONS_INVALID', [`${where} is not JSON (${(err as Error).message})`]);
  }
  const bad = (what: string) =>
    new HearthError('BENCH_OPTIONS_INVALID', [
      `${where}: ${what}; each line must be {"prompt": "..."} or {"messages": [{"role": "user", "content": "..."}]}, with an optional "max_tokens"`,
    ]);
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw bad('not a JSON object');
  const entry = obj as Record<string, unknown>;
  const max = entry['max_tokens'] ?? entry['output_tokens'];
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1)) {
    throw bad('max_tokens must be a whole number >= 1');
  }
  const maxTokens = (max as number | undefined) ?? opts.outputTokens;
  if (typeof entry['prompt'] === 'string') return { text: entry['prompt'], maxTokens };
  if (Array.isArray(entry['messages'])) {
    if (opts.mode === 'completion') throw bad('has "messages", which need --mode chat');
    const messages: BenchMessage[] = [];
    for (const m of entry['messages'] as unknown[]) {
      const msg = m as Record<string, unknown> | null;
      const role = msg?.['role'];
      if (
        !msg ||
        typeof msg['content'] !== 'string' ||
        (role !== 'system' && role !== 'user' && role !== 'assistant')
      ) {
        throw bad('a message needs a role (system, user or assistant) and a string content');
      }
      messages.push({ role, content: msg['content'] });
    }
    if (messages.length === 0) throw bad('"messages" is empty');
    return { text: messages.map((m) => m.content).join('\n'), messages, maxTokens };
  }
  throw bad('no "prompt" or "messages"');
}

function checkOutputTokens(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new HearthError('BENCH_OPTIONS_INVALID', [`output tokens must be a whole number >= 1, got ${n}`]);
  }
}
