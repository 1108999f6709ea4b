import type { TextShape } from './extract.js';

/** A piece of a document that retrieval finds and the prompt quotes. */
export interface Chunk {
  text: string;
  /** the headings above it, outermost first, joined with " > " ('' when none) */
  heading: string;
  /** its size in tokens, as `countTokens` measured it */
  tokens: number;
}

export interface ChunkOptions {
  /** most tokens in a chunk */
  size: number;
  /** tokens of the previous chunk repeated at the start of the next one, within a section */
  overlap: number;
  /** the token counter; default `estimateTokens` */
  countTokens?: (text: string) => number;
}

/**
 * A token count close to what BPE tokenizers of embedding models give for English text (about 1.3
 * tokens a word, at least one token per 4 characters). The engine reports the model's real count when
 * a chunk is embedded, and that is what is stored; this only sizes the chunks.
 */
export function estimateTokens(text: string): number {
  const words = text.match(/\S+/g)?.length ?? 0;
  return Math.ceil(Math.max(words * 1.3, text.length / 4));
}

interface Block {
  heading: string;
  text: string;
}

const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/;
const FENCE = /^\s*(```|~~~)/;

/** Splits text into blocks (paragraphs, fenced code, list runs) with the heading path above each. */
export function blocksOf(text: string, shape: TextShape): Block[] {
  const blocks: Block[] = [];
  const headings: string[] = [];
  let current: string[] = [];
  let fence: string | null = null;
  const flush = () => {
    const body = current.join('\n').trim();
    if (body) blocks.push({ heading: headings.filter(Boolean).join(' > '), text: body });
    current = [];
  };
  for (const line of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (shape === 'markdown') {
      const f = FENCE.exec(line);
      if (f) {
        if (fence === null) {
          flush();
          fence = f[1]!;
        } else if (f[1] === fence) {
          current.push(line);
          fence = null;
          flush();
          continue;
        }
      }
      if (fence === null) {
        const h = HEADING.exec(line);
        if (h) {
          flush();
          const level = h[1]!.length;
          headings.length = level;
          headings[level - 1] = h[2]!;
          continue;
        }
      }
    }
    if (fence === null && line.trim() === '') flush();
    else current.push(line);
  }
  flush();
  return blocks;
}

/**
 * Cuts a document into chunks by its structure: a chunk never spans two sections (headings), is
 * packed with whole paragraphs up to `size` tokens, and starts with the last `overlap` tokens of the
 * chunk before it in the same section. A paragraph longer than `size` is cut at sentences, then words.
 */
export function chunkText(text: string, shape: TextShape, opts: ChunkOptions): Chunk[] {
  const count = opts.countTokens ?? estimateTokens;
  const size = Math.max(8, opts.size);
  const overlap = Math.min(Math.max(0, opts.overlap), Math.floor(size / 2));
  const chunks: Chunk[] = [];
  let heading: string | null = null;
  let parts: string[] = [];
  let tokens = 0;
  const emit = () => {
    const body = parts.join('\n\n').trim();
    if (body) chunks.push({ text: body, heading: heading ?? '', tokens: count(body) });
    parts = [];
    tokens = 0;
  };
  const startAfter = (previous: string) => {
    const tail = overlap > 0 ? tailOf(previous, overlap, count) : '';
    parts = tail ? [tail] : [];
    tokens = tail ? count(tail) : 0;
  };
  for (const block of blocksOf(text, shape)) {
    if (block.heading !== heading) {
      emit();
      heading = block.heading;
    }
    for (const piece of piecesOf(block.text, size - overlap, count)) {
      const n = count(piece);
      if (tokens > 0 && tokens + n > size) {
        const previous = parts.join('\n\n');
        emit();
        startAfter(previous);
      }
      parts.push(piece);
      tokens += n;
    }
  }
  emit();
  return chunks;
}

/** Cuts a paragraph into pieces of at most `limit` tokens: at sentences, then at words. */
function piecesOf(text: string, limit: number, count: (t: string) => number): string[] {
  if (count(text) <= limit) return [text];
  const pieces: string[] = [];
  let current = '';
  const push = (unit: string) => {
    const joined = current ? `${current} ${unit}` : unit;
    if (current && count(joined) > limit) {
      pieces.push(current);
      current = unit;
    } else current = joined;
  };
  for (const sentence of text.split(/(?<=[.!?;:])\s+/)) {
    if (count(sentence) <= limit) push(sentence);
    else for (const word of sentence.split(/\s+/)) push(word);
  }
  if (current) pieces.push(current);
  return pieces;
}

/** The last words of `text` that make up about `tokens` tokens. */
function tailOf(text: string, tokens: number, count: (t: string) => number): string {
  const words = text.split(/\s+/).filter(Boolean);
  let start = words.length;
  while (start > 0 && count(words.slice(start - 1).join(' ')) <= tokens) start--;
  return words.slice(start).join(' ');
}
