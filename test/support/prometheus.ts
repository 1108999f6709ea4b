// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests that scrape
// /metrics: it throws on anything a Prometheus server would reject or that breaks the format's rules
// (names, label syntax and escapes, one TYPE per family before its samples, families not split,
// histogram buckets cumulative with a +Inf bucket equal to _count).

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** the sample's own name (e.g. `x_bucket` in family `x`) */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Values as Prometheus reads them (Go's ParseFloat: NaN and Inf in any case; prom-client writes `Nan`). */
function parseValue(text: string, line: number): number {
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return Number.NaN;
    return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))
    throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parses `name{a="b",...} value [timestamp]`. */
function parseSample(text: string, line: number): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(text);
  if (!m) throw new Error(`line ${line}: no metric name in ${JSON.stringify(text)}`);
  const name = m[1]!;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i++;
    for (;;) {
      if (text[i] === '}') {
        i++;
        break;
      }
      const ln = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
      if (!ln) throw new Error(`line ${line}: bad label at ${JSON.stringify(text.slice(i))}`);
      const label = ln[1]!;
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`line ${line}: bad label name ${label}`);
      if (label in labels) throw new Error(`line ${line}: label ${label} twice`);
      i += ln[0].length;
      let value = '';
      for (;;) {
        const c = text[i];
        if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const e = text[i++];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new Error(`line ${line}: bad escape \\${e}`);
        } else {
          value += c;
        }
      }
      labels[label] = value;
      if (text[i] === ',') i++;
      else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after label ${label}`);
    }
  }
  if (text[i] !== ' ') throw new Error(`line ${line}: expected a space before the value`);
  const rest = text
    .slice(i + 1)
    .trim()
    .split(/\s+/);
  if (rest.length < 1 || rest.length > 2) throw new Error(`line ${line}: expected a value and an optional timestamp`);
  if (rest[1] !== undefined && !/^-?\d+$/.test(rest[1])) throw new Error(`line ${line}: bad timestamp`);
  return { name, labels, value: parseValue(rest[0]!, line) };
}

/** The family a sample belongs to, given the families declared so far. */
function familyOf(sample: string, families: Map<string, MetricFamily>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const base = sample.slice(0, -suffix.length);
    const f = families.get(base);
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return base;
  }
  return sample;
}

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const finished = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a newline');
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    if (raw.trim() === '') return;
    const enter = (name: string) => {
      if (current !== name) {
        if (current) finished.add(current);
        if (finished.has(name)) throw new Error(`line ${line}: family ${name} is split in two`);
        current = name;
      }
    };
    if (raw.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name!)) throw new Error(`line ${line}: bad metric name ${name}`);
      enter(name!);
      const family = families.get(name!) ?? { name: name!, type: 'untyped' as MetricType, help: '', samples: [] };
      if (kind === 'TYPE') {
        if (families.get(name!)?.samples.length) throw new Error(`line ${line}: TYPE of ${name} after its samples`);
        if ((family as { typed?: boolean }).typed) throw new Error(`line ${line}: second TYPE for ${name}`);
        if (!TYPES.has(rest as MetricType)) throw new Error(`line ${line}: unknown type ${rest}`);
        family.type = rest as MetricType;
        (family as { typed?: boolean }).typed = true;
      } else {
        family.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      families.set(name!, family);
      return;
    }
    const sample = parseSample(raw, line);
    const name = familyOf(sample.name, families);
    enter(name);
    const family = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
    family.samples.push(sample);
    families.set(name, family);
  });
  for (const f of families.values()) {
    delete (f as { typed?: boolean }).typed;
    if (f.type === 'counter') {
      for (const s of f.samples) if (s.value < 0) throw new Error(`counter ${f.name} is negative`);
    }
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

function checkHistogram(f: MetricFamily): void {
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const entry = series.get(key) ?? { buckets: [] };
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      entry.buckets.push([parseValue(le, 0), s.value]);
    } else if (s.name === `${f.name}_count`) entry.count = s.value;
    else if (s.name === `${f.name}_sum`) entry.sum = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
    series.set(key, entry);
  }
  for (const [key, e] of series) {
    const sorted = [...e.buckets].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]![1] < sorted[i - 1]![1]) throw new Error(`${f.name}${key}: buckets are not cumulative`);
    }
    const inf = sorted.at(-1);
    if (!inf || inf[0] !== Number.POSITIVE_INFINITY) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (e.count === undefined || e.sum === undefined) throw new Error(`${f.name}${key}: _count or _sum missing`);
    if (inf[1] !== e.count) throw new Error(`${f.name}${key}: +Inf bucket ${inf[1]} != _count ${e.count}`);
  }
}

/** The value of the one sample of `family` (sample name `sampleName`, default the family's) whose labels include `labels`; undefined if none. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  family: string,
  labels: Record<string, string> = {},
  sampleName = family,
): number | undefined {
  const matches = (families.get(family)?.samples ?? []).filter(
    (s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matches.length > 1) throw new Error(`${sampleName}${JSON.stringify(labels)} matches ${matches.length} samples`);
  return matches[0]?.value;
}
