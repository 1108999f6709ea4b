// The vector index's two inner loops as a few bytes of WebAssembly. JavaScript has no popcount, and the
// bit-trick popcount it needs instead made the Hamming pass over 100k vectors take ~18 ms where
// wasm's `i32.popcnt` (one machine instruction) takes under 1 ms; quantising 100k vectors took 2.0 s of
// CPU in JavaScript and 0.21 s here, with identical codes (docs/knowledge.md, Speed). Written out by hand
// (the module is ~300 bytes; a WAT toolchain would be a dependency for that).

/**
 * The module, in WebAssembly text format:
 *
 * (module
 *   (import "env" "memory" (memory 1))
 *   ;; out[v] = Σ_w popcount(bits[v·words + w] XOR q[w]) for v < count (u16 distances)
 *   (func (export "hamming") (param $bits i32) (param $q i32) (param $count i32) (param $words i32) (param $out i32)
 *     (local $v i32) (local $w i32) (local $d i32)
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $v) (local.get $count)))
 *       (local.set $d (i32.const 0))
 *       (local.set $w (i32.const 0))
 *       (block (loop
 *         (br_if 1 (i32.ge_u (local.get $w) (local.get $words)))
 *         (local.set $d (i32.add (local.get $d)
 *           (i32.popcnt (i32.xor (i32.load (local.get $bits))
 *                                (i32.load (i32.add (local.get $q) (i32.shl (local.get $w) (i32.const 2))))))))
 *         (local.set $bits (i32.add (local.get $bits) (i32.const 4)))
 *         (local.set $w (i32.add (local.get $w) (i32.const 1)))
 *         (br 0)))
 *       (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $v) (i32.const 1))) (local.get $d))
 *       (local.set $v (i32.add (local.get $v) (i32.const 1)))
 *       (br 0))))
 *   ;; int8 codes and sign bits of one float32 vector, as VectorIndexBuilder.add defines them, in f64 as
 *   ;; JavaScript computes them: scale = max|x| / 127, code = floor(x / scale + 0.5); returns the scale
 *   (func (export "quantise") (param $src i32) (param $dims i32) (param $codes i32) (param $bits i32) (result f64)
 *     (local $i i32) (local $word i32) (local $max f64) (local $x f64) (local $inv f64) (local $scale f64)
 *     (block (loop   ;; $max = max |src[i]|
 *       (br_if 1 (i32.ge_u (local.get $i) (local.get $dims)))
 *       (local.set $max (f64.max (local.get $max) (f64.abs (f64.promote_f32 (f32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))))
 *       (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *       (br 0)))
 *     (local.set $scale (f64.div (local.get $max) (f64.const 127)))
 *     (local.set $inv (select (f64.div (f64.const 1) (local.get $scale)) (f64.const 0) (f64.ne (local.get $scale) (f64.const 0))))
 *     (local.set $i (i32.const 0))
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $i) (local.get $dims)))
 *       (local.set $x (f64.promote_f32 (f32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
 *       (i32.store8 (i32.add (local.get $codes) (local.get $i))
 *         (i32.trunc_sat_f64_s (f64.floor (f64.add (f64.mul (local.get $x) (local.get $inv)) (f64.const 0.5)))))
 *       (local.set $word (i32.or (local.get $word) (i32.shl (f64.gt (local.get $x) (f64.const 0)) (i32.and (local.get $i) (i32.const 31)))))
 *       (if (i32.eq (i32.and (local.get $i) (i32.const 31)) (i32.const 31)) (then
 *         (i32.store (i32.add (local.get $bits) (i32.shl (i32.shr_u (local.get $i) (i32.const 5)) (i32.const 2))) (local.get $word))
 *         (local.set $word (i32.const 0))))
 *       (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *       (br 0)))
 *     (if (i32.and (local.get $dims) (i32.const 31)) (then   ;; the last, partial word
 *       (i32.store (i32.add (local.get $bits) (i32.shl (i32.shr_u (local.get $dims) (i32.const 5)) (i32.const 2))) (local.get $word))))
 *     (local.get $scale)))
 */
