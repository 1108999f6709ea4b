// PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"),
// read: an 11-byte signature, an int32 flags field and an int32 header-extension length (19 bytes and the
// extension), then per tuple an int16 field count and per field an int32 length (-1 = NULL) and its bytes,
// and an int16 -1 as trailer. Only the column types hearth streams are decoded.

/** How a column's bytes are decoded: int4 → number, int8 → string (node-postgres's convention), text → string, bytea → Buffer. */
export type CopyColumnType = 'int4' | 'int8' | 'text' | 'bytea';

/** The columns of a streamed SELECT, in its order: name → type. */
export type CopyColumns = Readonly<Record<string, CopyColumnType>>;

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER = 19;

/**
 * Turns the chunks of a `COPY … TO STDOUT (FORMAT binary)` into row objects. Chunks may split anywhere
 * (inside a length or a field): the unfinished tuple waits for the next chunk. bytea values are views into
 * the received bytes (no copy).
 */
export class BinaryCopyParser {
  private readonly names: string[];
  private readonly types: CopyColumnType[];
  private pending: Buffer = Buffer.alloc(0);
  private headerRead = false;
  private finished = false;

  constructor(columns: CopyColumns) {
    this.names = Object.keys(columns);
    this.types = Object.values(columns);
  }

  /** The rows completed by `chunk`. Throws on bytes that are not this format or these columns. */
  push<R = Record<string, unknown>>(chunk: Uint8Array): R[] {
    const buf = this.pending.length
      ? Buffer.concat([this.pending, chunk])
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const rows: R[] = [];
    let at = 0;
    if (!this.headerRead) {
      if (buf.length < HEADER) {
        this.pending = buf;
        return rows;
      }
      if (!buf.subarray(0, SIGNATURE.length).equals(SIGNATURE))
        throw new Error('binary COPY: the signature is missing');
      const extension = buf.readUInt32BE(15);
      if (buf.length < HEADER + extension) {
        this.pending = buf;
        return rows;
      }
      at = HEADER + extension;
      this.headerRead = true;
    }
    const width = this.types.length;
    while (at + 2 <= buf.length) {
      if (this.finished) throw new Error('binary COPY: bytes after the trailer');
      const count = buf.readInt16BE(at);
      if (count === -1) {
        this.finished = true;
        at += 2;
        continue;
      }
      if (count !== width) throw new Error(`binary COPY: a tuple of ${count} fields, ${width} expected`);
      let p = at + 2;
      const row: Record<string, unknown> = {};
      let complete = true;
      for (let i = 0; i < width; i++) {
        if (p + 4 > buf.length) {
          complete = false;
          break;
        }
        const length = buf.readInt32BE(p);
        p += 4;
        if (length === -1) {
          row[this.names[i]!] = null;
          continue;
        }
        if (p + length > buf.length) {
          complete = false;
          break;
        }
        row[this.names[i]!] = decode(this.types[i]!, buf, p, length);
        p += length;
      }
      if (!complete) break;
      rows.push(row as R);
      at = p;
    }
    this.pending = buf.subarray(at);
    return rows;
  }

  /** Throws unless the stream ended with its trailer and nothing is left over. */
  end(): void {
    if (!this.finished || this.pending.length) throw new Error('binary COPY: the stream ended inside a tuple');
  }
}

function decode(type: CopyColumnType, buf: Buffer, at: number, length: number): unknown {
  switch (type) {
    case 'bytea':
      return buf.subarray(at, at + length);
    case 'text':
      return buf.toString('utf8', at, at + length);
    case 'int4':
      if (length !== 4) throw new Error(`binary COPY: an int4 of ${length} bytes`);
      return buf.readInt32BE(at);
    case 'int8':
      if (length !== 8) throw new Error(`binary COPY: an int8 of ${length} bytes`);
      return buf.readBigInt64BE(at).toString();
  }
}
