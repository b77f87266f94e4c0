import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SchedulerServiceTaskInvocationDefinition } from '@backstage/backend-plugin-api';
import { ConfigReader } from '@backstage/config';
import type { EntityProviderConnection, EntityProviderMutation } from '@backstage/plugin-catalog-node';
import { makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import { captureLogger } from '../testing/logger';
import { ApiportalEntityProvider, FULL_RESYNC_INTERVAL_MS, type RefreshResult } from './ApiportalEntityProvider';
import { DEFAULT_SCHEDULE, type ApiportalEntityProviderConfig } from './ApiportalEntityProviderConfig';

class RecordingConnection implements EntityProviderConnection {
  mutations: EntityProviderMutation[] = [];
  failNext = false;
  async applyMutation(mutation: EntityProviderMutation) {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('database is locked');
    }
    this.mutations.push(mutation);
  }
  async refresh() {}
  /** The entities of mutation `index` (default: the last one), which must be a full mutation. */
  full(index = this.mutations.length - 1) {
    const mutation = this.mutations[index];
    if (mutation?.type !== 'full') {
      throw new Error(`expected mutation ${index} to be a full mutation, got ${JSON.stringify(mutation)}`);
    }
    return mutation.entities;
  }
  /** Entity names of the last full mutation. */
  names(): string[] {
    return this.full().map(e => e.entity.metadata.name);
  }
}

function configFor(bridge: { url: string; token: string }): ApiportalEntityProviderConfig {
  return {
    baseUrl: bridge.url,
    token: bridge.token,
    schedule: DEFAULT_SCHEDULE,
    defaultOwner: 'unknown',
    lifecycle: 'production',
  };
}

const listRequests = (bridge: FakeBridge) => bridge.requests.filter(r => r.path === '/api/v1/products');
const openapiRequests = (bridge: FakeBridge) => bridge.requests.filter(r => r.path.endsWith('/openapi'));