const BYTES = (() => {
  // local indices: params 0..4 ($bits $q $count $words $out), locals 5 $v, 6 $w, 7 $d
  const [GET, SET, CONST, BLOCK, LOOP, VOID, END, BR, BR_IF] = [0x20, 0x21, 0x41, 0x02, 0x03, 0x40, 0x0b, 0x0c, 0x0d];
  const [GE_U, ADD, SHL, XOR, POPCNT, LOAD, STORE16] = [0x4f, 0x6a, 0x74, 0x73, 0x69, 0x28, 0x3b];
  // biome-ignore format: one line per step of the text above
  const body = [
    1, 3, 0x7f, // three i32 locals
    BLOCK, VOID, LOOP, VOID,
    GET, 5, GET, 2, GE_U, BR_IF, 1, // v >= count: done
    CONST, 0, SET, 7,
    CONST, 0, SET, 6,
    BLOCK, VOID, LOOP, VOID,
    GET, 6, GET, 3, GE_U, BR_IF, 1, // w >= words: next vector
    GET, 7,
    GET, 0, LOAD, 2, 0, // bits[v·words + w]
    GET, 1, GET, 6, CONST, 2, SHL, ADD, LOAD, 2, 0, // q[w]
    XOR, POPCNT, ADD, SET, 7,
    GET, 0, CONST, 4, ADD, SET, 0,
    GET, 6, CONST, 1, ADD, SET, 6,
    BR, 0, END, END,
    GET, 4, GET, 5, CONST, 1, SHL, ADD, GET, 7, STORE16, 1, 0, // out[v] = d
    GET, 5, CONST, 1, ADD, SET, 5,
    BR, 0, END, END,
    END,
  ];
  // locals: params 0..3 ($src $dims $codes $bits), 4 $i, 5 $word (i32), 6 $max, 7 $x, 8 $inv, 9 $scale (f64)
  const [F32_LOAD, PROMOTE, ABS, MAX, DIV, MUL, F64_ADD, FLOOR, F64_CONST, GT, NE, SELECT] = [
    0x2a, 0xbb, 0x99, 0xa5, 0xa3, 0xa2, 0xa0, 0x9c, 0x44, 0x64, 0x62, 0x1b,
  ];
  const [IF, EQ, AND, OR, SHR_U, STORE, STORE8, TRUNC_SAT_F64_S] = [
    0x04,
    0x46,
    0x71,
    0x72,
    0x76,
    0x36,
    0x3a,
    [0xfc, 0x02],
  ];
  const f64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    return [F64_CONST, ...b];
  };
  // biome-ignore format: one line per step of the text above
  const quantise = [
    2, 2, 0x7f, 4, 0x7c, // two i32 locals, four f64
    BLOCK, VOID, LOOP, VOID,
    GET, 4, GET, 1, GE_U, BR_IF, 1,
    GET, 6, GET, 0, GET, 4, CONST, 2, SHL, ADD, F32_LOAD, 2, 0, PROMOTE, ABS, MAX, SET, 6,
    GET, 4, CONST, 1, ADD, SET, 4,
    BR, 0, END, END,
    GET, 6, ...f64(127), DIV, SET, 9,
    ...f64(1), GET, 9, DIV, ...f64(0), GET, 9, ...f64(0), NE, SELECT, SET, 8,
    CONST, 0, SET, 4,
    BLOCK, VOID, LOOP, VOID,
    GET, 4, GET, 1, GE_U, BR_IF, 1,
    GET, 0, GET, 4, CONST, 2, SHL, ADD, F32_LOAD, 2, 0, PROMOTE, SET, 7,
    GET, 2, GET, 4, ADD,
    GET, 7, GET, 8, MUL, ...f64(0.5), F64_ADD, FLOOR, ...TRUNC_SAT_F64_S, STORE8, 0, 0,
    GET, 5, GET, 7, ...f64(0), GT, GET, 4, CONST, 31, AND, SHL, OR, SET, 5,
    GET, 4, CONST, 31, AND, CONST, 31, EQ, IF, VOID,
    GET, 3, GET, 4, CONST, 5, SHR_U, CONST, 2, SHL, ADD, GET, 5, STORE, 2, 0,
    CONST, 0, SET, 5,
    END,
    GET, 4, CONST, 1, ADD, SET, 4,
    BR, 0, END, END,
    GET, 1, CONST, 31, AND, IF, VOID,
    GET, 3, GET, 1, CONST, 5, SHR_U, CONST, 2, SHL, ADD, GET, 5, STORE, 2, 0,
    END,
    GET, 9,
    END,
  ];
  const text = (s: string) => [s.length, ...Buffer.from(s)];
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  const fn = (code: number[]) => [...leb(code.length), ...code];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    // type 0: (i32 ×5) → (); type 1: (i32 ×4) → f64
    ...section(1, [2, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7c]),
    ...section(2, [1, ...text('env'), ...text('memory'), 0x02, 0x00, 1]), // memory import, min 1 page
    ...section(3, [2, 0, 1]), // functions 0 and 1, of types 0 and 1
    ...section(7, [2, ...text('hamming'), 0x00, 0, ...text('quantise'), 0x00, 1]),
    ...section(10, [2, ...fn(body), ...fn(quantise)]),
  ]);
})();

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

