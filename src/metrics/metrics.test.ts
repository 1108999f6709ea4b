import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue } from '../../test/support/prometheus.js';
import type { LoadedModel } from '../engine/types.js';
import { HearthMetrics } from './metrics.js';

function loadedModel(name: string, extra: Partial<LoadedModel> = {}): LoadedModel {
  return {
    name,
    digest: 'd',
    size: 1000,
    sizeVram: 0,
    contextLength: 2048,
    expiresAt: null,
    load: { numCtx: 2048, numBatch: 512, numGpu: 0, numThread: 1, useMmap: true, numParallel: 2 },
    activeSequences: 1,
    parallel: 2,
    ...extra,
  };
}

async function scrape(metrics: HearthMetrics) {
  const { contentType, body } = await metrics.render();
  expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(body);
}

describe('HearthMetrics', () => {
  it('keeps two contexts in one process apart', async () => {
    const a = new HearthMetrics({ version: '1.2.3', nodeId: 'a' });
    const b = new HearthMetrics({ version: '1.2.3', nodeId: 'b' });
    a.http.requests.inc({ listener: 'l', method: 'GET', route: '/api/tags', status: '200' }, 3);
    const [sa, sb] = [await scrape(a), await scrape(b)];
    expect(sampleValue(sa, 'hearth_http_requests_total', { route: '/api/tags' })).toBe(3);
    expect(sampleValue(sb, 'hearth_http_requests_total', { route: '/api/tags' })).toBeUndefined();
    expect(sampleValue(sa, 'hearth_build_info', { node_id: 'a', version: '1.2.3' })).toBe(1);
    expect(sampleValue(sb, 'hearth_build_info', { node_id: 'b' })).toBe(1);
    // the process's own figures appear in both, once
    expect(sa.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(sb.get('nodejs_heap_size_total_bytes')?.type).toBe('gauge');
    a.close();
    b.close();
  });

  it('turns engine events into token counters and latency histograms by model', async () => {
    const metrics = new HearthMetrics({ version: '0', nodeId: 'n', processMetrics: false });
    const request = metrics.engine.requestQueued({ model: 'llama3.2:latest', kind: 'chat' });
    request.started();
    request.tokens(1);
    request.tokens(1);
    request.tokens(2);
    request.finished({ promptTokens: 30, promptTokensEvaluated: 10, generatedTokens: 4 });
    request.failed({ code: 'INTERNAL' }); // after finishing: ignored
    metrics.engine.requestQueued({ model: 'llama3.2:latest', kind: 'completion' }).failed({ code: 'CLIENT_CLOSED' });
    metrics.engine.modelLoaded({ model: 'llama3.2:latest', durationNs: 1.5e9 });
    metrics.engine.modelUnloaded({ model: 'llama3.2:latest', reason: 'evicted' });
    metrics.engine.modelLoadFailed({ model: 'big:latest', code: 'ENGINE_OUT_OF_MEMORY' });

    const s = await scrape(metrics);
    const model = { model: 'llama3.2:latest' };
    expect(sampleValue(s, 'hearth_inference_requests_total', { ...model, kind: 'chat', outcome: 'ok' })).toBe(1);
    expect(
      sampleValue(s, 'hearth_inference_requests_total', { ...model, kind: 'chat', outcome: 'internal' }),
    ).toBeUndefined();
    expect(
      sampleValue(s, 'hearth_inference_requests_total', { ...model, kind: 'completion', outcome: 'client_closed' }),
    ).toBe(1);
    expect(sampleValue(s, 'hearth_inference_prompt_tokens_total', model)).toBe(30);
    expect(sampleValue(s, 'hearth_inference_prompt_cached_tokens_total', model)).toBe(20);
    expect(sampleValue(s, 'hearth_inference_generated_tokens_total', model)).toBe(4);
    const count = (family: string) => sampleValue(s, family, model, `${family}_count`);
    expect(count('hearth_inference_time_to_first_token_seconds')).toBe(1);
    expect(count('hearth_inference_inter_token_latency_seconds')).toBe(3);
    expect(count('hearth_inference_queue_wait_seconds')).toBe(1);
    expect(sampleValue(s, 'hearth_model_load_duration_seconds', model, 'hearth_model_load_duration_seconds_sum')).toBe(
      1.5,
    );
    expect(sampleValue(s, 'hearth_model_unloads_total', { ...model, reason: 'evicted' })).toBe(1);
    expect(
      sampleValue(s, 'hearth_model_load_failures_total', { model: 'big:latest', code: 'engine_out_of_memory' }),
    ).toBe(1);
    metrics.close();
  });

  it('reads loaded models, queue depth, VRAM and the cache at scrape time', async () => {
    const metrics = new HearthMetrics({ version: '0', nodeId: 'n', processMetrics: false });
    let loaded = [loadedModel('a'), loadedModel('a', { activeSequences: 0, sizeVram: 400 }), loadedModel('b')];
    metrics.watch({
      cache: { usage: () => ({ bytes: 123, entries: 2, maxBytes: 1000 }) },
      atlasDb: { ping: async () => {} },
      engine: {
        backend: 'cuda',
        loaded: () => loaded,
        queueDepth: () => 5,
        vram: async () => ({ total: 8e9, used: 2e9 }),
      },
    });
    let s = await scrape(metrics);
    expect(sampleValue(s, 'hearth_inference_queue_depth')).toBe(5);
    expect(sampleValue(s, 'hearth_models_loaded')).toBe(3);
    expect(sampleValue(s, 'hearth_inference_active_sequences', { model: 'a' })).toBe(1);
    expect(sampleValue(s, 'hearth_inference_sequence_slots', { model: 'a' })).toBe(4);
    expect(sampleValue(s, 'hearth_model_memory_bytes', { model: 'a', memory: 'total' })).toBe(2000);
    expect(sampleValue(s, 'hearth_model_memory_bytes', { model: 'a', memory: 'vram' })).toBe(400);
    expect(sampleValue(s, 'hearth_engine_info', { backend: 'cuda' })).toBe(1);
    expect(sampleValue(s, 'hearth_gpu_vram_bytes', { state: 'used' })).toBe(2e9);
    expect(sampleValue(s, 'hearth_node_cache_bytes')).toBe(123);
    expect(sampleValue(s, 'hearth_node_cache_limit_bytes')).toBe(1000);
    expect(sampleValue(s, 'hearth_atlas_database_up')).toBe(1);
    // an unloaded model disappears from the gauges instead of staying at its last value
    loaded = [loadedModel('b')];
    s = await scrape(metrics);
    expect(sampleValue(s, 'hearth_model_memory_bytes', { model: 'a', memory: 'total' })).toBeUndefined();
    metrics.close();
  });

  it('reports the Atlas database as down when its ping fails', async () => {
    const metrics = new HearthMetrics({ version: '0', nodeId: 'n', processMetrics: false });
    metrics.watch({ atlasDb: { ping: async () => Promise.reject(new Error('ECONNREFUSED')) } });
    expect(sampleValue(await scrape(metrics), 'hearth_atlas_database_up')).toBe(0);
    metrics.close();
  });

  it('bounds the model label: past the limit, models are counted as other', async () => {
    const metrics = new HearthMetrics({ version: '0', nodeId: 'n', processMetrics: false });
    for (let i = 0; i < 150; i++) metrics.engine.modelUnloaded({ model: `m${i}`, reason: 'expired' });
    const s = await scrape(metrics);
    const models = new Set(s.get('hearth_model_unloads_total')!.samples.map((x) => x.labels['model']));
    expect(models.size).toBe(101);
    expect(sampleValue(s, 'hearth_model_unloads_total', { model: 'other', reason: 'expired' })).toBe(50);
    metrics.close();
  });
});
