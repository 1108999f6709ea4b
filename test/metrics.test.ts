// GET /metrics on a real hearth (the server engine, tiny generated model), scraped and parsed with a strict
// Prometheus text-format parser.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpApp } from '../src/http/server.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';
import { makeTestModels } from './support/models.js';
import { type MetricFamily, parsePrometheusText, sampleValue } from './support/prometheus.js';

let dirs: HearthDirs;
let hearth: InProcessHearth;

async function post(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${hearth.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function scrape(): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${hearth.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8/);
  return parsePrometheusText(await res.text());
}

beforeAll(async () => {
  dirs = await hearthDirs('hearth-metrics-');
  await mkdir(join(dirs.root, 'models'), { recursive: true });
  const models = await makeTestModels(join(dirs.root, 'models'));
  hearth = await startHearthInProcess(dirs, { inference: { numParallel: 1, numCtx: 512 } });
  const bytes = await readFile(models.chat);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  expect((await fetch(`${hearth.url}/api/blobs/${digest}`, { method: 'POST', body: bytes })).status).toBe(201);
  expect((await post('/api/create', { model: 'tiny', files: { 'chat.gguf': digest }, stream: false })).status).toBe(
    200,
  );
});

afterAll(async () => {
  await hearth?.close();
  await dirs?.cleanup();
});

describe('GET /metrics', () => {
  it('counts requests by route pattern and status, streamed ones included, and shows the engine and node', async () => {
    expect((await fetch(`${hearth.url}/api/tags`)).status).toBe(200);
    expect((await fetch(`${hearth.url}/api/nope/secret-path-42`)).status).toBe(404);
    const options = { num_predict: 4 };
    const streamed = await post('/api/generate', { model: 'tiny', prompt: 'hello', stream: true, options });
    const whole = await post('/api/generate', { model: 'tiny', prompt: 'hello there', stream: false, options });
    expect([streamed.status, whole.status]).toEqual([200, 200]);
    const finals = [JSON.parse(streamed.text.trim().split('\n').at(-1)!), JSON.parse(whole.text)];

    const m = await scrape();
    const http = (labels: Record<string, string>) =>
      sampleValue(m, 'hearth_http_requests_total', { listener: 'test', ...labels });
    expect(http({ method: 'GET', route: '/api/tags', status: '200' })).toBe(1);
    expect(http({ method: 'POST', route: '/api/generate', status: '200' })).toBe(2);
    expect(http({ method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(
      sampleValue(
        m,
        'hearth_http_request_duration_seconds',
        { route: '/api/generate' },
        'hearth_http_request_duration_seconds_count',
      ),
    ).toBe(2);
    // the raw URL never becomes a label value
    for (const family of m.values()) {
      for (const s of family.samples) expect(Object.values(s.labels).join(' ')).not.toContain('secret-path-42');
    }

    // inference, by model: what the two responses reported, and their latencies
    const model = { model: 'tiny:latest' };
    const sum = (key: string) => finals.reduce((n, f) => n + f[key], 0);
    expect(sampleValue(m, 'hearth_inference_requests_total', { ...model, kind: 'chat', outcome: 'ok' })).toBe(2);
    expect(sampleValue(m, 'hearth_inference_generated_tokens_total', model)).toBe(sum('eval_count'));
    expect(sampleValue(m, 'hearth_inference_prompt_tokens_total', model)).toBe(sum('prompt_eval_count'));
    const count = (family: string) => sampleValue(m, family, model, `${family}_count`);
    expect(count('hearth_inference_time_to_first_token_seconds')).toBe(2);
    expect(count('hearth_inference_queue_wait_seconds')).toBe(2);
    expect(count('hearth_inference_inter_token_latency_seconds')).toBeLessThanOrEqual(sum('eval_count') - 2);
    expect(count('hearth_model_load_duration_seconds')).toBe(1);

    expect(sampleValue(m, 'hearth_engine_info', { backend: 'cpu' })).toBe(1);
    expect(sampleValue(m, 'hearth_models_loaded')).toBe(1);
    expect(sampleValue(m, 'hearth_model_memory_bytes', { model: 'tiny:latest', memory: 'total' })).toBeGreaterThan(0);
    expect(sampleValue(m, 'hearth_inference_sequence_slots', { model: 'tiny:latest' })).toBe(1);
    expect(sampleValue(m, 'hearth_inference_queue_depth')).toBe(0);
    expect(sampleValue(m, 'hearth_node_cache_bytes')).toBeGreaterThan(0);
    expect(sampleValue(m, 'hearth_node_cache_blobs')).toBe(1);
    expect(sampleValue(m, 'hearth_atlas_database_up')).toBe(1);
    expect(sampleValue(m, 'hearth_build_info', { node_id: 'test-node' })).toBe(1);
    expect(m.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(m.get('nodejs_eventloop_lag_p99_seconds')?.type).toBe('gauge');
    expect(sampleValue(m, 'hearth_http_requests_in_flight', { listener: 'test' })).toBe(1); // this scrape
  });

  it('counts unloads by reason and forgets the unloaded model in the gauges', async () => {
    expect((await post('/api/generate', { model: 'tiny', prompt: '', keep_alive: 0 })).status).toBe(200);
    const m = await scrape();
    expect(sampleValue(m, 'hearth_model_unloads_total', { model: 'tiny:latest', reason: 'requested' })).toBe(1);
    expect(sampleValue(m, 'hearth_models_loaded')).toBe(0);
    expect(sampleValue(m, 'hearth_model_memory_bytes', { model: 'tiny:latest', memory: 'total' })).toBeUndefined();
  });

  it('times the first token of a generation whose only token brings no text', async () => {
    const ttft = async () =>
      sampleValue(
        await scrape(),
        'hearth_inference_time_to_first_token_seconds',
        { model: 'tiny:latest' },
        'hearth_inference_time_to_first_token_seconds_count',
      ) ?? 0;
    const before = await ttft();
    // greedy on this generated model, the one token after "hello 24" is a UTF-8 lead byte: the
    // server engine streams no text for it (the character is never completed)
    const options = { temperature: 0, num_predict: 1 };
    const res = await post('/api/generate', { model: 'tiny', prompt: 'hello 24', raw: true, stream: false, options });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { response: string; eval_count: number };
    expect([body.response, body.eval_count]).toEqual(['', 1]);
    expect((await ttft()) - before).toBe(1);
  });

  it('is served only on listeners with the metrics service class', async () => {
    const inferenceOnly = await buildHttpApp(hearth.ctx, { listener: 'api', serves: ['inference'] });
    const metricsOnly = await buildHttpApp(hearth.ctx, { listener: 'scrape', serves: ['metrics'] });
    try {
      expect((await inferenceOnly.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
      const res = await metricsOnly.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      // one registry per context: the request the other listener answered shows here too
      expect(
        sampleValue(parsePrometheusText(res.body), 'hearth_http_requests_total', {
          listener: 'api',
          route: 'unmatched',
          status: '404',
        }),
      ).toBe(1);
    } finally {
      await inferenceOnly.close();
      await metricsOnly.close();
    }
  });
});
