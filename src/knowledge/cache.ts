import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AtlasDb } from '../atlas/db/index.js';
import type { Logger } from '../log.js';
import { decodeVector, VectorIndex } from './vectors.js';

const MAGIC = 'hearth-knowledge-index';
const VERSION = 1;
/** Rows read per statement while rebuilding (keyset pages keep memory and statement size bounded). */
const PAGE = 5000;

interface ChunkRow {
  id: string | number;
  embedding: Uint8Array;
}

interface Header {
  magic: string;
  version: number;
  base: string;
  generation: number;
  dims: number;
  count: number;
}

/**
 * The vector index of each knowledge base, as a node cache (`<node.cacheDir>/knowledge/<base>.idx`):
 * rebuilt from the chunk rows on Atlas when the file is missing, unreadable or older than the base's
 * `generation` (bumped by every change to its chunks). Deleting the folder loses nothing.
 */
export class VectorIndexCache {
  private readonly dir: string;
  private readonly db: Pick<AtlasDb, 'kind' | 'query' | 'copyRows'>;
  private readonly rowsVia: 'copy' | 'pages';
  private readonly log: Logger;
  private readonly loaded = new Map<string, { generation: number; index: VectorIndex }>();
  private readonly building = new Map<string, Promise<VectorIndex>>();
  /** How many rebuilds from Atlas this process did (tests and metrics read it). */
  rebuilds = 0;

  /**
   * `rows` (bench/knowledge.ts compares them): how a rebuild reads the chunk rows. 'copy' (the default on
   * PostgreSQL): one binary COPY; 'pages' (PGlite's, where rows need no text round trip): keyset pages.
   */
  constructor(opts: {
    dir: string;
    db: Pick<AtlasDb, 'kind' | 'query' | 'copyRows'>;
    log: Logger;
    rows?: 'copy' | 'pages';
  }) {
    this.dir = opts.dir;
    this.db = opts.db;
    this.rowsVia = opts.rows ?? (opts.db.kind === 'postgres' ? 'copy' : 'pages');
    this.log = opts.log;
  }

  /** The index of `base` at `generation`: from memory, from the cache file, or rebuilt from Atlas. */
  async get(base: string, generation: number): Promise<VectorIndex> {
    const loaded = this.loaded.get(base);
    if (loaded && loaded.generation === generation) return loaded.index;
    const key = `${base}@${generation}`;
    let building = this.building.get(key);
    if (!building) {
      building = this.load(base, generation).finally(() => this.building.delete(key));
      this.building.set(key, building);
    }
    return building;
  }

  /** Forgets the in-memory copies (the files stay): what a restart does. */
  forget(): void {
    this.loaded.clear();
  }

  /** Removes a deleted base's file. */
  async drop(base: string): Promise<void> {
    this.loaded.delete(base);
    await rm(this.file(base), { force: true });
  }

  private async load(base: string, generation: number): Promise<VectorIndex> {
    const index = (await this.read(base, generation)) ?? (await this.rebuild(base, generation));
    this.loaded.set(base, { generation, index });
    return index;
  }

  private file(base: string): string {
    return join(this.dir, `${base}.idx`);
  }

  private async read(base: string, generation: number): Promise<VectorIndex | null> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.file(base));
    } catch {
      return null;
    }
    try {
      const headerLength = bytes.readUInt32LE(0);
      const header = JSON.parse(bytes.subarray(4, 4 + headerLength).toString('utf8')) as Header;
      if (header.magic !== MAGIC || header.version !== VERSION || header.base !== base) return null;
      if (header.generation !== generation) return null;
      const { dims, count } = header;
      const words = Math.ceil(dims / 32);
      let offset = align(4 + headerLength);
      const take = (length: number) => {
        const part = bytes.subarray(offset, offset + length);
        if (part.length !== length) throw new Error('truncated');
        offset = align(offset + length);
        // A copy into a fresh, aligned buffer (typed arrays need their element alignment).
        return new Uint8Array(part).buffer;
      };
      const ids = new Float64Array(take(count * 8));
      const scales = new Float32Array(take(count * 4));
      const codes = new Int8Array(take(count * dims));
      const bits = new Uint32Array(take(count * words * 4));
      return new VectorIndex({ dims, ids, scales, codes, bits });
    } catch (err) {
      this.log.warn({ base, err: String(err) }, 'knowledge: the cached vector index is unreadable; rebuilding it');
      return null;
    }
  }

  private async rebuild(base: string, generation: number): Promise<VectorIndex> {
    const started = performance.now();
    let builder: ReturnType<typeof VectorIndex.builder> | null = null;
    for await (const rows of this.rowsVia === 'copy' ? this.copyChunks(base) : this.pageChunks(base)) {
      for (const row of rows) {
        const vector = decodeVector(row.embedding);
        builder ??= VectorIndex.builder(vector.length);
        builder.add(Number(row.id), vector);
      }
    }
    const index = (builder ?? VectorIndex.builder(0)).build();
    this.rebuilds++;
    this.log.info(
      { base, chunks: index.count, ms: Math.round(performance.now() - started) },
      'knowledge: vector index rebuilt from Atlas',
    );
    await this.write(base, generation, index).catch((err: unknown) =>
      this.log.warn({ base, err: String(err) }, 'knowledge: cannot write the vector index cache; it stays in memory'),
    );
    return index;
  }

  /**
   * The base's chunk rows as one binary COPY: on PostgreSQL the embeddings arrive as raw bytes, where a
   * plain query gets them as hex text (the rebuild's main cost before, docs/knowledge.md, Speed).
   */
  private copyChunks(base: string): AsyncIterable<ChunkRow[]> {
    return this.db.copyRows<ChunkRow>(
      'select id, embedding from knowledge_chunks where base_id = $1 order by id',
      [base],
      { id: 'int8', embedding: 'bytea' },
    );
  }

  private async *pageChunks(base: string): AsyncIterable<ChunkRow[]> {
    const page = (after: number) =>
      this.db.query<ChunkRow>(
        `select id, embedding from knowledge_chunks where base_id = $1 and id > $2 order by id limit ${PAGE}`,
        [base, after],
      );
    // The next page is asked for before this one is quantised: on PostgreSQL the server reads and
    // encodes it while this process works (bench/knowledge.ts measured the overlap).
    let next: Promise<ChunkRow[]> | null = page(0);
    while (next) {
      const rows: ChunkRow[] = await next;
      next = rows.length === PAGE ? page(Number(rows.at(-1)!.id)) : null;
      next?.catch(() => undefined); // awaited on the next turn; a failure here must not go unhandled meanwhile
      yield rows;
    }
  }

  private async write(base: string, generation: number, index: VectorIndex): Promise<void> {
    const header: Header = { magic: MAGIC, version: VERSION, base, generation, dims: index.dims, count: index.count };
    const json = Buffer.from(JSON.stringify(header));
    const parts: Buffer[] = [];
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length, 0);
    let size = 0;
    const push = (buffer: Buffer) => {
      parts.push(buffer);
      size += buffer.length;
      const pad = align(size) - size;
      if (pad) {
        parts.push(Buffer.alloc(pad));
        size += pad;
      }
    };
    parts.push(length);
    size += 4;
    push(json);
    for (const array of [index.ids, index.scales, index.codes, index.bits]) {
      push(Buffer.from(array.buffer, array.byteOffset, array.byteLength));
    }
    await mkdir(this.dir, { recursive: true });
    const file = this.file(base);
    const temporary = `${file}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, Buffer.concat(parts));
    await rename(temporary, file);
  }
}

function align(n: number): number {
  return (n + 7) & ~7;
}