describe('ApiportalEntityProvider', () => {
  let bridge: FakeBridge;
  let connection: RecordingConnection;
  let logger: ReturnType<typeof captureLogger>;
  let provider: ApiportalEntityProvider;

  beforeEach(async () => {
    await bridge?.close();
    bridge = await startFakeBridge({
      products: [
        makeProduct({
          namespace: 'shop',
          name: 'toys',
          uid: 'uid-toys',
          openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
        }),
        makeProduct({ namespace: 'games', name: 'toys', uid: 'uid-games' }),
      ],
      openapi: { 'shop/toys': '{"openapi":"3.0.3","info":{"title":"Toys","version":"1"},"paths":{}}' },
    });
    connection = new RecordingConnection();
    logger = captureLogger();
    provider = new ApiportalEntityProvider(configFor(bridge), { logger, timeoutMs: 300 });
    await provider.connect(connection);
  });
  afterAll(async () => bridge?.close());
  afterEach(() => jest.restoreAllMocks());

  const warnings = () => logger.lines.filter(l => l.level === 'warn').map(l => l.message);

  it('is called apiportal', () => {
    expect(provider.getProviderName()).toBe('apiportal');
  });

  it('applies every published product as one full mutation keyed by the bridge', async () => {
    const result = await provider.refresh();
    expect(result).toStrictEqual({ status: 'applied', entities: 2, skipped: 0 });
    expect(connection.mutations).toHaveLength(1);
    expect(connection.mutations[0].type).toBe('full');
    const entities = connection.full(0);
    expect(entities.map(e => [e.entity.metadata.name, e.locationKey])).toStrictEqual([
      ['games--toys', `apiportal:${bridge.url}`],
      ['shop--toys', `apiportal:${bridge.url}`],
    ]);
    const toys = entities.find(e => e.entity.metadata.name === 'shop--toys')!.entity;
    expect(toys.spec?.definition).toBe(bridge.openapi.get('shop/toys'));
    expect(warnings()).toStrictEqual([]);
  });

  it('an unchanged list (304) applies nothing and keeps the catalog', async () => {
    await provider.refresh();
    const result = await provider.refresh();
    expect(result).toStrictEqual({ status: 'unchanged' });
    expect(connection.mutations).toHaveLength(1);
    const [first, second] = listRequests(bridge);
    expect(first.ifNoneMatch).toBeUndefined();
    expect(second.ifNoneMatch ?? '').toMatch(/^".+"$/);
  });

  it('after ten minutes without a change it reads the list in full once, in case another replica applied', async () => {
    await provider.refresh();
    expect((await provider.refresh()).status).toBe('unchanged');
    const now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now + FULL_RESYNC_INTERVAL_MS + 1_000);
    expect((await provider.refresh()).status).toBe('applied');
    expect(listRequests(bridge)[2].ifNoneMatch).toBeUndefined();
    expect((await provider.refresh()).status).toBe('unchanged');
  });

  it('a changed list is applied again; removed products leave the catalog', async () => {
    await provider.refresh();
    bridge.products = bridge.products.filter(p => p.namespace !== 'games');
    expect((await provider.refresh()).status).toBe('applied');
    expect(connection.names()).toStrictEqual(['shop--toys']);
    bridge.products = [];
    expect((await provider.refresh()).status).toBe('applied');
    expect(connection.names()).toStrictEqual([]);
  });

  it('OpenAPI documents are fetched once per product uid and lastSyncTime', async () => {
    await provider.refresh();
    expect(openapiRequests(bridge)).toHaveLength(1);
    // Another change to the list, same document.
    bridge.products = [...bridge.products, makeProduct({ namespace: 'x', name: 'y' })];
    await provider.refresh();
    expect(openapiRequests(bridge)).toHaveLength(1);
    expect(connection.full(1).find(e => e.entity.metadata.name === 'shop--toys')?.entity.spec?.definition).toBe(
      bridge.openapi.get('shop/toys'),
    );
    // The bridge synced a new document.
    bridge.openapi.set('shop/toys', 'openapi: 3.0.3\ninfo: {title: Toys, version: "2"}\npaths: {}\n');
    bridge.products = bridge.products.map(p =>
      p.uid === 'uid-toys' ? { ...p, openapi: { available: true, lastSyncTime: '2026-11-26T08:00:00Z' } } : p,
    );
    await provider.refresh();
    expect(openapiRequests(bridge)).toHaveLength(2);
    expect(connection.full(2).find(e => e.entity.metadata.name === 'shop--toys')?.entity.spec?.definition).toBe(
      bridge.openapi.get('shop/toys'),
    );
  });

  for (const [mode, message] of [
    ['error', /answered 500 InternalError/],
    ['garbage', /not JSON/],
    ['not-a-list', /not a product list/],
    ['slow', /timed out/],
  ] as const) {
    it(`a bridge answering ${mode} logs a warning and keeps the last catalog`, async () => {
      expect((await provider.refresh()).status).toBe('applied');
      bridge.mode = mode;
      bridge.slowMs = 2_000;
      // Force a full read even though the provider has an ETag.
      bridge.products = [...bridge.products];
      const result = await provider.refresh();
      expect(result.status).toBe('failed');
      expect((result as Extract<RefreshResult, { status: 'failed' }>).error.message).toMatch(message);
      // No mutation while the bridge misbehaves.
      expect(connection.mutations).toHaveLength(1);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(/the catalog keeps its last good set of API entities/);
      expect(warnings()[0]).toMatch(message);
      // Recovery.
      bridge.mode = 'ok';
      bridge.products = bridge.products.filter(p => p.namespace === 'shop');
      expect((await provider.refresh()).status).toBe('applied');
      expect(connection.names()).toStrictEqual(['shop--toys']);
    });
  }

  it('a bridge that is down logs a warning and applies nothing', async () => {
    const server = createServer();
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise(resolve => server.close(resolve));
    const down = new ApiportalEntityProvider(configFor({ url: `http://127.0.0.1:${port}`, token: 't' }), { logger });
    const conn = new RecordingConnection();
    await down.connect(conn);
    const result = await down.refresh();
    expect(result.status).toBe('failed');
    expect(conn.mutations).toHaveLength(0);
    expect(warnings()[0]).toMatch(/ECONNREFUSED/);
  });

  it('a failing catalog write is reported, and the next run tries again in full', async () => {
    connection.failNext = true;
    const result = await provider.refresh();
    expect(result.status).toBe('failed');
    expect(warnings()[0]).toMatch(/database is locked/);
    expect((await provider.refresh()).status).toBe('applied');
    // No ETag from the failed run.
    expect(listRequests(bridge)[1].ifNoneMatch).toBeUndefined();
  });

  it('an OpenAPI document that cannot be read gives a stub, and the next run reads the list again', async () => {
    bridge.openapi.delete('shop/toys');
    const result = await provider.refresh();
    expect(result.status).toBe('applied');
    expect(warnings()[0]).toMatch(/shop\/toys says it has an OpenAPI document but the bridge has none/);
    const toys = connection.full(0).find(e => e.entity.metadata.name === 'shop--toys')?.entity;
    expect(toys).toBeDefined();
    expect(JSON.parse(String(toys?.spec?.definition)).openapi).toBe('3.0.3');
    // The list is unchanged, but the provider did not keep its ETag, so it reads the list and retries.
    bridge.openapi.set('shop/toys', 'openapi: 3.0.3\n');
    expect((await provider.refresh()).status).toBe('applied');
    expect(listRequests(bridge)[1].ifNoneMatch).toBeUndefined();
    expect(openapiRequests(bridge)).toHaveLength(2);
    // Now complete: the third run is a 304.
    expect((await provider.refresh()).status).toBe('unchanged');
  });

  it('a document read that fails keeps the last document read for the product', async () => {
    let breakDocuments = false;
    const flakyFetch: typeof fetch = async (input, init) => {
      if (breakDocuments && String(input).endsWith('/openapi')) {
        throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET', message: 'socket hang up' } });
      }
      return fetch(input, init);
    };
    const p = new ApiportalEntityProvider(configFor(bridge), { logger, fetch: flakyFetch });
    const conn = new RecordingConnection();
    await p.connect(conn);
    await p.refresh();
    const definitionOf = (i: number) =>
      conn.mutations[i].type === 'full'
        ? conn.mutations[i].entities.find(e => e.entity.metadata.name === 'shop--toys')?.entity.spec?.definition
        : undefined;
    const first = definitionOf(0);
    expect(first).toBe(bridge.openapi.get('shop/toys'));

    breakDocuments = true;
    bridge.products = bridge.products.map(prod =>
      prod.uid === 'uid-toys' ? { ...prod, openapi: { available: true, lastSyncTime: 'later' } } : prod,
    );
    expect((await p.refresh()).status).toBe('applied');
    expect(definitionOf(1)).toBe(first);
    expect(warnings()[0]).toMatch(
      /could not read the OpenAPI document of apiportal product shop\/toys, using the last one read: .*ECONNRESET/,
    );
  });

  it('skips products that are not Published even if the bridge lists them', async () => {
    const body = JSON.stringify({
      items: [
        makeProduct({ namespace: 'a', name: 'published' }),
        makeProduct({ namespace: 'a', name: 'draft', publishStatus: 'Draft' }),
      ],
    });
    const fakeFetch: typeof fetch = async () =>
      new Response(body, { status: 200, headers: { 'content-type': 'application/json', etag: '"x"' } });
    const p = new ApiportalEntityProvider(configFor(bridge), { logger, fetch: fakeFetch });
    const conn = new RecordingConnection();
    await p.connect(conn);
    expect(await p.refresh()).toStrictEqual({ status: 'applied', entities: 1, skipped: 1 });
    expect(conn.names()).toStrictEqual(['a--published']);
  });

  it('a run cancelled by the scheduler (task timeout, shutdown) applies nothing', async () => {
    bridge.mode = 'slow';
    bridge.slowMs = 5_000;
    const controller = new AbortController();
    const pending = provider.refresh(controller.signal);
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    expect(result.status).toBe('failed');
    expect(warnings()[0]).toMatch(/cancelled/);
    expect(connection.mutations).toHaveLength(0);
    bridge.mode = 'ok';
  });

  it('concurrent refreshes share one run', async () => {
    const [a, b] = await Promise.all([provider.refresh(), provider.refresh()]);
    expect(a).toBe(b);
    expect(listRequests(bridge)).toHaveLength(1);
  });

  it('refresh before connect fails softly', async () => {
    const p = new ApiportalEntityProvider(configFor(bridge), { logger });
    expect((await p.refresh()).status).toBe('failed');
  });
});

