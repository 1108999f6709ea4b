// `hearth bench` against a real hearth (in-process, tiny generated model): a smoke run with
// no timing assertions, the report's shape, the CLI's table / JSON / comparison, and failures.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchReport, FixedWorkload, runBench } from '../src/loadgen/index.js';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  REPO_ROOT,
  startHearthInProcess,
} from './support/hearth.js';
import { makeTestModels } from './support/models.js';

const run = promisify(execFile);

let dirs: HearthDirs;
let hearth: InProcessHearth;

async function uploadModel(name: string, path: string): Promise<void> {
  const bytes = await readFile(path);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const up = await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
  expect([200, 201]).toContain(up.status);
  const created = await fetch(`${hearth.url}/api/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: name, files: { 'chat.gguf': digest }, stream: false }),
  });
  expect(created.status, await created.text()).toBe(200);
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runs the CLI from source (tsx), as a user would run `hearth bench`. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'bench', ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, HEARTH_HOST: hearth.url },
        timeout: 60_000,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-bench-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 2, numCtx: 512 } });
  await uploadModel('tiny', models.chat);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('runBench against hearth', () => {
  it('measures the Ollama chat API at two concurrency levels, streaming', async () => {
    const report = await runBench({
      target: { url: hearth.url, api: 'ollama', mode: 'chat', model: 'tiny' },
      workload: new FixedWorkload(24, 6),
      concurrency: [1, 2],
      requests: 4,
      stream: true,
      warmup: 2,
      timeoutMs: 30_000,
    });
    expect(report.format).toBe('hearth-bench/1');
    expect(report.target.endpoint).toBe(`${hearth.url}/api/chat`);
    expect(report.levels.map((l) => l.concurrency)).toEqual([1, 2]);
    for (const level of report.levels) {
      expect(level.errors).toEqual([]);
      expect(level.completed).toBe(4);
      expect(level.failed).toBe(0);
      // num_predict 6 caps what each request generates (an end-of-turn token may stop one earlier)
      expect(level.outputTokens).toBeGreaterThanOrEqual(4);
      expect(level.outputTokens).toBeLessThanOrEqual(4 * 6);
      // the warm-up sized the prompts to the server's tokenizer and chat template
      expect(level.promptTokens / 4).toBeGreaterThanOrEqual(18);
      expect(level.promptTokens / 4).toBeLessThanOrEqual(30);
      expect(level.requestThroughput).toBeGreaterThan(0);
      expect(level.outputThroughput).toBeGreaterThan(0);
      expect(level.totalThroughput).toBeGreaterThan(level.outputThroughput);
      const { ttftMs, e2eMs } = level;
      expect(ttftMs?.count).toBeGreaterThan(0);
      expect(e2eMs?.count).toBe(4);
      expect(e2eMs!.p50).toBeGreaterThanOrEqual(ttftMs!.p50);
      expect(e2eMs!.p99).toBeGreaterThanOrEqual(e2eMs!.p50);
    }
  });

  it('measures the OpenAI completions API without streaming (no TTFT then)', async () => {
    const report = await runBench({
      target: { url: `${hearth.url}/v1`, api: 'openai', mode: 'completion', model: 'tiny', temperature: 0 },
      workload: new FixedWorkload(16, 4),
      concurrency: [2],
      requests: 2,
      stream: false,
      warmup: 1,
      timeoutMs: 30_000,
    });
    const [level] = report.levels;
    expect(report.target.endpoint).toBe(`${hearth.url}/v1/completions`);
    expect(level?.completed).toBe(2);
    expect(level?.outputTokens).toBeGreaterThan(0);
    expect(level?.promptTokens).toBeGreaterThan(0);
    expect(level?.ttftMs).toBeNull();
    expect(level?.itlMs).toBeNull();
    expect(level?.e2eMs?.count).toBe(2);
  });

  it('fails at once, naming the cause, when nothing listens at the URL', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    await expect(
      runBench({
        target: { url, api: 'ollama', mode: 'chat', model: 'tiny' },
        workload: new FixedWorkload(8, 2),
        concurrency: [1],
        requests: 3,
        stream: true,
        warmup: 1,
        timeoutMs: 10_000,
      }),
    ).rejects.toMatchObject({
      code: 'BENCH_TARGET_FAILED',
      message: expect.stringMatching(/cannot connect to .*ECONNREFUSED/),
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("fails with the server's message for an unknown model", async () => {
    await expect(
      runBench({
        target: { url: hearth.url, api: 'openai', mode: 'chat', model: 'no-such-model' },
        workload: new FixedWorkload(8, 2),
        concurrency: [1],
        requests: 3,
        stream: true,
        warmup: 1,
        timeoutMs: 10_000,
      }),
    ).rejects.toMatchObject({
      code: 'BENCH_TARGET_FAILED',
      message: expect.stringMatching(/HTTP 404: .*no-such-model/),
    });
  });
});

describe('hearth bench (CLI)', () => {
  it('prints a table, writes the JSON report, and compares two runs side by side', async () => {
    const a = join(dirs.root, 'a.json');
    const b = join(dirs.root, 'b.json');
    const first = await cli([
      '-m',
      'tiny',
      '--concurrency',
      '1,2',
      '-n',
      '2',
      '--prompt-tokens',
      '8',
      '--output-tokens',
      '3',
      '-o',
      a,
    ]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`hearth bench · ollama chat · ${hearth.url}/api/chat · model tiny`);
    expect(first.stdout).toMatch(/^\s+c=1\s+c=2$/m);
    expect(first.stdout).toMatch(/^completed requests\s+2\s+2$/m);
    expect(first.stdout).toMatch(/^TTFT p99 \(ms\)\s+[\d.]+\s+[\d.]+$/m);

    const second = await cli([
      '-m',
      'tiny',
      '--api',
      'openai',
      '-n',
      '2',
      '--prompt-tokens',
      '8',
      '--output-tokens',
      '3',
      '--json',
    ]);
    expect(second.code).toBe(0);
    const report = JSON.parse(second.stdout) as BenchReport;
    expect(report.levels).toHaveLength(1);
    expect(report.levels[0]).toMatchObject({ concurrency: 1, completed: 2, failed: 0 });
    await writeFile(b, second.stdout);

    const compared = await cli(['--compare', a, b]);
    expect(compared.code).toBe(0);
    expect(compared.stdout).toContain('[1] a: ollama chat');
    expect(compared.stdout).toContain('[2] b: openai chat');
    expect(compared.stdout).toMatch(/^\s+\[1\] c=1\s+\[1\] c=2\s+\[2\] c=1$/m);
  });

  it('exits non-zero with a clear message when every request fails', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const res = await cli(['--url', url, '-m', 'tiny', '-n', '2', '--warmup', '0', '--timeout', '5s']);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^failed requests\s+2$/m);
    expect(res.stderr).toMatch(/^hearth: bench: every request failed: cannot connect to .*ECONNREFUSED/m);
  });

  it('refuses a report that is not one', async () => {
    const bogus = join(dirs.root, 'bogus.json');
    await writeFile(bogus, '{"hello": 1}');
    const res = await cli(['--compare', bogus]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('is not a hearth bench report');
  });
});
