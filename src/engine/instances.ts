import type { Logger } from 'pino';
import { HearthError, isHearthError } from '../errors.js';
import { formatBytes } from '../units.js';
import type { MemoryBudget, MemoryTenant } from './budget.js';
import { ChangeSignal } from './changes.js';
import type { EngineObserver, UnloadReason } from './observer.js';
import type { ModelSpec } from './types.js';

/**
 * What both engines' instances share: the scheduling state (in-process
 * ModelInstance, the server engine's ServerInstance) and the keep-alive timer.
 */
export abstract class PooledInstance {
  abstract readonly key: string;
  abstract readonly spec: Pick<ModelSpec, 'name' | 'digest' | 'size'>;
  /** 'crashed': a llama-server process exited on its own (the server engine) */
  state: 'ready' | 'unloading' | 'crashed' = 'ready';
  /** leases held right now */
  active = 0;
  lastUsed = Date.now();
  /** ms to stay loaded after the last request (the latest request's value); < 0 forever */
  keepAliveMs = 0;
  expiresAt: Date | null = null;
  /** unload as soon as the last lease is released (Engine.unload on a busy instance) */
  unloadWhenIdle = false;
  private expiry: NodeJS.Timeout | null = null;

  /** Starts the keep-alive countdown (the instance is idle). */
  scheduleExpiry(onExpire: () => void): void {
    this.cancelExpiry();
    if (this.keepAliveMs < 0) {
      this.expiresAt = null;
      return;
    }
    // setTimeout holds at most 2^31-1 ms (~24.8 days); a longer keep-alive re-arms when it fires
    const delay = Math.min(this.keepAliveMs, 2 ** 31 - 1);
    this.expiresAt = new Date(Date.now() + this.keepAliveMs);
    const at = this.expiresAt.getTime();
    const fire = () => {
      const left = at - Date.now();
      if (left > 0) {
        this.expiry = setTimeout(fire, Math.min(left, 2 ** 31 - 1));
        this.expiry.unref();
        return;
      }
      this.expiry = null;
      onExpire();
    };
    this.expiry = setTimeout(fire, delay);
    // keep-alive must never keep the process alive
    this.expiry.unref();
  }

  cancelExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
  }

  /** When it unloads if nothing else comes: a running instance counts from now. */
  projectedExpiry(): Date | null {
    if (this.keepAliveMs < 0) return null;
    if (this.active > 0) return new Date(Date.now() + this.keepAliveMs);
    return this.expiresAt;
  }
}

/** What every request to an instance pool carries. */
export interface PoolRequest {
  spec: ModelSpec;
  keepAliveMs: number;
  signal?: AbortSignal | undefined;
}

/**
 * The engine-specific parts of an instance pool. `C` is what a lease holds
 * of an instance (a sequence, the embedding context, a server slot).
 */
export interface PoolHooks<I extends PooledInstance, R extends PoolRequest, L, C> {
  /** Loads or starts an instance for `req` (one at a time, in the load chain; call `makeRoom` before taking memory). */
  start(key: string, req: R): Promise<{ instance: I; loadDurationNs: number }>;
  /**
   * Frees an instance (it is no longer in the pool and no lease holds it) and logs it;
   * the pool tells the observer afterwards.
   */
  stop(instance: I, reason: string): Promise<void>;
  /**
   * Takes what `req` needs of a ready instance: `undefined` while it has no room (the request
   * waits); throws where the instance can never serve it (the request fails).
   */
  claim(instance: I, req: R): C | undefined;
  /** Hands back what `claim` took (`now`: the release time). */
  unclaim(instance: I, req: R, claim: C, now: number): void;
  /** The engine's lease; `release(retire)` exactly once, `retire` (a reason) when the instance must not serve again. */
  lease(instance: I, claim: C, loadDurationNs: number, release: (retire?: string) => void): L;
  /** bytes an instance counts as in the shared memory budget */
  tenantBytes(instance: I): number;
  /** bytes this engine holds now (its own instances and whatever else it keeps) */
  usedBytes(): number;
}

