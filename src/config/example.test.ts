import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { envSettings, HOST_VARIABLE, OTHER_HEARTH_VARIABLES } from './env.js';
import { loadConfig } from './load.js';
import { configLeaves, listenerSchema } from './schema.js';

const examplePath = fileURLToPath(new URL('../../hearth.example.yaml', import.meta.url));
const docsPath = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

describe('hearth.example.yaml', () => {
  it('loads without problems or warnings, describing the documented homelab', () => {
    const { config, warnings, source } = loadConfig({ file: examplePath, env: { HOME: '/home/hearth' }, cwd: '/' });
    expect(source).toBe(examplePath);
    expect(warnings).toEqual([]);
    expect(config.atlas).toEqual({ database: 'postgres://hearth@atlas.home.arpa:5432/hearth', files: '/mnt/atlas' });
    expect(Object.keys(config.zones).sort()).toEqual(['guest', 'loopback', 'mgmt', 'servers', 'user']);
    expect(config.deny).toEqual(['user', 'guest']);
    expect(config.listeners.map((l) => [l.name, l.serves, l.auth])).toEqual([
      ['servers', ['inference', 'ui', 'workflows', 'jobs', 'metrics'], 'required'],
      ['mgmt', ['admin', 'metrics'], 'required'],
    ]);
  });
});

describe('docs/configuration.md', () => {
  const docs = readFileSync(docsPath, 'utf8');

  it('documents every setting and its environment variable', () => {
    const missing: string[] = [];
    for (const setting of envSettings()) {
      if (!docs.includes(`\`${setting.path.join('.')}\``)) missing.push(setting.path.join('.'));
      if (!docs.includes(`\`${setting.variable}\``)) missing.push(setting.variable);
    }
    for (const key of Object.keys(listenerSchema.shape)) {
      if (!docs.includes(`\`listeners[].${key}\``)) missing.push(`listeners[].${key}`);
    }
    for (const name of ['zones', 'listeners', HOST_VARIABLE, ...OTHER_HEARTH_VARIABLES]) {
      if (!docs.includes(`\`${name}\``)) missing.push(name);
    }
    expect(missing).toEqual([]);
    expect(configLeaves().length).toBeGreaterThan(20);
  });
});
