// docs/metrics.md and the Grafana dashboard stay true to what /metrics exposes.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText } from '../../test/support/prometheus.js';
import { HearthMetrics } from './metrics.js';

const docs = new URL('../../docs/', import.meta.url);

async function exposedFamilies(): Promise<Set<string>> {
  const metrics = new HearthMetrics({ version: '0', nodeId: 'n' });
  metrics.watch({
    cache: { usage: () => ({ bytes: 0, entries: 0, maxBytes: 1 }) },
    atlasDb: { ping: async () => {} },
    engine: { backend: 'cuda', loaded: () => [], queueDepth: () => 0, vram: async () => ({ total: 1, used: 0 }) },
  });
  try {
    return new Set(parsePrometheusText((await metrics.render()).body).keys());
  } finally {
    metrics.close();
  }
}

describe('metrics documentation', () => {
  it('documents every hearth metric, and documents none that does not exist', async () => {
    const exposed = [...(await exposedFamilies())].filter((n) => n.startsWith('hearth_'));
    const text = await readFile(new URL('metrics.md', docs), 'utf8');
    const documented = new Set([...text.matchAll(/^\| `(hearth_[a-z_]+)`/gm)].map((m) => m[1]!));
    expect(exposed.filter((n) => !documented.has(n))).toEqual([]);
    expect([...documented].filter((n) => !exposed.includes(n))).toEqual([]);
  });

  it('builds the Grafana dashboard only from metrics that exist', async () => {
    const exposed = await exposedFamilies();
    const dashboard = JSON.parse(await readFile(new URL('grafana-hearth.json', docs), 'utf8')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    const used = new Set(
      dashboard.panels
        .flatMap((p) => p.targets ?? [])
        .flatMap((t) => [...t.expr.matchAll(/\b((?:hearth|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!)),
    );
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter(
      (name) => !exposed.has(name) && !exposed.has(name.replace(/_(bucket|count|sum)$/, '')),
    );
    expect(missing).toEqual([]);
  });
});
