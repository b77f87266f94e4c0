/*
 * Runs a REAL Backstage backend (the app e2e/backend.sh made like Backstage's template and installed this module
 * into, following README.md) as a child process, and watches its catalog through Backstage's own REST API. Used by
 * src/e2e.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entity } from '@backstage/catalog-model';

/** Where e2e/backend.sh installed the backend package (e2e/test.sh sets it). */
export function e2eBackendDir(): string {
  return (
    process.env.APIPORTAL_BACKSTAGE_E2E_DIR ??
    join(process.env.APIPORTAL_CACHE ?? join(homedir(), '.cache', 'apiportal'), 'backstage-e2e')
  );
}

export interface RunningBackstage {
  /** e.g. `http://127.0.0.1:41234`; the catalog is under `/api/catalog`. */
  url: string;
  /** The static external-access token its REST API accepts. */
  token: string;
  /** Everything the backend logged so far (its stderr). */
  logs(): string;
  /** SIGTERM, then waits for the exit; resolves to the exit code. */
  stop(): Promise<number | null>;
}

/** The app's Node.js, which e2e/backend.sh installed (the template's app needs 22 or 24). */
export function e2eNode(dir = e2eBackendDir()): string {
  return join(dir, 'node', 'bin', 'node');
}

export interface StartOptions {
  dir?: string;
  /** App-config files to load before `config` (later ones win). */
  configFiles?: string[];
  /** Environment variables for the backend, e.g. those its configs substitute. */
  env?: Record<string, string>;
  /** The static token the harness reads the catalog with; default one of its own. */
  token?: string;
}

/**
 * Starts `DIR/node/bin/node DIR/start.js [FILES...] CONFIG` with `config` (an app-config object) and resolves once
 * it printed `listening on ...`. Rejects, with the backend's output, if it exits or is not ready within 60 s.
 */
export async function startBackstage(config: object, options: StartOptions = {}): Promise<RunningBackstage> {
  const dir = options.dir ?? e2eBackendDir();
  const tmp = mkdtempSync(join(tmpdir(), 'apiportal-e2e-config-'));
  const configFile = join(tmp, 'app-config.yaml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const token = options.token ?? 'e2e-static-token-for-the-catalog-api';
  const args = [join(dir, 'start.js'), ...(options.configFiles ?? []), configFile];
  const child: ChildProcess = spawn(e2eNode(dir), args, {
    env: {
      ...process.env,
      ...options.env,
      APIPORTAL_BACKSTAGE_TOKEN: token,
      APIPORTAL_BACKSTAGE_PORT: '',
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', chunk => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the Backstage backend was not ready within 60 s; its output:\n${stdout}\n${stderr}`));
    }, 60_000);
    child.stdout!.on('data', chunk => {
      stdout += chunk;
      const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then(code => {
      clearTimeout(timer);
      reject(new Error(`the Backstage backend exited with ${code} before it was ready; its output:\n${stdout}\n${stderr}`));
    });
  }).finally(() => rmSync(tmp, { recursive: true, force: true }));

  let stopped: Promise<number | null> | undefined;
  return {
    url,
    token,
    logs: () => stderr,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      })();
      return stopped;
    },
  };
}

/** `GET /api/catalog/entities/by-query?filter=kind=api`, all pages. */
export async function getApiEntities(backstage: { url: string; token: string }): Promise<Entity[]> {
  const entities: Entity[] = [];
  let cursor: string | undefined;
  do {
    const url = new URL('/api/catalog/entities/by-query', backstage.url);
    if (cursor) {
      url.searchParams.set('cursor', cursor);
    } else {
      url.searchParams.set('filter', 'kind=api');
      url.searchParams.set('limit', '500');
    }
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${backstage.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) {
      throw new Error(`GET ${url} answered ${response.status}: ${await response.text()}`);
    }
    const body = (await response.json()) as { items: Entity[]; pageInfo?: { nextCursor?: string } };
    entities.push(...body.items);
    cursor = body.pageInfo?.nextCursor;
  } while (cursor);
  return entities;
}

/** Sorted names of the catalog's API entities. */
export async function apiEntityNames(backstage: { url: string; token: string }): Promise<string[]> {
  return (await getApiEntities(backstage)).map(e => e.metadata.name).sort();
}

/**
 * Polls the catalog until `check(entities)` returns something other than undefined, and resolves to that.
 * Rejects after `timeoutMs` (default 30 s) with `what`, the entity names seen last and the last error.
 */
export async function waitForCatalog<T>(
  backstage: { url: string; token: string },
  what: string,
  check: (entities: Entity[]) => T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let seen: string[] = [];
  let lastError: unknown;
  for (;;) {
    try {
      const entities = await getApiEntities(backstage);
      seen = entities.map(e => e.metadata.name).sort();
      const result = check(entities);
      if (result !== undefined) return result;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `waited ${timeoutMs} ms for ${what} in the catalog at ${backstage.url}; saw [${seen.join(', ')}]${
          lastError ? `; last error: ${(lastError as Error).message}` : ''
        }`,
      );
    }
    await new Promise(r => setTimeout(r, options.intervalMs ?? 200));
  }
}

/** Waits until the API entity `name` is in the catalog, and resolves to it. */
export function waitForEntity(backstage: { url: string; token: string }, name: string, timeoutMs?: number): Promise<Entity> {
  return waitForCatalog(backstage, `the API entity ${name}`, entities => entities.find(e => e.metadata.name === name), {
    timeoutMs,
  });
}

/** Waits until the API entity `name` is gone from the catalog. */
export async function waitForNoEntity(
  backstage: { url: string; token: string },
  name: string,
  timeoutMs?: number,
): Promise<void> {
  await waitForCatalog(
    backstage,
    `the API entity ${name} to disappear`,
    entities => (entities.some(e => e.metadata.name === name) ? undefined : true),
    { timeoutMs },
  );
}

/** Waits until `pattern` has matched the backend's logs `count` times in all. */
export async function waitForLogs(
  backstage: RunningBackstage,
  pattern: RegExp,
  count: number,
  timeoutMs = 30_000,
): Promise<void> {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  const deadline = Date.now() + timeoutMs;
  while ((backstage.logs().match(global) ?? []).length < count) {
    if (Date.now() > deadline) {
      throw new Error(`waited ${timeoutMs} ms for ${count} log lines matching ${pattern}; the logs:\n${backstage.logs()}`);
    }
    await new Promise(r => setTimeout(r, 100));
  }
}

/** How many times `pattern` matched the backend's logs so far. */
export function countLogs(backstage: RunningBackstage, pattern: RegExp): number {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  return (backstage.logs().match(global) ?? []).length;
}
