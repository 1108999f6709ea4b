/**
 * `hearth users add|list|passwd|rm`: chat UI accounts for headless setups. The
 * commands open the Atlas database directly (as `hearth doctor` does), so they
 * work before the first `hearth serve` and with no browser. An embedded
 * (PGlite) database is one process's: while `hearth serve` holds it, manage
 * accounts in the web UI (Users, as an admin) instead.
 */
import type { Command } from 'commander';
import { type AtlasDb, isEmbeddedDatabase, openAtlasDb } from '../atlas/db/index.js';
import { checkNewPassword, SessionStore, USER_ROLES, type UserRole, UserStore } from '../chat/index.js';
import { embeddedDbDir, type HearthConfig } from '../config/index.js';
import { HearthError, isHearthError } from '../errors.js';
import { silentLogger } from '../log.js';
import { action, type ConfigOption, loadCliConfig } from './shared.js';

interface PasswordOption {
  passwordStdin?: boolean;
}

export function registerUserCommands(program: Command): void {
  const users = program
    .command('users')
    .description('chat UI accounts on Atlas (for headless setups; the web UI manages them too)');

  users
    .command('add <username>')
    .description('create an account (the first one should be an admin)')
    .option('--role <role>', `${USER_ROLES.join(' or ')}`, 'user')
    .option('--password-stdin', 'read the password from standard input instead of asking')
    .action(
      action(async (username: string, opts: PasswordOption & { role: string }) => {
        if (!(USER_ROLES as readonly string[]).includes(opts.role)) {
          throw new HearthError('USER_INVALID', `--role ${JSON.stringify(opts.role)}: use ${USER_ROLES.join(' or ')}`);
        }
        const password = await readPassword(opts);
        await withUsers(program, async ({ store }) => {
          const user = await store.create({ username, password, role: opts.role as UserRole });
          process.stdout.write(`created ${user.role} ${user.username}\n`);
        });
      }),
    );

  users
    .command('list')
    .description('list accounts')
    .action(
      action(async () => {
        await withUsers(program, async ({ store }) => {
          const list = await store.list();
          if (list.length === 0) {
            process.stdout.write(
              'no accounts yet: the first visitor of the web UI creates the admin (or `hearth users add NAME --role admin`)\n',
            );
            return;
          }
          const width = Math.max(8, ...list.map((u) => u.username.length));
          process.stdout.write(`${'USERNAME'.padEnd(width)}  ROLE   CREATED\n`);
          for (const u of list) {
            process.stdout.write(
              `${u.username.padEnd(width)}  ${u.role.padEnd(5)}  ${u.createdAt.toISOString().slice(0, 10)}\n`,
            );
          }
        });
      }),
    );

  users
    .command('passwd <username>')
    .description('set a new password (signs the user out everywhere)')
    .option('--password-stdin', 'read the password from standard input instead of asking')
    .action(
      action(async (username: string, opts: PasswordOption) => {
        const password = await readPassword(opts);
        await withUsers(program, async ({ store, sessions }) => {
          const user = await store.getByName(username);
          await store.setPassword(user.id, password);
          await sessions.revokeUser(user.id);
          process.stdout.write(`password of ${user.username} changed\n`);
        });
      }),
    );

  users
    .command('rm <username>')
    .description('delete an account with its conversations and presets')
    .action(
      action(async (username: string) => {
        await withUsers(program, async ({ store }) => {
          const user = await store.getByName(username);
          await store.delete(user.id);
          process.stdout.write(`deleted ${user.username} and their conversations\n`);
        });
      }),
    );
}

async function withUsers(
  program: Command,
  fn: (deps: { store: UserStore; sessions: SessionStore }) => Promise<void>,
): Promise<void> {
  const { config } = loadCliConfig(program.opts<ConfigOption>());
  const db = await openDatabase(config);
  try {
    await fn({ store: new UserStore({ db }), sessions: new SessionStore({ db, ttlMs: config.ui.sessionTtl }) });
  } finally {
    await db.close();
  }
}

async function openDatabase(config: HearthConfig): Promise<AtlasDb> {
  try {
    return await openAtlasDb({
      database: config.atlas.database,
      embeddedDir: embeddedDbDir(config),
      log: silentLogger(),
    });
  } catch (err) {
    if (isHearthError(err, 'ATLAS_DB_IN_USE') && isEmbeddedDatabase(config.atlas.database)) {
      throw new HearthError(
        'ATLAS_DB_IN_USE',
        'the embedded database is held by a running `hearth serve`: manage accounts in the web UI (signed in as an admin, under Users), ' +
          'or stop hearth, run this command, and start it again',
        { cause: err },
      );
    }
    throw err;
  }
}

/** From stdin with --password-stdin; otherwise asked twice on the terminal, not echoed. */
async function readPassword(opts: PasswordOption): Promise<string> {
  if (opts.passwordStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const password = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    // Checked before the database is opened, so a bad password fails at once.
    checkNewPassword(password);
    return password;
  }
  if (!process.stdin.isTTY) {
    throw new HearthError('USER_INVALID', 'no terminal to ask for the password on: pipe it in with --password-stdin');
  }
  const first = await askHidden('Password: ');
  checkNewPassword(first);
  const second = await askHidden('Again: ');
  if (first !== second) throw new HearthError('USER_INVALID', 'the two passwords differ: try again');
  return first;
}

function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new HearthError('USER_INVALID', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