describe('ApiportalEntityProvider.fromConfig', () => {
  it('schedules its refresh with the configured schedule; the task never throws', async () => {
    const scheduled: { schedule: unknown; task?: SchedulerServiceTaskInvocationDefinition }[] = [];
    const scheduler = {
      createScheduledTaskRunner(schedule: unknown) {
        const entry: (typeof scheduled)[number] = { schedule };
        scheduled.push(entry);
        return {
          async run(task: SchedulerServiceTaskInvocationDefinition) {
            entry.task = task;
          },
        };
      },
    };
    const logger = captureLogger();
    const config = new ConfigReader({
      catalog: {
        providers: {
          apiportal: {
            baseUrl: 'http://127.0.0.1:9',
            token: 't',
            schedule: { frequency: { seconds: 5 }, timeout: { seconds: 20 } },
          },
        },
      },
    });
    const provider = ApiportalEntityProvider.fromConfig(config, {
      logger,
      scheduler: scheduler as never,
      timeoutMs: 500,
    });
    expect(provider).toBeInstanceOf(ApiportalEntityProvider);
    const connection = new RecordingConnection();
    await provider!.connect(connection);
    expect(scheduled).toHaveLength(1);
    const schedule = scheduled[0].schedule as { frequency: unknown; timeout: unknown };
    expect(schedule.frequency).toStrictEqual({ seconds: 5 });
    expect(schedule.timeout).toStrictEqual({ seconds: 20 });
    expect(scheduled[0].task?.id).toBe('apiportal:refresh');
    // Nothing listens on port 9: the task resolves, warns, and applies nothing.
    await scheduled[0].task!.fn(new AbortController().signal as never);
    expect(connection.mutations).toHaveLength(0);
    expect(logger.lines.filter(l => l.level === 'warn')).toHaveLength(1);
  });

  it('undefined when not configured', () => {
    expect(ApiportalEntityProvider.fromConfig(new ConfigReader({}), { logger: captureLogger() })).toBeUndefined();
  });
});
