import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configFromObject, loadConfig } from '../config/index.js';
import { isHearthError } from '../errors.js';
import { assertExposureAllowed, assessExposure, exposureReport } from './exposure.js';

const examplePath = fileURLToPath(new URL('../../hearth.example.yaml', import.meta.url));
const machine = { atlas: { files: '/srv/atlas' }, node: { id: 'gpu1', cacheDir: '/var/cache/hearth' } };
const config = (input: Record<string, unknown>) => configFromObject({ ...machine, ...input }).config;
const zones = {
  mgmt: ['10.0.99.0/24'],
  servers: ['10.0.20.0/24', 'fd00:20::/64'],
  user: ['10.0.30.0/24'],
};

describe('the exposure report', () => {
  it('describes the hearth.example.yaml house: what each listener serves, to whom, with what auth', () => {
    const example = loadConfig({ file: examplePath, env: { HOME: '/home/hearth' }, cwd: '/' }).config;
    expect(assessExposure(example)).toEqual({ problems: [], warnings: [] });
    expect(exposureReport(example)).toEqual([
      'listener servers: 10.0.20.5:11434 (private address)',
      '  serves inference, ui, workflows, jobs, metrics (admin routes answer 404 here)',
      '  admits zone servers (10.0.20.0/24, fd00:20::/64); every other peer is dropped at accept',
      '  auth: API key (Bearer, with the class as scope) required for inference, workflows, jobs; ui: the UI’s sign-in; metrics: no key',
      "  Host header must be one of: gpu1.home.arpa, chat.home.arpa, localhost, this machine's name, *.localhost, *.local, *.internal, or an IP address",
      'listener mgmt: 10.0.99.5:11434 (private address)',
      '  serves admin, metrics (inference, ui, workflows, jobs routes answer 404 here)',
      '  admits zone mgmt (10.0.99.0/24, fd00:99::/64); every other peer is dropped at accept',
      '  auth: API key (Bearer, with the class as scope) required for admin; metrics: no key',
      "  Host header must be one of: gpu1-mgmt.home.arpa, localhost, this machine's name, *.localhost, *.local, *.internal, or an IP address",
      'denied everywhere: user (10.0.30.0/24, fd00:30::/64), guest (10.0.40.0/24)',
      'X-Forwarded-For believed from: 10.0.20.2/32',
      "browser origins allowed: https://chat.home.arpa (besides this machine's and same-origin)",
    ]);
  });

  it('is what docs/network.md shows for the example', () => {
    const example = loadConfig({ file: examplePath, env: { HOME: '/home/hearth' }, cwd: '/' }).config;
    const docs = readFileSync(fileURLToPath(new URL('../../docs/network.md', import.meta.url)), 'utf8');
    expect(docs).toContain(`\`\`\`\n${exposureReport(example).join('\n')}\n\`\`\``);
  });

  it('describes the embedded default: this machine only, every class, no key from loopback', () => {
    const lines = exposureReport(config({}));
    expect(lines.slice(0, 4)).toEqual([
      'listener default: 127.0.0.1:11434 (loopback address)',
      '  serves inference, ui, workflows, jobs, admin, metrics',
      '  admits zone loopback (127.0.0.0/8, ::1/128); every other peer is dropped at accept',
      '  auth: API key (Bearer, with the class as scope) required for inference, workflows, jobs, admin, except from loopback; ui: the UI’s sign-in; metrics: no key',
    ]);
    expect(lines).toContain('denied everywhere: no zone');
    expect(lines).toContain('X-Forwarded-For believed from: nobody (no trustedProxies)');
  });
});

