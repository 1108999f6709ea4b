// The scheduling core both engines share, on its own: hooks that start plain objects instead of
// models (the engines' own tests run it with llama.cpp and llama-server).
import { afterEach, describe, expect, it } from 'vitest';
import { isHearthError } from '../errors.js';
import { silentLogger } from '../log.js';
import { InstancePool, PooledInstance, type PoolRequest } from './instances.js';
import { eventually } from './test-support.js';
import type { ModelSpec } from './types.js';

class Fake extends PooledInstance {
  constructor(
    readonly key: string,
    readonly spec: Pick<ModelSpec, 'name' | 'digest' | 'size'>,
    readonly slots: number,
  ) {
    super();
  }
}

interface FakeLease {
  instance: Fake;
  loadDurationNs: number;
  release(): void;
}

function spec(name: string): ModelSpec {
  return { name, digest: `d-${name}`, size: 1, resolveFile: async () => ({ path: name, release: () => {} }) };
}

function request(name: string, keepAliveMs = 60_000, signal?: AbortSignal): PoolRequest {
  return { spec: spec(name), keepAliveMs, signal };
}

const events: string[] = [];
const pools: InstancePool<Fake, PoolRequest, FakeLease, true>[] = [];

function makePool(
  opts: { maxLoadedModels?: number; maxQueue?: number; slots?: number; fail?: string; stopMs?: number } = {},
) {
  const pool: InstancePool<Fake, PoolRequest, FakeLease, true> = new InstancePool(
    {
      maxLoadedModels: opts.maxLoadedModels ?? 3,
      maxQueue: opts.maxQueue ?? 4,
      memoryBudget: 1000,
      loadWaitMs: 200,
      log: silentLogger(),
      observer: {
        modelLoaded: (e) => events.push(`loaded ${e.model}`),
        modelLoadFailed: (e) => events.push(`load failed ${e.model} ${e.code}`),
        modelUnloaded: (e) => events.push(`unloaded ${e.model} ${e.reason}`),
        requestQueued: () => {
          throw new Error('not used');
        },
      },
    },
    {
      start: async (key, req) => {
        events.push(`start ${req.spec.name}`);
        if (req.spec.name === opts.fail) throw new Error('broken blob');
        await pool.makeRoom(key, req.spec, { bytes: 100, describe: '100 B', strict: true });
        return { instance: new Fake(key, req.spec, opts.slots ?? 1), loadDurationNs: 5 };
      },
      stop: async (instance) => {
        if (opts.stopMs) await new Promise((r) => setTimeout(r, opts.stopMs));
        events.push(`stopped ${instance.spec.name}`);
      },
      claim: (instance) => (instance.active < instance.slots ? true : undefined),
      unclaim: () => {},
      lease: (instance, _claim, loadDurationNs, release) => ({ instance, loadDurationNs, release: () => release() }),
      tenantBytes: () => 100,
      usedBytes: () => pool.instances.size * 100,
    },
  );
  pools.push(pool);
  return pool;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close(0)));
  events.length = 0;
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isHearthError(err) ? err.code : String(err);
  }
}

describe('InstancePool', () => {
  it('loads once for several waiters, serves them in order, and counts the load for those who waited', async () => {
    const pool = makePool();
    const order: number[] = [];
    const leases = [0, 1, 2].map((n) =>
      pool.acquire('a', request('a')).then((l) => {
        order.push(n);
        return l;
      }),
    );
    const first = await leases[0]!;
    expect(first.loadDurationNs).toBe(5);
    expect(pool.queueDepth()).toBe(2);
    first.release();
    (await leases[1]!).release();
    (await leases[2]!).release();
    expect(order).toEqual([0, 1, 2]);
    expect(events).toEqual(['start a', 'loaded a']);
  });

  it('refuses requests beyond maxQueue with QUEUE_FULL and fails a waiter whose client left', async () => {
    const pool = makePool({ maxQueue: 2 });
    const held = await pool.acquire('a', request('a'));
    const abort = new AbortController();
    const waiting = pool.acquire('a', request('a', 60_000, abort.signal));
    const second = pool.acquire('a', request('a'));
    expect(await code(pool.acquire('a', request('a')))).toBe('QUEUE_FULL');
    abort.abort();
    expect(await code(waiting)).toBe('CLIENT_CLOSED');
    expect(pool.queueDepth()).toBe(1);
    held.release();
    (await second).release();
  });

  it('fails every waiter of a load that fails, and tells the observer', async () => {
    const pool = makePool({ fail: 'bad' });
    const results = await Promise.all([
      code(pool.acquire('bad', request('bad'))),
      code(pool.acquire('bad', request('bad'))),
    ]);
    expect(results).toEqual(['Error: broken blob', 'Error: broken blob']);
    expect(events).toEqual(['start bad', 'load failed bad INTERNAL']);
    expect(pool.queueDepth()).toBe(0);
  });

  it('unloads at keep-alive 0 unless someone waits, and after the keep-alive otherwise', async () => {
    const pool = makePool();
    const first = await pool.acquire('a', request('a', 0));
    const queued = pool.acquire('a', request('a', 0));
    first.release();
    const second = await queued;
    expect(pool.instances.size).toBe(1);
    second.release();
    expect(pool.instances.size).toBe(0);
    const third = await pool.acquire('b', request('b', 50));
    third.release();
    expect(third.instance.projectedExpiry()).toBeInstanceOf(Date);
    expect(await eventually(() => pool.instances.size === 0, 2000)).toBe(true);
    expect(events).toEqual([
      'start a',
      'loaded a',
      'stopped a',
      'unloaded a expired',
      'start b',
      'loaded b',
      'stopped b',
      'unloaded b expired',
    ]);
  });

  it('starts a load only once the instances being stopped are freed (their memory is still held)', async () => {
    const pool = makePool({ stopMs: 100 });
    (await pool.acquire('a', request('a', 0))).release();
    (await pool.acquire('b', request('b'))).release();
    expect(events).toEqual(['start a', 'loaded a', 'stopped a', 'unloaded a expired', 'start b', 'loaded b']);
  });

  it('evicts the least recently used idle instance for maxLoadedModels', async () => {
    const pool = makePool({ maxLoadedModels: 2 });
    for (const name of ['a', 'b', 'a', 'c']) {
      (await pool.acquire(name, request(name))).release();
      await new Promise((r) => setTimeout(r, 5)); // distinct last-use times
    }
    expect([...pool.instances.keys()].sort()).toEqual(['a', 'c']);
    expect(events).toContain('unloaded b evicted');
  });

  it('refuses a load with ENGINE_OUT_OF_MEMORY once the busy instances stay busy past loadWaitMs', async () => {
    const pool = makePool({ maxLoadedModels: 1 });
    const held = await pool.acquire('a', request('a'));
    const err = await pool.acquire('b', request('b')).catch((e: unknown) => e);
    expect(isHearthError(err) && err.code).toBe('ENGINE_OUT_OF_MEMORY');
    expect((err as Error).message).toMatch(/waited 0 s for busy models to finish .* 1\/1 models loaded/);
    held.release();
  });

  it('close fails queued requests with SHUTTING_DOWN and refuses new ones', async () => {
    const pool = makePool();
    const held = await pool.acquire('a', request('a'));
    const queued = pool.acquire('a', request('a'));
    const closing = pool.close(1000);
    expect(await code(queued)).toBe('SHUTTING_DOWN');
    expect(await code(pool.acquire('a', request('a')))).toBe('SHUTTING_DOWN');
    held.release();
    await closing;
    expect(events).toEqual(['start a', 'loaded a', 'stopped a', 'unloaded a closing']);
  });
});
