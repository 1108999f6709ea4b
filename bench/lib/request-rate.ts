// Requests per second on a cheap endpoint (GET /api/tags): the cost of hearth's request path alone.
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export async function requestRate(
  url: string,
  opts: { connections: number; durationMs: number },
): Promise<{ rps: number; failures: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const target = new URL(url);
  let done = 0;
  let failures = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, agent }, (res) => {
        if (res.statusCode !== 200) failures++;
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end();
    });
  // warm-up: open the connections, let the JIT settle
  const warmEnd = performance.now() + 500;
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (performance.now() < warmEnd) await one();
    }),
  );
  const start = performance.now();
  const end = start + opts.durationMs;
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (performance.now() < end) {
        await one();
        done++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { rps: done / seconds, failures };
}
