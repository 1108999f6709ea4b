import { Quantiser, SignBits } from './kernels.js';

/** A float32 vector as the `bytea` stored on Atlas (little-endian). */
export function encodeVector(vector: readonly number[] | Float32Array): Buffer {
  const buffer = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) buffer.writeFloatLE(vector[i]!, i * 4);
  return buffer;
}

/** The stored `bytea` back to floats (either driver's byte type). */
export function decodeVector(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >>> 2;
  // Little-endian machines (all hearth runs on) read the bytes as they are; an unaligned view is copied first
  // (through the Uint8Array constructor: a Buffer's `slice` is a view of the same memory, not a copy).
  if (LITTLE_ENDIAN) {
    return bytes.byteOffset % 4 === 0
      ? new Float32Array(bytes.buffer, bytes.byteOffset, n)
      : new Float32Array(new Uint8Array(bytes.subarray(0, n * 4)).buffer);
  }
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface VectorHit {
  id: number;
  /** cosine similarity (the stored vectors are L2-normalised), from the int8 codes: within about 1% */
  score: number;
}

/** `exact`: every vector scored; `indexed`: a 1-bit (sign) pass picks candidates, int8 scores them. */
export type SearchMode = 'exact' | 'indexed';

/**
 * The in-memory vector index of one knowledge base: every chunk's vector as int8 codes with a scale
 * (scalar quantisation: 4× smaller than float32) and as sign bits (32× smaller). An exact search scores
 * every code; an indexed search ranks all vectors by Hamming distance on the sign bits (a popcount per
 * 32 dimensions), keeps the best few hundred and scores only those. Rebuilt from the Atlas rows; see
 * cache.ts for how it is kept under node.cacheDir.
 */
export class VectorIndex {
  readonly dims: number;
  readonly count: number;
  readonly ids: Float64Array;
  readonly scales: Float32Array;
  readonly codes: Int8Array;
  readonly bits: Uint32Array;
  readonly words: number;
  private readonly signs: SignBits;

  constructor(parts: { dims: number; ids: Float64Array; scales: Float32Array; codes: Int8Array; bits: Uint32Array }) {
    this.dims = parts.dims;
    this.count = parts.ids.length;
    this.ids = parts.ids;
    this.scales = parts.scales;
    this.codes = parts.codes;
    this.words = Math.ceil(parts.dims / 32);
    this.signs = new SignBits(parts.bits, this.count, this.words);
    this.bits = this.signs.bits;
  }

  /** An empty builder for `dims`-dimensional vectors. */
  static builder(dims: number): VectorIndexBuilder {
    return new VectorIndexBuilder(dims);
  }

  /** The `k` most similar vectors to `query` (L2-normalised, `dims` long), best first. */
  search(query: ArrayLike<number>, k: number, mode: SearchMode = 'indexed'): VectorHit[] {
    if (this.count === 0 || k <= 0) return [];
    if (query.length !== this.dims) {
      throw new Error(`the query vector has ${query.length} dimensions, the index ${this.dims}`);
    }
    const q = Float32Array.from(query);
    const candidates = mode === 'exact' || this.count <= 4 * CANDIDATES ? null : this.candidates(q, k);
    return this.score(q, k, candidates);
  }

  /** The indices of the vectors nearest by sign bits: about max(CANDIDATES, 20·k) of them. */
  private candidates(q: Float32Array, k: number): Uint32Array {
    const wanted = Math.min(this.count, Math.max(CANDIDATES, 20 * k));
    const distances = this.signs.distancesTo(signBits(q, this.words));
    const histogram = new Uint32Array(this.dims + 1);
    for (let v = 0; v < this.count; v++) histogram[distances[v]!]!++;
    let cutoff = 0;
    for (let seen = 0; cutoff <= this.dims; cutoff++) {
      seen += histogram[cutoff]!;
      if (seen >= wanted) break;
    }
    const out: number[] = [];
    for (let v = 0; v < this.count; v++) if (distances[v]! <= cutoff) out.push(v);
    return Uint32Array.from(out);
  }

  private score(query: Float32Array, k: number, candidates: Uint32Array | null): VectorHit[] {
    const dims = this.dims;
    const codes = this.codes;
    const q = query;
    const n = candidates ? candidates.length : this.count;
    // Keep the best k in a small sorted array (k is small).
    const bestScore = new Float64Array(k).fill(Number.NEGATIVE_INFINITY);
    const bestIndex = new Int32Array(k).fill(-1);
    for (let c = 0; c < n; c++) {
      const v = candidates ? candidates[c]! : c;
      const base = v * dims;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let i = 0;
      for (; i + 3 < dims; i += 4) {
        s0 += codes[base + i]! * q[i]!;
        s1 += codes[base + i + 1]! * q[i + 1]!;
        s2 += codes[base + i + 2]! * q[i + 2]!;
        s3 += codes[base + i + 3]! * q[i + 3]!;
      }
      for (; i < dims; i++) s0 += codes[base + i]! * q[i]!;
      const score = (s0 + s1 + s2 + s3) * this.scales[v]!;
      if (score <= bestScore[k - 1]!) continue;
      let j = k - 1;
      while (j > 0 && bestScore[j - 1]! < score) {
        bestScore[j] = bestScore[j - 1]!;
        bestIndex[j] = bestIndex[j - 1]!;
        j--;
      }
      bestScore[j] = score;
      bestIndex[j] = v;
    }
    const hits: VectorHit[] = [];
    for (let j = 0; j < k && bestIndex[j]! >= 0; j++) hits.push({ id: this.ids[bestIndex[j]!]!, score: bestScore[j]! });
    return hits;
  }
}

/** Candidates an indexed search scores at least (measured: bench/knowledge.ts). */
const CANDIDATES = 1000;

export class VectorIndexBuilder {
  private readonly dims: number;
  private readonly words: number;
  private _count = 0;
  private ids = new Float64Array(1024);
  private scales = new Float32Array(1024);
  private codes: Int8Array;
  private bits: Uint32Array;

  private readonly quantiser: Quantiser;

  constructor(dims: number) {
    this.dims = dims;
    this.words = Math.ceil(dims / 32);
    this.quantiser = new Quantiser(dims);
    this.codes = new Int8Array(1024 * dims);
    this.bits = new Uint32Array(1024 * this.words);
  }

  get count(): number {
    return this._count;
  }

  /** Adds one vector (float32 values, `dims` long). */
  add(id: number, vector: ArrayLike<number>): void {
    const dims = this.dims;
    if (vector.length !== dims)
      throw new Error(`chunk ${id} has a ${vector.length}-dimensional vector, the base ${dims}`);
    if (this._count === this.ids.length) this.grow();
    const n = this._count++;
    // int8 codes with scale max|x| / 127, and the sign bits (kernels.ts: a tenth of the CPU of the same loop in JS).
    this.scales[n] = this.quantiser.quantise(vector);
    this.codes.set(this.quantiser.codes, n * dims);
    this.bits.set(this.quantiser.bits, n * this.words);
    this.ids[n] = id;
  }

  build(): VectorIndex {
    const n = this._count;
    return new VectorIndex({
      dims: this.dims,
      ids: this.ids.slice(0, n),
      scales: this.scales.slice(0, n),
      codes: this.codes.slice(0, n * this.dims),
      bits: this.bits.slice(0, n * this.words),
    });
  }

  private grow(): void {
    const size = this.ids.length * 2;
    const grow = <A extends Float64Array | Float32Array | Int8Array | Uint32Array>(a: A, length: number): A => {
      const next = new (a.constructor as new (n: number) => A)(length);
      next.set(a);
      return next;
    };
    this.ids = grow(this.ids, size);
    this.scales = grow(this.scales, size);
    this.codes = grow(this.codes, size * this.dims);
    this.bits = grow(this.bits, size * this.words);
  }
}

function signBits(vector: ArrayLike<number>, words: number): Uint32Array {
  const out = new Uint32Array(words);
  for (let i = 0; i < vector.length; i++) if (vector[i]! > 0) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}