export interface InstancePoolOptions {
  maxLoadedModels: number;
  maxQueue: number;
  /** bytes */
  memoryBudget: number;
  loadWaitMs: number;
  log: Logger;
  /** told of loads and unloads (the metrics) */
  observer?: EngineObserver | undefined;
  /** the node's memory budget shared with image models (budget.ts); without it, this pool's own */
  budget?: MemoryBudget | undefined;
}

/** What a load needs, for makeRoom. */
export interface RoomNeed {
  /** bytes in the budgeted memory */
  bytes: number;
  /** the need as the messages say it (e.g. "1.2 GB of RAM") */
  describe: string;
  /** false: the budget is no hard limit for this load (llama.cpp offloads what fits) */
  strict: boolean;
}

interface Waiter<R, L> {
  req: R;
  key: string;
  loadDurationNs: number;
  resolve(lease: L): void;
  reject(err: unknown): void;
}

/**
 * The scheduling core both engines share (the in-process Scheduler, the server
 * engine's ServerPool): a bounded queue of requests (QUEUE_FULL beyond
 * maxQueue) waiting for room on an instance or for its load; loads one at a
 * time (a chain) so memory estimates add up; idle instances evicted least
 * recently used first to stay within maxLoadedModels and the memory budget;
 * keep-alive expiry; close draining running requests.
 */
export class InstancePool<I extends PooledInstance, R extends PoolRequest, L, C> {
  readonly instances = new Map<string, I>();
  private readonly loads = new Map<string, Promise<void>>();
  private loadChain: Promise<unknown> = Promise.resolve();
  private readonly waiters: Waiter<R, L>[] = [];
  private readonly stopping = new Set<Promise<void>>();
  private readonly changes = new ChangeSignal();
  private closed = false;
  /** this pool's instances as tenants of the shared memory budget */
  private readonly tenants: () => MemoryTenant[];

