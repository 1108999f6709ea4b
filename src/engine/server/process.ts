import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, type ClientRequest, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { describeError, HearthError } from '../../errors.js';

/** How to start one llama-server. */
export interface ServerLaunch {
  /** the llama-server executable */
  binary: string;
  /** folder of the shared libraries it links (LD_LIBRARY_PATH, and the folder ggml loads its CPU variants from); none for a self-contained build */
  libDir?: string;
  /** the folder ggml loads its backend libraries from (the process's working folder); default libDir */
  backendDir?: string;
  /** arguments except --host (hearth adds the socket) */
  args: string[];
  /** bounded: start, model load and the first ready answer */
  readyTimeoutMs: number;
  log: Logger;
}

/**
 * util-linux's `setpriv`, present on every Linux distribution: started through
 * `setpriv --pdeathsig KILL`, a llama-server dies with the hearth process that
 * started it, so a crashed or SIGKILLed hearth leaves no server holding RAM or VRAM.
 */
const SETPRIV =
  process.platform === 'linux' ? ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) : undefined;

/** The command line of one llama-server: through setpriv where there is one (it execs, keeping the pid). */
function command(binary: string, args: string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
}

/** A failure of the process itself (it exited, or never became ready): the request fails with ENGINE_CRASHED. */
export class ServerExited extends Error {}

/**
 * One llama-server process, listening on a Unix socket in a private folder
 * (mode 0700), so nothing but this hearth process can reach it: no port, no
 * key on the command line. Its output goes to hearth's log, tagged.
 */
