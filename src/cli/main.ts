import { Command } from 'commander';
import { HEARTH_VERSION } from '../version.js';
import { registerBench } from './bench.js';
import { registerConfig } from './config.js';
import { registerDoctor } from './doctor.js';
import { registerEngineCommands } from './engine.js';
import { registerFileCommands } from './files.js';
import { registerJobCommands } from './jobs.js';
import { registerKnowledgeCommands } from './kb.js';
import { registerKeys } from './keys.js';
import { registerModelCommands } from './models.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerUserCommands } from './users.js';

const program = new Command()
  .name('hearth')
  .description(
    'the AI service layer of a homelab: local inference, chat UI, workflows and batch jobs, with data kept on Atlas',
  )
  .version(HEARTH_VERSION, '-v, --version')
  .option('-c, --config <file>', 'configuration file (default: $HEARTH_CONFIG, then ./hearth.yaml if present)')
  .showHelpAfterError();

registerServe(program);
registerDoctor(program);
registerEngineCommands(program);
registerConfig(program);
registerRun(program);
registerModelCommands(program);
registerJobCommands(program);
registerKnowledgeCommands(program);
registerFileCommands(program);
registerKeys(program);
registerBench(program);
registerUserCommands(program);

await program.parseAsync(process.argv);
