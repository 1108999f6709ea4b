import type { AtlasDb } from '../atlas/db/index.js';
import type { Logger } from '../log.js';

/** The channel on which a node announces a change to the model library (payload: the model's key). */
export const MODELS_CHANGED_CHANNEL = 'hearth_models_changed';

/** How long a manifest read from Atlas is served from memory at most, when no change was announced. */
export const MANIFEST_TTL_MS = 10_000;

/** At most this many manifests in memory (a node serves a handful of models; more only drops them all). */
const MAX_ENTRIES = 256;

/** After a failed LISTEN, how long the cache stays off before it tries again. */
const RELISTEN_MS = 30_000;

/**
 * The node's copy of the model manifests it has served: Atlas stays the authority, this only spares
 * the inference path a database round trip per request (8.3 ms of CPU on the embedded PGlite,
 * bench/server-ttft.ts). Invalidated
 *  - at once by a change made through this node's library (create, pull, copy, delete);
 *  - by another node's change, through its NOTIFY on MODELS_CHANGED_CHANNEL (PostgreSQL's
 *    LISTEN/NOTIFY; PGlite in-process);
 *  - after `ttlMs` whatever happens: a notification lost while the listening connection was down
 *    (AtlasDb.listen) leaves a stale copy no longer than that.
 * Nothing is kept while the node is not listening (the LISTEN failed), and a read that began before
 * an invalidation is not kept either (a generation count), so a deleted model cannot come back.
 */
export class ManifestCache<T> {
  private readonly entries = new Map<string, { value: T; at: number }>();
  private generation = 0;
  private listening: Promise<boolean> | undefined;

  constructor(private readonly opts: { db: AtlasDb; log: Logger; ttlMs: number }) {}

  /** The value for `key`: from memory while fresh, else from `load` (null: not found, never kept). */
  async get(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const ttl = this.opts.ttlMs;
    const listening = ttl > 0 && (await this.listen());
    const hit = this.entries.get(key);
    if (listening && hit && Date.now() - hit.at < ttl) return structuredClone(hit.value);
    const generation = this.generation;
    const value = await load();
    if (listening && value !== null && generation === this.generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, { value: structuredClone(value), at: Date.now() });
    }
    return value;
  }

  /** This node changed `key` on Atlas (after the write): forget every copy here and tell the other nodes. */
  async changed(key: string): Promise<void> {
    this.invalidate();
    await this.opts.db.notify(MODELS_CHANGED_CHANNEL, key).catch((err: unknown) => {
      this.opts.log.warn(
        { err, model: key },
        'models: cannot announce a library change; other nodes see it within their cache TTL',
      );
    });
  }

  private invalidate(): void {
    this.generation++;
    this.entries.clear();
  }

  /** Listens for other nodes' changes, once (again after RELISTEN_MS when it failed); true while listening. */
  private listen(): Promise<boolean> {
    this.listening ??= this.opts.db
      .listen(MODELS_CHANGED_CHANNEL, () => this.invalidate())
      .then(
        () => true,
        (err: unknown) => {
          this.opts.log.warn(
            { err },
            'models: cannot listen for library changes; manifests are read from Atlas per request',
          );
          setTimeout(() => {
            this.listening = undefined;
          }, RELISTEN_MS).unref();
          return false;
        },
      );
    return this.listening;
  }
}
