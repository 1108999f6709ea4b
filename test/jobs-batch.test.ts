// Batch jobs end to end on the embedded Atlas, in process: a real engine on a generated model, datasets
// in the file store, outputs checked byte for byte against the manifest.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HearthDirs,
  hearthDirs,
  type InProcessHearth,
  REPO_ROOT,
  startHearthInProcess,
} from './support/hearth.js';
import { call, createModel, finished, jsonlDataset, putFile, waitForJob } from './support/jobs.js';
import { makeTestModels } from './support/models.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;
let base: string;

beforeAll(async () => {
  dirs = await hearthDirs('hearth-jobs-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  // The GPU-loss hook: the 37th engine call of this process's workers fails as a lost GPU does.
  // The first test below owns calls 1-100, so the fault lands in its second shard.
  hearth = await startHearthInProcess(
    dirs,
    {
      inference: { numParallel: 4, numCtx: 256 },
      node: { jobs: { concurrency: 2 } },
      jobs: { lease: '3s', retryDelay: '1s', maintenanceInterval: '1s', pollInterval: '200ms', shardSize: 50 },
    },
    { testHooks: { engineFault: { gpuLostAt: [37] } } },
  );
  base = hearth.url;
  await createModel(base, 'chat', models.chat);
  await createModel(base, 'embed', models.embed);
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

/** Reads a finished job's output folder from the Atlas folder and checks it against its manifest. */
async function readOutput(output: string) {
  const folder = join(dirs.atlas, output);
  const manifest = JSON.parse(await readFile(join(folder, '_manifest.json'), 'utf8'));
  const rows: any[] = [];
  for (const shard of manifest.shards) {
    const bytes = await readFile(join(folder, shard.file));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(shard.sha256);
    const lines = bytes
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(shard.rows);
    rows.push(...lines);
  }
  const errorBytes = await readFile(join(folder, manifest.errors.file));
  expect(createHash('sha256').update(errorBytes).digest('hex')).toBe(manifest.errors.sha256);
  const errors = errorBytes
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const files = (await hearth.ctx.atlas.files.list(`${output}/`)).map((f) => f.key.slice(output.length + 1));
  return { manifest, rows, errors, files };
}

describe('GPU loss mid-shard (an injected engine fault)', () => {
  it('fails the attempt, retries the shard, and loses nothing', async () => {
    await putFile(base, 'datasets/gpu.jsonl', jsonlDataset(100));
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/gpu.jsonl',
      model: 'chat',
      template: '{{text}}',
      key_field: 'id',
      options: { num_predict: 2 },
      output: 'results/gpu',
      shard_size: 25,
    });
    const done = await waitForJob(base, submitted.json.id, finished);
    expect(done.state, done.error).toBe('succeeded');
    const { rows } = await readOutput('results/gpu');
    expect(rows.map((r) => r.key).sort()).toEqual(
      Array.from({ length: 100 }, (_, i) => `r${String(i).padStart(4, '0')}`),
    );
    const logs = (await call(base, `/api/jobs/${submitted.json.id}/logs`)).json.events.map((e: any) => e.message);
    expect(logs).toContainEqual(
      expect.stringMatching(
        /^shard \d+ failed on test-node \(attempt 1 of 5\): engine: generation failed on the GPU .*; it will be retried$/,
      ),
    );
    expect(logs).toContainEqual(expect.stringMatching(/^shard \d+: attempt 2 on test-node$/));
  });
});

describe('batch jobs', () => {
  it('runs a prompt over 500 JSONL records: 500 rows, each key once, and a manifest that matches', async () => {
    await putFile(base, 'datasets/items.jsonl', jsonlDataset(500));
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/items.jsonl',
      model: 'chat',
      template: 'Say something about {{text}}.',
      key_field: 'id',
      options: { num_predict: 2, temperature: 0 },
      output: 'results/items',
    });
    expect(submitted.status, submitted.text).toBe(201);
    expect(submitted.json).toMatchObject({ state: 'queued', model: 'chat', output: 'results/items' });
    const job = await waitForJob(base, submitted.json.id, finished, 120_000);
    expect(job.state, job.error).toBe('succeeded');
    expect(job.progress).toMatchObject({
      records_total: 500,
      records_done: 500,
      records_ok: 500,
      records_failed: 0,
      shards_total: 10,
      shards_committed: 10,
    });
    expect(job.manifest).toBe('results/items/_manifest.json');

    const { manifest, rows, errors, files } = await readOutput('results/items');
    expect(files).toEqual(
      ['_errors.jsonl', '_manifest.json', ...Array.from({ length: 10 }, (_, i) => `part-0000${i}.jsonl`)].sort(),
    );
    expect(rows.length).toBe(500);
    expect(new Set(rows.map((r) => r.key)).size).toBe(500);
    expect(rows[0]).toMatchObject({
      key: 'r0000',
      result: expect.any(String),
      meta: { model: 'chat:latest', digest: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
    expect(rows[0].meta.eval_tokens).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    expect(manifest.counts).toMatchObject({ records: 500, ok: 500, failed: 0 });
    expect(manifest.shards.reduce((n: number, s: any) => n + s.rows, 0)).toBe(500);
    expect(manifest.job).toBe(job.id);
  });
});

describe('datasets and operations', () => {
  it('reads CSV with a header (quoted fields, newlines inside quotes), keyed by line number', async () => {
    await putFile(base, 'datasets/people.csv', 'name,note\nAda,"likes, commas"\n\nBob,"two\nlines"\nCy,plain\n');
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/people.csv',
      model: 'chat',
      template: '{{name}}: {{note}}',
      options: { num_predict: 1 },
      output: 'results/people',
    });
    expect(submitted.status, submitted.text).toBe(201);
    const job = await waitForJob(base, submitted.json.id, finished);
    expect(job.state, job.error).toBe('succeeded');
    const { rows } = await readOutput('results/people');
    // Line numbers of each record's first line; the blank line is no record.
    expect(rows.map((r) => r.key)).toEqual([2, 4, 6]);
  });

  it('reads a folder of text files (key = relative path) and embeds a text field', async () => {
    await putFile(base, 'datasets/notes/a.md', '# first');
    await putFile(base, 'datasets/notes/sub/b.txt', 'second');
    const folderJob = await call(base, '/api/jobs', {
      input: 'datasets/notes',
      model: 'chat',
      template: 'Summarise {{path}}: {{text}}',
      options: { num_predict: 1 },
      output: 'results/notes',
    });
    expect(folderJob.status, folderJob.text).toBe(201);
    expect(folderJob.json.spec.format).toBe('folder');

    await putFile(base, 'datasets/embed.jsonl', jsonlDataset(7));
    const embedJob = await call(base, '/api/jobs', {
      input: 'datasets/embed.jsonl',
      model: 'embed',
      operation: 'embed',
      key_field: 'id',
      output: 'results/embed',
    });
    expect(embedJob.status, embedJob.text).toBe(201);

    const done = await waitForJob(base, folderJob.json.id, finished);
    expect(done.state, done.error).toBe('succeeded');
    expect((await readOutput('results/notes')).rows.map((r) => r.key)).toEqual(['a.md', 'sub/b.txt']);
    const embedded = await waitForJob(base, embedJob.json.id, finished);
    expect(embedded.state, embedded.error).toBe('succeeded');
    const { rows } = await readOutput('results/embed');
    expect(rows.length).toBe(7);
    expect(Array.isArray(rows[0].result)).toBe(true);
    expect(rows[0].result.length).toBeGreaterThan(8);
  });

  it('runs chat over a messages field', async () => {
    await putFile(
      base,
      'datasets/chats.jsonl',
      jsonlDataset(3, (i) => ({ id: i, messages: [{ role: 'user', content: `hello ${i}` }] })),
    );
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/chats.jsonl',
      model: 'chat',
      operation: 'chat',
      key_field: 'id',
      options: { num_predict: 1 },
      output: 'results/chats',
    });
    expect(submitted.status, submitted.text).toBe(201);
    const job = await waitForJob(base, submitted.json.id, finished);
    expect(job.state, job.error).toBe('succeeded');
    expect((await readOutput('results/chats')).rows.map((r) => r.key).sort()).toEqual([0, 1, 2]);
  });
});

