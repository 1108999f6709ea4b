// What the benchmark ran on: the figures only mean something next to this.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';

export interface MachineInfo {
  cpu: string;
  logicalCpus: number;
  memoryGiB: number;
  /** the CPU flags that matter to ggml's kernels */
  simd: string[];
  node: string;
  nodeLlamaCpp: string;
  /** load average over the last minute when the run started (other work on the box skews figures) */
  loadAverage1m: number;
}

export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  // node-llama-cpp's exports hide its package.json: find it from its entry point
  const entry = createRequire(import.meta.url).resolve('node-llama-cpp');
  const pkg = JSON.parse(await readFile(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    // availableParallelism follows the CPU affinity (taskset), cpus() does not
    logicalCpus: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    simd: ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_int8', 'neon'].filter((f) => flags.has(f)),
    node: process.version,
    nodeLlamaCpp: pkg.version,
    loadAverage1m: loadavg()[0] ?? 0,
  };
}

/**
 * CPU time (user + system, all threads) process `pid` has used so far, in ms, from /proc/<pid>/stat
 * (clock ticks of 10 ms: USER_HZ is 100 on Linux).
 */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // pid (comm) state …: comm may hold spaces, so split after its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
