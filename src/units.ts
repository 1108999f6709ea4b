/**
 * Human byte sizes in decimal units, as `ollama list` prints them (`4.7 GB`, `512 MB`), or in binary
 * units (`1.5 GiB`) with `binary`, for sizes people set in them (node.cacheMaxBytes). The exact form a
 * config file takes back is config/values.ts's formatBytesExact.
 */
export function formatBytes(bytes: number, opts: { binary?: boolean } = {}): string {
  const step = opts.binary ? 1024 : 1000;
  const units = opts.binary ? ['B', 'KiB', 'MiB', 'GiB', 'TiB'] : ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= step && unit < units.length - 1) {
    value /= step;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** Relative time as `ollama list`/`ps` print it: `3 weeks ago`, `4 minutes from now`, `Forever`. */
export function relativeTime(when: Date, now: Date = new Date()): string {
  const diff = when.getTime() - now.getTime();
  if (when.getUTCFullYear() > 2200) return 'Forever';
  const future = diff > 0;
  const s = Math.abs(diff) / 1000;
  const units: Array<[number, string]> = [
    [60 * 60 * 24 * 365, 'year'],
    [60 * 60 * 24 * 30, 'month'],
    [60 * 60 * 24 * 7, 'week'],
    [60 * 60 * 24, 'day'],
    [60 * 60, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  if (s < 1) return future ? 'Less than a second from now' : 'Less than a second ago';
  for (const [size, name] of units) {
    if (s >= size) {
      const n = Math.floor(s / size);
      const text =
        n === 1
          ? `${name === 'hour' ? 'An' : 'A'} ${name}`.replace(/^A /, 'About a ').replace(/^An /, 'About an ')
          : `${n} ${name}s`;
      return `${text} ${future ? 'from now' : 'ago'}`;
    }
  }
  return 'now';
}

/** A fixed-width table with the given header, as Ollama's CLI prints (columns separated by 4+ spaces). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 4)))
      .join('')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
