import { describe, expect, it } from 'vitest';
import { parseCsvRecord, RecordSplitter, recordText } from './records.js';

/** Splits `text` fed in chunks of `size` bytes, returning each record's text and line. */
function split(format: 'jsonl' | 'csv', text: string, size: number) {
  const bytes = Buffer.from(text);
  const splitter = new RecordSplitter(format);
  const spans = [];
  for (let i = 0; i < bytes.length; i += size) spans.push(...splitter.push(bytes.subarray(i, i + size)));
  spans.push(...splitter.end());
  return spans.map((s) => [recordText(bytes.subarray(s.start, s.end)), s.line]);
}

describe('record boundaries', () => {
  it('finds JSONL records wherever the chunks break, skipping blank lines, with CRLF and a BOM', () => {
    const text = '\ufeff{"a":1}\r\n\n  \n{"a":2}\n{"a":3}';
    for (const size of [1, 2, 3, 7, 1000]) {
      expect(split('jsonl', text, size)).toEqual([
        ['{"a":1}', 1],
        ['{"a":2}', 4],
        ['{"a":3}', 5],
      ]);
    }
  });

  it('keeps newlines inside quoted CSV fields in one record, and counts lines through them', () => {
    const text = 'name,note\n"Ada","two\nlines"\n\nBob,"say ""hi"""\n';
    for (const size of [1, 4, 1000]) {
      expect(split('csv', text, size)).toEqual([
        ['name,note', 1],
        ['"Ada","two\nlines"', 2],
        ['Bob,"say ""hi"""', 5],
      ]);
    }
  });
});

describe('CSV fields', () => {
  it('splits on commas outside quotes and unescapes doubled quotes', () => {
    expect(parseCsvRecord('a,"b,c","say ""hi""",')).toEqual(['a', 'b,c', 'say "hi"', '']);
  });

  it('says what is wrong with a malformed row', () => {
    expect(() => parseCsvRecord('a,"open')).toThrow('a quote in field 2 is never closed');
    expect(() => parseCsvRecord('"a"x,b')).toThrow('unexpected "x" after a closing quote in field 1');
  });
});
