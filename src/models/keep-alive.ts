import { HearthError } from '../errors.js';

/**
 * Ollama's keep_alive: a duration string ("5m", "1h30m", "-1s") or a number of
 * seconds. Negative keeps the model loaded forever; 0 unloads it right after.
 * Returns ms (negative = forever), or undefined when absent.
 */
export function parseKeepAlive(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value < 0 ? -1 : Math.round(value * 1000);
  if (typeof value === 'string') {
    const s = value.trim();
    if (/^-?\d+(\.\d+)?$/.test(s)) return parseKeepAlive(Number(s));
    const m = /^(-)?((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(s);
    if (m) {
      const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
      let ms = 0;
      for (const part of m[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
        ms += Number(part[1]) * units[part[2]!]!;
      return m[1] ? -1 : Math.round(ms);
    }
  }
  throw new HearthError(
    'BAD_REQUEST',
    `invalid keep_alive ${JSON.stringify(value)}: use a duration like "5m", "1h", "-1" (forever) or seconds`,
    {
      details: { param: 'keep_alive' },
    },
  );
}
