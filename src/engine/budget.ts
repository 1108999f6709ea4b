import type { Logger } from 'pino';
import { HearthError } from '../errors.js';
import { formatBytes } from '../units.js';
import { ChangeSignal } from './changes.js';

/** Something loaded that holds part of the budget: an LLM instance or an image model's sessions. */
export interface MemoryTenant {
  /** the model's name, for logs */
  readonly name: string;
  readonly kind: 'llm' | 'image';
  /** bytes it holds in the budgeted memory (VRAM on a GPU, RAM on CPU), estimated */
  readonly bytes: number;
  /** Date.now() of its last use: the least recently used idle tenant is evicted first */
  readonly lastUsed: number;
  /** true while a request uses it (it cannot be evicted then) */
  busy(): boolean;
  /** unloads it; resolves once its memory is free */
  evict(reason: string): Promise<void>;
}

/**
 * The one memory budget of a node (`inference.memoryBudget`, by default the free VRAM or RAM at
 * start), shared by the LLM engines and the image runtime. Each reports what it has loaded as tenants
 * (a source: a function listing them); a load makes room by evicting idle tenants of any kind, least
 * recently used first, or waits for busy ones, and the log says which model was evicted for which.
 */
export class MemoryBudget {
  private readonly sources = new Set<() => Iterable<MemoryTenant>>();
  private readonly changes = new ChangeSignal();

  constructor(
    /** bytes */
    readonly total: number,
    private readonly log: Logger,
  ) {}

  /** Adds a source of tenants (an engine's instances, the image runtime's models); returns its removal. */
  addSource(list: () => Iterable<MemoryTenant>): () => void {
    this.sources.add(list);
    return () => this.sources.delete(list);
  }

  tenants(except?: () => Iterable<MemoryTenant>): MemoryTenant[] {
    return [...this.sources].filter((s) => s !== except).flatMap((list) => [...list()]);
  }

  /** Bytes held by every tenant now (`except`: leaving out one source's, which counts its own). */
  used(except?: () => Iterable<MemoryTenant>): number {
    return this.tenants(except).reduce((n, t) => n + t.bytes, 0);
  }

  /** The idle tenant to evict first (least recently used), if any; `only` narrows the choice. */
  victim(only?: (t: MemoryTenant) => boolean): MemoryTenant | undefined {
    return this.tenants()
      .filter((t) => !t.busy() && (!only || only(t)))
      .sort((a, b) => a.lastUsed - b.lastUsed)[0];
  }

  /** Evicts `victim` to make room for `forName`, saying so in the log. */
  async evict(victim: MemoryTenant, forName: string, forKind: MemoryTenant['kind']): Promise<void> {
    this.log.info(
      { model: victim.name, kind: victim.kind, for: forName, forKind, bytes: victim.bytes },
      `memory: evicting idle ${victim.kind === 'llm' ? 'language' : 'image'} model "${victim.name}" to load ${forKind === 'llm' ? 'language' : 'image'} model "${forName}"`,
    );
    await victim.evict(`evicted for ${forName}`);
    this.changed();
  }

  /** A tenant went idle or away: waiting loads look again. */
  changed(): void {
    this.changes.notify();
  }

  /**
   * Makes room for `bytes` more (a model about to load): evicts idle tenants least recently used first,
   * waits up to `waitMs` for busy ones, and throws ENGINE_OUT_OF_MEMORY naming the sizes otherwise.
   * Returns once the load fits; the caller then loads and lists the new tenant in its source.
   */
  async makeRoom(opts: { name: string; kind: MemoryTenant['kind']; bytes: number; waitMs: number }): Promise<void> {
    const { name, kind, bytes, waitMs } = opts;
    if (bytes > this.total) {
      throw new HearthError('ENGINE_OUT_OF_MEMORY', [
        `model "${name}" needs about ${formatBytes(bytes)} but the node's memory budget is ${formatBytes(this.total)}: choose a smaller model or raise inference.memoryBudget`,
      ]);
    }
    const deadline = Date.now() + waitMs;
    for (let announced = false; ; ) {
      const used = this.used();
      if (used + bytes <= this.total) return;
      const victim = this.victim();
      if (victim) {
        await this.evict(victim, name, kind);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new HearthError('ENGINE_OUT_OF_MEMORY', [
          `model "${name}" needs about ${formatBytes(bytes)} and waited ${Math.round(waitMs / 1000)} s for busy models to finish (${formatBytes(used)} of ${formatBytes(this.total)} in use by ${this.describe()}): retry later or raise inference.memoryBudget`,
        ]);
      }
      if (!announced) {
        announced = true;
        this.log.info(
          { model: name, kind, bytes, used, budget: this.total },
          `memory: ${kind === 'llm' ? 'language' : 'image'} model "${name}" waits for busy models to finish (${this.describe()})`,
        );
      }
      // Tenants of other sources do not all signal: look again at least every 250 ms.
      await this.changes.wait(Math.min(left, 250));
    }
  }

  /** "a (image, 1.2 GiB), b (language, 300 MiB)": who holds the budget, for messages. */
  describe(): string {
    const list = this.tenants();
    if (list.length === 0) return 'nothing';
    return list
      .map(
        (t) =>
          `${t.name} (${t.kind === 'llm' ? 'language' : 'image'}, ${formatBytes(t.bytes)}${t.busy() ? ', busy' : ''})`,
      )
      .join(', ');
  }
}
