/** A pino destination that keeps every line, parsed, for assertions (pino's own tests do the same). */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log';

export interface LogSink {
  log: Logger;
  lines: Array<Record<string, unknown>>;
  /** Every line as raw text, for grepping secrets. */
  text(): string;
}

export function logSink(level: 'trace' | 'debug' | 'info' = 'debug'): LogSink {
  const raw: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) {
        raw.push(l);
        lines.push(JSON.parse(l));
      }
      cb();
    },
  });
  return { log: createLogger({ level, destination: stream }), lines, text: () => raw.join('\n') };
}
