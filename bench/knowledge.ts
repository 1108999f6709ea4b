// Knowledge bases (issue 16): vector-search latency, index rebuild rate from Atlas, hybrid query latency,
// and ingestion throughput.
//
//   npx tsx bench/knowledge.ts [--sizes 10000,100000] [--dims 768] [--queries 30]
//                              [--rebuild-pg 100000] [--rebuild-pglite 20000] [--rebuild-runs 3] [--ingest-docs 16]
//                              [--ingest-threads 1,2]
//
// 1. search: a VectorIndex of N clustered unit vectors (768 dimensions, like nomic-embed-text), queried
//    near stored vectors: p50/p95 of an exact int8 scan, an indexed search (sign-bit Hamming pass, int8
//    rescoring of the best candidates) and, for reference, a float32 scan in JS; recall@10 of indexed vs
//    exact.
// 2. rebuild: N chunk rows in knowledge_chunks on a real PostgreSQL (started here, on loopback) and on
//    PGlite; the time VectorIndexCache takes to rebuild the index from them (an empty cache folder). On
//    PostgreSQL both ways of reading the rows, interleaved: one binary COPY (the default) and keyset pages.
// 3. hybrid: KnowledgeService.query over the PostgreSQL base and the PGlite one (full-text + vector +
//    fusion), the query's embedding excluded (a fixed vector stands in for the engine: that call is what is excluded).
// 4. ingest: documents through the real path (upload, a `knowledge` job, extraction, chunking, the engine
//    embedding the chunks in batches with the tests' generated embedding model on the llama-server engine
//    the tests build, commit) on PGlite; chunks/s, once per llama.cpp thread count.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { configFromObject } from '../src/config/index.js';
import { closeContext, openContext } from '../src/context.js';
import { VectorIndexCache } from '../src/knowledge/cache.js';
import { KnowledgeService, VectorIndex } from '../src/knowledge/index.js';
import { percentile } from '../src/loadgen/stats.js';
import { silentLogger } from '../src/log.js';
import { generateModel } from '../test/fixtures/gguf/model.js';
import { testEngineDir } from '../test/support/engine.js';
import { startPostgres } from '../test/support/postgres.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    dims: { type: 'string', default: '768' },
    queries: { type: 'string', default: '30' },
    'rebuild-pg': { type: 'string', default: '100000' },
    'rebuild-pglite': { type: 'string', default: '20000' },
    /** rebuilds per way of reading the rows (PostgreSQL: binary COPY and keyset pages, interleaved) */
    'rebuild-runs': { type: 'string', default: '3' },
    'ingest-docs': { type: 'string', default: '16' },
    /** llama.cpp threads for the ingestion runs (one run each) */
    'ingest-threads': { type: 'string', default: '1,2' },
    /** which parts to run: search, pg (rebuild + hybrid on PostgreSQL), pglite, ingest */
    parts: { type: 'string', default: 'search,pg,pglite,ingest' },
  },
});
const DIMS = Number(args.dims);
const QUERIES = Number(args.queries);

/** Deterministic pseudo-random numbers (mulberry32), so every run measures the same data. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** N unit vectors around 512 centroids (embeddings cluster by topic; uniform noise would not). */
function clustered(n: number, seed = 1): Float32Array[] {
  const random = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const centroids = Array.from({ length: 512 }, () => Float32Array.from({ length: DIMS }, gauss));
  return Array.from({ length: n }, (_, i) => {
    const c = centroids[i % centroids.length]!;
    const v = new Float32Array(DIMS);
    let norm = 0;
    for (let d = 0; d < DIMS; d++) {
      v[d] = c[d]! + 0.8 * gauss();
      norm += v[d]! * v[d]!;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < DIMS; d++) v[d]! /= norm;
    return v;
  });
}

function near(v: Float32Array, random: () => number): Float32Array {
  const q = v.map((x) => x + (random() - 0.5) * 0.05);
  const norm = Math.hypot(...q);
  return q.map((x) => x / norm);
}

