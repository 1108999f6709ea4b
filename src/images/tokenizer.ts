import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../errors.js';

/**
 * CLIP's byte-level BPE tokenizer (transformers' CLIPTokenizer), read from the `vocab.json` and
 * `merges.txt` that a diffusers layout's `tokenizer/` folder holds. Written here rather than taken
 * from a package: the standalone `@huggingface/tokenizers` reads `tokenizer.json`, which diffusers
 * exports do not ship, and `@huggingface/transformers` would bring a second ONNX Runtime.
 */

/** GPT-2/CLIP's reversible byte → printable character table. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const table: string[] = new Array(256);
  bs.forEach((b, i) => {
    table[b] = String.fromCodePoint(cs[i]!);
  });
  return table;
}

const BYTE_CHARS = bytesToUnicode();
const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

export interface TokenizerConfig {
  maxLength: number;
  bos: string;
  eos: string;
  pad: string;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();

  constructor(
    readonly vocab: Readonly<Record<string, number>>,
    merges: readonly string[],
    readonly config: TokenizerConfig,
  ) {
    merges.forEach((m, i) => {
      this.ranks.set(m, i);
    });
    const id = (token: string, role: string) => {
      const v = vocab[token];
      if (v === undefined)
        throw new HearthError('IMAGE_MODEL_INVALID', `the tokenizer's ${role} token ${token} is not in vocab.json`);
      return v;
    };
    this.bosId = id(config.bos, 'bos');
    this.eosId = id(config.eos, 'eos');
    this.padId = id(config.pad, 'pad');
  }

  /** Reads `vocab.json`, `merges.txt` and `tokenizer_config.json` / `special_tokens_map.json` from a folder. */
  static async load(dir: string): Promise<ClipTokenizer> {
    const readJson = async (name: string, required: boolean): Promise<Record<string, unknown>> => {
      try {
        return JSON.parse(await readFile(join(dir, name), 'utf8')) as Record<string, unknown>;
      } catch (err) {
        if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
        throw new HearthError('IMAGE_MODEL_INVALID', `tokenizer ${name} cannot be read: ${(err as Error).message}`);
      }
    };
    const vocab = (await readJson('vocab.json', true)) as Record<string, number>;
    let mergesText: string;
    try {
      mergesText = await readFile(join(dir, 'merges.txt'), 'utf8');
    } catch (err) {
      throw new HearthError('IMAGE_MODEL_INVALID', `tokenizer merges.txt cannot be read: ${(err as Error).message}`);
    }
    const merges = mergesText
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#version'));
    const config = {
      ...(await readJson('special_tokens_map.json', false)),
      ...(await readJson('tokenizer_config.json', false)),
    };
    const token = (v: unknown, fallback: string): string =>
      typeof v === 'string'
        ? v
        : v && typeof (v as { content?: unknown }).content === 'string'
          ? (v as { content: string }).content
          : fallback;
    const max = Number(config['model_max_length']);
    return new ClipTokenizer(vocab, merges, {
      // CLIP's position table has 77 entries; configs sometimes say a huge number meaning "unset".
      maxLength: Number.isInteger(max) && max > 2 && max <= 77 ? max : 77,
      bos: token(config['bos_token'], '<|startoftext|>'),
      eos: token(config['eos_token'], '<|endoftext|>'),
      pad: token(config['pad_token'], token(config['eos_token'], '<|endoftext|>')),
    });
  }

  /** The BPE pieces of one pre-token (already byte-mapped). */
  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = [word[best]!, word[best + 1]!];
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
    this.cache.set(token, word);
    return word;
  }

  /** Token ids of a text, without bos/eos (CLIP lowercases and collapses whitespace first). */
  encode(text: string): number[] {
    const clean = text.replace(/\s+/g, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of clean.matchAll(PATTERN)) {
      const piece = m[0];
      if (piece === '<|startoftext|>' || piece === '<|endoftext|>') {
        ids.push(this.vocab[piece]!);
        continue;
      }
      const mapped = [...Buffer.from(piece, 'utf8')].map((b) => BYTE_CHARS[b]).join('');
      for (const bpe of this.bpe(mapped)) {
        const id = this.vocab[bpe];
        if (id !== undefined) ids.push(id);
        else ids.push(...[...bpe.replace(/<\/w>$/, '')].map((c) => this.vocab[c] ?? this.eosId));
      }
    }
    return ids;
  }

  /**
   * Weighted pieces → one window of `maxLength` ids: bos, the tokens (truncated to fit), eos, then
   * pad ids. Weights follow their tokens; bos/eos/pad weigh 1, as in ComfyUI.
   */
  window(pieces: ReadonlyArray<{ text: string; weight: number }>): { ids: number[]; weights: number[] } {
    const ids = [this.bosId];
    const weights = [1];
    const room = this.config.maxLength - 2;
    for (const p of pieces) {
      for (const id of this.encode(p.text)) {
        if (ids.length - 1 >= room) break;
        ids.push(id);
        weights.push(p.weight);
      }
    }
    ids.push(this.eosId);
    weights.push(1);
    while (ids.length < this.config.maxLength) {
      ids.push(this.padId);
      weights.push(1);
    }
    return { ids, weights };
  }
}

/**
 * ComfyUI's prompt weighting: `(text)` multiplies by 1.1, `(text:1.3)` sets 1.3, nesting multiplies,
 * `\(` and `\)` are literal brackets. Returns pieces with their weights, in order.
 */
export function parsePromptWeights(prompt: string): Array<{ text: string; weight: number }> {
  const escaped = prompt.replaceAll('\\)', '\0\u0001').replaceAll('\\(', '\0\u0002');
  const restore = (s: string) => s.replaceAll('\0\u0001', ')').replaceAll('\0\u0002', '(');
  return tokenWeights(escaped, 1).map((p) => ({ text: restore(p.text), weight: p.weight }));
}

function parseParentheses(s: string): string[] {
  const result: string[] = [];
  let current = '';
  let depth = 0;
  for (const ch of s) {
    if (ch === '(') {
      if (depth === 0) {
        if (current) result.push(current);
        current = '(';
      } else current += ch;
      depth++;
    } else if (ch === ')') {
      depth--;
      if (depth === 0) {
        result.push(`${current})`);
        current = '';
      } else current += ch;
    } else current += ch;
  }
  if (current) result.push(current);
  return result;
}

function tokenWeights(s: string, weight: number): Array<{ text: string; weight: number }> {
  const out: Array<{ text: string; weight: number }> = [];
  for (let x of parseParentheses(s)) {
    let w = weight;
    if (x.length >= 2 && x.startsWith('(') && x.endsWith(')')) {
      x = x.slice(1, -1);
      const colon = x.lastIndexOf(':');
      w *= 1.1;
      if (colon > 0) {
        const value = x.slice(colon + 1).trim();
        if (value !== '' && Number.isFinite(Number(value))) {
          w = Number(value);
          x = x.slice(0, colon);
        }
      }
      out.push(...tokenWeights(x, w));
    } else out.push({ text: x, weight });
  }
  return out;
}