describe('refused at submit, before anything is queued', () => {
  const valid = { input: 'datasets/items.jsonl', model: 'chat', template: '{{text}}', output: 'results/refused' };
  const cases: Array<[string, Record<string, unknown>, number, string, RegExp]> = [
    [
      'a missing dataset',
      { input: 'datasets/nope.jsonl' },
      400,
      'JOB_DATASET_NOT_FOUND',
      /no such dataset.*hearth files put/,
    ],
    ['an unknown model', { model: 'no-such-model' }, 404, 'MODEL_NOT_FOUND', /no-such-model/],
    [
      'a template field absent from the first records',
      { template: 'About {{txt}}' },
      400,
      'JOB_TEMPLATE_FIELD_MISSING',
      /"txt" is in none of the first 20 records.*did you mean "text"/,
    ],
    [
      'a schema that does not compile',
      { schema: { type: 'objekt' } },
      400,
      'JOB_SCHEMA_INVALID',
      /schema does not compile/,
    ],
    ['an output folder that holds files', { output: 'results/items' }, 409, 'JOB_OUTPUT_EXISTS', /already holds/],
    ['an embedding model asked to generate', { model: 'embed' }, 400, 'ENGINE_CAPABILITY', /cannot do text generation/],
    [
      'an output inside the input',
      { input: 'datasets/notes', output: 'datasets/notes/out' },
      400,
      'JOB_INVALID',
      /overlaps/,
    ],
  ];
  it.each(cases)('%s', async (_, change, status, _code, message) => {
    const before = (await call(base, '/api/jobs?limit=500')).json.jobs.length;
    const res = await call(base, '/api/jobs', { ...valid, ...change });
    expect(res.status, res.text).toBe(status);
    expect(res.json.error).toMatch(message);
    expect((await call(base, '/api/jobs?limit=500')).json.jobs.length).toBe(before);
  });
});

