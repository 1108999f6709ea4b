// The HTTP side of access control, through Fastify's inject (which sets the peer address):
// API keys and scopes, each API family's error shape, the loopback exemption, trusted proxies,
// the failed-auth limit, Host and Origin checks. The accept filter is tested with real sockets.
import { connect } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { configFromObject, type ListenerConfig } from '../src/config/index.js';
import { installErrorHandling } from '../src/http/errors.js';
import { guardListenerApp, serviceClassScope } from '../src/http/guard.js';
import { silentLogger } from '../src/log.js';
import { AccessControl } from '../src/net/index.js';
import { captureLog } from './support/log.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

const { config } = configFromObject({
  atlas: { files: '/srv/atlas' },
  node: { id: 'gpu1', cacheDir: '/var/cache/hearth' },
  zones: {
    mgmt: ['10.0.99.0/24'],
    servers: ['10.0.20.0/24', 'fd00:20::/64'],
    user: ['10.0.30.0/24'],
  },
  deny: ['user'],
  trustedProxies: ['10.0.20.2', '127.0.0.1'],
  origins: ['https://chat.home.arpa'],
  listeners: [
    {
      name: 'servers',
      address: '10.0.20.5:11434',
      zones: ['servers', 'loopback'],
      serves: ['inference', 'ui'],
      auth: 'loopback-exempt',
      hosts: ['gpu1.home.arpa'],
    },
    { name: 'mgmt', address: '10.0.99.5:11434', zones: ['mgmt', 'servers'], serves: ['admin'], auth: 'required' },
  ],
});
const listener = (name: string) => config.listeners.find((l) => l.name === name) as ListenerConfig;

let db: AtlasDb;
let dropDb: () => Promise<void>;
let control: AccessControl;
const apps: FastifyInstance[] = [];
let inferenceKey: string;
let adminKey: string;

async function appFor(name: string): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  installErrorHandling(app);
  const guard = control.listener(listener(name));
  guardListenerApp(app, guard);
  const inference = async (scope: FastifyInstance) => {
    scope.get('/api/tags', async () => ({ models: [] }));
    scope.get('/v1/models', { config: { errorShape: 'openai' } }, async () => ({ object: 'list', data: [] }));
  };
  await app.register(serviceClassScope('inference', inference, guard));
  await app.register(
    serviceClassScope('admin', async (scope) => void scope.get('/api/keys', async () => ({ keys: [] })), guard),
  );
  await app.register(serviceClassScope('ui', async (scope) => void scope.get('/ui', async () => 'ui'), guard));
  return app;
}

