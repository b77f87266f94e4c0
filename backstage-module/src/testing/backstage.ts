/*
 * Helpers to run a REAL Backstage backend (the catalog plugin plus this module) inside a test, and to watch its
 * catalog through Backstage's own REST API. Used by src/e2e.test.ts; exported so other harnesses (e.g. the
 * project's end-to-end tests against a real bridge) can drive the same steps:
 *
 *   const backstage = await startCatalogBackend({ bridgeUrl, token });
 *   await waitForEntity(backstage.url, entityName('shop', 'toys'), true);
 *   // ... unpublish the product ...
 *   await waitForEntity(backstage.url, entityName('shop', 'toys'), false);
 *   await backstage.stop();
 */
import {
  coreServices,
  createBackendModule,
  type DatabaseService,
} from '@backstage/backend-plugin-api';
import { schedulerServiceFactory } from '@backstage/backend-defaults/scheduler';
import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import catalogPlugin from '@backstage/plugin-catalog-backend';
import type { AddressInfo } from 'node:net';
import catalogModuleApiportalEntityProvider from '../index';

export interface StartCatalogBackendOptions {
  /** The bridge the module reads. */
  bridgeUrl: string;
  /** Its bearer token. */
  token: string;
  /** How often the provider runs, default every second. */
  frequencySeconds?: number;
  /** More of `catalog.providers.apiportal` (defaultOwner, lifecycle). */
  providerConfig?: Record<string, unknown>;
}

export interface RunningCatalogBackend {
  /** Base URL of the backend, e.g. `http://localhost:7007`; the catalog is under `/api/catalog`. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a real Backstage backend (in-memory SQLite) with `@backstage/plugin-catalog-backend` and this module
 * pointed at `bridgeUrl`.
 */
export async function startCatalogBackend(options: StartCatalogBackendOptions): Promise<RunningCatalogBackend> {
  // Hold on to the catalog's database so that stop() can close it: backend-defaults does not close SQLite
  // connections on shutdown, which would keep the process alive.
  let catalogDatabase: DatabaseService | undefined;
  const databaseHandle = createBackendModule({
    pluginId: 'catalog',
    moduleId: 'apiportal-test-database-handle',
    register(env) {
      env.registerInit({
        deps: { database: coreServices.database },
        async init({ database }) {
          catalogDatabase = database;
        },
      });
    },
  });

  const backend = await startTestBackend({
    features: [
      catalogPlugin,
      catalogModuleApiportalEntityProvider,
      databaseHandle,
      // The real scheduler, not the test mock (which runs each task once at startup): the provider must run
      // on its configured schedule for removals to show.
      schedulerServiceFactory,
      mockServices.rootConfig.factory({
        data: {
          catalog: {
            providers: {
              apiportal: {
                baseUrl: options.bridgeUrl,
                token: options.token,
                schedule: {
                  frequency: { seconds: options.frequencySeconds ?? 1 },
                  timeout: { seconds: 30 },
                },
                ...options.providerConfig,
              },
            },
          },
        },
      }),
    ],
  });

  const { port } = backend.server.address() as AddressInfo;
  let stopped = false;
  return {
    url: `http://localhost:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await backend.stop();
      } finally {
        if (catalogDatabase) {
          const knex = await catalogDatabase.getClient();
          await knex.destroy();
        }
      }
    },
  };
}

/** `GET /api/catalog/entities/by-query?filter=kind=api`, all pages, as a signed-in user. */
export async function getApiEntities(backstageUrl: string): Promise<Entity[]> {
  const entities: Entity[] = [];
  let cursor: string | undefined;
  do {
    const url = new URL('/api/catalog/entities/by-query', backstageUrl);
    if (cursor) {
      url.searchParams.set('cursor', cursor);
    } else {
      url.searchParams.set('filter', 'kind=api');
      url.searchParams.set('limit', '500');
    }
    const response = await fetch(url, {
      headers: { Authorization: mockCredentials.user.header() },
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

/**
 * Polls Backstage's catalog until the `kind: API` entity `name` (namespace `default`) is present (`present`
 * true, resolves to it) or gone (`present` false, resolves to undefined). Rejects after `timeoutMs`
 * (default 30 s) with the names it saw last.
 */
export async function waitForEntity(
  backstageUrl: string,
  name: string,
  present: true,
  options?: { timeoutMs?: number; intervalMs?: number },
): Promise<Entity>;
export async function waitForEntity(
  backstageUrl: string,
  name: string,
  present: boolean,
  options?: { timeoutMs?: number; intervalMs?: number },
): Promise<Entity | undefined>;
export async function waitForEntity(
  backstageUrl: string,
  name: string,
  present: boolean,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<Entity | undefined> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let seen: string[] = [];
  let lastError: unknown;
  for (;;) {
    try {
      const entities = await getApiEntities(backstageUrl);
      seen = entities.map(e => e.metadata.name);
      const found = entities.find(
        e => e.metadata.name === name && (e.metadata.namespace ?? 'default') === 'default',
      );
      if (present && found) return found;
      if (!present && !found) return undefined;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `API entity ${name} still ${present ? 'absent' : 'present'} in the catalog at ${backstageUrl} after ${
          options.timeoutMs ?? 30_000
        } ms; saw [${seen.join(', ')}]${lastError ? `; last error: ${(lastError as Error).message}` : ''}`,
      );
    }
    await new Promise(r => setTimeout(r, options.intervalMs ?? 250));
  }
}
