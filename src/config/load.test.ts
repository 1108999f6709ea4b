import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HearthError, isHearthError } from '../errors.js';
import { envSettings, envVariableName } from './env.js';
import { configFromObject, embeddedDbDir, type LoadedConfig, loadConfig } from './load.js';
import { allowedKeysAt, configLeaves } from './schema.js';

let dir: string;
let home: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-config-'));
  home = join(dir, 'home');
  mkdirSync(home);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a config file in the temp dir and returns its path. */
function writeConfig(text: string, name = 'hearth.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The problems of a CONFIG_INVALID error (fails the test if anything else happens). */
function problemsOf(load: () => LoadedConfig): string[] {
  try {
    load();
  } catch (err) {
    expect(isHearthError(err, 'CONFIG_INVALID'), String(err)).toBe(true);
    const problems = (err as HearthError).details?.problems as string[];
    // The message lists the same problems, one per line.
    for (const problem of problems) expect((err as HearthError).message).toContain(`\n  ${problem}`);
    return problems;
  }
  throw new Error('expected CONFIG_INVALID');
}

const fromYaml = (text: string, env: NodeJS.ProcessEnv = {}) =>
  problemsOf(() => loadConfig({ file: writeConfig(text), env: { HOME: home, ...env }, cwd: dir }));

describe('loadConfig: sources', () => {
  it('without a file gives the documented defaults, with XDG-style locations under HOME', () => {
    const { config, source, warnings } = loadConfig({ env: { HOME: home }, cwd: dir });
    expect(source).toBeNull();
    expect(warnings).toEqual([]);
    expect(config.atlas).toEqual({ database: 'embedded', files: join(home, '.local/share/hearth/atlas') });
    expect(config.node).toMatchObject({
      cacheDir: join(home, '.cache/hearth'),
      cacheMaxBytes: 20 * 2 ** 30,
      gpu: 'auto',
      gpuFallback: 'cpu',
      threads: 0,
    });
    expect(config.node.id).toBe(
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 63),
    );
    expect(config.log).toEqual({ level: 'info', format: 'json' });
    expect(config.server).toEqual({ shutdownTimeout: 30_000, bodyLimit: 100 * 2 ** 20 });
    expect(config.inference).toMatchObject({ keepAlive: 300_000, maxLoadedModels: 0, numParallel: 4, maxQueue: 512 });
    expect(config.zones).toEqual({ loopback: ['127.0.0.0/8', '::1/128'] });
    expect(config.allowPublicBind).toBe(false);
    expect(config.listeners).toEqual([
      {
        name: 'default',
        address: '127.0.0.1:11434',
        zones: ['loopback'],
        serves: ['inference', 'ui', 'workflows', 'jobs', 'admin', 'metrics'],
        auth: 'loopback-exempt',
        hosts: [],
      },
    ]);
    expect(embeddedDbDir(config)).toBe(join(home, '.local/share/hearth/atlas/.hearth/db'));
  });

  it('honours XDG_DATA_HOME and XDG_CACHE_HOME when absolute', () => {
    const env = { HOME: home, XDG_DATA_HOME: join(dir, 'data'), XDG_CACHE_HOME: join(dir, 'cache') };
    const { config } = loadConfig({ env, cwd: dir });
    expect(config.atlas.files).toBe(join(dir, 'data/hearth/atlas'));
    expect(config.node.cacheDir).toBe(join(dir, 'cache/hearth'));
    const relative = loadConfig({ env: { HOME: home, XDG_DATA_HOME: 'data' }, cwd: dir }).config;
    expect(relative.atlas.files).toBe(join(home, '.local/share/hearth/atlas'));
  });

  it('finds the file from --config, then HEARTH_CONFIG, then ./hearth.yaml', () => {
    const named = writeConfig('log: { level: debug }\n', 'named.yaml');
    const fromEnv = writeConfig('log: { level: warn }\n', 'env.yaml');
    writeConfig('log: { level: error }\n');
    const env = { HOME: home, HEARTH_CONFIG: 'env.yaml' };
    expect(loadConfig({ file: 'named.yaml', env, cwd: dir })).toMatchObject({
      source: named,
      config: { log: { level: 'debug' } },
    });
    expect(loadConfig({ env, cwd: dir })).toMatchObject({ source: fromEnv, config: { log: { level: 'warn' } } });
    expect(loadConfig({ env: { HOME: home }, cwd: dir })).toMatchObject({
      source: join(dir, 'hearth.yaml'),
      config: { log: { level: 'error' } },
    });
  });

  it('refuses a named file that does not exist (CONFIG_NOT_FOUND), naming the path and who named it', () => {
    const missing = join(dir, 'nope.yaml');
    expect(() => loadConfig({ file: missing, env: { HOME: home }, cwd: dir })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_NOT_FOUND',
        message: expect.stringContaining(`${missing} does not exist (named by --config)`),
      }),
    );
    expect(() => loadConfig({ env: { HOME: home, HEARTH_CONFIG: missing }, cwd: dir })).toThrow(
      expect.objectContaining({ code: 'CONFIG_NOT_FOUND', message: expect.stringContaining('named by HEARTH_CONFIG') }),
    );
  });

  it('reports YAML syntax errors with file, line and column', () => {
    const path = writeConfig('node:\n  id: gpu1\n  id: gpu2\nlog: [info\n');
    try {
      loadConfig({ file: path, env: { HOME: home }, cwd: dir });
      expect.unreachable();
    } catch (err) {
      expect(isHearthError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toContain(`invalid YAML in ${path}`);
      expect((err as Error).message).toMatch(new RegExp(`${path}:3:3: Map keys must be unique`));
      expect((err as Error).message).toMatch(new RegExp(`${path}:\\d+:\\d+: .*(flow|sequence|\\])`, 'i'));
    }
  });

  it('treats an empty file and empty sections as defaults, and refuses a file that is not a mapping', () => {
    expect(loadConfig({ file: writeConfig(''), env: { HOME: home }, cwd: dir }).config.log.level).toBe('info');
    expect(loadConfig({ file: writeConfig('log:\nnode:\n'), env: { HOME: home }, cwd: dir }).config.log.level).toBe(
      'info',
    );
    expect(fromYaml('- a\n- b\n')).toEqual([
      '(top level): expected a mapping of settings (atlas:, node:, listeners:, ...), got a list',
    ]);
  });

  it('resolves relative paths in the file against its folder, and in the environment against the cwd', () => {
    mkdirSync(join(dir, 'etc'));
    const path = join(dir, 'etc', 'hearth.yaml');
    writeFileSync(path, 'atlas: { files: ../atlas }\nnode: { cacheDir: ~/cache }\n');
    const fromFile = loadConfig({ file: path, env: { HOME: home }, cwd: '/' }).config;
    expect(fromFile.atlas.files).toBe(join(dir, 'atlas'));
    expect(fromFile.node.cacheDir).toBe(join(home, 'cache'));
    const fromEnv = loadConfig({ file: path, env: { HOME: home, HEARTH_ATLAS_FILES: 'data' }, cwd: join(dir, 'etc') });
    expect(fromEnv.config.atlas.files).toBe(join(dir, 'etc', 'data'));
  });

  it('layers defaults <- file <- environment, key by key', () => {
    const path = writeConfig(
      [
        'log: { level: debug, format: pretty }',
        'inference: { keepAlive: 10m, numParallel: 2 }',
        'node: { gpu: cuda }',
      ].join('\n'),
    );
    const { config } = loadConfig({
      file: path,
      env: { HOME: home, HEARTH_LOG_LEVEL: 'warn', HEARTH_INFERENCE_KEEP_ALIVE: '-1', HEARTH_NODE_THREADS: '8' },
      cwd: dir,
    });
    expect(config.log).toEqual({ level: 'warn', format: 'pretty' }); // env beats file; file beats default
    expect(config.inference.keepAlive).toBe(-1); // negative keep-alive = forever
    expect(config.inference.numParallel).toBe(2);
    expect(config.node.gpu).toBe('cuda');
    expect(config.node.threads).toBe(8);
    expect(config.inference.maxQueue).toBe(512);
  });

  it('configFromObject validates an object like the file, ignoring process.env unless given an env', () => {
    const { config } = configFromObject(
      { atlas: { files: join(dir, 'atlas') }, node: { id: 'test-node', cacheDir: 'cache' } },
      { cwd: dir },
    );
    expect(config.atlas.files).toBe(join(dir, 'atlas'));
    expect(config.node).toMatchObject({ id: 'test-node', cacheDir: join(dir, 'cache') });
    expect(() => configFromObject({ log: { level: 'loud' } })).toThrow(HearthError);
  });
});