describe('binding', () => {
  it('refuses 0.0.0.0 without allowPublicBind, saying why and how to override', () => {
    const cfg = config({ listeners: [{ name: 'lan', address: '0.0.0.0:11434', zones: ['loopback'] }] });
    let thrown: unknown;
    try {
      assertExposureAllowed(cfg);
    } catch (err) {
      thrown = err;
    }
    expect(isHearthError(thrown, 'NET_EXPOSURE_REFUSED')).toBe(true);
    const message = (thrown as Error).message;
    expect(message).toContain('listeners[0] ("lan"): refusing to bind 0.0.0.0:11434 is a wildcard address');
    expect(message).toContain('set allowPublicBind: true');
    expect(message).toContain('HEARTH_ALLOW_PUBLIC_BIND=true');
  });

  it('refuses :: and public addresses too, but not private, unique-local or loopback ones', () => {
    const listeners = [
      { name: 'v6any', address: '[::]:1', zones: ['loopback'] },
      { name: 'public', address: '203.0.113.5:2', zones: ['loopback'] },
      { name: 'public6', address: '[2001:db8::5]:3', zones: ['loopback'] },
      { name: 'lan', address: '10.0.20.5:4', zones: ['loopback'] },
      { name: 'ula', address: '[fd00:20::5]:5', zones: ['loopback'] },
      { name: 'local', address: '[::1]:6', zones: ['loopback'] },
      { name: 'tailnet', address: '100.101.1.1:7', zones: ['loopback'] },
    ];
    const { problems } = assessExposure(config({ listeners }));
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual([
      'listeners[0] ("v6any")',
      'listeners[1] ("public")',
      'listeners[2] ("public6")',
    ]);
    expect(problems[1]).toContain('203.0.113.5:2 is a public address');
  });

  it('binds a wildcard with allowPublicBind, warning loudly', () => {
    const cfg = config({
      allowPublicBind: true,
      listeners: [{ name: 'lan', address: '0.0.0.0:11434', zones: ['loopback'] }],
    });
    const warnings = assertExposureAllowed(cfg);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^EXPOSED: listeners\[0\] \("lan"\): 0\.0\.0\.0:11434 is a wildcard address/);
    expect(exposureReport(cfg)[0]).toBe('listener lan: 0.0.0.0:11434 (WILDCARD: every interface)');
  });

  it('warns when an allowed zone includes public addresses', () => {
    const cfg = config({
      zones: { world: ['0.0.0.0/0'] },
      listeners: [{ name: 'lan', address: '10.0.0.5:1', zones: ['world'] }],
    });
    expect(assessExposure(cfg).warnings).toEqual([
      'listeners[0] ("lan"): zone "world" includes public addresses (0.0.0.0/0): peers on the internet in it would be admitted if they can route here',
    ]);
  });
});

describe('admin', () => {
  it('defaults adminZones to mgmt when such a zone exists, else to none', () => {
    expect(config({ zones }).adminZones).toEqual(['mgmt']);
    expect(config({ zones: { servers: ['10.0.20.0/24'] } }).adminZones).toEqual([]);
    expect(config({ zones, adminZones: [] }).adminZones).toEqual([]);
    expect(config({ zones, adminZones: ['servers'] }).adminZones).toEqual(['servers']);
  });

  it('refuses a listener serving admin to a zone outside adminZones and loopback', () => {
    const cfg = config({
      zones,
      listeners: [
        { name: 'ok', address: '10.0.99.5:1', zones: ['mgmt', 'loopback'], serves: ['admin'] },
        { name: 'bad', address: '10.0.20.5:1', zones: ['servers', 'mgmt'], serves: ['inference', 'admin'] },
        { name: 'api', address: '10.0.20.5:2', zones: ['servers'], serves: ['inference'] },
      ],
    });
    expect(() => assertExposureAllowed(cfg)).toThrow(
      'listeners[1] ("bad"): serves admin to zone "servers", but admin (model pulls and deletes, keys) is served only to adminZones (mgmt) and loopback',
    );
    expect(assessExposure(cfg).problems).toHaveLength(1);
  });

  it('lets the default listener serve admin to loopback with no admin zone at all', () => {
    expect(assessExposure(config({})).problems).toEqual([]);
  });
});
