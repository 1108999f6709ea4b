import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configFromObject, loadConfig } from './load.js';
import { maskSecrets, renderConfig } from './render.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-render-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const base = () => ({ atlas: { files: join(dir, 'atlas') }, node: { id: 'gpu1', cacheDir: join(dir, 'cache') } });

describe('renderConfig', () => {
  it('prints sizes and durations in units, and leaves out the built-in loopback zone', () => {
    const { config } = configFromObject({
      ...base(),
      inference: { keepAlive: '-1' },
      zones: { servers: ['10.0.20.0/24'] },
    });
    const printed = parse(renderConfig(config));
    expect(printed.node.cacheMaxBytes).toBe('20GiB');
    expect(printed.server).toEqual({ shutdownTimeout: '30s', bodyLimit: '100MiB' });
    expect(printed.inference.keepAlive).toBe(-1);
    expect(printed.zones).toEqual({ servers: ['10.0.20.0/24'] });
  });

  it('prints YAML that loads back to the same config', () => {
    const { config } = configFromObject({
      ...base(),
      node: { ...base().node, cacheMaxBytes: 1234567, threads: 6 },
      server: { shutdownTimeout: 1.5 },
      inference: { keepAlive: '1h30m' },
      zones: { servers: ['10.0.20.0/24', 'FD00:20::/64'] },
      listeners: [{ name: 'lan', address: '10.0.20.5:11434', zones: ['servers'], hosts: ['GPU1.lan'] }],
    });
    const path = join(dir, 'rendered.yaml');
    writeFileSync(path, renderConfig(config));
    expect(loadConfig({ file: path, env: {}, cwd: dir }).config).toEqual(config);
  });

  it('masks the password in the database URL', () => {
    const { config } = configFromObject({
      ...base(),
      atlas: { ...base().atlas, database: 'postgres://hearth:s3cr3t@atlas.lan:5432/hearth' },
    });
    const printed = renderConfig(config);
    expect(printed).toContain('database: postgres://hearth:***@atlas.lan:5432/hearth');
    expect(printed).not.toContain('s3cr3t');
  });

  it('masks values of keys named like secrets, but not zone names that happen to match', () => {
    expect(
      maskSecrets({
        apiKey: 'k-123',
        db: { password: 'p', sessionSecret: 's', tokens: ['a', 'b'], keepAlive: 5 },
        zones: { keyservers: ['10.0.5.0/24'] },
        url: 'https://u:pw@host/x?token=abc&page=2',
      }),
    ).toEqual({
      apiKey: '***',
      db: { password: '***', sessionSecret: '***', tokens: ['***', '***'], keepAlive: 5 },
      zones: { keyservers: ['10.0.5.0/24'] },
      url: 'https://u:***@host/x?token=***&page=2',
    });
  });
});
