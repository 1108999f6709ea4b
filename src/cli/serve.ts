import type { Command } from 'commander';
import { closeContext, openContext } from '../context.js';
import { startHttp } from '../http/server.js';
import { createLogger } from '../log.js';
import { assertExposureAllowed } from '../net/index.js';
import { action, type ConfigOption, exposureReport, loadCliConfig } from './shared.js';

/** How long closing the context may take once the drain has timed out. */
const CLOSE_AFTER_TIMEOUT_MS = 10_000;

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the hearth service (Ollama- and OpenAI-compatible APIs, UI, workflows, jobs)')
    .action(action(async () => serve(program.opts<ConfigOption>())));
}

async function serve(opts: ConfigOption): Promise<void> {
  const { config, source, warnings } = loadCliConfig(opts);
  const log = createLogger(config.log);
  for (const warning of warnings) log.warn(warning);
  // Refuse an exposure the config does not allow before touching Atlas or the GPU (startHttp checks again and warns).
  assertExposureAllowed(config);
  const ctx = await openContext(config, log);
  let server: Awaited<ReturnType<typeof startHttp>>;
  try {
    server = await startHttp(ctx);
  } catch (err) {
    await closeContext(ctx);
    throw err;
  }
  log.info(
    {
      version: ctx.version,
      config: source ?? '(built-in defaults)',
      atlas: { database: ctx.atlas.db.describe, files: ctx.atlas.files.describe },
      cache: config.node.cacheDir,
      urls: server.urls,
    },
    `hearth ${ctx.version} is serving on ${server.urls.join(', ')}`,
  );
  for (const line of exposureReport(config)) log.info(`exposure: ${line}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without draining`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: draining in-flight requests (up to ${config.server.shutdownTimeout} ms)`);
    const timer = setTimeout(() => {
      log.error('shutdown timed out: closing Atlas, workers and the engine with requests still in flight');
      // The database, workers and engine are still closed (bounded, so a stuck closer cannot hold the exit).
      const forced = setTimeout(() => process.exit(1), CLOSE_AFTER_TIMEOUT_MS);
      forced.unref();
      void closeContext(ctx).finally(() => {
        log.flush();
        process.exit(1);
      });
    }, config.server.shutdownTimeout);
    timer.unref();
    await server.close();
    await closeContext(ctx);
    log.info('stopped');
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
