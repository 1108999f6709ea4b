import { access, mkdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { openAtlasDb } from '../atlas/db/index.js';
import { openFileStore } from '../atlas/files/index.js';
import { atlasDbHealth, atlasFilesHealth } from '../atlas/health.js';
import { embeddedDbDir, engineDirOf } from '../config/index.js';
import { detectGpu } from '../engine/gpu.js';
import { chooseCudaLibrary, cudaNeeds, describeCudaNeeds } from '../engine/server/cuda-runtime.js';
import { selectServer } from '../engine/server/select.js';
import { describeError, isHearthError } from '../errors.js';
import { executionProviders, ortBinaryDir } from '../images/runtime.js';
import { silentLogger } from '../log.js';
import { assessExposure } from '../net/index.js';
import { formatBytes } from '../units.js';
import { action, type ConfigOption, exposureReport, loadCliConfig } from './shared.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check Atlas (database and files), the node cache, the GPU and the listeners')
    .action(action(async () => doctor(program.opts<ConfigOption>())));
}

interface Check {
  name: string;
  run: () => Promise<string>;
}

async function doctor(opts: ConfigOption): Promise<void> {
  const { config, source, warnings } = loadCliConfig(opts);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`config: ${source ?? 'built-in defaults'}`);
  for (const w of warnings) out(`  warning: ${w}`);

  const checks: Check[] = [
    {
      name: 'atlas files',
      run: async () => atlasFilesHealth(await openFileStore(config.atlas.files)),
    },
    {
      name: 'atlas database',
      run: async () => {
        let db: Awaited<ReturnType<typeof openAtlasDb>>;
        try {
          db = await openAtlasDb({
            database: config.atlas.database,
            embeddedDir: embeddedDbDir(config),
            log: silentLogger(),
            migrate: false,
          });
        } catch (err) {
          // The embedded database is single-process: a running `hearth serve` holding it is healthy.
          if (isHearthError(err, 'ATLAS_DB_IN_USE')) return `${err.message} (a running hearth holds it: fine)`;
          throw err;
        }
        try {
          return await atlasDbHealth(db);
        } finally {
          await db.close();
        }
      },
    },
    {
      name: 'node cache',
      run: async () => {
        await mkdir(config.node.cacheDir, { recursive: true });
        await access(config.node.cacheDir, 2 /* W_OK */);
        return `${config.node.cacheDir} (budget ${formatBytes(config.node.cacheMaxBytes)}; disposable)`;
      },
    },
    {
      name: 'gpu',
      run: async () => {
        const gpu = await detectGpu(config.node.gpu);
        const devices = gpu.devices.length ? ` on ${gpu.devices.join(', ')}` : '';
        const vram = gpu.vram ? `, ${formatBytes(gpu.vram.free)} of ${formatBytes(gpu.vram.total)} VRAM free` : '';
        return `${gpu.backend}${devices}${vram}${gpu.note ? ` (${gpu.note})` : ''} [node.gpu: ${config.node.gpu}]`;
      },
    },
    {
      name: 'engine',
      run: async () => {
        const gpu = await detectGpu(config.node.gpu);
        const selection = await selectServer({
          engine: config.inference.engine,
          llamaServer: config.inference.llamaServer,
          engineDir: engineDirOf(config),
          backend: gpu.backend,
        });
        const warning = selection.warning ? `\n  warning: ${selection.warning}` : '';
        return `${selection.binary ? 'server' : 'in-process'} on ${gpu.backend}: ${selection.why} [inference.engine: ${config.inference.engine}]${warning}`;
      },
    },
    {
      // what the CUDA backend needs of this node, read from node-llama-cpp's prebuilt CUDA libraries
      name: 'cuda runtime',
      run: async () => {
        const gpu = await detectGpu(config.node.gpu);
        const needs = await cudaNeeds();
        const line = describeCudaNeeds(needs);
        if (gpu.backend !== 'cuda') return `${line} [not used: backend ${gpu.backend}]`;
        const choice = chooseCudaLibrary(needs);
        if (!choice?.complete) {
          throw new Error(
            `${line}: llama-server would run on the CPU; install the NVIDIA driver and the CUDA runtime and cuBLAS of one of those versions (or put them on LD_LIBRARY_PATH)`,
          );
        }
        return `${line}; llama-server loads the ${choice.chosen.label} one`;
      },
    },
    {
      name: 'image generation',
      run: async () => {
        const setting = config.images.executionProvider;
        const providers = executionProviders(setting);
        const version = (await import('onnxruntime-node')).env.versions.common ?? '?';
        return `ONNX Runtime ${version}, provider ${providers.join(' then ')} [images.executionProvider: ${setting}]${
          providers.includes('cuda') ? '' : `; CUDA provider not installed in ${ortBinaryDir()} (docs/images.md)`
        }`;
      },
    },
    {
      name: 'network exposure',
      run: async () => {
        const { problems, warnings } = assessExposure(config);
        if (problems.length > 0)
          throw new Error(`\`hearth serve\` would refuse to start:\n    ${problems.join('\n    ')}`);
        const n = config.listeners.length;
        return `${n} listener${n === 1 ? '' : 's'}, nothing exposed beyond their zones${warnings.map((w) => `\n  warning: ${w}`).join('')}`;
      },
    },
  ];

  let failed = 0;
  for (const check of checks) {
    try {
      out(`✓ ${check.name}: ${await check.run()}`);
    } catch (err) {
      failed++;
      out(`✗ ${check.name}: ${describeError(err)}`);
    }
  }
  out('exposure:');
  for (const line of exposureReport(config)) out(`  ${line}`);
  if (failed > 0) {
    process.stderr.write(`hearth: doctor found ${failed} problem${failed === 1 ? '' : 's'}\n`);
    process.exit(1);
  }
  out('all checks passed');
}