const ms = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(1)} ms, p95 ${percentile(sorted, 95).toFixed(1)} ms`;
};

function float32Scan(vectors: Float32Array[], q: Float32Array, k: number): number[] {
  const scores = vectors.map((v) => {
    let s = 0;
    for (let d = 0; d < DIMS; d++) s += v[d]! * q[d]!;
    return s;
  });
  return scores
    .map((s, i) => [s, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map((x) => x[1] + 1);
}

async function searchBench(): Promise<void> {
  for (const n of args.sizes.split(',').map(Number)) {
    const vectors = clustered(n);
    const started = performance.now();
    const builder = VectorIndex.builder(DIMS);
    vectors.forEach((v, i) => {
      builder.add(i + 1, v);
    });
    const index = builder.build();
    const buildMs = performance.now() - started;
    const random = rng(7);
    const exact: number[] = [];
    const indexed: number[] = [];
    const f32: number[] = [];
    let recall = 0;
    for (let i = 0; i < QUERIES; i++) {
      const q = near(vectors[Math.floor(random() * n)]!, random);
      let t = performance.now();
      const e = index.search(q, 40, 'exact');
      exact.push(performance.now() - t);
      t = performance.now();
      const x = index.search(q, 40, 'indexed');
      indexed.push(performance.now() - t);
      if (i < 10) {
        t = performance.now();
        float32Scan(vectors, q, 40);
        f32.push(performance.now() - t);
      }
      const truth = new Set(e.slice(0, 10).map((h) => h.id));
      recall += x.slice(0, 10).filter((h) => truth.has(h.id)).length / 10;
    }
    console.log(
      `search n=${n} dims=${DIMS} (index built in ${(buildMs / 1000).toFixed(1)} s): exact int8 ${ms(exact)}; ` +
        `indexed ${ms(indexed)}; float32 JS scan ${ms(f32)}; recall@10 indexed/exact ${(recall / QUERIES).toFixed(3)}; load average ${loadavg()[0]!.toFixed(1)}`,
    );
  }
}

/** Fills one base with `n` chunk rows (768-dim embeddings), in statements of 1000 rows. */
async function fill(db: AtlasDb, n: number): Promise<string> {
  const base = randomBytes(8).toString('hex');
  await db.query(
    `insert into knowledge_bases (id, name, sharing, embedding_model, chunk_tokens, chunk_overlap) values ($1, $2, 'shared', 'bench', 400, 60)`,
    [base, `bench-${base}`],
  );
  // Zipf-distributed words from a 5000-word vocabulary: a query's words match a few chunks in a hundred,
  // as in real text (a 10-word vocabulary would make every chunk match every query).
  const random = rng(11);
  const word = () => `w${Math.floor(5000 ** random()).toString(36)}`;
  const vectors = clustered(Math.min(n, 20_000), 3);
  for (let doc = 0; doc * 1000 < n; doc++) {
    const id = `${base}-${doc}`;
    const count = Math.min(1000, n - doc * 1000);
    // The document's chunk count matters: a base whose documents count no chunks skips the vector side.
    await db.query(
      `insert into knowledge_documents (id, base_id, name, file_key, sha256, size, media_type, state, chunks) values ($1, $2, $3, $3, $1, 1, 'text/plain', 'ready', $4)`,
      [id, base, `doc-${doc}.txt`, count],
    );
    const rows = Array.from({ length: count }, (_, i) => {
      const v = vectors[(doc * 1000 + i) % vectors.length]!;
      return {
        position: i,
        text: Array.from({ length: 60 }, word).join(' '),
        embedding: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'),
      };
    });
    await db.query(
      `insert into knowledge_chunks (document_id, base_id, position, text, tokens, embedding)
       select $1, $2, x.position, x.text, 80, decode(x.embedding, 'base64')
         from json_to_recordset($3::json) as x(position int, text text, embedding text)`,
      [id, base, JSON.stringify(rows)],
    );
  }
  return base;
}

async function rebuildBench(db: AtlasDb, n: number, label: string): Promise<string> {
  const fillStarted = performance.now();
  const base = await fill(db, n);
  const fillS = (performance.now() - fillStarted) / 1000;
  const dir = await mkdtemp(join(tmpdir(), 'hearth-bench-kb-'));
  try {
    // On PostgreSQL the two ways of reading the rows (one binary COPY, the default; keyset pages of a
    // plain query, the way before it) run interleaved, so both see the same load.
    const ways: Array<'copy' | 'pages'> = db.kind === 'postgres' ? ['pages', 'copy'] : ['pages'];
    const rates = new Map<string, number[]>(ways.map((way) => [way, []]));
    const runs = Number(args['rebuild-runs']);
    for (let run = 0; run < runs; run++) {
      for (const way of ways) {
        await rm(dir, { recursive: true, force: true });
        const cache = new VectorIndexCache({ dir, db, log: silentLogger(), rows: way });
        const started = performance.now();
        const index = await cache.get(base, run);
        rates.get(way)!.push(index.count / ((performance.now() - started) / 1000));
      }
    }
    for (const [way, list] of rates) {
      const sorted = list.sort((a, b) => a - b);
      console.log(
        `rebuild ${label} (${way}) n=${n}: median ${Math.round(sorted[Math.floor(sorted.length / 2)]!)} chunks/s (runs: ${sorted.map((r) => Math.round(r)).join(', ')}); filling took ${fillS.toFixed(0)} s; load average ${loadavg()[0]!.toFixed(1)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return base;
}

