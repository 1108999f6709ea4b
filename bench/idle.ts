// What an idle `hearth serve` costs in CPU (no model loaded, no requests): the CPU time its process
// uses per second of wall time, and how often its threads are woken (context switches per second).
//
//   npx tsx bench/idle.ts [--rounds 3] [--settle 60] [--seconds 30] [--postgres]
//
// Each round starts one server per variant at the same time, lets them settle, then reads
// /proc/<pid>/stat (utime + stime) and the context switches of every thread over the same window,
// so the variants share whatever else the machine is doing; the start order alternates by round.
// The settle is long because V8 runs a full garbage collection (a few hundred ms) some 40 s after
// start-up, once the heap stops growing: a one-off that is no part of the idle cost.
// Variants:
//  - notify: the defaults (workers and the prompt runner wake on the queue's NOTIFY; the slow poll
//    is 30 s);
//  - poll-1s: jobs.pollInterval and workflows.pollInterval at 1 s, the queue reads of the old
//    default (one fetch per queue per second; the dead-letter look now comes with each poll rather
//    than every fifth, so it is a little dearer than the old behaviour).
// --postgres: Atlas on a PostgreSQL server this bench starts (one database per server); only hearth's
// process is measured, not PostgreSQL's. Prints each round and the medians, with the load average.
import { readdir, readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { median } from '../src/loadgen/stats.js';
import { createTestDatabase, type PostgresServer, startPostgres } from '../test/support/postgres.js';
import { type HearthServer, startHearthServer } from './lib/hearth-server.js';
import { processCpuMs } from './lib/machine.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    settle: { type: 'string', default: '60' },
    seconds: { type: 'string', default: '30' },
    postgres: { type: 'boolean', default: false },
  },
});

const VARIANTS: Record<string, Record<string, string>> = {
  notify: {},
  'poll-1s': { HEARTH_JOBS_POLL_INTERVAL: '1s', HEARTH_WORKFLOWS_POLL_INTERVAL: '1s' },
};

interface Sample {
  cpuMs: number;
  switches: number;
}

/** CPU time (user + system) and context switches (voluntary and not, all threads) of `pid` so far. */
async function sample(pid: number): Promise<Sample> {
  const cpuMs = await processCpuMs(pid);
  let switches = 0;
  for (const task of await readdir(`/proc/${pid}/task`)) {
    const status = await readFile(`/proc/${pid}/task/${task}/status`, 'utf8').catch(() => '');
    for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) switches += Number(m[1]);
  }
  return { cpuMs, switches };
}

const rounds = Number(args.rounds);
const seconds = Number(args.seconds);
const results: Record<string, { cpu: number[]; switches: number[] }> = {};
const loads: number[] = [];
let pg: PostgresServer | undefined;
if (args.postgres) pg = await startPostgres();
try {
  for (let round = 0; round < rounds; round++) {
    const names = Object.keys(VARIANTS);
    if (round % 2 === 1) names.reverse();
    const servers: Array<[string, HearthServer, () => Promise<void>]> = [];
    try {
      for (const name of names) {
        const db = pg ? await createTestDatabase(pg.url) : undefined;
        const server = await startHearthServer({
          threads: 2,
          numParallel: 1,
          env: {
            HEARTH_INFERENCE_ENGINE: 'inprocess',
            ...(db ? { HEARTH_ATLAS_DATABASE: db.url } : {}),
            ...VARIANTS[name],
          },
        });
        servers.push([name, server, async () => db?.drop()]);
      }
      await sleep(Number(args.settle) * 1000);
      const before = await Promise.all(servers.map(([, s]) => sample(s.pid)));
      const started = performance.now();
      await sleep(seconds * 1000);
      const after = await Promise.all(servers.map(([, s]) => sample(s.pid)));
      const wall = (performance.now() - started) / 1000;
      loads.push(loadavg()[0]!);
      servers.forEach(([name], i) => {
        const cpu = (after[i]!.cpuMs - before[i]!.cpuMs) / wall;
        const switches = (after[i]!.switches - before[i]!.switches) / wall;
        const r = results[name] ?? { cpu: [], switches: [] };
        results[name] = r;
        r.cpu.push(cpu);
        r.switches.push(switches);
        console.log(
          `round ${round + 1} ${name.padEnd(8)} ${cpu.toFixed(1).padStart(6)} ms CPU/s ${switches.toFixed(1).padStart(7)} switches/s`,
        );
      });
    } finally {
      for (const [, server, drop] of servers) {
        await server.stop();
        await drop();
      }
    }
  }
} finally {
  await pg?.destroy();
}

console.log(
  `\nidle hearth serve on ${pg ? 'PostgreSQL' : 'embedded PGlite'}, ${rounds} rounds of ${seconds} s; load average (1 min) ${loads.map((l) => l.toFixed(2)).join(', ')}`,
);
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name.padEnd(8)} median ${median(r.cpu).toFixed(1)} ms CPU/s, ${median(r.switches).toFixed(1)} switches/s`,
  );
}