describe('bad records, cancel and retry', () => {
  // 40 records; line 5 is not JSON, line 9 not an object, records r0011 and r0019 lack "text".
  const badDataset = () =>
    jsonlDataset(40)
      .split('\n')
      .map((line, i) =>
        i === 4 ? '{"id": "r0004", oops' : i === 8 ? '[1, 2]' : i === 11 || i === 19 ? `{"id":"r00${i}"}` : line,
      )
      .join('\n');

  it('turns bad records into error rows and goes on while they stay within max_errors', async () => {
    await putFile(base, 'datasets/bad.jsonl', badDataset());
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/bad.jsonl',
      model: 'chat',
      template: '{{text}}',
      key_field: 'id',
      options: { num_predict: 1 },
      output: 'results/bad-ok',
      shard_size: 10,
      max_errors: 4,
    });
    const job = await waitForJob(base, submitted.json.id, finished);
    expect(job.state, job.error).toBe('succeeded');
    const { rows, errors, manifest } = await readOutput('results/bad-ok');
    expect(rows.length).toBe(36);
    expect(manifest.counts).toMatchObject({ records: 40, ok: 36, failed: 4 });
    expect(errors).toEqual([
      { key: '5', line: 5, error: expect.stringMatching(/line 5 is not valid JSON/) },
      { key: '9', line: 9, error: 'line 9 is not a JSON object' },
      { key: 'r0011', line: 12, error: 'the record has no field "text"' },
      { key: 'r0019', line: 20, error: 'the record has no field "text"' },
    ]);
  });

  it('fails the job with a clear summary once bad records pass max_errors; a retry with more room completes it exactly once', async () => {
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/bad.jsonl',
      model: 'chat',
      template: '{{text}}',
      key_field: 'id',
      options: { num_predict: 1 },
      output: 'results/bad-fail',
      shard_size: 10,
      max_errors: 2,
    });
    const failed = await waitForJob(base, submitted.json.id, finished);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(
      /^too many bad records: [34] of 40 failed, more than max_errors 2 allows \(2\); for example .*retry with a higher max_errors/,
    );
    expect(await hearth.ctx.atlas.files.stat('results/bad-fail/_manifest.json')).toBeNull();

    const retried = await call(base, `/api/jobs/${failed.id}/retry`, { max_errors: '10%' });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json).toMatchObject({ state: 'queued', attempts: 2 });
    const done = await waitForJob(base, failed.id, finished);
    expect(done.state, done.error).toBe('succeeded');
    const { rows, errors } = await readOutput('results/bad-fail');
    expect(rows.length).toBe(36);
    expect(new Set(rows.map((r) => r.key)).size).toBe(36);
    expect(errors.map((e) => e.key)).toEqual(['5', '9', 'r0011', 'r0019']);
    expect((await call(base, `/api/jobs/${failed.id}/retry`, {})).status).toBe(409);
  }, 180_000);

  it('cancels mid-shard within seconds; a retry finishes with every key exactly once', async () => {
    await putFile(base, 'datasets/long.jsonl', jsonlDataset(400));
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/long.jsonl',
      model: 'chat',
      template: 'Tell me about {{text}}',
      key_field: 'id',
      options: { num_predict: 2 },
      output: 'results/long',
      shard_size: 100,
    });
    const running = await waitForJob(base, submitted.json.id, (j) => j.progress.records_done > 10);
    expect(running.state).toBe('running');
    const asked = Date.now();
    const cancelled = await call(base, `/api/jobs/${submitted.json.id}/cancel`, {});
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.json.state).toBe('cancelled');
    const stopped = await waitForJob(base, submitted.json.id, (j) => j.progress.shards_running === 0, 10_000);
    expect(Date.now() - asked).toBeLessThan(5000);
    expect(stopped.progress.shards_committed).toBeLessThan(4);
    expect((await call(base, `/api/jobs/${submitted.json.id}/cancel`, {})).status).toBe(409);
    const logs = await call(base, `/api/jobs/${submitted.json.id}/logs`);
    expect(logs.json.events.map((e: any) => e.message)).toContainEqual(expect.stringMatching(/^cancelled/));

    await call(base, `/api/jobs/${submitted.json.id}/retry`, {});
    const done = await waitForJob(base, submitted.json.id, finished, 120_000);
    expect(done.state, done.error).toBe('succeeded');
    const { rows } = await readOutput('results/long');
    expect(rows.length).toBe(400);
    expect(new Set(rows.map((r) => r.key)).size).toBe(400);
  });

  it('lists jobs newest first with filters and pages', async () => {
    const all = (await call(base, '/api/jobs?limit=500')).json.jobs;
    expect(all.length).toBeGreaterThan(5);
    const page = await call(base, '/api/jobs?limit=2');
    expect(page.json.jobs.map((j: any) => j.id)).toEqual(all.slice(0, 2).map((j: any) => j.id));
    const next = await call(base, `/api/jobs?limit=2&before=${page.json.next}`);
    expect(next.json.jobs.map((j: any) => j.id)).toEqual(all.slice(2, 4).map((j: any) => j.id));
    const succeeded = await call(base, '/api/jobs?state=succeeded&limit=500');
    expect(succeeded.json.jobs.every((j: any) => j.state === 'succeeded')).toBe(true);
    expect((await call(base, '/api/jobs?state=bogus')).status).toBe(400);
    expect((await call(base, '/api/jobs/nope')).status).toBe(404);
  });

  it('streams progress as server-sent events until the job ends', async () => {
    await putFile(base, 'datasets/sse.jsonl', jsonlDataset(30));
    const submitted = await call(base, '/api/jobs', {
      input: 'datasets/sse.jsonl',
      model: 'chat',
      template: '{{text}}',
      options: { num_predict: 1 },
      output: 'results/sse',
      shard_size: 10,
    });
    const res = await fetch(`${base}/api/jobs/${submitted.json.id}/events`);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    const events = text
      .split('\n\n')
      .filter((block) => block.includes('event: '))
      .map((block) => ({ event: /event: (\w+)/.exec(block)![1], data: JSON.parse(/data: (.*)/.exec(block)![1]!) }));
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { state: 'succeeded' } });
    expect(events.filter((e) => e.event === 'progress').length).toBeGreaterThan(0);
    expect(events.filter((e) => e.event === 'log').map((e) => e.data.message)).toContainEqual(
      expect.stringMatching(/^planned/),
    );
  });
});

