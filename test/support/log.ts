import pino from 'pino';

/** A pino logger whose records land in `records` (parsed), for tests that check what was logged. */
export function captureLog(level: pino.Level = 'debug'): { log: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { log, records };
}