describe('loadConfig: environment overrides', () => {
  it('maps every scalar setting to HEARTH_<PATH> in UPPER_SNAKE, with no two settings sharing a variable', () => {
    const byVariable = new Map(envSettings().map((s) => [s.variable, s.path.join('.')]));
    expect(byVariable.size).toBe(envSettings().length);
    expect(byVariable.get('HEARTH_ATLAS_DATABASE')).toBe('atlas.database');
    expect(byVariable.get('HEARTH_ATLAS_FILES')).toBe('atlas.files');
    expect(byVariable.get('HEARTH_NODE_ID')).toBe('node.id');
    expect(byVariable.get('HEARTH_NODE_CACHE_DIR')).toBe('node.cacheDir');
    expect(byVariable.get('HEARTH_NODE_CACHE_MAX_BYTES')).toBe('node.cacheMaxBytes');
    expect(byVariable.get('HEARTH_LOG_LEVEL')).toBe('log.level');
    expect(byVariable.get('HEARTH_INFERENCE_KEEP_ALIVE')).toBe('inference.keepAlive');
    expect(byVariable.get('HEARTH_ALLOW_PUBLIC_BIND')).toBe('allowPublicBind');
    expect(byVariable.get('HEARTH_TRUSTED_PROXIES')).toBe('trustedProxies');
    expect(byVariable.has('HEARTH_HOST')).toBe(false);
    expect(envVariableName(['server', 'shutdownTimeout'])).toBe('HEARTH_SERVER_SHUTDOWN_TIMEOUT');
    // Every scalar leaf of the schema has a variable.
    expect([...byVariable.values()].sort()).toEqual(
      configLeaves()
        .map((l) => l.path.join('.'))
        .sort(),
    );
  });

  it('coerces numbers, booleans, sizes, durations and comma-separated lists from strings', () => {
    const { config } = loadConfig({
      env: {
        HOME: home,
        HEARTH_NODE_CACHE_MAX_BYTES: '1TiB',
        HEARTH_SERVER_BODY_LIMIT: '1048576',
        HEARTH_SERVER_SHUTDOWN_TIMEOUT: '90',
        HEARTH_INFERENCE_MAX_QUEUE: '64',
        HEARTH_ALLOW_PUBLIC_BIND: 'yes',
        HEARTH_ORIGINS: 'http://chat.lan:8080, https://app.lan',
        HEARTH_TRUSTED_PROXIES: '10.0.20.2,fd00::2',
        HEARTH_LOG_FORMAT: '', // empty = unset
      },
      cwd: dir,
    });
    expect(config.node.cacheMaxBytes).toBe(2 ** 40);
    expect(config.server).toEqual({ bodyLimit: 1048576, shutdownTimeout: 90_000 });
    expect(config.inference.maxQueue).toBe(64);
    expect(config.allowPublicBind).toBe(true);
    expect(config.origins).toEqual(['http://chat.lan:8080', 'https://app.lan']);
    expect(config.trustedProxies).toEqual(['10.0.20.2/32', 'fd00::2/128']);
    expect(config.log.format).toBe('json');
  });

  it('names the variable (and the key) when an environment value is wrong', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: { HOME: home, HEARTH_LOG_LEVEL: 'loud', HEARTH_NODE_THREADS: 'four', HEARTH_ALLOW_PUBLIC_BIND: 'maybe' },
        cwd: dir,
      }),
    );
    expect(problems).toEqual([
      'HEARTH_NODE_THREADS (node.threads): expected a number, got "four"',
      'HEARTH_LOG_LEVEL (log.level): "loud" is not allowed; allowed: trace, debug, info, warn, error, fatal, silent',
      'HEARTH_ALLOW_PUBLIC_BIND (allowPublicBind): expected true or false, got "maybe"',
    ]);
  });

  it('warns about unknown HEARTH_* variables (with a suggestion) but not about known non-settings', () => {
    const { warnings } = loadConfig({
      env: {
        HOME: home,
        HEARTH_NODE_CACHEDIR: '/x',
        HEARTH_WIDGETS: '1',
        HEARTH_DEBUG: '1',
        HEARTH_TEST_PG: 'x',
        OTHER: '1',
      },
      cwd: dir,
    });
    expect(warnings).toEqual([
      'HEARTH_NODE_CACHEDIR is not a hearth setting and is ignored (did you mean "HEARTH_NODE_CACHE_DIR"?)',
      'HEARTH_WIDGETS is not a hearth setting and is ignored',
    ]);
  });

  it('HEARTH_HOST moves the default listener, Ollama-style', () => {
    const listen = (value: string) =>
      loadConfig({ env: { HOME: home, HEARTH_HOST: value }, cwd: dir }).config.listeners.map((l) => l.address);
    expect(listen(':9000')).toEqual(['127.0.0.1:9000']);
    expect(listen('127.0.0.2')).toEqual(['127.0.0.2:11434']);
    expect(listen('http://[::1]:8080/')).toEqual(['[::1]:8080']);
    expect(listen('localhost:1234')).toEqual(['127.0.0.1:1234']);
    const moved = loadConfig({ env: { HOME: home, HEARTH_HOST: '0.0.0.0:11434' }, cwd: dir });
    expect(moved.config.listeners[0]).toMatchObject({ name: 'default', zones: ['loopback'], auth: 'loopback-exempt' });
    expect(moved.warnings).toEqual([
      expect.stringMatching(/^HEARTH_HOST=0.0.0.0:11434: the default listener admits only the loopback zone/),
    ]);
    expect(problemsOf(() => loadConfig({ env: { HOME: home, HEARTH_HOST: 'https://gpu1:443' }, cwd: dir }))).toEqual([
      'HEARTH_HOST: "https://gpu1:443": hearth serves plain http (put TLS in a reverse proxy); use host:port or http://host:port',
    ]);
    expect(problemsOf(() => loadConfig({ env: { HOME: home, HEARTH_HOST: ':99999' }, cwd: dir }))[0]).toMatch(
      /^HEARTH_HOST: ":99999": port "99999" is out of range/,
    );
  });

  it('HEARTH_HOST is ignored, with a warning, when the file defines listeners', () => {
    const path = writeConfig('listeners: [{ name: a, address: "127.0.0.1:8000", zones: [loopback] }]\n');
    const { config, warnings } = loadConfig({ file: path, env: { HOME: home, HEARTH_HOST: ':9000' }, cwd: dir });
    expect(config.listeners.map((l) => l.address)).toEqual(['127.0.0.1:8000']);
    expect(warnings).toEqual(['HEARTH_HOST is ignored: the config file defines listeners; set their addresses there']);
  });
});

