// AtlasDb.copyRows: the binary COPY parser on hand-made bytes (NULL, chunk boundaries anywhere, a
// truncated stream), and the real thing on PostgreSQL: rows and types as a SELECT gives them, literals
// quoted in, and the pooled connection given back after an early stop and after an SQL error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryCopyParser, type CopyColumns } from '../src/atlas/db/copy-binary.js';
import { type AtlasDb, openAtlasDb } from '../src/atlas/db/index.js';
import { silentLogger } from '../src/log.js';
import { createTestDatabase, sharedPostgresUrl } from './support/postgres.js';

const COLUMNS: CopyColumns = { id: 'int8', n: 'int4', name: 'text', data: 'bytea' };

/** What PostgreSQL sends for these rows (the format of its docs, "Binary Format"). */
function copyBytes(rows: Array<[bigint, number | null, string | null, Buffer | null]>): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  const field = (bytes: Buffer | null) => {
    const length = Buffer.alloc(4);
    length.writeInt32BE(bytes ? bytes.length : -1);
    parts.push(length);
    if (bytes) parts.push(bytes);
  };
  for (const [id, n, name, data] of rows) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(4);
    parts.push(count);
    const i8 = Buffer.alloc(8);
    i8.writeBigInt64BE(id);
    field(i8);
    let i4: Buffer | null = null;
    if (n !== null) {
      i4 = Buffer.alloc(4);
      i4.writeInt32BE(n);
    }
    field(i4);
    field(name === null ? null : Buffer.from(name));
    field(data);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

const DATA = Buffer.from(Array.from({ length: 3072 }, (_, i) => i % 251));
const ROWS: Array<[bigint, number | null, string | null, Buffer | null]> = [
  [1n, 7, 'hé', DATA],
  [9007199254740993n, null, null, null],
  [-3n, -1, '', Buffer.alloc(0)],
];
const EXPECTED = [
  { id: '1', n: 7, name: 'hé', data: DATA },
  { id: '9007199254740993', n: null, name: null, data: null },
  { id: '-3', n: -1, name: '', data: Buffer.alloc(0) },
];

describe('binary COPY parser', () => {
  it('decodes int8, int4, text, bytea and NULL from one chunk', () => {
    const parser = new BinaryCopyParser(COLUMNS);
    expect(parser.push(copyBytes(ROWS))).toEqual(EXPECTED);
    expect(() => parser.end()).not.toThrow();
  });

  it('gives the same rows however the bytes are split (inside the header, a length, a bytea field)', () => {
    const bytes = copyBytes(ROWS);
    // Every split into two chunks, and three-way splits around the bytea of the first row.
    const splits: number[][] = [];
    for (let at = 1; at < bytes.length; at += at < 80 || at > 3100 ? 1 : 97) splits.push([at]);
    splits.push([5, 40, 1000], [19, 21, 3000], [50, 51, 52]);
    for (const cuts of splits) {
      const parser = new BinaryCopyParser(COLUMNS);
      const rows: unknown[] = [];
      let from = 0;
      for (const cut of [...cuts, bytes.length]) {
        rows.push(...parser.push(bytes.subarray(from, cut)));
        from = cut;
      }
      expect(rows, `split at ${cuts.join(',')}`).toEqual(EXPECTED);
      parser.end();
    }
  });

  it('refuses a stream that stops inside a tuple, a wrong signature and a wrong field count', () => {
    const bytes = copyBytes(ROWS);
    const cut = new BinaryCopyParser(COLUMNS);
    expect(cut.push(bytes.subarray(0, 100))).toEqual([]);
    expect(() => cut.end()).toThrow(/ended inside a tuple/);
    expect(() => new BinaryCopyParser(COLUMNS).push(Buffer.alloc(40))).toThrow(/signature/);
    expect(() => new BinaryCopyParser({ id: 'int8' }).push(bytes)).toThrow(/4 fields, 1 expected/);
  });
});

describe('copyRows on PostgreSQL', () => {
  let db: AtlasDb;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const made = await createTestDatabase(sharedPostgresUrl());
    drop = made.drop;
    // One connection: a COPY that did not give its connection back would make the next call wait forever.
    db = await openAtlasDb({
      database: made.url,
      embeddedDir: 'not-used',
      log: silentLogger(),
      maxConnections: 1,
      connectTimeoutMs: 3000,
    });
    await db.exec(`create table copy_rows (id bigint primary key, n integer, name text, data bytea);
      insert into copy_rows select i, case when i % 10 = 0 then null else i end, 'row ' || i || ' it''s',
        case when i % 7 = 0 then null else decode(repeat(lpad(to_hex(i % 256), 2, '0'), 3072), 'hex') end
      from generate_series(1, 3000) i;`);
  });

  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  const select = 'select id, n, name, data from copy_rows where id <= $1 and name <> $2 order by id';

  it('returns the same rows as a plain query, in batches, with the parameters quoted in', async () => {
    const params = [2500, "it's not this one"] as const;
    const batches: Array<Array<Record<string, unknown>>> = [];
    for await (const batch of db.copyRows(select, params, COLUMNS)) batches.push(batch);
    const copied = batches.flat();
    const queried = await db.query(select, [...params]);
    expect(copied).toHaveLength(2500);
    expect(batches.length).toBeGreaterThan(1);
    // bytea compared as hex (a deep comparison of 2500 buffers byte by byte takes seconds).
    const hex = (rows: Array<Record<string, unknown>>) =>
      rows.map((r) => ({
        ...r,
        data: r['data'] === null ? null : Buffer.from(r['data'] as Uint8Array).toString('hex'),
      }));
    expect(hex(copied)).toEqual(hex(queried));
  });

  it('gives its connection back when the reader stops early and when the statement fails', async () => {
    for (let i = 0; i < 3; i++) {
      for await (const batch of db.copyRows(select, [3000, ''], COLUMNS)) {
        expect(batch.length).toBeGreaterThan(0);
        break;
      }
    }
    const failing = async () => {
      for await (const _ of db.copyRows('select id from no_such_table', [], { id: 'int8' })) void _;
    };
    await expect(failing()).rejects.toThrow(/no_such_table/);
    await expect(failing()).rejects.toThrow(/no_such_table/);
    await expect(
      (async () => {
        for await (const _ of db.copyRows(select, [1], COLUMNS)) void _;
      })(),
    ).rejects.toThrow(/parameter \$2 is missing/);
    // The one connection is free again.
    expect(await db.query('select count(*)::int as n from copy_rows')).toEqual([{ n: 3000 }]);
  });
});
