// The probe, made permanent: every route the server registers gets generated bad input (wrong types,
// huge and deep values, NULs, invalid UTF-8, repeated query parameters, missing and extra fields).
// Each answer is below 500 and, when it is an error, in the route family's shape; the server still
// serves afterwards and no write leaves a temporary file on Atlas. The route list comes from the
// app itself (onRoute), so a new route is fuzzed without touching this file. fast-check (a fixed
// seed, a bounded number of runs) keeps it reproducible and quick; it is chosen as the maintained
// property-testing library for JS (pure JS, no native parts, shrinks a failing input to a small one).
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_CLASSES } from '../src/config/index.js';
import { buildHttpApp } from '../src/http/server.js';
import { type HearthDirs, hearthDirs, type InProcessHearth, startHearthInProcess } from './support/hearth.js';

const SEED = 18;
const RUNS_PER_ROUTE = 12;

/**
 * Routes that would reach out of the machine with a well-formed value: /api/pull fetches a model
 * named by a string, so its name fields are fuzzed with non-strings only (a string is a real pull).
 * The WebSocket /ws cannot be injected.
 */
const NETWORK_NAME_FIELDS: Record<string, readonly string[]> = { '/api/pull': ['model', 'name'] };
const NOT_INJECTABLE = new Set(['/ws', '/api/ws']);
/** Routes whose one answer is 501 by design: hearth keeps models on Atlas and does not push. */
const NOT_IMPLEMENTED = new Set(['POST /api/push']);

let dirs: HearthDirs;
let hearth: InProcessHearth;
let app: FastifyInstance;
const routes: Array<{ method: string; url: string }> = [];

beforeAll(async () => {
  dirs = await hearthDirs('hearth-fuzz-');
  hearth = await startHearthInProcess(dirs);
  app = await buildHttpApp(hearth.ctx, {
    listener: 'fuzz',
    serves: [...SERVICE_CLASSES],
    onRoute: (route) => {
      for (const method of [route.method].flat()) {
        if (method !== 'HEAD' && !NOT_INJECTABLE.has(route.url)) routes.push({ method, url: route.url });
      }
    },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await hearth?.close();
  await dirs?.cleanup();
});

function deepJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('a\u0000b', '\u0000', '../../etc/passwd', '.hearth/db.lock', '%zz', '\ud800', 'x'.repeat(70_000)),
);
const nastyValue = fc.oneof(
  { depthSize: 'small' },
  nastyString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(nastyString, { maxLength: 3 }),
  fc.dictionary(nastyString, nastyString, { maxKeys: 3 }),
);
/** A JSON body: a wrong-typed value, an object of wrong-typed fields, or raw bytes that are not a good body. */
const body = fc.oneof(
  fc
    .dictionary(
      fc.constantFrom(
        'model',
        'name',
        'prompt',
        'messages',
        'format',
        'tools',
        'options',
        'input',
        'workflow',
        'title',
        'stream',
        'extra',
      ),
      nastyValue,
      { maxKeys: 5 },
    )
    .map((o) => JSON.stringify(o)),
  nastyValue.map((v) => JSON.stringify(v) ?? 'null'),
  fc.constantFrom(
    '',
    '{',
    '{"a":1,}',
    deepJson(5000),
    `{"model":"m","format":${deepJson(3000)}}`,
    '\u0000',
    '{"__proto__":{"polluted":1}}',
  ),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from([0xff, 0xfe, ...bytes]).toString('latin1')),
);
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?a=1&a=2',
    '?filename=a&filename=b',
    '?limit=-1',
    '?limit=1e309',
    '?prefix=%00',
    '?state=nope&state=x',
  ),
  fc
    .dictionary(
      fc.constantFrom('limit', 'q', 'prefix', 'filename', 'type', 'subfolder', 'format', 'state'),
      nastyString,
      {
        maxKeys: 3,
      },
    )
    .map((o) => `?${new URLSearchParams(o).toString()}`),
);
const param = fc.oneof(fc.constantFrom('x', '0', '..', '%00', 'a%2Fb', '%E0%A4%A', 'models/x.gguf'), fc.webSegment());
const contentType = fc.constantFrom(
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
);

function fill(url: string, values: string[]): string {
  let i = 0;
  return url.replace(/:[A-Za-z_]+|\*/g, () => values[i++ % values.length] ?? 'x');
}

/** The body without string values in fields that would name a real network pull. */
function withoutNetworkNames(url: string, raw: string): string {
  const fields = NETWORK_NAME_FIELDS[url];
  if (!fields) return raw;
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return raw;
    const o = value as Record<string, unknown>;
    for (const f of fields) if (typeof o[f] === 'string') o[f] = 42;
    return JSON.stringify(o);
  } catch {
    return raw;
  }
}

describe('fuzzing every route', () => {
  it('derives the route list from the app', () => {
    expect(routes.length).toBeGreaterThan(60);
    for (const expected of ['POST /api/chat', 'POST /v1/chat/completions', 'PUT /api/files/*', 'GET /view'])
      expect(routes.map((r) => `${r.method} ${r.url}`)).toContain(expected);
  });

  it('answers generated bad input with a 4xx in the family’s shape, never a 5xx', async () => {
    const failures: string[] = [];
    for (const route of routes) {
      await fc
        .assert(
          fc.asyncProperty(
            fc.array(param, { minLength: 1, maxLength: 2 }),
            query,
            body,
            contentType,
            async (params, q, raw, type) => {
              const url = `${fill(route.url, params)}${q}`;
              const payload = withoutNetworkNames(route.url, raw);
              const res = await app.inject({
                method: route.method as 'GET',
                url,
                headers: { 'content-type': type, 'x-hearth-csrf': '1' },
                ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload }),
              });
              const declined = res.statusCode === 501 && NOT_IMPLEMENTED.has(`${route.method} ${route.url}`);
              if (res.statusCode >= 500 && !declined) {
                failures.push(
                  `${route.method} ${url} ${type} ${payload.slice(0, 120)} -> ${res.statusCode} ${res.body.slice(0, 200)}`,
                );
                return false;
              }
              if (res.statusCode >= 400 && res.headers['content-type']?.toString().includes('json')) {
                const error = (JSON.parse(res.body) as { error?: unknown }).error;
                const shaped =
                  typeof error === 'string' ||
                  typeof (error as { message?: unknown } | undefined)?.message === 'string';
                if (!shaped)
                  failures.push(
                    `${route.method} ${url} -> ${res.statusCode} without an error message: ${res.body.slice(0, 200)}`,
                  );
                return shaped;
              }
              return true;
            },
          ),
          { seed: SEED, numRuns: RUNS_PER_ROUTE, endOnFailure: true },
        )
        .catch(() => undefined);
    }
    expect(failures).toEqual([]);
  });

  it('still serves afterwards, and left no temporary files on Atlas', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/version' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/tags' })).statusCode).toBe(200);
    expect((await fetch(`${hearth.url}/api/version`)).status).toBe(200);
    expect(await hearth.ctx.atlas.files.staleTemporaries(0)).toEqual({ count: 0, bytes: 0 });
  });
});