async function hybridBench(db: AtlasDb, base: string, n: number, label: string): Promise<void> {
  const vector = [...clustered(1, 99)[0]!];
  const stub = { embeddings: [vector], promptTokens: 1, loadDurationNs: 0 };
  const dir = await mkdtemp(join(tmpdir(), 'hearth-bench-kb-'));
  const knowledge = new KnowledgeService({
    db,
    files: undefined as never,
    engine: { embed: async () => stub as never, rerank: async () => ({}) as never },
    inference: {
      prepare: async () => ({ spec: {}, load: {}, keepAliveMs: 0 }) as never,
      capabilities: async () => [],
      embedding: () => ({}) as never,
      rerank: () => ({}) as never,
    },
    log: silentLogger(),
    cacheDir: dir,
    settings: { embeddingModel: 'bench', chunkTokens: 400, chunkOverlap: 60, maxFileBytes: 1, topK: 5, template: '' },
  });
  try {
    const [row] = await db.query<{ name: string }>('select name from knowledge_bases where id = $1', [base]);
    await knowledge.query({ userId: null }, [row!.name], 'warm up the index'); // builds the index once
    for (const mode of ['indexed', 'exact'] as const) {
      const times: number[] = [];
      const vectorTimes: number[] = [];
      const [{ generation } = { generation: 0 }] = await db.query<{ generation: number }>(
        'select generation from knowledge_bases where id = $1',
        [base],
      );
      const index = await knowledge.index.get(base, Number(generation));
      // Mid-frequency words (ranks 200 to 2000 of the vocabulary).
      const words = Array.from(
        { length: 8 },
        (_, i) => `w${(200 + i * 225).toString(36)} w${(300 + i * 190).toString(36)}`,
      );
      for (let i = 0; i < QUERIES; i++) {
        const t = performance.now();
        await knowledge.query({ userId: null }, [row!.name], words[i % words.length]!, { limit: 5, mode });
        times.push(performance.now() - t);
        const v = performance.now();
        index.search(vector, 40, mode);
        vectorTimes.push(performance.now() - v);
      }
      console.log(
        `hybrid query n=${n} (${label}, ${mode} vectors, embedding excluded): ${ms(times)}; its vector side alone: ${ms(vectorTimes)}; load average ${loadavg()[0]!.toFixed(1)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function ingestBench(docs: number, threads: number): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'hearth-bench-ingest-'));
  try {
    await mkdir(join(root, 'atlas'), { recursive: true });
    const model = await generateModel({
      path: join(root, 'embed.gguf'),
      contextLength: 2048,
      seed: 1,
      chatTemplate: 'none',
      embedding: true,
      name: 'hearth-bench-embed',
    });
    const { config } = configFromObject({
      atlas: { files: join(root, 'atlas'), database: 'embedded' },
      // The tests' llama-server build (without engineDir, `auto` would serve in-process while it builds
      // llama-server in the background: a compile on the same cores as the measurement).
      node: {
        cacheDir: join(root, 'cache'),
        threads,
        id: 'bench',
        jobs: { concurrency: 2 },
        engineDir: testEngineDir(),
      },
      inference: { engine: 'server' },
      jobs: { pollInterval: '100ms' },
      log: { level: 'warn' },
    });
    const ctx = await openContext(config, silentLogger());
    try {
      await ctx.atlas.files.put('models-in/embed.gguf', await readFile(model.path));
      await ctx.models.create({ model: 'embed', from: 'atlas:models-in/embed.gguf' });
      await ctx.knowledge.create({ userId: null }, { name: 'bench', embedding_model: 'embed' });
      const paragraph = (d: number, p: number) =>
        `Section ${p} of document ${d}: the boiler, the garden lamps and the network router each have a page here, with steps to follow and things to check first.`;
      const files = Array.from({ length: docs }, (_, d) => ({
        name: `doc-${d}.md`,
        bytes: Buffer.from(
          `# Document ${d}\n\n${Array.from({ length: 60 }, (_, p) => paragraph(d, p)).join('\n\n')}\n`,
        ),
      }));
      const started = performance.now();
      const { job } = await ctx.knowledge.addFiles({ userId: null }, 'bench', files);
      for (;;) {
        const view = await ctx.jobs.get(job!);
        if (view.state !== 'queued' && view.state !== 'running') break;
        await sleep(100);
      }
      const seconds = (performance.now() - started) / 1000;
      const [row] = await ctx.atlas.db.query<{ n: number }>('select count(*)::int as n from knowledge_chunks');
      console.log(
        `ingest ${docs} documents (PGlite, generated embedding model, llama-server, ${threads} thread(s)): ${row!.n} chunks in ${seconds.toFixed(1)} s = ${(row!.n / seconds).toFixed(1)} chunks/s; load average ${loadavg()[0]!.toFixed(1)}`,
      );
    } finally {
      await closeContext(ctx);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const parts = new Set(args.parts.split(','));
  if (parts.has('search')) await searchBench();
  if (parts.has('pg')) await pgBench();
  if (parts.has('pglite')) await pgliteBench();
  if (parts.has('ingest')) {
    for (const threads of args['ingest-threads'].split(',').map(Number)) {
      await ingestBench(Number(args['ingest-docs']), threads);
    }
  }
}

async function pgBench(): Promise<void> {
  const pg = await startPostgres();
  try {
    const db = await openAtlasDb({ database: pg.url, embeddedDir: '', log: silentLogger() });
    try {
      const n = Number(args['rebuild-pg']);
      const base = await rebuildBench(db, n, 'PostgreSQL');
      await hybridBench(db, base, n, 'PostgreSQL');
    } finally {
      await db.close();
    }
  } finally {
    await pg.destroy();
  }
}

async function pgliteBench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-bench-pglite-'));
  try {
    const db = await openAtlasDb({ database: 'embedded', embeddedDir: dir, log: silentLogger() });
    try {
      const n = Number(args['rebuild-pglite']);
      const base = await rebuildBench(db, n, 'PGlite');
      await hybridBench(db, base, n, 'PGlite');
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