beforeAll(async () => {
  const made = await createTestDatabase(sharedPostgresUrl());
  dropDb = made.drop;
  db = await openAtlasDb({ database: made.url, embeddedDir: '/nonexistent', log: silentLogger() });
  control = new AccessControl({
    config,
    db,
    log: silentLogger(),
    machineHostname: 'gpu1.home.arpa',
    failedAuth: { maxFailures: 3 },
  });
  inferenceKey = (await control.keys.create({ name: 'n8n', scopes: ['inference'] })).key;
  adminKey = (await control.keys.create({ name: 'admin', scopes: ['admin'] })).key;
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  control?.close();
  await db?.close();
  await dropDb?.();
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('API keys on a listener', () => {
  it('lets a servers-zone client in with a key that has the scope', async () => {
    const app = await appFor('servers');
    const res = await app.inject({ url: '/api/tags', remoteAddress: '10.0.20.7', headers: bearer(inferenceKey) });
    expect(res.statusCode).toBe(200);
    const v6 = await app.inject({ url: '/v1/models', remoteAddress: 'fd00:20::7', headers: bearer(inferenceKey) });
    expect(v6.statusCode).toBe(200);
  });

  it('answers a missing key with 401 in the Ollama shape and in the OpenAI shape', async () => {
    const app = await appFor('servers');
    const ollama = await app.inject({ url: '/api/tags', remoteAddress: '10.0.20.7' });
    expect(ollama.statusCode).toBe(401);
    expect(ollama.headers['www-authenticate']).toBe('Bearer realm="hearth"');
    expect(ollama.json()).toEqual({
      error: expect.stringContaining(
        'listener "servers" needs an API key for inference routes: send "Authorization: Bearer <key>"',
      ),
    });
    const openai = await app.inject({ url: '/v1/models', remoteAddress: '10.0.20.7' });
    expect(openai.statusCode).toBe(401);
    expect(openai.json()).toEqual({
      error: {
        message: expect.stringContaining('needs an API key'),
        type: 'authentication_error',
        param: null,
        code: 'auth_required',
      },
    });
  });

  it('answers a key without the route’s scope with 403, in each family’s shape', async () => {
    const app = await appFor('mgmt');
    const res = await app.inject({ url: '/api/keys', remoteAddress: '10.0.99.7', headers: bearer(inferenceKey) });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toBe(
      'API key "n8n" has scope inference, not admin: use a key with the admin scope (hearth keys create --scopes admin)',
    );
    const servers = await appFor('servers');
    const openai = await servers.inject({ url: '/v1/models', remoteAddress: '10.0.20.7', headers: bearer(adminKey) });
    expect(openai.statusCode).toBe(403);
    expect(openai.json().error).toMatchObject({ type: 'permission_error', code: 'auth_forbidden' });
    const ok = await app.inject({ url: '/api/keys', remoteAddress: '10.0.99.7', headers: bearer(adminKey) });
    expect(ok.statusCode).toBe(200);
  });

  it('does not ask loopback for a key on a loopback-exempt listener, but does on a required one', async () => {
    const servers = await appFor('servers');
    expect((await servers.inject({ url: '/api/tags', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    expect(
      (await servers.inject({ url: '/api/tags', remoteAddress: '::1', headers: bearer('ollama') })).statusCode,
    ).toBe(200);
    const control2 = new AccessControl({ config, db, log: silentLogger() });
    const required = Fastify();
    apps.push(required);
    installErrorHandling(required);
    const guard = control2.listener({ ...listener('servers'), auth: 'required' });
    guardListenerApp(required, guard);
    await required.register(
      serviceClassScope('inference', async (s) => void s.get('/api/tags', async () => ({})), guard),
    );
    expect((await required.inject({ url: '/api/tags', remoteAddress: '127.0.0.1' })).statusCode).toBe(401);
  });

  it('leaves classes without keys (ui) open to admitted peers', async () => {
    const app = await appFor('servers');
    expect((await app.inject({ url: '/ui', remoteAddress: '10.0.20.7' })).statusCode).toBe(200);
  });

  it('rate-limits failed keys per source address with 429 and Retry-After, before checking the key', async () => {
    const app = await appFor('servers');
    const wrong = { ...bearer(`hth_0123456789ab_${'x'.repeat(43)}`) };
    for (let i = 0; i < 3; i++) {
      expect((await app.inject({ url: '/api/tags', remoteAddress: '10.0.20.66', headers: wrong })).statusCode).toBe(
        401,
      );
    }
    const limited = await app.inject({ url: '/api/tags', remoteAddress: '10.0.20.66', headers: bearer(inferenceKey) });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json().error).toMatch(/^too many failed authentications from 10\.0\.20\.66: try again in \d+ s$/);
    const openai = await app.inject({ url: '/v1/models', remoteAddress: '10.0.20.66', headers: bearer(inferenceKey) });
    expect(openai.json().error).toMatchObject({ type: 'rate_limit_error', code: 'auth_rate_limited' });
    // another address is unaffected
    const other = await app.inject({ url: '/api/tags', remoteAddress: '10.0.20.67', headers: bearer(inferenceKey) });
    expect(other.statusCode).toBe(200);
  });
});

describe('forwarded clients', () => {
  it('ignores X-Forwarded-For from an untrusted peer, and gives a loopback peer sending it no exemption', async () => {
    const control2 = new AccessControl({ config: { ...config, trustedProxies: [] }, db, log: silentLogger() });
    const app = Fastify();
    apps.push(app);
    installErrorHandling(app);
    const guard = control2.listener(listener('servers'));
    guardListenerApp(app, guard);
    await app.register(serviceClassScope('inference', async (s) => void s.get('/api/tags', async () => ({})), guard));
    const res = await app.inject({
      url: '/api/tags',
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expect(res.statusCode).toBe(401);
  });

  it('believes a trusted proxy: its forwarded client is who needs the key, and who is rate-limited', async () => {
    const app = await appFor('servers');
    // a local reverse proxy (trusted) forwarding a LAN client: no loopback exemption for that client
    const viaLocalProxy = await app.inject({
      url: '/api/tags',
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '10.0.20.50' },
    });
    expect(viaLocalProxy.statusCode).toBe(401);
    const withKey = await app.inject({
      url: '/api/tags',
      remoteAddress: '10.0.20.2',
      headers: { 'x-forwarded-for': '10.0.30.9, 10.0.20.2', ...bearer(inferenceKey) },
    });
    expect(withKey.statusCode).toBe(200);
  });

  it('refuses admin to a client forwarded from outside the admin zones, even with an admin key', async () => {
    const app = await appFor('mgmt');
    const res = await app.inject({
      url: '/api/keys',
      remoteAddress: '10.0.20.2',
      headers: { 'x-forwarded-for': '10.0.30.9', ...bearer(adminKey) },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toBe(
      'admin is served only to loopback, mgmt; 10.0.30.9 (forwarded by 10.0.20.2) is outside them',
    );
    const fromMgmt = await app.inject({
      url: '/api/keys',
      remoteAddress: '10.0.20.2',
      headers: { 'x-forwarded-for': '10.0.99.8', ...bearer(adminKey) },
    });
    expect(fromMgmt.statusCode).toBe(200);
  });

  it('fails closed on a malformed X-Forwarded-For from a trusted proxy', async () => {
    const app = await appFor('servers');
    const res = await app.inject({
      url: '/api/tags',
      remoteAddress: '10.0.20.2',
      headers: { 'x-forwarded-for': 'unknown' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/X-Forwarded-For from the trusted proxy 10\.0\.20\.2 is malformed/);
  });
});

describe('Host and Origin', () => {
  it('refuses a Host the listener does not know (DNS rebinding), on every route', async () => {
    const app = await appFor('servers');
    for (const url of ['/api/tags', '/ui', '/nowhere']) {
      const res = await app.inject({ url, remoteAddress: '127.0.0.1', headers: { host: 'evil.example:11434' } });
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error).toMatch(/^Host "evil.example:11434" is not a name of listener "servers"/);
    }
    for (const host of ['gpu1.home.arpa:11434', 'localhost:11434', '10.0.20.5:11434']) {
      expect((await app.inject({ url: '/ui', remoteAddress: '10.0.20.7', headers: { host } })).statusCode, host).toBe(
        200,
      );
    }
  });

  it('refuses a cross-origin request from an origin not configured, and answers allowed ones with CORS headers', async () => {
    const app = await appFor('servers');
    const evil = await app.inject({
      url: '/api/tags',
      remoteAddress: '127.0.0.1',
      headers: { origin: 'https://evil.example' },
    });
    expect(evil.statusCode).toBe(403);
    expect(evil.json().error).toMatch(/^origin "https:\/\/evil.example" may not call hearth: add it to origins/);
    const chat = await app.inject({
      url: '/api/tags',
      remoteAddress: '127.0.0.1',
      headers: { origin: 'https://chat.home.arpa' },
    });
    expect(chat.statusCode).toBe(200);
    expect(chat.headers['access-control-allow-origin']).toBe('https://chat.home.arpa');
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/tags',
      remoteAddress: '10.0.20.7',
      headers: {
        origin: 'https://chat.home.arpa',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-headers']).toBe('authorization, content-type');
  });
});

describe('the accept filter', () => {
  it('drops peers outside the listener’s zones before any HTTP, counting and logging (rate-limited)', async () => {
    const { log, records } = captureLog();
    const counted: string[] = [];
    const control2 = new AccessControl({
      config,
      db,
      log,
      onDrop: (name, reason) => counted.push(`${name}:${reason}`),
    });
    // A listener on loopback that admits only the mgmt zone: this test's own connections are outsiders.
    const guard = control2.listener({ ...listener('mgmt'), address: '127.0.0.1:0', zones: ['mgmt'] });
    const app = Fastify();
    apps.push(app);
    guardListenerApp(app, guard);
    app.get('/', async () => 'hello');
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    for (let i = 0; i < 3; i++) {
      const outcome = await rawRequest(port);
      expect(outcome.received).toBe('');
    }
    expect(guard.dropped).toBe(3);
    expect(counted).toEqual(['mgmt:outside', 'mgmt:outside', 'mgmt:outside']);
    control2.close();
    const drops = records.filter((r) => typeof r['msg'] === 'string' && (r['msg'] as string).includes('dropped'));
    expect(drops[0]).toMatchObject({ listener: 'mgmt', peer: '127.0.0.1', reason: 'outside' });
    expect(drops).toHaveLength(2); // the first drop, then one summary at close
    expect(drops[1]).toMatchObject({ dropped: 2, droppedTotal: 3 });
  });
});

/** Connects, sends a request, and reports what came back before the connection ended. */
function rawRequest(port: number): Promise<{ received: string; error?: string }> {
  return new Promise((resolve) => {
    let received = '';
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.on('error', (err) => resolve({ received, error: (err as NodeJS.ErrnoException).code ?? err.message }));
    socket.on('close', () => resolve({ received }));
  });
}
