// The zone model in real Linux network namespaces: the house's VLANs (servers, mgmt, user, guest)
// are namespaces on a bridge, and two hearth processes run in the "host" namespace on listeners
// inside it, sharing one Atlas (a real PostgreSQL database). Needs root and iproute2; fails loudly
// without them. Only addresses inside these namespaces (10.231.0.0/16, fd31:231::/32) and loopback are used.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { testEngineDir } from './support/engine.js';
import { type HearthDirs, hearthDirs, REPO_ROOT } from './support/hearth.js';
import {
  createNetnsLab,
  type NetnsLab,
  type RawOutcome,
  type RawRequest,
  removeStaleNamespaces,
  requestsFrom,
  requireNetnsSupport,
  writeRawClient,
} from './support/netns.js';
import { createTestDatabase, sharedPostgresUrl, withAdmin } from './support/postgres.js';

const BIN = join(REPO_ROOT, 'bin', 'hearth.js');
const VLANS = [
  { name: 'servers', octet: 20 },
  { name: 'mgmt', octet: 99 },
  { name: 'user', octet: 30 },
  { name: 'guest', octet: 40 },
];
// Ports of the two hearth processes (one namespace, so they differ).
const NODE_A = { servers: 11434, servers6: 11435, lan: 11436, mgmt: 11437 };
const NODE_B = { servers: 11534, servers6: 11535, lan: 11536, mgmt: 11537 };

interface RunningHearth {
  child: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

let lab: NetnsLab | undefined;
let dirs: HearthDirs | undefined;
let database: { url: string; drop(): Promise<void> } | undefined;
const running: RunningHearth[] = [];
let client = '';
let inferenceKey = '';
let adminKey = '';
let a: RunningHearth;

beforeAll(async () => {
  requireNetnsSupport();
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before these tests (`npm test` does)');
  }
  await removeStaleNamespaces();
  lab = await createNetnsLab(VLANS);
  dirs = await hearthDirs('hearth-zones-');
  client = await writeRawClient(dirs.root);
  database = await createTestDatabase(sharedPostgresUrl());
  // hearth runs in its own namespace, where the test server's 127.0.0.1 is not: reach it by its unix socket.
  const socketDir = await withAdmin(sharedPostgresUrl(), async (admin) => {
    const { rows } = await admin.query<{ unix_socket_directories: string }>('show unix_socket_directories');
    return (rows[0]?.unix_socket_directories ?? '').split(',')[0]?.trim() ?? '';
  });
  const viaSocket = new URL(database.url);
  viaSocket.searchParams.set('host', socketDir);

  // Keys are made with the real CLI, straight against Atlas (no server needed for that).
  const keysEnv = {
    HEARTH_ATLAS_DATABASE: database.url,
    HEARTH_ATLAS_FILES: dirs.atlas,
    HEARTH_NODE_CACHE_DIR: dirs.cache,
  };
  const [inference, admin] = await Promise.all([
    hearthCli(['keys', 'create', '--name', 'n8n', '--scopes', 'inference'], keysEnv),
    hearthCli(['keys', 'create', '--name', 'ops', '--scopes', 'admin', '--expires', '90d'], keysEnv),
  ]);
  inferenceKey = inference.stdout.trim();
  adminKey = admin.stdout.trim();
  expect(inferenceKey).toMatch(/^hth_/);

  // One after the other: two nodes starting at once on a fresh database can deadlock in the job
  // queue's own schema set-up (pg-boss), which is not what this file tests. node-b only needs to
  // run: the tests reach it by its ports.
  a = await startInHost('node-a', NODE_A, viaSocket.toString());
  await startInHost('node-b', NODE_B, viaSocket.toString());
  // Two hearth starts and two CLI runs: generous, for a loaded CI machine.
}, 240_000);

afterAll(async () => {
  await Promise.allSettled(running.map((h) => h.stop()));
  await lab?.destroy();
  await database?.drop();
  await dirs?.cleanup();
});

function config(nodeId: string, ports: typeof NODE_A, databaseUrl: string, d: HearthDirs) {
  const at = (vlan: string, port: number, family: 4 | 6 = 4) =>
    family === 4 ? `${lab!.hostAddress(vlan)}:${port}` : `[${lab!.hostAddress(vlan, 6)}]:${port}`;
  return {
    atlas: { database: databaseUrl, files: d.atlas },
    node: { id: nodeId, cacheDir: join(d.cache, nodeId), threads: 1, engineDir: testEngineDir() },
    log: { level: 'info' },
    zones: {
      mgmt: ['10.231.99.0/24', 'fd31:231:99::/64'],
      servers: ['10.231.20.0/24', 'fd31:231:20::/64'],
      user: ['10.231.30.0/24', 'fd31:231:30::/64'],
      guest: ['10.231.40.0/24', 'fd31:231:40::/64'],
      lan: ['10.231.0.0/16'], // covers every VLAN: deny must still win for user and guest
    },
    deny: ['user', 'guest'],
    adminZones: ['mgmt'],
    listeners: [
      {
        name: 'servers',
        address: at('servers', ports.servers),
        zones: ['servers'],
        serves: ['inference', 'ui', 'workflows', 'jobs', 'metrics'],
        auth: 'required',
      },
      {
        name: 'servers6',
        address: at('servers', ports.servers6, 6),
        zones: ['servers'],
        serves: ['inference'],
        auth: 'required',
      },
      { name: 'lan', address: at('servers', ports.lan), zones: ['lan'], serves: ['inference'], auth: 'required' },
      {
        name: 'mgmt',
        address: at('mgmt', ports.mgmt),
        zones: ['mgmt'],
        serves: ['admin', 'metrics'],
        auth: 'required',
      },
    ],
  };
}

