// Vitest global setup: services shared by every test file are started once here.
// (Helpers add to this file; keep each service's start/stop in its own module under test/support/.)
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildTestEngine } from './engine.js';
import { startPostgres, stopLeftoverPostgres, TEST_RUN_DIR_ENV } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the shared PostgreSQL server; '' if it could not start (see postgresUnavailable). */
    postgresUrl: string;
    /** Why the shared PostgreSQL server is not running; '' when it is. */
    postgresUnavailable: string;
    /** A folder for the run's PGlite template, built on first use (test/support/pglite.ts). */
    pgliteTemplateRoot: string;
    /** Why the shared llama-server build (test/support/engine.ts) is missing; '' when it is there. */
    serverEngineUnavailable: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // This run's folder: the PGlite template, and notes from every PostgreSQL server tests start
  // (workers inherit the variable), so servers of killed workers are stopped at the end.
  const runDir = await mkdtemp(join(tmpdir(), 'hearth-test-run-'));
  process.env[TEST_RUN_DIR_ENV] = runDir;

  // One PostgreSQL for the whole run; each test file makes its own database (createTestDatabase).
  // If it cannot start, only the tests that need it fail, loudly, naming the reason (sharedPostgresUrl()).
  const postgres = await startPostgres().catch((err: unknown) => err as Error);
  project.provide('postgresUrl', postgres instanceof Error ? '' : postgres.url);
  project.provide('postgresUnavailable', postgres instanceof Error ? postgres.message : '');

  // The server engine every test hearth uses (node.engineDir): built once per machine (minutes on a
  // fresh one), reused afterwards. If the build fails, hearths run in-process and the server-engine tests fail naming why.
  const engine = await buildTestEngine().catch((err: unknown) => err as Error);
  project.provide('serverEngineUnavailable', engine instanceof Error ? engine.message : '');

  const pgliteTemplateRoot = join(runDir, 'pglite-template');
  await mkdir(pgliteTemplateRoot);
  project.provide('pgliteTemplateRoot', pgliteTemplateRoot);

  return async () => {
    if (!(postgres instanceof Error)) await postgres.destroy();
    await stopLeftoverPostgres(runDir);
    await rm(runDir, { recursive: true, force: true });
  };
}