export class LlamaServerProcess {
  readonly pid: number;
  /** set once the process has exited (a crash, or kill()) */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exitListeners = new Set<(why: string) => void>();
  private readonly lastLines: string[] = [];
  private killing = false;
  /**
   * Kept-alive connections to this server (its Unix socket) for answers that are not streamed
   * (embeddings, reranking, tokenizing, probes): a request reuses an idle one instead of connecting
   * again. Node closes an idle one a second before the server's own Keep-Alive timeout; a request
   * whose kept connection the server closed anyway before answering is sent once more on a fresh one
   * (see post). A streamed request always opens its own: llama-server closes the connection after
   * every streamed answer, although it announces Keep-Alive (its chunked content provider returns
   * false once done, which cpp-httplib takes as a failed write), so a kept one would race that close.
   * Destroyed when the process exits.
   */
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(
    private readonly child: ChildProcess,
    private readonly socketDir: string,
    readonly socket: string,
    private readonly log: Logger,
  ) {
    this.pid = child.pid ?? -1;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => this.onLine(line));
    }
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (!this.killing) {
        log.error({ pid: this.pid, code, signal, lastOutput: this.lastLines.join('\n') }, `llama-server ${why}`);
      }
      for (const listener of [...this.exitListeners]) listener(why);
      this.agent.destroy();
      void rm(socketDir, { recursive: true, force: true });
    });
  }

  static async start(launch: ServerLaunch): Promise<LlamaServerProcess> {
    const socketDir = await mkdtemp(join(tmpdir(), 'hearth-llama-'));
    const socket = join(socketDir, 'server.sock');
    const env = { ...process.env };
    if (launch.libDir) env['LD_LIBRARY_PATH'] = [launch.libDir, env['LD_LIBRARY_PATH']].filter(Boolean).join(':');
    let child: ChildProcess;
    try {
      const [file, args] = command(launch.binary, [...launch.args, '--host', socket]);
      child = spawn(file, args, {
        // ggml loads its backends (libggml-cpu-*.so, libggml-cuda.so) from beside the executable and the working folder
        cwd: launch.backendDir ?? launch.libDir ?? socketDir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      await rm(socketDir, { recursive: true, force: true });
      throw new HearthError('ENGINE_LOAD_FAILED', [`cannot start ${launch.binary}: ${describeError(err)}`]);
    }
    const proc = new LlamaServerProcess(
      child,
      socketDir,
      socket,
      launch.log.child({ source: 'llama-server', pid: child.pid }),
    );
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    }).catch(async (err: unknown) => {
      await rm(socketDir, { recursive: true, force: true });
      throw new HearthError('ENGINE_LOAD_FAILED', [`cannot start ${launch.binary}: ${describeError(err)}`]);
    });
    try {
      await proc.waitReady(launch.readyTimeoutMs);
    } catch (err) {
      await proc.kill();
      throw err;
    }
    return proc;
  }

  /** Polls /health until it answers 200 (the model is loaded), the process exits, or the time is up. */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delay = 20;
    for (;;) {
      if (this.exited) {
        throw new HearthError('ENGINE_LOAD_FAILED', [
          `llama-server stopped while loading the model (${this.exited.signal ?? `exit ${this.exited.code}`}): ${this.lastLines.slice(-3).join(' | ')}`,
        ]);
      }
      const status = await this.get('/health').then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      if (Date.now() > deadline) {
        throw new HearthError('ENGINE_LOAD_FAILED', [
          `llama-server was not ready after ${Math.round(timeoutMs / 1000)} s: ${this.lastLines.slice(-3).join(' | ')}`,
        ]);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 250);
    }
  }

  /** Called (once) when the process exits, with why. */
  onExit(listener: (why: string) => void): () => void {
    this.exitListeners.add(listener);
    return () => {
      this.exitListeners.delete(listener);
    };
  }

  get(path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, path, method: 'GET', timeout: 5000, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * POSTs JSON; `onEvent` gets each server-sent event's data (streams), or the
   * whole body once (no stream). Rejects with ServerExited when the process
   * dies meanwhile, with a HearthError for an error answer.
   */
  post(
    path: string,
    body: unknown,
    opts: {
      signal: AbortSignal;
      onEvent: (data: string) => void;
      /** the error for an answer status the caller knows (null: the general mapping) */
      refuse?: (status: number) => HearthError | null;
    },
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        offExit();
        opts.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      let current: ClientRequest | undefined;
      const offExit = this.onExit((why) => {
        current?.destroy();
        finish(new ServerExited(`llama-server ${why}`));
      });
      const onAbort = () => {
        current?.destroy();
        finish(opts.signal.reason);
      };
      const payload = JSON.stringify(body);
      // a streamed answer ends its connection (see agent): a new one, never a kept one
      const streamed = (body as { stream?: unknown } | null)?.stream === true;
      // false once a response has begun: from then on a failure is the request's, never retried
      let answered = false;
      const send = (fresh: boolean): ClientRequest => {
        const req = request(
          {
            socketPath: this.socket,
            path,
            method: 'POST',
            agent: fresh || streamed ? false : this.agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          },
          (res) => {
            answered = true;
            res.setEncoding('utf8');
            const status = res.statusCode ?? 0;
            const sse = (res.headers['content-type'] ?? '').includes('text/event-stream');
            let buffer = '';
            res.on('data', (chunk: string) => {
              buffer += chunk;
              if (!sse || status !== 200) return;
              let at = buffer.indexOf('\n\n');
              while (at >= 0) {
                const event = buffer.slice(0, at);
                buffer = buffer.slice(at + 2);
                for (const line of event.split('\n')) {
                  if (!line.startsWith('data: ')) continue;
                  const data = line.slice(6);
                  if (data === '[DONE]') continue;
                  try {
                    opts.onEvent(data);
                  } catch (err) {
                    req.destroy();
                    finish(err);
                    return;
                  }
                }
                at = buffer.indexOf('\n\n');
              }
            });
            res.on('end', () => {
              if (status !== 200) {
                finish(opts.refuse?.(status) ?? serverError(status, buffer));
                return;
              }
              if (!sse) {
                try {
                  opts.onEvent(buffer);
                } catch (err) {
                  finish(err);
                  return;
                }
              }
              finish();
            });
            res.on('error', (err) => void this.connectionError(err).then(finish));
          },
        );
        req.on('error', (err) => {
          if (!answered && !fresh && req.reusedSocket && isStaleSocket(err) && !this.exited && !opts.signal.aborted) {
            // The kept connection was closed by the server (its keep-alive timeout, or its own limit of
            // requests per connection) before any answer came: llama-server read nothing of this
            // request, so it has not started generating. Once more, on a new connection.
            current = send(true);
            return;
          }
          void this.connectionError(err).then(finish);
        });
        req.end(payload);
        return req;
      };
      if (opts.signal.aborted) {
        onAbort();
        return;
      }
      opts.signal.addEventListener('abort', onAbort, { once: true });
      current = send(false);
    });
  }

  /**
   * A broken connection is usually the process dying: the socket closes before
   * the exit is reported, so wait a moment for it before calling it something else.
   */
  private async connectionError(err: unknown): Promise<unknown> {
    if (!this.exited) {
      let off: () => void = () => {};
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        off = this.onExit(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      off();
    }
    return this.exited ? new ServerExited(`llama-server ${describeError(err)}`) : err;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async kill(graceMs = 3000): Promise<void> {
    this.killing = true;
    if (!this.exited) {
      const gone = new Promise<void>((resolve) => this.onExit(() => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    }
    await rm(this.socketDir, { recursive: true, force: true });
  }

  private onLine(line: string): void {
    this.lastLines.push(line);
    if (this.lastLines.length > 20) this.lastLines.shift();
    if (/\b(error|failed|abort)/i.test(line)) this.log.warn(line);
    else this.log.debug(line);
  }
}

/** The errors of writing to a connection the other end has closed (a kept-alive one gone stale). */
function isStaleSocket(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** An error answer of llama-server as a HearthError: its own 4xx become BAD_REQUEST with its message. */
function serverError(status: number, body: string): HearthError {
  let message = body.trim().slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string };
    const e = parsed.error;
    message = typeof e === 'string' ? e : (e?.message ?? message);
  } catch {
    // not JSON: the text as it is
  }
  if (status >= 400 && status < 500) return new HearthError('BAD_REQUEST', `engine: ${message}`);
  return new HearthError('INTERNAL', `engine: llama-server answered ${status}: ${message}`);
}
