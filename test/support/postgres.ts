// A real PostgreSQL server for tests: initdb into a temp dir, listen on a free loopback port.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, rmSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

export interface PostgresServer {
  /** Superuser URL (trust auth over loopback): postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** The temp dir holding the cluster (`data/`), its socket and its log. */
  dataDir: string;
  /** Stops the server (fast shutdown: sessions are disconnected). */
  stop(): Promise<void>;
  /**
   * Stops it (fast shutdown) without yielding to the event loop: until the caller awaits, this
   * process has not noticed that its connections died, as with a connection that dies while idle.
   */
  stopBlocking(): void;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes every file it made. */
  destroy(): Promise<void>;
}

export interface PostgresBinaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

const NAMES = ['initdb', 'pg_ctl', 'postgres'] as const;

/** PATH first, then the newest /usr/lib/postgresql/<version>/bin; throws naming what to install. */
export function findPostgresBinaries(): PostgresBinaries {
  const fromPath = (name: string) =>
    (process.env['PATH'] ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, name))
      .find(isExecutable);
  const found = NAMES.map(fromPath);
  if (found.every(Boolean)) return { initdb: found[0]!, pg_ctl: found[1]!, postgres: found[2]! };

  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+(\.\d+)?$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (NAMES.every((name) => isExecutable(join(bin, name)))) {
      return { initdb: join(bin, 'initdb'), pg_ctl: join(bin, 'pg_ctl'), postgres: join(bin, 'postgres') };
    }
  }
  throw new Error(
    'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin; ' +
      'the tests against real PostgreSQL need them: install the server ' +
      '(Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql)',
  );
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a throwaway cluster: trust auth for the `postgres` superuser over
 * loopback (other roles need their password, so auth failures can be tested),
 * fsync off, unix socket inside the temp dir. As root, runs as the `postgres`
 * system user, since PostgreSQL refuses root.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBinaries();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) ensurePostgresUser();
  const dir = await mkdtemp(join(tmpdir(), 'hearth-pg-'));
  const dataDir = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  let running = false;

  const onExit = () => {
    // The test process is going away without destroy(): don't leave a server behind.
    if (running) {
      const [file, ...args] = asPostgres([bin.pg_ctl, '-D', dataDir, '-m', 'immediate', 'stop']);
      spawnSync(file!, args, { cwd: dir });
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    if (asRoot) {
      await run(['chown', 'postgres:postgres', dir]);
      await chmod(dir, 0o700);
    }
    await run(
      asPostgres([bin.initdb, '-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']),
      { cwd: dir },
    );
    // The superuser is trusted over loopback; other roles must give their password (auth failures are testable).
    await writeFile(
      join(dataDir, 'pg_hba.conf'),
      'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n',
    );

    let port = 0;
    const start = async () => {
      await run(asPostgres([bin.pg_ctl, '-D', dataDir, '-l', log, '-w', '-t', '30', 'start']), { cwd: dir });
      running = true;
    };
    // A free port can be taken between choosing and binding: try a few.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      await appendFile(
        join(dataDir, 'postgresql.auto.conf'),
        `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\n` +
          'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n',
      );
      try {
        await start();
        break;
      } catch (err) {
        const tail = await readFile(log, 'utf8').catch(() => '');
        if (attempt >= 2 || !/could not (bind|create listen)/i.test(tail)) {
          throw new Error(`${(err as Error).message}\n--- postgres.log ---\n${tail.slice(-2000)}`);
        }
      }
    }
    process.once('exit', onExit);
    // A worker killed mid-test (a timeout) never runs destroy() nor 'exit' handlers: leave a note
    // for global-setup.ts, which stops whatever is left when the run ends.
    const note = leftoverNote(dir);
    if (note) await writeFile(note, JSON.stringify({ dir, dataDir, pg_ctl: bin.pg_ctl }));

    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dataDir: dir,
      start,
      async stop() {
        if (!running) return;
        await run(asPostgres([bin.pg_ctl, '-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']), { cwd: dir });
        running = false;
      },
      stopBlocking() {
        if (!running) return;
        const [file, ...args] = asPostgres([bin.pg_ctl, '-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
        const stopped = spawnSync(file!, args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
        if (stopped.status !== 0) throw new Error(`pg_ctl stop failed: ${stopped.stderr}`);
        running = false;
      },
      async destroy() {
        process.removeListener('exit', onExit);
        if (note) await rm(note, { force: true });
        if (running) {
          await run(asPostgres([bin.pg_ctl, '-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop']), {
            cwd: dir,
          }).catch(() => undefined);
          running = false;
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    onExit();
    throw err;
  }
}

/** Names the folder where servers started during a test run leave a note (set by global-setup.ts). */
export const TEST_RUN_DIR_ENV = 'HEARTH_TEST_RUN_DIR';

function leftoverNote(dir: string): string | undefined {
  const runDir = process.env[TEST_RUN_DIR_ENV];
  return runDir ? join(runDir, `postgres-${basename(dir)}.json`) : undefined;
}

/** Stops and removes every server of this run whose note is still there (its test never destroyed it). */
export async function stopLeftoverPostgres(runDir: string): Promise<void> {
  for (const name of await readdir(runDir).catch(() => [] as string[])) {
    if (!/^postgres-.*\.json$/.test(name)) continue;
    const { dir, dataDir, pg_ctl } = JSON.parse(await readFile(join(runDir, name), 'utf8')) as {
      dir: string;
      dataDir: string;
      pg_ctl: string;
    };
    await run(asPostgres([pg_ctl, '-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'])).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await rm(join(runDir, name), { force: true });
  }
}

/** Creates `hearth_test_<random>` on the server at `adminUrl`; `drop()` removes it (closing its sessions). */
export async function createTestDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `hearth_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`create database ${name}`));
  const drop = async () => {
    await withAdmin(adminUrl, (admin) => admin.query(`drop database if exists ${name} with (force)`));
  };
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop,
  };
}

/** Runs `fn` with one admin connection to the server at `adminUrl`. */
export async function withAdmin<T>(adminUrl: string, fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/**
 * The shared server's URL (started once by test/support/global-setup.ts). Call it inside a test or
 * hook: it throws, loudly, if that server could not be started.
 */
export function sharedPostgresUrl(): string {
  const url = inject('postgresUrl');
  if (!url) throw new Error(`the shared PostgreSQL test server is not running: ${inject('postgresUnavailable')}`);
  return url;
}

function asPostgres(argv: string[]): string[] {
  if (process.getuid?.() !== 0) return argv;
  if (isExecutable('/usr/sbin/runuser') || isExecutable('/sbin/runuser'))
    return ['runuser', '-u', 'postgres', '--', ...argv];
  return ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv];
}

function ensurePostgresUser(): void {
  if (spawnSync('id', ['-u', 'postgres']).status === 0) return;
  const made = spawnSync(
    'useradd',
    ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
    {
      encoding: 'utf8',
    },
  );
  if (made.status !== 0) {
    throw new Error(`PostgreSQL refuses to run as root and the 'postgres' user could not be created: ${made.stderr}`);
  }
}

function run(argv: string[], opts: { cwd?: string } = {}): Promise<void> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file!, args, { cwd: opts.cwd, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')} failed: ${err.message}\n${stderr || stdout}`));
      else resolve();
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
