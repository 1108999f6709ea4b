// The vector index's inner loop as a few bytes of WebAssembly: JavaScript has no popcount, and the
// bit-trick popcount it needs instead made the Hamming pass over 100k vectors take ~18 ms where
// wasm's `i32.popcnt` (one machine instruction) takes under 1 ms (bench/knowledge.ts, docs/knowledge.md).
// Written out by hand (the module is ~100 bytes; a WAT toolchain would be a dependency for that).

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
  const text = (s: string) => [s.length, ...Buffer.from(s)];
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [1, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]), // type 0: (i32 ×5) → ()
    ...section(2, [1, ...text('env'), ...text('memory'), 0x02, 0x00, 1]), // memory import, min 1 page
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(7, [1, ...text('hamming'), 0x00, 0]), // export function 0
    ...section(10, [1, ...leb(body.length), ...body]),
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
