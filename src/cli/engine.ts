import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { engineDirOf } from '../config/index.js';
import { detectGpu } from '../engine/gpu.js';
import { type BuildProgress, buildServer } from '../engine/server/build.js';
import { serverBackend } from '../engine/server/select.js';
import { action, type ConfigOption, loadCliConfig } from './shared.js';

export function registerEngineCommands(program: Command): void {
  const engine = program.command('engine').description('the llama-server engine of this node');
  engine
    .command('build')
    .description(
      "compile llama-server (and llama-quantize) from the llama.cpp source inside node-llama-cpp, linked to its prebuilt libraries for node.gpu's backend",
    )
    .option('-j, --jobs <n>', 'parallel compiler processes (default: the CPU count)')
    .action(action(async (opts: { jobs?: string }) => build(program.opts<ConfigOption>(), opts)));
}

async function build(opts: ConfigOption, cmd: { jobs?: string }): Promise<void> {
  const { config } = loadCliConfig(opts);
  const jobs = cmd.jobs === undefined ? undefined : Number(cmd.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) {
    throw new Error(`--jobs must be a whole number >= 1, got ${cmd.jobs}`);
  }
  const gpu = await detectGpu(config.node.gpu);
  const backend = serverBackend(gpu.backend);
  const engineDir = engineDirOf(config);
  const err = (line: string) => process.stderr.write(line);
  err(`building llama-server for ${backend} in ${engineDir}\n`);
  const started = Date.now();
  const bar = progressBar();
  const result = await buildServer({
    engineDir,
    backend,
    ...(jobs !== undefined ? { jobs } : {}),
    onProgress: bar.update,
    onNote: (line) => err(`${line}\n`),
  }).finally(bar.stop);
  const fresh = Date.now() - started > 2000;
  process.stdout.write(
    `${fresh ? 'built' : 'already built'}: ${result.server} (${result.mode === 'linked' ? `linked to node-llama-cpp ${result.nlcVersion}'s prebuilt ${result.backend} libraries` : 'llama.cpp compiled whole'}, llama.cpp ${result.release}, ${result.seconds} s)\n`,
  );
}

/** The build's bar (cli-progress, as `hearth pull`): objects compiled, and the time left as estimated from them. */
function progressBar(): { update: (p: BuildProgress) => void; stop: () => void } {
  let bar: SingleBar | null = null;
  let phase = '';
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  return {
    stop,
    update: (p) => {
      if (p.phase === 'done') return stop();
      const eta = p.etaSeconds === null ? 'estimating' : `~${formatSeconds(p.etaSeconds)} left`;
      if (!bar || phase !== p.phase) {
        stop();
        phase = p.phase;
        const label = p.phase === 'source' ? 'extracting source' : p.phase === 'link' ? 'linking' : 'compiling';
        bar = new SingleBar({
          format: `${label}: {percentage}% ▕{bar}▏ {value}/{total} {eta_text}`,
          barCompleteChar: '█',
          barIncompleteChar: ' ',
          barsize: 20,
          noTTYOutput: !process.stderr.isTTY,
          notTTYSchedule: 10_000,
          stream: process.stderr,
        });
        bar.start(p.total, p.done, { eta_text: eta });
      }
      bar.update(p.done, { eta_text: eta });
    },
  };
}

function formatSeconds(s: number): string {
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
