import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, beforeEach, describe, test } from 'node:test';
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
  /** Entity names of the last full mutation. */
  names(): string[] {
    const last = this.mutations[this.mutations.length - 1];
    assert.ok(last && last.type === 'full', 'a full mutation was applied');
    return last.entities.map(e => e.entity.metadata.name);
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
  after(async () => bridge?.close());

  const warnings = () => logger.lines.filter(l => l.level === 'warn').map(l => l.message);

  test('is called apiportal', () => {
    assert.equal(provider.getProviderName(), 'apiportal');
  });

  test('applies every published product as one full mutation keyed by the bridge', async () => {
    const result = await provider.refresh();
    assert.deepEqual(result, { status: 'applied', entities: 2, skipped: 0 });
    assert.equal(connection.mutations.length, 1);
    const mutation = connection.mutations[0];
    assert.equal(mutation.type, 'full');
    assert.ok(mutation.type === 'full');
    assert.deepEqual(
      mutation.entities.map(e => [e.entity.metadata.name, e.locationKey]),
      [
        ['games--toys', `apiportal:${bridge.url}`],
        ['shop--toys', `apiportal:${bridge.url}`],
      ],
    );
    const toys = mutation.entities.find(e => e.entity.metadata.name === 'shop--toys')!.entity;
    assert.equal(toys.spec?.definition, bridge.openapi.get('shop/toys'));
    assert.deepEqual(warnings(), []);
  });

  test('an unchanged list (304) applies nothing and keeps the catalog', async () => {
    await provider.refresh();
    const result = await provider.refresh();
    assert.deepEqual(result, { status: 'unchanged' });
    assert.equal(connection.mutations.length, 1);
    const [first, second] = listRequests(bridge);
    assert.equal(first.ifNoneMatch, undefined);
    assert.match(second.ifNoneMatch ?? '', /^".+"$/);
  });

  test('after ten minutes without a change it reads the list in full once, in case another replica applied', async t => {
    await provider.refresh();
    assert.equal((await provider.refresh()).status, 'unchanged');
    const now = Date.now();
    t.mock.method(Date, 'now', () => now + FULL_RESYNC_INTERVAL_MS + 1_000);
    assert.equal((await provider.refresh()).status, 'applied');
    assert.equal(listRequests(bridge)[2].ifNoneMatch, undefined);
    assert.equal((await provider.refresh()).status, 'unchanged');
  });

  test('a changed list is applied again; removed products leave the catalog', async () => {
    await provider.refresh();
    bridge.products = bridge.products.filter(p => p.namespace !== 'games');
    assert.equal((await provider.refresh()).status, 'applied');
    assert.deepEqual(connection.names(), ['shop--toys']);
    bridge.products = [];
    assert.equal((await provider.refresh()).status, 'applied');
    assert.deepEqual(connection.names(), []);
  });

  test('OpenAPI documents are fetched once per product uid and lastSyncTime', async () => {
    await provider.refresh();
    assert.equal(openapiRequests(bridge).length, 1);
    // Another change to the list, same document.
    bridge.products = [...bridge.products, makeProduct({ namespace: 'x', name: 'y' })];
    await provider.refresh();
    assert.equal(openapiRequests(bridge).length, 1);
    assert.equal(
      connection.mutations[1].type === 'full' &&
        connection.mutations[1].entities.find(e => e.entity.metadata.name === 'shop--toys')?.entity.spec?.definition,
      bridge.openapi.get('shop/toys'),
    );
    // The bridge synced a new document.
    bridge.openapi.set('shop/toys', 'openapi: 3.0.3\ninfo: {title: Toys, version: "2"}\npaths: {}\n');
    bridge.products = bridge.products.map(p =>
      p.uid === 'uid-toys' ? { ...p, openapi: { available: true, lastSyncTime: '2026-11-26T08:00:00Z' } } : p,
    );
    await provider.refresh();
    assert.equal(openapiRequests(bridge).length, 2);
    assert.equal(
      connection.mutations[2].type === 'full' &&
        connection.mutations[2].entities.find(e => e.entity.metadata.name === 'shop--toys')?.entity.spec?.definition,
      bridge.openapi.get('shop/toys'),
    );
  });

  for (const [mode, message] of [
    ['error', /answered 500 InternalError/],
    ['garbage', /not JSON/],
    ['not-a-list', /not a product list/],
    ['slow', /timed out/],
  ] as const) {
    test(`a bridge answering ${mode} logs a warning and keeps the last catalog`, async () => {
      assert.equal((await provider.refresh()).status, 'applied');
      bridge.mode = mode;
      bridge.slowMs = 2_000;
      // Force a full read even though the provider has an ETag.
      bridge.products = [...bridge.products];
      const result = await provider.refresh();
      assert.equal(result.status, 'failed');
      assert.match((result as Extract<RefreshResult, { status: 'failed' }>).error.message, message);
      assert.equal(connection.mutations.length, 1, 'no mutation while the bridge misbehaves');
      assert.equal(warnings().length, 1);
      assert.match(warnings()[0], /the catalog keeps its last good set of API entities/);
      assert.match(warnings()[0], message);
      // Recovery.
      bridge.mode = 'ok';
      bridge.products = bridge.products.filter(p => p.namespace === 'shop');
      assert.equal((await provider.refresh()).status, 'applied');
      assert.deepEqual(connection.names(), ['shop--toys']);
    });
  }

  test('a bridge that is down logs a warning and applies nothing', async () => {
    const server = createServer();
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise(resolve => server.close(resolve));
    const down = new ApiportalEntityProvider(configFor({ url: `http://127.0.0.1:${port}`, token: 't' }), { logger });
    const conn = new RecordingConnection();
    await down.connect(conn);
    const result = await down.refresh();
    assert.equal(result.status, 'failed');
    assert.equal(conn.mutations.length, 0);
    assert.match(warnings()[0], /ECONNREFUSED/);
  });

  test('a failing catalog write is reported, and the next run tries again in full', async () => {
    connection.failNext = true;
    const result = await provider.refresh();
    assert.equal(result.status, 'failed');
    assert.match(warnings()[0], /database is locked/);
    assert.equal((await provider.refresh()).status, 'applied');
    assert.equal(listRequests(bridge)[1].ifNoneMatch, undefined, 'no ETag from the failed run');
  });

  test('an OpenAPI document that cannot be read gives a stub, and the next run reads the list again', async () => {
    bridge.openapi.delete('shop/toys');
    const result = await provider.refresh();
    assert.equal(result.status, 'applied');
    assert.match(warnings()[0], /shop\/toys says it has an OpenAPI document but the bridge has none/);
    const toys =
      connection.mutations[0].type === 'full' &&
      connection.mutations[0].entities.find(e => e.entity.metadata.name === 'shop--toys')?.entity;
    assert.ok(toys);
    assert.equal(JSON.parse(String(toys.spec?.definition)).openapi, '3.0.3');
    // The list is unchanged, but the provider did not keep its ETag, so it reads the list and retries.
    bridge.openapi.set('shop/toys', 'openapi: 3.0.3\n');
    assert.equal((await provider.refresh()).status, 'applied');
    assert.equal(listRequests(bridge)[1].ifNoneMatch, undefined);
    assert.equal(openapiRequests(bridge).length, 2);
    // Now complete: the third run is a 304.
    assert.equal((await provider.refresh()).status, 'unchanged');
  });

  test('a document read that fails keeps the last document read for the product', async () => {
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
    assert.equal(first, bridge.openapi.get('shop/toys'));

    breakDocuments = true;
    bridge.products = bridge.products.map(prod =>
      prod.uid === 'uid-toys' ? { ...prod, openapi: { available: true, lastSyncTime: 'later' } } : prod,
    );
    assert.equal((await p.refresh()).status, 'applied');
    assert.equal(definitionOf(1), first);
    assert.match(warnings()[0], /could not read the OpenAPI document of apiportal product shop\/toys, using the last one read: .*ECONNRESET/);
  });

  test('skips products that are not Published even if the bridge lists them', async () => {
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
    assert.deepEqual(await p.refresh(), { status: 'applied', entities: 1, skipped: 1 });
    assert.deepEqual(conn.names(), ['a--published']);
  });

  test('a run cancelled by the scheduler (task timeout, shutdown) applies nothing', async () => {
    bridge.mode = 'slow';
    bridge.slowMs = 5_000;
    const controller = new AbortController();
    const pending = provider.refresh(controller.signal);
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    assert.equal(result.status, 'failed');
    assert.match(warnings()[0], /cancelled/);
    assert.equal(connection.mutations.length, 0);
    bridge.mode = 'ok';
  });

  test('concurrent refreshes share one run', async () => {
    const [a, b] = await Promise.all([provider.refresh(), provider.refresh()]);
    assert.equal(a, b);
    assert.equal(listRequests(bridge).length, 1);
  });

  test('refresh before connect fails softly', async () => {
    const p = new ApiportalEntityProvider(configFor(bridge), { logger });
    assert.equal((await p.refresh()).status, 'failed');
  });
});

describe('ApiportalEntityProvider.fromConfig', () => {
  test('schedules its refresh with the configured schedule; the task never throws', async () => {
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
    assert.ok(provider);
    const connection = new RecordingConnection();
    await provider.connect(connection);
    assert.equal(scheduled.length, 1);
    const schedule = scheduled[0].schedule as { frequency: unknown; timeout: unknown };
    assert.deepEqual(schedule.frequency, { seconds: 5 });
    assert.deepEqual(schedule.timeout, { seconds: 20 });
    assert.equal(scheduled[0].task?.id, 'apiportal:refresh');
    // Nothing listens on port 9: the task resolves, warns, and applies nothing.
    await scheduled[0].task!.fn(new AbortController().signal as never);
    assert.equal(connection.mutations.length, 0);
    assert.equal(logger.lines.filter(l => l.level === 'warn').length, 1);
  });

  test('undefined when not configured', () => {
    assert.equal(ApiportalEntityProvider.fromConfig(new ConfigReader({}), { logger: captureLogger() }), undefined);
  });
});