describe('the CLI (hearth files, batch, jobs) against the API', () => {
  const cli = async (args: string[], input?: string) => {
    if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')))
      throw new Error('dist/ is missing: run `npm run build` first (`npm test` does)');
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(REPO_ROOT, 'bin', 'hearth.js'), ...args],
        {
          env: { PATH: process.env['PATH'] ?? '', HOME: dirs.home, HEARTH_HOST: base },
          cwd: dirs.root,
          timeout: 60_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  };

  it('uploads a dataset, submits with --follow to the end, lists, shows, logs, and downloads the result', async () => {
    const local = join(dirs.root, 'cli.jsonl');
    await writeFile(local, jsonlDataset(60));
    const put = await cli(['files', 'put', local, 'datasets/cli.jsonl']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toMatch(/^stored datasets\/cli\.jsonl \(.*sha256 [0-9a-f]{12}\)/);
    const ls = await cli(['files', 'ls', 'datasets/']);
    expect(ls.stdout).toMatch(/datasets\/cli\.jsonl/);

    const submit = await cli([
      'batch',
      'submit',
      '--input',
      'datasets/cli.jsonl',
      '--model',
      'chat',
      '--template',
      'About {{text}}',
      '--key-field',
      'id',
      '-o',
      'num_predict=1',
      '--shard-size',
      '20',
      '--output',
      'results/cli',
      '--follow',
    ]);
    expect(submit.code, submit.stderr).toBe(0);
    const id = submit.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(submit.stderr).toMatch(/records \|/);
    expect(submit.stderr).toMatch(new RegExp(`job ${id} succeeded: 60 rows, 0 errors → results/cli/`));

    expect((await cli(['jobs', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+succeeded\\s+chat\\s+60/60 \\(100%\\)`));
    expect((await cli(['jobs', 'show', id])).stdout).toMatch(/records\s+60 of 60 \(60 ok, 0 failed\)/);
    expect((await cli(['jobs', 'logs', id])).stdout).toMatch(/succeeded: the output is complete in results\/cli\//);
    const cancel = await cli(['jobs', 'cancel', id]);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toBe(`hearth: job ${id} already succeeded: there is nothing to cancel\n`);

    const got = await cli(['files', 'get', 'results/cli/_manifest.json', '-']);
    expect(JSON.parse(got.stdout)).toMatchObject({ job: id, counts: { records: 60, ok: 60 } });

    const refused = await cli([
      'batch',
      'submit',
      '-i',
      'datasets/missing.jsonl',
      '-m',
      'chat',
      '-t',
      '{{x}}',
      '-O',
      'results/none',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^hearth: input "datasets\/missing.jsonl": no such dataset/);
  });
});
