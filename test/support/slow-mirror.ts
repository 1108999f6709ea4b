// A file server on loopback that sends one file slowly (a mirror on a slow link), honouring Range
// requests, so a pull can be watched, reloaded mid-way and cancelled.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlowMirror {
  /** the file's URL */
  url: string;
  /** how many 100 ms ticks a whole download takes from now on */
  setTicks(ticks: number): void;
  close(): Promise<void>;
}

export async function startSlowMirror(path: string, data: Buffer, ticks: number): Promise<SlowMirror> {
  let perTick = Math.ceil(data.length / ticks);
  const server = createServer((req, res) => {
    if (req.url !== path) return void res.writeHead(404).end('not found');
    const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    res.writeHead(start ? 206 : 200, { 'content-length': data.length - start });
    let at = start;
    const tick = setInterval(() => {
      const end = Math.min(data.length, at + perTick);
      res.write(data.subarray(at, end));
      at = end;
      if (at >= data.length) {
        clearInterval(tick);
        res.end();
      }
    }, 100);
    res.on('close', () => clearInterval(tick));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    setTicks: (n) => {
      perTick = Math.ceil(data.length / n);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
