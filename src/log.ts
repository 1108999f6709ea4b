import pino from 'pino';

export type Logger = pino.Logger;

export interface LogOptions {
  level: string;
  /** json: one object a line (for journald/Loki); pretty: for a person at a terminal */
  format: 'json' | 'pretty';
}

/** The process logger. Everything logs through a child of it (`log.child({ component })`). */
export function createLogger(opts: LogOptions): Logger {
  if (opts.format === 'pretty') {
    return pino({
      level: opts.level,
      transport: { target: 'pino-pretty', options: { colorize: process.stderr.isTTY, destination: 2 } },
    });
  }
  return pino({ level: opts.level }, pino.destination(2));
}

/** A logger that drops everything, for tests and short CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