  constructor(
    private readonly opts: InstancePoolOptions,
    private readonly hooks: PoolHooks<I, R, L, C>,
  ) {
    this.tenants = () =>
      [...this.instances.values()].map((i) => ({
        name: i.spec.name,
        kind: 'llm' as const,
        bytes: hooks.tenantBytes(i),
        lastUsed: i.lastUsed,
        busy: () => i.active > 0 || i.state !== 'ready',
        evict: (reason: string) => this.stop(i, reason),
      }));
    opts.budget?.addSource(this.tenants);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  queueDepth(): number {
    return this.waiters.length;
  }

  /** Leases an instance of `key` (starting it if needed); waits in the queue when it is busy. */
  acquire(key: string, req: R): Promise<L> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (req.signal?.aborted) return Promise.reject(clientClosed());
    const instance = this.instances.get(key);
    if (instance && !this.waiters.some((w) => w.key === key)) {
      try {
        const lease = this.tryGrant(instance, req, 0);
        if (lease) return Promise.resolve(lease);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.waiters.length >= this.opts.maxQueue) {
      return Promise.reject(new HearthError('QUEUE_FULL', [this.opts.maxQueue]));
    }
    return new Promise<L>((resolve, reject) => {
      const onAbort = () => {
        if (!this.removeWaiter(waiter)) return;
        // the engine aborts with SHUTTING_DOWN when it closes; anything else is the client going away
        const reason: unknown = req.signal?.reason;
        waiter.reject(isHearthError(reason) ? reason : clientClosed());
        this.changes.notify();
      };
      const waiter: Waiter<R, L> = {
        req,
        key,
        loadDurationNs: 0,
        resolve: (lease) => {
          req.signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
        reject: (err) => {
          req.signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Stops every instance of a blob: idle ones now, busy ones when their last request ends. */
  async unload(digest: string): Promise<boolean> {
    const matching = [...this.instances.values()].filter((i) => i.spec.digest === digest);
    await Promise.all(
      matching.map((i) => {
        if (i.active === 0) return this.stop(i, 'unload requested');
        i.unloadWhenIdle = true;
        return undefined;
      }),
    );
    return matching.length > 0;
  }

  /** Marks an instance broken: it serves nothing more and stops when idle. */
  retire(instance: I, reason: string): void {
    instance.unloadWhenIdle = true;
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    if (instance.active === 0) void this.stop(instance, reason);
  }

  /** An instance that went away on its own (a crashed process): out of the pool, its key loads afresh. */
  lost(instance: I): void {
    instance.cancelExpiry();
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    this.pump();
    this.changes.notify();
  }

  /** Stops an instance; resolves when it is freed. */
  stop(instance: I, reason: string): Promise<void> {
    if (instance.state !== 'ready') return Promise.resolve();
    instance.state = 'unloading';
    instance.cancelExpiry();
    if (this.instances.get(instance.key) === instance) this.instances.delete(instance.key);
    const done = (async () => {
      await this.hooks.stop(instance, reason);
      this.opts.observer?.modelUnloaded({ model: instance.spec.name, reason: unloadReason(reason) });
    })();
    this.stopping.add(done);
    void done.finally(() => {
      this.stopping.delete(done);
      this.changes.notify();
    });
    return done;
  }

  /** Resolves when the instances being stopped now are freed. */
  private async stopped(): Promise<void> {
    await Promise.allSettled([...this.stopping]);
  }

  /** Refuses new requests, fails the queued ones, lets running ones finish (up to graceMs), stops everything. */
  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(shuttingDown());
    this.changes.notify();
    await Promise.allSettled([...this.loads.values()]);
    // Running requests were aborted by the engine; give them a moment to hand their leases back.
    const deadline = Date.now() + graceMs;
    while ([...this.instances.values()].some((i) => i.active > 0) && Date.now() < deadline) {
      await this.changes.wait(deadline - Date.now());
    }
    await Promise.allSettled([...this.instances.values()].map((i) => this.stop(i, 'engine closing')));
    await this.stopped();
  }

  // ---- granting ----

  private tryGrant(instance: I, req: R, loadDurationNs: number): L | null {
    if (instance.state !== 'ready') return null;
    const claim = this.hooks.claim(instance, req);
    if (claim === undefined) return null;
    instance.active++;
    instance.keepAliveMs = req.keepAliveMs;
    instance.lastUsed = Date.now();
    instance.cancelExpiry();
    let released = false;
    return this.hooks.lease(instance, claim, loadDurationNs, (retire) => {
      if (released) return;
      released = true;
      const now = Date.now();
      this.hooks.unclaim(instance, req, claim, now);
      instance.active--;
      instance.lastUsed = now;
      if (retire) this.retire(instance, retire);
      // waiting requests first: keep-alive 0 must not unload a model someone is queued for
      this.pump();
      if (instance.active === 0) this.onIdle(instance);
      this.changes.notify();
    });
  }

  private pump(): void {
    for (const w of [...this.waiters]) {
      const instance = this.instances.get(w.key);
      if (instance) {
        let lease: L | null;
        try {
          lease = this.tryGrant(instance, w.req, w.loadDurationNs);
        } catch (err) {
          this.removeWaiter(w);
          w.reject(err);
          continue;
        }
        if (lease) {
          this.removeWaiter(w);
          w.resolve(lease);
        }
      } else if (!this.loads.has(w.key) && !this.closed) {
        this.startLoad(w);
      }
    }
  }

  private removeWaiter(w: Waiter<R, L>): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    return true;
  }

  private onIdle(instance: I): void {
    if (instance.state !== 'ready' || this.closed) return;
    if (instance.unloadWhenIdle || instance.keepAliveMs === 0) {
      void this.stop(instance, instance.unloadWhenIdle ? 'unload requested' : 'keep-alive 0');
      return;
    }
    instance.scheduleExpiry(() => {
      if (instance.active === 0) void this.stop(instance, 'keep-alive expired');
    });
  }

  // ---- loading ----

  private startLoad(first: Waiter<R, L>): void {
    const { key, req } = first;
    const settled = this.loadChain
      .then(async () => {
        if (this.closed) throw shuttingDown();
        // An instance being stopped is out of `instances` (so out of the count) but still holds its
        // memory until its contexts are disposed or its process has exited: wait for it first.
        await this.stopped();
        return this.hooks.start(key, req);
      })
      .then(
        ({ instance, loadDurationNs }) => {
          this.loads.delete(key);
          this.opts.observer?.modelLoaded({ model: req.spec.name, durationNs: loadDurationNs });
          if (this.closed) {
            void this.stop(instance, 'engine closing');
            return;
          }
          instance.keepAliveMs = req.keepAliveMs;
          this.instances.set(key, instance);
          for (const w of this.waiters) if (w.key === key) w.loadDurationNs = loadDurationNs;
          this.pump();
          // everyone who asked for it left meanwhile: it idles like any other instance
          if (instance.active === 0) this.onIdle(instance);
          this.changes.notify();
        },
        (err: unknown) => {
          this.loads.delete(key);
          this.opts.observer?.modelLoadFailed({
            model: req.spec.name,
            code: isHearthError(err) ? err.code : 'INTERNAL',
          });
          for (const w of [...this.waiters]) {
            if (w.key !== key) continue;
            this.removeWaiter(w);
            w.reject(err);
          }
          this.pump();
          this.changes.notify();
        },
      );
    this.loads.set(key, settled);
    this.loadChain = settled;
  }

  /**
   * Evicts idle instances (least recently used first; with a shared budget, idle image models too)
   * until `need` fits and a model more may load; waits (bounded by loadWaitMs) for busy ones.
   */
  async makeRoom(key: string, spec: Pick<ModelSpec, 'name'>, need: RoomNeed): Promise<void> {
    const { memoryBudget, maxLoadedModels, loadWaitMs, log } = this.opts;
    const deadline = Date.now() + loadWaitMs;
    for (;;) {
      if (this.closed) throw shuttingDown();
      const budget = this.opts.budget;
      // With a shared budget, image models count too, and an idle one may be evicted for this load.
      const used = this.hooks.usedBytes() + (budget?.used(this.tenants) ?? 0);
      const fitsCount = this.instances.size < maxLoadedModels;
      const fitsBytes = !need.strict || used + need.bytes <= memoryBudget;
      if (fitsCount && fitsBytes) return;
      if (need.strict && need.bytes > memoryBudget) {
        throw new HearthError(
          'ENGINE_OUT_OF_MEMORY',
          [
            `model "${spec.name}" needs ${need.describe} but the engine's memory budget is ${formatBytes(memoryBudget)} (${formatBytes(used)} in use): choose a smaller model, num_ctx or num_parallel, or raise the memory budget`,
          ],
          { details: { needBytes: need.bytes, budgetBytes: memoryBudget, usedBytes: used } },
        );
      }
      const shared = fitsCount ? budget?.victim() : undefined;
      if (shared) {
        await budget!.evict(shared, spec.name, 'llm');
        continue;
      }
      const victim = [...this.instances.values()]
        .filter((i) => i.active === 0 && i.state === 'ready')
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (victim) {
        log.info(
          { model: victim.spec.name, for: spec.name },
          fitsCount
            ? 'engine: evicting an idle model to free memory'
            : 'engine: evicting an idle model (maxLoadedModels)',
        );
        await this.stop(victim, `evicted for ${spec.name}`);
        continue;
      }
      if (!this.waiters.some((w) => w.key === key)) {
        throw new HearthError(
          'CLIENT_CLOSED',
          `engine: load of "${spec.name}" abandoned: nobody waits for it any more`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new HearthError('ENGINE_OUT_OF_MEMORY', [
          `model "${spec.name}" needs ${need.describe} and waited ${Math.round(loadWaitMs / 1000)} s for busy models to finish (${formatBytes(used)} of ${formatBytes(memoryBudget)} in use, ${this.instances.size}/${maxLoadedModels} models loaded): retry later or raise the memory budget / inference.maxLoadedModels`,
        ]);
      }
      await this.changes.wait(left);
    }
  }
}

/** The observer's reason for an unload, from the logged one. */
export function unloadReason(reason: string): UnloadReason {
  if (reason.startsWith('evicted')) return 'evicted';
  if (reason.startsWith('keep-alive')) return 'expired';
  if (reason.startsWith('failed')) return 'failed';
  if (reason === 'engine closing') return 'closing';
  return 'requested';
}

export function shuttingDown(): HearthError {
  return new HearthError('SHUTTING_DOWN', 'engine: shutting down; retry on another node or after the restart');
}

export function clientClosed(): HearthError {
  return new HearthError('CLIENT_CLOSED', 'engine: request aborted by the client');
}
