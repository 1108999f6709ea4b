import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { HearthError } from '../errors.js';
import { BENCH_REPORT_FORMAT, type BenchReport, type LevelResult } from './runner.js';
import type { Distribution } from './stats.js';

/** A column of the table: one concurrency level of one run. */
interface Column {
  title: string;
  level: LevelResult;
}

type Row = [label: string, value: (l: LevelResult) => number | null, kind?: 'count'];

const LATENCIES: Array<[name: string, pick: (l: LevelResult) => Distribution | null]> = [
  ['TTFT', (l) => l.ttftMs],
  ['TPOT', (l) => l.tpotMs],
  ['ITL', (l) => l.itlMs],
  ['E2E', (l) => l.e2eMs],
];

const ROWS: Row[] = [
  ['completed requests', (l) => l.completed, 'count'],
  ['failed requests', (l) => l.failed, 'count'],
  ['duration (s)', (l) => l.durationS],
  ['request throughput (req/s)', (l) => l.requestThroughput],
  ['output throughput (tok/s)', (l) => l.outputThroughput],
  ['total throughput (tok/s)', (l) => l.totalThroughput],
  ['prompt tokens', (l) => l.promptTokens, 'count'],
  ['output tokens', (l) => l.outputTokens, 'count'],
  ...LATENCIES.flatMap(([name, pick]): Row[] =>
    (['mean', 'p50', 'p90', 'p99'] as const).map(
      (stat): Row => [`${name} ${stat} (ms)`, (l) => pick(l)?.[stat] ?? null],
    ),
  ),
];

/** A number as the table shows it: 3 significant figures for small values, whole numbers from 100 up. */
export function formatFigure(value: number | null, kind?: 'count'): string {
  if (value === null || !Number.isFinite(value)) return '-';
  if (kind === 'count') return String(Math.round(value));
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function describeWorkload(r: BenchReport): string {
  const w = r.workload;
  const lengths =
    w.kind === 'fixed'
      ? `synthetic prompts of ~${w.promptTokens} tokens, ${w.outputTokens} output tokens`
      : `${w.entries} prompts from ${w.path}, ${w.outputTokens} output tokens unless a line says otherwise`;
  const amount =
    r.requestsPerLevel !== null ? `${r.requestsPerLevel} requests per level` : `${r.durationPerLevelS} s per level`;
  return `${lengths} · ${r.stream ? 'streaming' : 'not streaming'} · ${amount} · ${r.warmup} warm-up`;
}

function renderTable(columns: Column[], ratio: boolean): string {
  const header = ['', ...columns.map((c) => c.title), ...(ratio ? ['ratio'] : [])];
  const rows = ROWS.map(([label, value, kind]) => {
    const cells = columns.map((c) => formatFigure(value(c.level), kind));
    if (ratio) {
      const a = value(columns[0]!.level);
      const b = value(columns[1]!.level);
      cells.push(a !== null && b !== null && a !== 0 && kind !== 'count' ? `${(b / a).toFixed(2)}x` : '');
    }
    return [label, ...cells];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function renderErrors(columns: Column[]): string[] {
  const out: string[] = [];
  for (const c of columns) {
    for (const e of c.level.errors) out.push(`  ${c.title}: ${e.count} × ${e.message}`);
  }
  return out.length ? ['', 'failures:', ...out] : [];
}

/** One run as a readable table: a column per concurrency level. */
export function formatReport(report: BenchReport): string {
  const columns = report.levels.map((level) => ({ title: `c=${level.concurrency}`, level }));
  return [
    `hearth bench · ${report.target.api} ${report.target.mode} · ${report.target.endpoint} · model ${report.target.model}`,
    describeWorkload(report),
    '',
    columns.length ? renderTable(columns, false) : '(no level ran)',
    ...renderErrors(columns),
    '',
  ].join('\n');
}

/**
 * Several runs side by side: a column per run and level, numbered runs described above the
 * table; with exactly two columns a ratio column (second / first) follows.
 */
export function formatComparison(reports: Array<{ name: string; report: BenchReport }>): string {
  const legend: string[] = [];
  const columns: Column[] = [];
  reports.forEach(({ name, report }, i) => {
    const tag = `[${i + 1}]`;
    legend.push(
      `${tag} ${name}: ${report.target.api} ${report.target.mode} · ${report.target.endpoint} · model ${report.target.model} · ${report.startedAt}`,
      `    ${describeWorkload(report)}`,
    );
    for (const level of report.levels) columns.push({ title: `${tag} c=${level.concurrency}`, level });
  });
  return [...legend, '', renderTable(columns, columns.length === 2), ...renderErrors(columns), ''].join('\n');
}

/** Reads a report written by `hearth bench --json` / `--output`, checking it is one. */
export async function readReport(path: string): Promise<{ name: string; report: BenchReport }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HearthError(
      'BENCH_OPTIONS_INVALID',
      [
        `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the files \`hearth bench --output\` wrote`,
      ],
      { cause: err },
    );
  }
  let report: Partial<BenchReport>;
  try {
    report = JSON.parse(text) as Partial<BenchReport>;
  } catch {
    throw new HearthError('BENCH_OPTIONS_INVALID', [
      `${path} is not JSON: give the files \`hearth bench --output\` wrote`,
    ]);
  }
  if (report?.format !== BENCH_REPORT_FORMAT || !Array.isArray(report.levels) || !report.target) {
    throw new HearthError('BENCH_OPTIONS_INVALID', [
      `${path} is not a hearth bench report (format ${BENCH_REPORT_FORMAT}): give the files \`hearth bench --output\` wrote`,
    ]);
  }
  return { name: basename(path).replace(/\.json$/i, ''), report: report as BenchReport };
}
