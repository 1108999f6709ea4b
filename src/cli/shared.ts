import { type LoadedConfig, loadConfig } from '../config/index.js';
import { describeError, HearthError } from '../errors.js';

/** Options every command that reads the configuration accepts. */
export interface ConfigOption {
  config?: string;
}

export function loadCliConfig(opts: ConfigOption): LoadedConfig {
  return loadConfig(opts.config === undefined ? {} : { file: opts.config });
}

/** The CLI's one way out on failure: `hearth: <message>` on stderr, non-zero exit. */
export function fail(err: unknown): never {
  const message = err instanceof HearthError ? err.message : describeError(err);
  process.stderr.write(`hearth: ${message}\n`);
  if (process.env['HEARTH_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}

/** Wraps a command action so every failure goes through `fail`. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      fail(err);
    }
  };
}

/** What the listeners expose, for `hearth serve`'s start-up log and `hearth doctor`: the one report, from src/net. */
export { exposureReport } from '../net/index.js';
