/**
 * Record boundaries in JSONL and CSV bytes. A JSONL record is a line; a CSV record ends at a newline
 * outside double quotes (a quoted field may hold newlines). Blank records (empty or whitespace-only
 * lines) are no records at all. Offsets are absolute byte positions, so a plan can cut a file into
 * shards at record starts and a shard can be read back with one byte range.
 */

const NEWLINE = 0x0a;
const QUOTE = 0x22;

/** One record's place in the file. */
export interface RecordSpan {
  /** first byte */
  start: number;
  /** one past the last byte (the newline excluded) */
  end: number;
  /** 1-based line number of the record's first line */
  line: number;
}

export type SplitFormat = 'jsonl' | 'csv';

/** Finds records in a stream of chunks; `push` returns the records completed by each chunk. */
export class RecordSplitter {
  private _offset: number;
  private line: number;
  private recordStart: number;
  private recordLine: number;
  private inQuotes = false;
  private blank = true;

  /** `offset` and `line` say where the first chunk starts (a shard read starts mid-file). */
  constructor(
    private readonly format: SplitFormat,
    offset = 0,
    line = 1,
  ) {
    this._offset = offset;
    this.line = line;
    this.recordStart = offset;
    this.recordLine = line;
  }

  push(chunk: Uint8Array): RecordSpan[] {
    const spans: RecordSpan[] = [];
    if (this.format === 'jsonl') {
      let from = 0;
      while (from < chunk.length) {
        const nl = chunk.indexOf(NEWLINE, from);
        const stop = nl === -1 ? chunk.length : nl;
        if (this.blank && !isBlank(chunk, from, stop)) this.blank = false;
        if (nl === -1) break;
        this.endRecord(this._offset + nl, spans);
        from = nl + 1;
      }
    } else {
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i]!;
        if (byte === QUOTE) {
          this.inQuotes = !this.inQuotes;
          this.blank = false;
        } else if (byte === NEWLINE) {
          if (this.inQuotes) this.line++;
          else this.endRecord(this._offset + i, spans);
        } else if (this.blank && !isSpace(byte)) {
          this.blank = false;
        }
      }
    }
    this._offset += chunk.length;
    return spans;
  }

  /** The last record when the data does not end with a newline (or ends inside quotes). */
  end(): RecordSpan[] {
    const spans: RecordSpan[] = [];
    if (!this.blank) spans.push({ start: this.recordStart, end: this._offset, line: this.recordLine });
    this.blank = true;
    this.recordStart = this._offset;
    return spans;
  }

  /** Bytes consumed so far (absolute). */
  get offset(): number {
    return this._offset;
  }

  private endRecord(newlineAt: number, spans: RecordSpan[]): void {
    if (!this.blank) spans.push({ start: this.recordStart, end: newlineAt, line: this.recordLine });
    this.line++;
    this.recordStart = newlineAt + 1;
    this.recordLine = this.line;
    this.blank = true;
  }
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0b || byte === 0x0c;
}

function isBlank(chunk: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(chunk[i]!)) return false;
  return true;
}

/** Text of a record, without a trailing CR or a leading UTF-8 byte-order mark. */
export function recordText(bytes: Uint8Array): string {
  let text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.endsWith('\r')) text = text.slice(0, -1);
  return text;
}

/**
 * Splits one CSV record (RFC 4180: comma-separated, fields in double quotes may hold commas, newlines
 * and doubled quotes). Throws a message for people when quotes do not close.
 */
export function parseCsvRecord(text: string): string[] {
  const fields: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let afterQuote = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        afterQuote = true;
      } else {
        field += ch;
      }
    } else if (ch === ',') {
      fields.push(field);
      field = '';
      afterQuote = false;
    } else if (ch === '"' && field === '' && !afterQuote) {
      quoted = true;
    } else if (afterQuote) {
      throw new Error(`unexpected ${JSON.stringify(ch)} after a closing quote in field ${fields.length + 1}`);
    } else {
      field += ch;
    }
    i++;
  }
  if (quoted) throw new Error(`a quote in field ${fields.length + 1} is never closed`);
  fields.push(field);
  return fields;
}