describe('loadConfig: validation', () => {
  it('refuses unknown keys, listing the allowed ones and the line', () => {
    // The allowed lists come from the schema, which grows with every feature.
    expect(fromYaml('node:\n  cachDir: /x\nlogging: {}\n')).toEqual([
      `node.cachDir: unknown key; allowed: ${allowedKeysAt(['node'])!.join(', ')} (did you mean "cacheDir"?) (line 2)`,
      `logging: unknown key; allowed: ${allowedKeysAt([])!.join(', ')} (line 3)`,
    ]);
    expect(allowedKeysAt([])).toEqual(
      expect.arrayContaining(['atlas', 'node', 'log', 'server', 'inference', 'listeners']),
    );
    expect(fromYaml('listeners:\n  - { name: a, address: "127.0.0.1:1", zones: [loopback], port: 2 }\n')).toEqual([
      'listeners[0].port: unknown key; allowed: name, address, zones, serves, auth, hosts (line 2)',
    ]);
  });

  it('refuses wrong types and impossible values, naming key, value and what is allowed', () => {
    const problems = fromYaml(
      [
        'atlas: { database: "mysql://root:hunter2@db/hearth" }',
        'node: { cacheMaxBytes: -5, threads: 1.5, gpu: rocm, id: "my node" }',
        'log: { format: xml }',
        'server: { shutdownTimeout: -1s, bodyLimit: 20G }',
        'inference: { numParallel: 0, keepAlive: soon }',
        'allowPublicBind: "yes"',
        'deny: user',
      ].join('\n'),
    );
    expect(problems).toEqual([
      'atlas.database: "mysql://root:***@db/hearth" is not allowed; use embedded or a postgres:// (postgresql://) URL (line 1)',
      'node.id: "my node" is not a valid node id; use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit (line 2)',
      `node.cacheMaxBytes: -5: a size cannot be negative; use a whole number of bytes or a number with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 20GiB) (line 2)`,
      'node.gpu: "rocm" is not allowed; allowed: auto, cuda, vulkan, metal, cpu (line 2)',
      'node.threads: expected a whole number, got 1.5 (line 2)',
      'log.format: "xml" is not allowed; allowed: json, pretty (line 3)',
      'server.shutdownTimeout: "-1s": this duration cannot be negative; use a number of seconds or a string like 500ms, 30s, 5m, 1h or 1h30m (line 4)',
      'server.bodyLimit: "20G" is not a byte size; use a whole number of bytes or a number with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 20GiB) (line 4)',
      'inference.keepAlive: "soon" is not a duration; use a number of seconds or a string like 500ms, 30s, 5m, 1h or 1h30m (line 5)',
      'inference.numParallel: 0 is too small; allowed: 1 or more (line 5)',
      'deny: expected a list, got "user" (line 7)',
      'allowPublicBind: expected true or false, got "yes" (line 6)',
    ]);
    // The database password never reaches the message.
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('refuses malformed CIDRs, bad zone names and redefining loopback', () => {
    expect(
      fromYaml(
        'zones:\n  servers: [10.0.0.0/33, 300.1.1.1/8]\n  loopback: [10.1.0.0/16]\n  "bad zone": [10.2.0.0/16]\n  empty: []\ntrustedProxies: [proxy.lan]\n',
      ),
    ).toEqual([
      'zones.servers[0]: "10.0.0.0/33": the prefix length must be 0-32 for an IPv4 address (line 2)',
      'zones.servers[1]: "300.1.1.1/8": "300.1.1.1" is not an IP address; use a CIDR block like 10.0.20.0/24 or fd00:20::/64 (line 2)',
      'zones.loopback: "loopback" is built in (127.0.0.0/8, ::1/128) and cannot be redefined; choose another name (line 3)',
      'zones.bad zone: "bad zone" is not a valid zone name; use up to 32 letters, digits, "_" or "-", starting with a letter (line 4)',
      'zones.empty: needs at least 1 entry (line 5)',
      'trustedProxies[0]: "proxy.lan": "proxy.lan" is not an IP address; use a CIDR block like 10.0.20.0/24 or fd00:20::/64 (line 6)',
    ]);
  });

  it('refuses listener problems: bad address, port range, unknown class, bad host, no listeners', () => {
    expect(
      fromYaml(
        [
          'listeners:',
          '  - { name: a, address: "10.0.20.5:70000", zones: [loopback], serves: [inference, chat] }',
          '  - { name: b, address: "gpu1.lan:11434", zones: [loopback], hosts: ["gpu1.lan:80"] }',
          '  - { name: c, address: "10.0.20.5:1", zones: [] }',
        ].join('\n'),
      ),
    ).toEqual([
      'listeners[0].address: "10.0.20.5:70000": port "70000" is out of range; use 1-65535 (0 = any free port) (line 2)',
      'listeners[0].serves[1]: "chat" is not allowed; allowed: inference, ui, workflows, jobs, admin, metrics (line 2)',
      'listeners[1].address: "gpu1.lan:11434": "gpu1.lan" is not an IP address; listeners bind an address, not a name; use host:port with an IP address, e.g. 10.0.20.5:11434 or [::1]:11434 (line 3)',
      'listeners[1].hosts[0]: "gpu1.lan:80" is not a host name; use a name like hearth.lan or an IP address, without a port (line 3)',
      'listeners[2].zones: needs at least 1 entry (line 4)',
    ]);
    expect(fromYaml('listeners: []\n')).toEqual(['listeners: needs at least 1 entry (line 1)']);
  });

  it('refuses references to undefined zones, denied zones on listeners, and duplicate names and addresses', () => {
    const problems = fromYaml(
      [
        'zones: { servers: [10.0.20.0/24], user: [10.0.30.0/24], guest: [10.0.40.0/24] }',
        'deny: [user, guests]',
        'adminZones: [mgmt]',
        'listeners:',
        '  - { name: lan, address: "10.0.20.5:11434", zones: [servers, user, srvers] }',
        '  - { name: lan, address: "10.0.20.5:11434", zones: [loopback] }',
        '  - { name: any, address: "[::]:11434", zones: [loopback] }',
        '  - { name: t1, address: "127.0.0.1:0", zones: [loopback] }',
        '  - { name: t2, address: "127.0.0.1:0", zones: [loopback] }',
      ].join('\n'),
    );
    expect(problems).toEqual([
      'deny[1]: "guests" names no zone; defined zones: loopback, servers, user, guest (did you mean "guest"?) (line 2)',
      'adminZones[0]: "mgmt" names no zone; defined zones: loopback, servers, user, guest (line 3)',
      'listeners[0].zones[1]: "user" is allowed on listener "lan" but denied (deny); remove it from one of them (line 5)',
      'listeners[0].zones[2]: "srvers" names no zone; defined zones: loopback, servers, user, guest (did you mean "servers"?) (line 5)',
      'listeners[1].name: "lan" is already the name of listeners[0]; listener names must be unique (line 6)',
      'listeners[1].address: 10.0.20.5:11434 is already used by listeners[0] ("lan"); each listener needs its own address:port (line 6)',
      'listeners[2].address: [::]:11434 overlaps listeners[0] ("lan") at 10.0.20.5:11434: a wildcard address takes the port on every interface; use another port (line 7)',
    ]);
  });

  it('lists cross-key problems together with single-key ones', () => {
    const problems = fromYaml('log: { level: loud }\ndeny: [nobody]\n');
    expect(problems).toEqual([
      'log.level: "loud" is not allowed; allowed: trace, debug, info, warn, error, fatal, silent (line 1)',
      'deny[0]: "nobody" names no zone; defined zones: loopback (line 2)',
    ]);
  });

  it('says how many problems there are and in which file', () => {
    const path = writeConfig('log: { level: loud, format: xml }\n');
    expect(() => loadConfig({ file: path, env: { HOME: home }, cwd: dir })).toThrow(
      `invalid configuration in ${path} (2 problems):\n  log.level:`,
    );
  });
});