// Node has the WebAssembly global; its types live in TypeScript's DOM library, which the server does not load.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
};

const MODULE = new WebAssembly.Module(BYTES);
const PAGE = 65536;

/**
 * The sign bits of `count` vectors (`words` 32-bit words each) in WebAssembly memory, and the Hamming
 * distance of all of them to a query's bits in one call.
 */
export class SignBits {
  /** the bits, a view of the module's memory (what the index cache writes to its file) */
  readonly bits: Uint32Array;
  private readonly query: Uint32Array;
  private readonly distances: Uint16Array;
  private readonly run: (bits: number, q: number, count: number, words: number, out: number) => void;
  private readonly count: number;
  private readonly words: number;

  constructor(bits: Uint32Array, count: number, words: number) {
    const bitsBytes = count * words * 4;
    const queryBytes = words * 4;
    const size = bitsBytes + queryBytes + count * 2;
    const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(size / PAGE)) });
    const instance = new WebAssembly.Instance(MODULE, { env: { memory } });
    this.run = instance.exports['hamming'] as SignBits['run'];
    this.bits = new Uint32Array(memory.buffer, 0, count * words);
    this.bits.set(bits.subarray(0, count * words));
    this.query = new Uint32Array(memory.buffer, bitsBytes, words);
    this.distances = new Uint16Array(memory.buffer, bitsBytes + queryBytes, count);
    this.count = count;
    this.words = words;
  }

  /** Every vector's Hamming distance to `query` (the result is overwritten by the next call). */
  distancesTo(query: Uint32Array): Uint16Array {
    this.query.set(query);
    this.run(0, this.bits.byteLength, this.count, this.words, this.query.byteOffset + this.query.byteLength);
    return this.distances;
  }
}

/**
 * Quantises one vector at a time into int8 codes with a scale and sign bits (what VectorIndexBuilder
 * stores), in WebAssembly memory of its own: the caller copies the codes and bits out.
 */
export class Quantiser {
  private readonly input: Float32Array;
  /** the last vector's codes and bits (overwritten by the next call) */
  readonly codes: Int8Array;
  readonly bits: Uint32Array;
  private readonly run: (src: number, dims: number, codes: number, bits: number) => number;
  private readonly dims: number;

  constructor(dims: number) {
    const words = Math.ceil(dims / 32);
    const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil((dims * 5 + words * 4 + 4) / PAGE)) });
    const instance = new WebAssembly.Instance(MODULE, { env: { memory } });
    this.run = instance.exports['quantise'] as Quantiser['run'];
    this.dims = dims;
    this.input = new Float32Array(memory.buffer, 0, dims);
    this.codes = new Int8Array(memory.buffer, dims * 4, dims);
    this.bits = new Uint32Array(memory.buffer, (dims * 5 + 3) & ~3, words);
  }

  /** Quantises `vector` (`dims` long) into `codes` and `bits`; returns its scale. */
  quantise(vector: ArrayLike<number>): number {
    this.input.set(vector);
    return this.run(0, this.dims, this.codes.byteOffset, this.bits.byteOffset);
  }
}