async function startInHost(nodeId: string, ports: typeof NODE_A, databaseUrl: string): Promise<RunningHearth> {
  const d = dirs!;
  const file = join(d.root, `${nodeId}.yaml`);
  await mkdir(d.home, { recursive: true });
  await writeFile(file, stringify(config(nodeId, ports, databaseUrl, d)));
  const child = spawn('ip', ['netns', 'exec', lab!.host, process.execPath, BIN, 'serve'], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: d.home,
      HEARTH_CONFIG: file,
      NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: d.root,
  });
  let logs = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Never leave a hearth running inside a namespace if this process dies first.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const hearth: RunningHearth = {
    child,
    logs: () => logs,
    stop: async () => {
      process.removeListener('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
  running.push(hearth);
  child.stdout?.resume();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${nodeId} did not start within 120 s; logs:\n${logs}`)), 120_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      logs += chunk.toString();
      if (/"urls":\[/.test(logs)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${nodeId} exited before it was ready; logs:\n${logs}`));
    });
  });
  return hearth;
}

function hearthCli(args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env['PATH'] ?? '', HOME: dirs!.home, ...env }, timeout: 120_000, encoding: 'utf8' },
      (err, stdout, stderr) =>
        err ? reject(new Error(`hearth ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

const req = (
  vlan: string,
  port: number,
  path: string,
  extra: Partial<RawRequest> = {},
  family: 4 | 6 = 4,
): RawRequest => ({
  host: lab!.hostAddress(vlan, family),
  port,
  path,
  ...extra,
});
const withKey = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const from = <const R extends readonly RawRequest[]>(vlan: string, requests: R) =>
  requestsFrom(lab?.vlans[vlan] ?? '', client, requests);

function expectDropped(outcomes: RawOutcome[]): void {
  for (const outcome of outcomes) {
    // The kernel completes the handshake; hearth then closes it unread: no HTTP byte ever comes back.
    expect(outcome).toMatchObject({ received: 0 });
    expect(outcome.status).toBeUndefined();
    expect(outcome.error === undefined || outcome.error === 'ECONNRESET' || outcome.error === 'EPIPE').toBe(true);
  }
}

describe('zones in real network namespaces', () => {
  it('drops user and guest peers on every listener before any HTTP, and logs the drops', async () => {
    const everyListener = (ports: typeof NODE_A, key: string) => [
      req('servers', ports.servers, '/api/tags', withKey(key)),
      req('servers', ports.lan, '/api/tags', withKey(key)), // lan covers user and guest, deny wins
      req('mgmt', ports.mgmt, '/api/keys', withKey(key)),
      req('servers', ports.servers6, '/api/tags', withKey(key), 6),
    ];
    const [user, guest] = await Promise.all([
      from('user', everyListener(NODE_A, inferenceKey)),
      from('guest', everyListener(NODE_A, adminKey)),
    ]);
    expectDropped(user);
    expectDropped(guest);
    expect(user.every((o) => o.connected)).toBe(true);
    // Logged, but rate-limited: one line per listener for this burst of eight drops.
    const dropLinesOf = () =>
      a
        .logs()
        .split('\n')
        .filter((line) => line.includes('dropped a connection'));
    // The log reaches this process through a pipe: give it a moment.
    for (let waited = 0; dropLinesOf().length < 4 && waited < 5_000; waited += 50) await sleep(50);
    const dropLines = dropLinesOf();
    const listeners = dropLines.map((line) => JSON.parse(line) as { listener: string; peer: string; reason: string });
    expect(listeners.map((l) => l.listener).sort()).toEqual(['lan', 'mgmt', 'servers', 'servers6']);
    for (const line of listeners) {
      expect(line.reason).toBe('denied');
      expect(['10.231.30.10', '10.231.40.10', 'fd31:231:30::10', 'fd31:231:40::10']).toContain(line.peer);
    }
    expect(dropLines[0]).toMatch(/dropped a connection from \S+: it is in the denied zone \\"(user|guest)\\"/);
  });

  it('drops a servers peer on the mgmt listener, and a mgmt peer on the servers listener', async () => {
    expectDropped(await from('servers', [req('mgmt', NODE_A.mgmt, '/api/keys', withKey(adminKey))]));
    expectDropped(await from('mgmt', [req('servers', NODE_A.servers, '/api/tags', withKey(inferenceKey))]));
  });

  it('gives a servers-zone peer inference (IPv4 and IPv6) and 404 on admin routes', async () => {
    const [tags, tags6, lan, openai, del, keys, pull] = await from('servers', [
      req('servers', NODE_A.servers, '/api/tags', withKey(inferenceKey)),
      req('servers', NODE_A.servers6, '/api/tags', withKey(inferenceKey), 6),
      req('servers', NODE_A.lan, '/api/tags', withKey(inferenceKey)),
      req('servers', NODE_A.servers, '/v1/models', withKey(inferenceKey)),
      req('servers', NODE_A.servers, '/api/delete', { method: 'DELETE', body: { model: 'x' }, ...withKey(adminKey) }),
      req('servers', NODE_A.servers, '/api/keys', withKey(adminKey)),
      req('servers', NODE_A.servers, '/api/pull', { method: 'POST', body: { model: 'x' }, ...withKey(adminKey) }),
    ]);
    expect(tags).toMatchObject({ status: 200, body: { models: [] } });
    expect(tags6).toMatchObject({ status: 200, body: { models: [] } });
    expect(lan).toMatchObject({ status: 200 });
    expect(openai).toMatchObject({ status: 200, body: { object: 'list' } });
    for (const outcome of [del, keys, pull]) {
      expect(outcome).toMatchObject({ status: 404, body: { error: expect.stringMatching(/no such route$/) } });
    }
  });

  it('asks a servers-zone peer without a key for one, in each API family’s shape', async () => {
    const [ollama, openai] = await from('servers', [
      req('servers', NODE_A.servers, '/api/tags'),
      req('servers', NODE_A.servers, '/v1/models'),
    ]);
    expect(ollama).toMatchObject({ status: 401, body: { error: expect.stringContaining('needs an API key') } });
    expect(openai).toMatchObject({
      status: 401,
      body: { error: { type: 'authentication_error', code: 'auth_required' } },
    });
  });

  it('lets a mgmt-zone peer reach admin with an admin key', async () => {
    const [keys, del, noKey] = await from('mgmt', [
      req('mgmt', NODE_A.mgmt, '/api/keys', withKey(adminKey)),
      req('mgmt', NODE_A.mgmt, '/api/delete', { method: 'DELETE', body: { model: 'nope' }, ...withKey(adminKey) }),
      req('mgmt', NODE_A.mgmt, '/api/keys'),
    ]);
    expect(keys.status).toBe(200);
    expect((keys.body as { keys: { name: string }[] }).keys.map((k) => k.name).sort()).toEqual(['n8n', 'ops']);
    expect(JSON.stringify(keys.body)).not.toContain(inferenceKey);
    // The admin route answered (the model does not exist), not the router.
    expect(del.status).toBe(404);
    expect((del.body as { error: string }).error).not.toMatch(/no such route/);
    expect(noKey.status).toBe(401);
  });

  it('answers a key with the wrong scope with 403', async () => {
    const [admin] = await from('mgmt', [req('mgmt', NODE_A.mgmt, '/api/keys', withKey(inferenceKey))]);
    expect(admin).toMatchObject({
      status: 403,
      body: { error: expect.stringContaining('has scope inference, not admin') },
    });
    const [ollama, openai] = await from('servers', [
      req('servers', NODE_A.servers, '/api/tags', withKey(adminKey)),
      req('servers', NODE_A.servers, '/v1/models', withKey(adminKey)),
    ]);
    expect(ollama).toMatchObject({
      status: 403,
      body: { error: expect.stringContaining('has scope admin, not inference') },
    });
    expect(openai).toMatchObject({
      status: 403,
      body: { error: { type: 'permission_error', code: 'auth_forbidden' } },
    });
  });

  it('stops a key revoked through one node on the other node sharing the same Atlas', async () => {
    const created = await from('mgmt', [
      req('mgmt', NODE_A.mgmt, '/api/keys', {
        method: 'POST',
        body: { name: 'laptop', scopes: ['inference'] },
        ...withKey(adminKey),
      }),
    ]);
    expect(created[0]).toMatchObject({ status: 200, body: { name: 'laptop', scopes: ['inference'] } });
    const laptopKey = (created[0].body as { key: string }).key;
    const before = await from('servers', [
      req('servers', NODE_A.servers, '/api/tags', withKey(laptopKey)),
      req('servers', NODE_B.servers, '/api/tags', withKey(laptopKey)),
    ]);
    expect(before.map((o) => o.status)).toEqual([200, 200]);

    const [revoked] = await from('mgmt', [
      req('mgmt', NODE_A.mgmt, '/api/keys/laptop', { method: 'DELETE', ...withKey(adminKey) }),
    ]);
    expect(revoked).toMatchObject({ status: 200, body: { revoked: { name: 'laptop' } } });

    const after = await from('servers', [
      req('servers', NODE_B.servers, '/api/tags', withKey(laptopKey)),
      req('servers', NODE_A.servers, '/api/tags', withKey(laptopKey)),
      req('servers', NODE_B.servers, '/api/tags', withKey(inferenceKey)),
    ]);
    expect(after[0]).toMatchObject({ status: 401, body: { error: expect.stringContaining('has been revoked') } });
    expect(after[1]?.status).toBe(401);
    expect(after[2]?.status).toBe(200); // other keys are untouched
  });
});
