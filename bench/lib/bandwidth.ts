// Memory bandwidth by a copy test: the roofline decode is compared to. Decoding one token reads
// every weight once, so tokens/s × bytes per token cannot exceed what memory delivers.
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

/** Bytes moved per second copying a buffer far larger than the caches (reads + writes counted), best of `repeats`. */
function copyRate(bytes: number, repeats: number): number {
  const src = Buffer.alloc(bytes, 1);
  const dst = Buffer.alloc(bytes);
  src.copy(dst); // touch every page first
  let best = 0;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    src.copy(dst);
    const s = (performance.now() - t) / 1000;
    best = Math.max(best, (2 * bytes) / s);
  }
  return best;
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const src = Buffer.alloc(workerData.bytes, 1), dst = Buffer.alloc(workerData.bytes);
src.copy(dst);
parentPort.once('message', () => {
  const t = performance.now();
  for (let i = 0; i < workerData.repeats; i++) src.copy(dst);
  parentPort.postMessage((2 * workerData.bytes * workerData.repeats) / ((performance.now() - t) / 1000));
});`;

/** Copy bandwidth with `threads` threads copying at once (their rates summed). */
async function parallelCopyRate(threads: number, bytes: number, repeats: number): Promise<number> {
  const workers = Array.from(
    { length: threads },
    () => new Worker(WORKER, { eval: true, workerData: { bytes, repeats } }),
  );
  try {
    await new Promise((r) => setTimeout(r, 300 + bytes / 2e7)); // let every worker allocate and touch its buffers
    const rates = await Promise.all(
      workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
            w.postMessage('go');
          }),
      ),
    );
    return rates.reduce((a, b) => a + b, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export interface Bandwidth {
  /** bytes/s, one thread (what one ggml thread can stream) */
  singleThread: number;
  /** bytes/s, one thread per logical CPU */
  allThreads: number;
  threads: number;
}

export async function measureBandwidth(threads: number, bytes = 256 * 2 ** 20): Promise<Bandwidth> {
  return {
    singleThread: copyRate(bytes, 5),
    allThreads: await parallelCopyRate(threads, bytes, 5),
    threads,
  };
}
