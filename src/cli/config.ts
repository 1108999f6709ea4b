import type { Command } from 'commander';
import { renderConfig } from '../config/index.js';
import { action, type ConfigOption, loadCliConfig } from './shared.js';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the configuration and print the effective values (secrets masked)')
    .action(
      action(async () => {
        const { config: effective, source, warnings } = loadCliConfig(program.opts<ConfigOption>());
        process.stdout.write(`# source: ${source ?? 'built-in defaults (no hearth.yaml)'}\n`);
        for (const w of warnings) process.stdout.write(`# warning: ${w}\n`);
        process.stdout.write(renderConfig(effective));
      }),
    );
}
