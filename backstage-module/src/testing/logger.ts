import type { LoggerService } from '@backstage/backend-plugin-api';

export interface LogLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  meta?: unknown;
}

/** A LoggerService that keeps every line, for assertions. Children share the parent's lines. */
export function captureLogger(lines: LogLine[] = []): LoggerService & { lines: LogLine[] } {
  const log = (level: LogLine['level']) => (message: string, meta?: unknown) => {
    lines.push({ level, message, meta });
  };
  return {
    lines,
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    child: () => captureLogger(lines),
  };
}
