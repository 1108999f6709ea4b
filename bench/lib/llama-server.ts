// llama.cpp's llama-server run alone (the baseline hearth's server engine is measured against), and
// the command line hearth itself gave it, read from the running process.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RawLlamaServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** The argv (after the executable) of a llama-server started by the process `parentPid`, or null. */
export async function childLlamaServerArgs(parentPid: number): Promise<string[] | null> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== parentPid) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (argv[0]?.endsWith('llama-server')) return argv.slice(1);
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `binary` with `args` (hearth's own, its `--host` socket replaced by a loopback port), with
 * the shared libraries of `libDir`, and waits for /health (bounded).
 */
export async function startRawLlamaServer(binary: string, args: string[], libDir?: string): Promise<RawLlamaServer> {
  const port = await freePort();
  const own = [...args];
  const host = own.indexOf('--host');
  if (host >= 0) own.splice(host, 2);
  const env = { ...process.env };
  if (libDir) env['LD_LIBRARY_PATH'] = libDir;
  const child: ChildProcess = spawn(binary, [...own, '--host', '127.0.0.1', '--port', String(port)], {
    env,
    ...(libDir ? { cwd: libDir } : {}),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr!.on('data', (c: Buffer) => {
    tail = (tail + c.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`llama-server did not become healthy:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** What one streamed generation looked like from the client. */
export interface StreamRun {
  /** request sent → first chunk with text */
  ttftMs: number;
  /** tokens generated (the server's count) */
  tokens: number;
  /** (tokens - 1) / (last chunk - first text chunk): the client's decode rate */
  clientDecodeTokS: number;
  /** the server's own decode figure (llama-server timings, hearth's eval_duration) */
  serverDecodeTokS: number;
  /** request sent → stream end */
  wallMs: number;
}

/** Ollama's default sampler, in each API's names: the body hearth's server engine sends (src/engine/server/requests.ts). */
export function samplingFor(api: 'ollama' | 'llama', tokens: number, seed: number): Record<string, unknown> {
  if (api === 'ollama') {
    return {
      temperature: 0.8,
      top_k: 40,
      top_p: 0.9,
      repeat_penalty: 1.1,
      repeat_last_n: 64,
      seed,
      num_predict: tokens,
    };
  }
  return {
    temperature: 0.8,
    top_k: 40,
    top_p: 0.9,
    min_p: 0,
    typical_p: 1,
    repeat_penalty: 1.1,
    repeat_last_n: 64,
    presence_penalty: 0,
    frequency_penalty: 0,
    stop: [],
    seed,
    n_predict: tokens,
    cache_prompt: true,
  };
}

/**
 * One streamed raw completion: hearth's `/api/generate` (raw, NDJSON) or llama-server's
 * `/completion` (server-sent events), the same prompt, sampler and length.
 */
export async function streamCompletion(
  api: 'ollama' | 'llama',
  url: string,
  model: string,
  prompt: string,
  tokens: number,
  seed: number,
): Promise<StreamRun> {
  const body =
    api === 'ollama'
      ? { model, prompt, raw: true, stream: true, options: samplingFor('ollama', tokens, seed) }
      : { prompt, stream: true, ...samplingFor('llama', tokens, seed) };
  const started = performance.now();
  const res = await fetch(`${url}${api === 'ollama' ? '/api/generate' : '/completion'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok || !res.body) throw new Error(`${api} answered ${res.status}: ${await res.text()}`);
  let firstAt = 0;
  let lastAt = 0;
  let count = 0;
  let serverRate = Number.NaN;
  let buffered = '';
  const decoder = new TextDecoder();
  const separator = api === 'ollama' ? '\n' : '\n\n';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const now = performance.now();
    buffered += decoder.decode(chunk, { stream: true });
    let at = buffered.indexOf(separator);
    while (at >= 0) {
      let line = buffered.slice(0, at).trim();
      buffered = buffered.slice(at + separator.length);
      at = buffered.indexOf(separator);
      if (line === '') continue;
      if (api === 'llama') {
        if (!line.startsWith('data: ')) continue;
        line = line.slice(6);
      }
      const obj = JSON.parse(line) as Record<string, unknown>;
      if (obj['error']) throw new Error(JSON.stringify(obj['error']));
      const text = api === 'ollama' ? obj['response'] : obj['content'];
      if (typeof text === 'string' && text !== '' && firstAt === 0) firstAt = now;
      const done = api === 'ollama' ? obj['done'] === true : obj['stop'] === true;
      if (done) {
        lastAt = now;
        if (api === 'ollama') {
          count = Number(obj['eval_count'] ?? 0);
          serverRate = (count - 1) / (Number(obj['eval_duration'] ?? 0) / 1e9);
        } else {
          const t = obj['timings'] as { predicted_n: number; predicted_ms: number };
          count = t.predicted_n;
          serverRate = (count - 1) / (t.predicted_ms / 1000);
        }
      }
    }
  }
  if (lastAt === 0) throw new Error(`${api}: the stream ended without its final chunk`);
  return {
    ttftMs: firstAt > 0 ? firstAt - started : Number.NaN,
    tokens: count,
    clientDecodeTokS:
      count > 1 && firstAt > 0 && lastAt > firstAt ? (count - 1) / ((lastAt - firstAt) / 1000) : Number.NaN,
    serverDecodeTokS: serverRate,
    wallMs: lastAt - started,
  };
}

/**
 * Time to first token as a client sees it: the wall time of a whole (not streamed) one-token
 * completion, so nothing waits on a held-back partial UTF-8 character.
 */
export async function firstTokenMs(
  api: 'ollama' | 'llama',
  url: string,
  model: string,
  prompt: string,
  seed: number,
): Promise<number> {
  const body =
    api === 'ollama'
      ? { model, prompt, raw: true, stream: false, options: samplingFor('ollama', 1, seed) }
      : { prompt, stream: false, ...samplingFor('llama', 1, seed) };
  const started = performance.now();
  const res = await fetch(`${url}${api === 'ollama' ? '/api/generate' : '/completion'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${api} answered ${res.status}: ${text}`);
  return performance.now() - started;
}
