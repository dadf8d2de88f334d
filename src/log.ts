/**
 * The pino root logger. Redaction is configuration, not discipline: every path that can hold a credential
 * (cloud.conf fields, CSI `secrets` maps, HTTP auth headers) is censored during serialization, so no call
 * site has to remember it. Built once in main.ts (or a test) and passed down; modules take child loggers.
 */
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

const SECRET_KEYS = [
  'password',
  'trusteePassword',
  'applicationCredentialSecret',
  'token',
  'secret',
  'secrets',
  'secretAccessKey',
  'accessKeyID',
  'X-Auth-Token',
  'x-auth-token',
  'X-Subject-Token',
  'x-subject-token',
  'authorization',
  'Authorization',
];

/** Redaction paths: each key at the top level and up to three levels deep. */
export const REDACT_PATHS: string[] = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

export interface LoggerOptions {
  level?: LogLevel;
  /** Human-readable lines instead of JSON (for a terminal; never in production). */
  pretty?: boolean;
  /** Where lines go; stdout when absent. Tests pass a sink. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const base: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.pretty) {
    // pino-pretty as a synchronous stream: a transport thread would outlive short CLI commands' exit.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as (o: object) => DestinationStream;
    return pino(base, pretty({ colorize: process.stdout.isTTY, sync: true }));
  }
  return pino(base, pino.destination({ sync: true }));
}

/** A logger that drops everything, for code paths built without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
