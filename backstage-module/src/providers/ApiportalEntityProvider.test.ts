import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SchedulerServiceTaskInvocationDefinition } from '@backstage/backend-plugin-api';
import { ConfigReader } from '@backstage/config';
import { makeTestCertificates } from '../testing/certs';
import { makeKey, makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import { captureLogger } from '../testing/logger';
import { RecordingConnection } from '../testing/recordingConnection';
import { defaultApiportalEntityTransformer } from '../transformers/defaultApiportalEntityTransformer';
import { DEFAULT_OWNER_POLICY, DEFAULT_SYSTEM_POLICY } from '../transformers/ownership';
import {
  ApiportalEntityProvider,
  FULL_RESYNC_INTERVAL_MS,
  type ApiportalEntityProviderOptions,
  type RefreshResult,
} from './ApiportalEntityProvider';
import { DEFAULT_SCHEDULE, type ApiportalEntityProviderConfig } from './ApiportalEntityProviderConfig';

function configFor(
  bridge: { url: string; token?: string },
  overrides: Partial<ApiportalEntityProviderConfig> = {},
): ApiportalEntityProviderConfig {
  return {
    id: 'default',
    cluster: 'default',
    baseUrl: bridge.url,
    token: bridge.token,
    schedule: DEFAULT_SCHEDULE,
    owner: DEFAULT_OWNER_POLICY,
    defaultOwner: 'unknown',
    system: DEFAULT_SYSTEM_POLICY,
    allowedHosts: [],
    lifecycle: 'production',
    ...overrides,
  };
}

/** Resolves once `condition()` holds, checking it after each turn of the event loop. */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise(resolve => setImmediate(resolve));
}

/** Requests for the product list, or for what changed in it. */
const listRequests = (bridge: FakeBridge) => bridge.requests.filter(r => /^\/api\/v1\/products(\?|$)/.test(r.path));
const keyRequests = (bridge: FakeBridge) => bridge.requests.filter(r => r.path.startsWith('/api/v1/keys'));
const openapiRequests = (bridge: FakeBridge) => bridge.requests.filter(r => r.path.endsWith('/openapi'));
const failed = (result: RefreshResult) => {
  if (result.status !== 'failed') throw new Error(`expected a failed run, got ${JSON.stringify(result)}`);
  return result.error;
};

describe('ApiportalEntityProvider', () => {
  let bridge: FakeBridge;
  let connection: RecordingConnection;
  let logger: ReturnType<typeof captureLogger>;
  let provider: ApiportalEntityProvider;
  const providers: ApiportalEntityProvider[] = [];

  /** A provider connected to a new recording connection, closed after the test. */
  async function connected(config: ApiportalEntityProviderConfig, options: Partial<ApiportalEntityProviderOptions> = {}) {
    const p = new ApiportalEntityProvider(config, { logger, timeoutMs: 300, ...options });
    providers.push(p);
    const conn = new RecordingConnection();
    await p.connect(conn);
    return { provider: p, connection: conn };
  }

  beforeEach(async () => {
    await bridge?.close();
    bridge = await startFakeBridge({
      products: [
        makeProduct({
          namespace: 'shop',
          name: 'toys',
          uid: 'uid-toys',
          plans: [
            { tier: 'gold', description: null, limits: { daily: 100 } },
            { tier: 'bronze', description: null, limits: { daily: 10 } },
          ],
          openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
        }),
        makeProduct({ namespace: 'games', name: 'toys', uid: 'uid-games' }),
      ],
      keys: [
        makeKey('shop/toys', 'gold', 'alice'),
        makeKey('shop/toys', 'gold', 'bob'),
        makeKey('shop/toys', 'bronze', 'bob'),
        makeKey('shop/toys', 'bronze', 'carol', { phase: 'Pending' }),
      ],
      openapi: { 'shop/toys': '{"openapi":"3.0.3","info":{"title":"Toys","version":"1"},"paths":{}}' },
    });
    logger = captureLogger();
    ({ provider, connection } = await connected(configFor(bridge)));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(providers.splice(0).map(p => p.close()));
  });
  afterAll(async () => bridge?.close());

  const warnings = () => logger.lines.filter(l => l.level === 'warn').map(l => l.message);

  it('is called apiportal-provider:<id>', async () => {
    expect(provider.getProviderName()).toBe('apiportal-provider:default');
    const { provider: eu } = await connected(configFor(bridge, { id: 'eu', cluster: 'eu-west' }));
    expect(eu.getProviderName()).toBe('apiportal-provider:eu');
  });

  it('applies every published product, with its consumers, as one full mutation under its provider name', async () => {
    const result = await provider.refresh();
    expect(result).toStrictEqual({ status: 'applied', mutation: 'full', entities: 2, skipped: 0, consumersKnown: true });
    expect(connection.mutations).toHaveLength(1);
    expect(connection.full(0).map(e => [e.entity.metadata.name, e.locationKey])).toStrictEqual([
      ['games--toys', 'apiportal-provider:default'],
      ['shop--toys', 'apiportal-provider:default'],
    ]);
    const toys = connection.entity('shop--toys');
    expect(toys.spec?.definition).toBe(bridge.openapi.get('shop/toys'));
    expect(toys.metadata.annotations?.['apiportal.dev/consumers']).toBe('2');
    expect(toys.metadata.annotations?.['apiportal.dev/consumers-by-plan']).toBe('{"bronze":1,"gold":2}');
    expect(toys.metadata.annotations?.['apiportal.dev/cluster']).toBe('default');
    const games = connection.entity('games--toys');
    expect(games.metadata.annotations?.['apiportal.dev/consumers']).toBe('0');
    expect(warnings()).toStrictEqual([]);
    expect(logger.lines.filter(l => l.level === 'info').map(l => l.message)).toStrictEqual([
      expect.stringMatching(new RegExp(`^applied 2 API entities from cluster default \\(${bridge.url}\\), in full, in \\d+ ms$`)),
    ]);
  });

  it('nothing changed (no product changed since the version held, keys 304): nothing applied', async () => {
    await provider.refresh();
    const result = await provider.refresh();
    expect(result).toStrictEqual({ status: 'unchanged' });
    expect(connection.mutations).toHaveLength(1);
    expect(listRequests(bridge).map(r => [r.path.replace(/since=[0-9a-f]+/, 'since=V'), r.status])).toStrictEqual([
      ['/api/v1/products', 200],
      ['/api/v1/products?since=V', 200],
    ]);
    expect(keyRequests(bridge).map(r => [r.ifNoneMatch === undefined, r.status])).toStrictEqual([
      [true, 200],
      [false, 304],
    ]);
    expect(openapiRequests(bridge)).toHaveLength(1);
  });

  it('a new approved consumer alone: its product\'s entity alone is applied, as a delta', async () => {
    await provider.refresh();
    bridge.keys = [...bridge.keys, makeKey('games/toys', 'gold', 'dave')];
    expect(await provider.refresh()).toStrictEqual({
      status: 'applied',
      mutation: 'delta',
      entities: 2,
      added: 1,
      removed: 0,
      skipped: 0,
      consumersKnown: true,
    });
    expect(connection.delta().added.map(e => e.entity.metadata.name)).toStrictEqual(['games--toys']);
    expect(connection.delta().added[0].locationKey).toBe('apiportal-provider:default');
    expect(connection.entity('games--toys').metadata.annotations?.['apiportal.dev/consumers-by-plan']).toBe(
      '{"gold":1}',
    );
    expect(connection.names()).toStrictEqual(['games--toys', 'shop--toys']);
  });

  it('what changed in the list is applied as a delta: changed and new products added, removed ones removed', async () => {
    await provider.refresh();
    bridge.products = [
      ...bridge.products.filter(p => p.namespace !== 'games'),
      makeProduct({ namespace: 'new', name: 'one' }),
      makeProduct({ namespace: 'new', name: 'draft', publishStatus: 'Draft' }),
    ].map(p => (p.namespace === 'shop' ? { ...p, displayName: 'Toys API, renamed' } : p));
    expect(await provider.refresh()).toStrictEqual({
      status: 'applied',
      mutation: 'delta',
      entities: 2,
      added: 2,
      removed: 1,
      skipped: 0,
      consumersKnown: true,
    });
    const delta = connection.delta();
    expect(delta.added.map(e => e.entity.metadata.name)).toStrictEqual(['new--one', 'shop--toys']);
    expect(delta.removed).toStrictEqual([{ entityRef: 'api:default/games--toys', locationKey: 'apiportal-provider:default' }]);
    expect(connection.entity('shop--toys').metadata.title).toBe('Toys API, renamed');
    expect(logger.lines.filter(l => l.level === 'info').map(l => l.message).at(-1)).toMatch(
      new RegExp(`^applied changes to API entities from cluster default \\(${bridge.url}\\): 2 added or changed, 1 removed, 2 in all, in \\d+ ms$`),
    );
    // Only the changed products were asked for their documents again: none of them has one.
    expect(openapiRequests(bridge)).toHaveLength(1);
  });

  it('a version the bridge cannot answer from (410): the whole list, applied in full, in the same run', async () => {
    await provider.refresh();
    bridge.forgetVersions();
    bridge.products = bridge.products.filter(p => p.namespace !== 'games');
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'full', entities: 1 });
    expect(listRequests(bridge).slice(1).map(r => [r.path.replace(/since=[0-9a-f]+/, 'since=V'), r.status])).toStrictEqual([
      ['/api/v1/products?since=V', 410],
      ['/api/v1/products', 200],
    ]);
    expect(connection.names()).toStrictEqual(['shop--toys']);
    expect(logger.lines.map(l => l.message)).toContain(
      `the bridge cannot tell what changed since the list this provider holds (Expired: this bridge cannot tell what changed since version ${
        new URL(listRequests(bridge)[1].path, 'http://x').searchParams.get('since')
      }); reading every product`,
    );
    // And changes again from the version that list carried.
    bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'delta', added: 1, removed: 0 });
  });

  it('an answer about changes since another version is not applied as changes: the whole list is read', async () => {
    await provider.refresh();
    const { fetch: undiciFetch } = await import('undici');
    let other: string | undefined;
    const confused: ApiportalEntityProviderOptions['fetch'] = async (input, init) => {
      const url = new URL(String(input));
      // A cache in between answers every question about changes with the answer to the first one.
      if (url.searchParams.has('since')) {
        other ??= url.searchParams.get('since') ?? undefined;
        url.searchParams.set('since', other!);
      }
      return undiciFetch(url.toString(), init);
    };
    const { provider: p, connection: conn } = await connected(configFor(bridge), { fetch: confused });
    expect((await p.refresh()).status).toBe('applied');
    bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
    expect(await p.refresh()).toMatchObject({ status: 'applied', mutation: 'delta' });
    other = 'a-version-of-someone-else';
    bridge.products = bridge.products.filter(q => q.namespace !== 'new');
    expect(await p.refresh()).toMatchObject({ status: 'applied', mutation: 'full', entities: 2 });
    expect(conn.names()).toStrictEqual(['games--toys', 'shop--toys']);
  });

  it('ten minutes after the last full mutation it reads everything and applies it in full once, in case another replica applied', async () => {
    await provider.refresh();
    bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'delta' });
    expect((await provider.refresh()).status).toBe('unchanged');
    const now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now + FULL_RESYNC_INTERVAL_MS + 1_000);
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'full', entities: 3 });
    expect(listRequests(bridge)[3].path).toBe('/api/v1/products');
    expect(keyRequests(bridge)[3].ifNoneMatch).toBeUndefined();
    expect((await provider.refresh()).status).toBe('unchanged');
  });

  it('a changed list is applied again; removed products leave the catalog', async () => {
    await provider.refresh();
    bridge.products = bridge.products.filter(p => p.namespace !== 'games');
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'delta', added: 0, removed: 1 });
    expect(connection.names()).toStrictEqual(['shop--toys']);
    bridge.products = [];
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'delta', added: 0, removed: 1 });
    expect(connection.names()).toStrictEqual([]);
  });

  it('OpenAPI documents are fetched once per product uid and lastSyncTime', async () => {
    await provider.refresh();
    expect(openapiRequests(bridge)).toHaveLength(1);
    // Another change to the list, same document.
    bridge.products = [...bridge.products, makeProduct({ namespace: 'x', name: 'y' })];
    await provider.refresh();
    expect(openapiRequests(bridge)).toHaveLength(1);
    expect(connection.entity('shop--toys').spec?.definition).toBe(bridge.openapi.get('shop/toys'));
    // The bridge synced a new document.
    bridge.openapi.set('shop/toys', 'openapi: 3.0.3\ninfo: {title: Toys, version: "2"}\npaths: {}\n');
    bridge.products = bridge.products.map(p =>
      p.uid === 'uid-toys' ? { ...p, openapi: { available: true, lastSyncTime: '2026-11-26T08:00:00Z' } } : p,
    );
    await provider.refresh();
    expect(openapiRequests(bridge)).toHaveLength(2);
    expect(connection.entity('shop--toys').spec?.definition).toBe(bridge.openapi.get('shop/toys'));
  });

  for (const [mode, message] of [
    ['error', /answered 500 InternalError/],
    ['garbage', /not JSON/],
    ['not-a-list', /does not match the bridge's view schema/],
    ['slow', /timed out/],
    ['unavailable', /answered 503 Unavailable: the watch caches have not synced yet \(the bridge is not ready/],
  ] as const) {
    it(`a bridge answering ${mode} logs a warning and keeps the last catalog`, async () => {
      expect((await provider.refresh()).status).toBe('applied');
      bridge.mode = mode;
      bridge.slowMs = 10 * 60_000; // only the client's timeout ends a slow answer
      bridge.retryAfterSeconds = 0;
      // Force a full read even though the provider has an ETag.
      bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
      const result = await provider.refresh();
      expect(failed(result).message).toMatch(message);
      // No mutation while the bridge misbehaves.
      expect(connection.mutations).toHaveLength(1);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(
        /^apiportal catalog refresh failed, the catalog keeps its last good set of API entities from cluster default: /,
      );
      expect(warnings()[0]).toMatch(message);
      // Recovery: after a failure, in full.
      bridge.mode = 'ok';
      bridge.products = bridge.products.filter(p => p.namespace === 'shop');
      expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'full' });
      expect(connection.names()).toStrictEqual(['shop--toys']);
    });
  }

  it('429 with Retry-After: nothing applied, and no request to the bridge until that time has passed', async () => {
    expect((await provider.refresh()).status).toBe('applied');
    bridge.mode = 'rate-limited';
    bridge.retryAfterSeconds = 30;
    bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    expect(failed(await provider.refresh()).message).toMatch(
      /answered 429 TooManyRequests: too many requests from unknown tokens \(rate limited; it asked to retry after 30 s\)/,
    );
    const requests = bridge.requests.length;
    bridge.mode = 'ok';
    clock.mockImplementation(() => now + 29_000);
    expect(await provider.refresh()).toStrictEqual({ status: 'deferred', until: new Date(now + 30_000) });
    expect(bridge.requests).toHaveLength(requests);
    clock.mockImplementation(() => now + 30_000);
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'full' });
    expect(connection.names()).toStrictEqual(['games--toys', 'new--one', 'shop--toys']);
  });

  it('a bridge that is down logs a warning and applies nothing', async () => {
    const server = createServer();
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise(resolve => server.close(resolve));
    const down = await connected(configFor({ url: `http://127.0.0.1:${port}`, token: 't' }));
    const result = await down.provider.refresh();
    expect(failed(result).message).toMatch(/ECONNREFUSED/);
    expect(down.connection.mutations).toHaveLength(0);
    expect(warnings()[0]).toMatch(/ECONNREFUSED/);
  });

  it('a failing catalog write is reported, and the next run applies everything again, in full', async () => {
    await provider.refresh();
    bridge.products = bridge.products.filter(p => p.namespace !== 'games');
    connection.failNext = true;
    expect(failed(await provider.refresh()).message).toBe('database is locked');
    expect(warnings()[0]).toMatch(/database is locked/);
    expect(connection.names()).toStrictEqual(['games--toys', 'shop--toys']);
    expect(await provider.refresh()).toMatchObject({ status: 'applied', mutation: 'full', entities: 1 });
    expect(connection.names()).toStrictEqual(['shop--toys']);
    expect(listRequests(bridge).at(-1)?.path).toBe('/api/v1/products');
  });

  it('an OpenAPI document that cannot be read gives a stub, and the next runs try again', async () => {
    bridge.openapi.delete('shop/toys');
    expect((await provider.refresh()).status).toBe('applied');
    expect(warnings()[0]).toBe(
      'apiportal product shop/toys says it has an OpenAPI document but the bridge has none (404); using a stub definition',
    );
    expect(JSON.parse(String(connection.entity('shop--toys').spec?.definition)).openapi).toBe('3.0.3');
    // Still missing: nothing new to apply, but it was tried.
    expect((await provider.refresh()).status).toBe('unchanged');
    expect(openapiRequests(bridge)).toHaveLength(2);
    // Now there: applied.
    bridge.openapi.set('shop/toys', 'openapi: 3.0.3\n');
    expect((await provider.refresh()).status).toBe('applied');
    expect(connection.entity('shop--toys').spec?.definition).toBe('openapi: 3.0.3\n');
    expect((await provider.refresh()).status).toBe('unchanged');
    expect(openapiRequests(bridge)).toHaveLength(3);
  });

  it('fetches at most four OpenAPI documents at a time, and every one of them', async () => {
    bridge.products = Array.from({ length: 10 }, (_, i) =>
      makeProduct({ namespace: 'shop', name: `api-${i}`, openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' } }),
    );
    for (const product of bridge.products) bridge.openapi.set(`shop/${product.name}`, `openapi: 3.0.3 # ${product.name}\n`);
    let inFlight = 0;
    let mostInFlight = 0;
    const { fetch: undiciFetch } = await import('undici');
    const countingFetch: ApiportalEntityProviderOptions['fetch'] = async (input, init) => {
      if (!String(input).endsWith('/openapi')) return undiciFetch(input, init);
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      try {
        return await undiciFetch(input, init);
      } finally {
        inFlight--;
      }
    };
    const { provider: p, connection: conn } = await connected(configFor(bridge), { fetch: countingFetch });
    expect((await p.refresh()).status).toBe('applied');
    expect(conn.full().map(e => e.entity.spec?.definition)).toStrictEqual(
      bridge.products.map(product => `openapi: 3.0.3 # ${product.name}\n`),
    );
    expect(mostInFlight).toBe(4);
  });

  it('a document read that fails keeps the last document read for the product', async () => {
    let breakDocuments = false;
    const { fetch: undiciFetch } = await import('undici');
    const flakyFetch: ApiportalEntityProviderOptions['fetch'] = async (input, init) => {
      if (breakDocuments && String(input).endsWith('/openapi')) {
        throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET', message: 'socket hang up' } });
      }
      return undiciFetch(input, init);
    };
    const { provider: p, connection: conn } = await connected(configFor(bridge), { fetch: flakyFetch });
    await p.refresh();
    const first = conn.entity('shop--toys').spec?.definition;
    expect(first).toBe(bridge.openapi.get('shop/toys'));

    breakDocuments = true;
    bridge.products = bridge.products.map(prod =>
      prod.uid === 'uid-toys' ? { ...prod, openapi: { available: true, lastSyncTime: 'later' } } : prod,
    );
    // The entity is what it was (only the document's sync time, which no entity shows, changed): nothing applied.
    expect((await p.refresh()).status).toBe('unchanged');
    expect(conn.entity('shop--toys').spec?.definition).toBe(first);
    expect(warnings()[0]).toMatch(
      /could not read the OpenAPI document of apiportal product shop\/toys, using the last one read: .*ECONNRESET/,
    );
  });

  it('skips products that are not Published even if the bridge lists them', async () => {
    const body = JSON.stringify({
      kind: 'ProductList',
      items: [
        makeProduct({ namespace: 'a', name: 'published' }),
        makeProduct({ namespace: 'a', name: 'draft', publishStatus: 'Draft' }),
      ],
      scope: { allNamespaces: true, namespaces: [] },
      version: 'v1',
    });
    const fakeFetch = (async (url: string) =>
      url.includes('/keys')
        ? new Response('{"items":[],"scope":{"allNamespaces":true,"namespaces":[]}}', {
            status: 200,
            headers: { 'content-type': 'application/json' },
          })
        : new Response(body, { status: 200, headers: { 'content-type': 'application/json', etag: '"x"' } })) as never;
    const { provider: p, connection: conn } = await connected(configFor(bridge), { fetch: fakeFetch });
    expect(await p.refresh()).toStrictEqual({
      status: 'applied',
      mutation: 'full',
      entities: 1,
      skipped: 1,
      consumersKnown: true,
    });
    expect(conn.names()).toStrictEqual(['a--published']);
  });

  it('a run cancelled by the scheduler (task timeout, shutdown) applies nothing', async () => {
    bridge.mode = 'slow';
    bridge.slowMs = 10 * 60_000;
    const controller = new AbortController();
    const pending = provider.refresh(controller.signal);
    // Cancelled while the bridge holds the request.
    await waitUntil(() => listRequests(bridge).length === 1);
    controller.abort();
    expect(failed(await pending).message).toMatch(/cancelled/);
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
    providers.push(p);
    expect(failed(await p.refresh()).message).toBe('ApiportalEntityProvider is not connected to the catalog yet');
  });

  describe('consumers', () => {
    it('a token that may not list keys (403): entities without consumers, one warning however many runs, back once allowed', async () => {
      bridge.keysForbidden = true;
      expect(await provider.refresh()).toStrictEqual({
        status: 'applied',
        mutation: 'full',
        entities: 2,
        skipped: 0,
        consumersKnown: false,
      });
      const annotations = connection.entity('shop--toys').metadata.annotations ?? {};
      expect(Object.keys(annotations).filter(a => a.startsWith('apiportal.dev/consumers'))).toStrictEqual([]);
      expect((await provider.refresh()).status).toBe('unchanged');
      bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
      expect((await provider.refresh()).status).toBe('applied');
      expect(warnings()).toStrictEqual([
        expect.stringMatching(
          /^the bridge does not let this token list API keys, so entities carry no consumer counts; bind the apiportal-key-reader ClusterRole cluster-wide to the token's ServiceAccount to show them \(.*answered 403 Forbidden/,
        ),
      ]);
      expect(connection.mutations).toHaveLength(2);

      bridge.keysForbidden = false;
      expect(await provider.refresh()).toMatchObject({ status: 'applied', consumersKnown: true });
      expect(connection.entity('shop--toys').metadata.annotations?.['apiportal.dev/consumers']).toBe('2');
      expect(logger.lines.map(l => l.message)).toContain(
        'the bridge shows every approved key again: entities carry their consumers',
      );
    });

    it('keys of only some namespaces would undercount: entities without consumers, said once', async () => {
      bridge.keyScope = { allNamespaces: false, namespaces: ['team-alice'] };
      expect(await provider.refresh()).toMatchObject({ status: 'applied', consumersKnown: false });
      const annotations = connection.entity('shop--toys').metadata.annotations ?? {};
      expect(Object.keys(annotations).filter(a => a.startsWith('apiportal.dev/consumers'))).toStrictEqual([]);
      bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
      expect((await provider.refresh()).status).toBe('applied');
      expect(warnings()).toStrictEqual([
        "the token may list API keys only in these namespaces, so consumer counts would be too low and entities carry none: team-alice; bind the apiportal-key-reader ClusterRole cluster-wide to the token's ServiceAccount to show them",
      ]);
      bridge.keyScope = { allNamespaces: true, namespaces: [] };
      expect(await provider.refresh()).toMatchObject({ status: 'applied', consumersKnown: true });
      expect(connection.entity('shop--toys').metadata.annotations?.['apiportal.dev/consumers']).toBe('2');
    });

    it('a transient key-view failure keeps the consumer counts read last', async () => {
      await provider.refresh();
      let failKeys = true;
      const { fetch: undiciFetch } = await import('undici');
      const flaky: ApiportalEntityProviderOptions['fetch'] = async (input, init) =>
        failKeys && String(input).includes('/api/v1/keys')
          ? (new Response('{"error":{"code":"InternalError","message":"boom"}}', { status: 500 }) as never)
          : undiciFetch(input, init);
      // The same bridge through a flaky network, with what the first provider had learnt.
      const { provider: p, connection: conn } = await connected(configFor(bridge), { fetch: flaky });
      // Without any consumer counts yet, the run fails rather than drop them from the catalog.
      expect(failed(await p.refresh()).message).toMatch(/keys\?phase=Approved answered 500 InternalError: boom/);
      expect(conn.mutations).toHaveLength(0);
      failKeys = false;
      expect((await p.refresh()).status).toBe('applied');
      failKeys = true;
      bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
      expect(await p.refresh()).toMatchObject({ status: 'applied', consumersKnown: true });
      expect(conn.entity('shop--toys').metadata.annotations?.['apiportal.dev/consumers']).toBe('2');
      expect(warnings()).toContain(
        `could not read approved keys, keeping the consumer counts read last: apiportal bridge GET ${bridge.url}/api/v1/keys?phase=Approved answered 500 InternalError: boom`,
      );
    });
  });

  it('a token file is read again when it changes: a rotated token is used without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apiportal-token-'));
    try {
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, `${bridge.token}\n`);
      const { provider: p, connection: conn } = await connected(configFor(bridge, { token: undefined, tokenFile }));
      expect((await p.refresh()).status).toBe('applied');
      // The API server stops accepting the old token before the kubelet has written the new one.
      bridge.token = 'rotated-token';
      bridge.products = [...bridge.products, makeProduct({ namespace: 'new', name: 'one' })];
      const error = failed(await p.refresh());
      expect(error.message).toMatch(new RegExp(`answered 401 Unauthorized: .*the token from tokenFile ${tokenFile}`));
      expect(error.message).not.toContain('rotated-token');
      writeFileSync(tokenFile, 'rotated-token');
      expect((await p.refresh()).status).toBe('applied');
      expect(conn.names()).toStrictEqual(['games--toys', 'new--one', 'shop--toys']);
      expect(bridge.requests[bridge.requests.length - 1].authorization).toBe('Bearer rotated-token');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads an https bridge through its caFile', async () => {
    const certs = makeTestCertificates();
    const tlsBridge = await startFakeBridge({ products: [makeProduct({ namespace: 'a', name: 'b' })], tls: certs });
    try {
      const { provider: p, connection: conn } = await connected(configFor(tlsBridge, { caFile: certs.caFile }));
      expect((await p.refresh()).status).toBe('applied');
      expect(conn.names()).toStrictEqual(['a--b']);
      expect(conn.entity('a--b').metadata.annotations?.['backstage.io/managed-by-location']).toBe(
        `apiportal:${tlsBridge.url}/api/v1/products/a/b`,
      );
    } finally {
      await tlsBridge.close();
      certs.cleanup();
    }
  });

  it('a token limited to some namespaces: warns once which ones', async () => {
    bridge.scope = { allNamespaces: false, namespaces: ['shop'] };
    expect((await provider.refresh()).status).toBe('applied');
    expect(connection.names()).toStrictEqual(['shop--toys']);
    bridge.products = [...bridge.products, makeProduct({ namespace: 'shop', name: 'more' })];
    await provider.refresh();
    expect(warnings()).toStrictEqual([
      'the token may list products only in these namespaces, so only their products appear in the catalog: shop; bind the apiportal-catalog-reader ClusterRole cluster-wide to list every namespace',
    ]);
  });

  describe('transformer', () => {
    it('a custom transformer can start from the default one, leave products out, and gets the context', async () => {
      const contexts: unknown[] = [];
      const { provider: p, connection: conn } = await connected(configFor(bridge, { id: 'eu', cluster: 'eu-west' }), {
        clusterInName: true,
        transformer: (product, context) => {
          contexts.push({ product: `${product.namespace}/${product.name}`, ...context, definition: context.definition !== undefined });
          if (product.namespace === 'games') return undefined;
          const entity = defaultApiportalEntityTransformer(product, context);
          entity.metadata.namespace = 'apis';
          entity.spec.owner = `group:default/${product.namespace}-owners`;
          return entity;
        },
      });
      expect(await p.refresh()).toStrictEqual({
        status: 'applied',
        mutation: 'full',
        entities: 1,
        skipped: 1,
        consumersKnown: true,
      });
      const entity = conn.entity('eu-west--shop--toys');
      expect(entity.metadata.namespace).toBe('apis');
      expect(entity.spec?.owner).toBe('group:default/shop-owners');
      expect(contexts).toStrictEqual([
        {
          product: 'games/toys',
          providerId: 'eu',
          cluster: 'eu-west',
          clusterInName: true,
          baseUrl: bridge.url,
          owner: DEFAULT_OWNER_POLICY,
          defaultOwner: 'unknown',
          system: DEFAULT_SYSTEM_POLICY,
          allowedHosts: [],
          lifecycle: 'production',
          definition: false,
          usage: { consumers: 0, consumersByPlan: {}, consumersByApplication: {} },
        },
        {
          product: 'shop/toys',
          providerId: 'eu',
          cluster: 'eu-west',
          clusterInName: true,
          baseUrl: bridge.url,
          owner: DEFAULT_OWNER_POLICY,
          defaultOwner: 'unknown',
          system: DEFAULT_SYSTEM_POLICY,
          allowedHosts: [],
          lifecycle: 'production',
          definition: true,
          usage: { consumers: 2, consumersByPlan: { bronze: 1, gold: 2 }, consumersByApplication: {} },
        },
      ]);
    });

    it('a transformer that throws fails the run: nothing applied, rather than a product silently deleted', async () => {
      await provider.refresh();
      let broken = true;
      const { provider: p, connection: conn } = await connected(configFor(bridge), {
        transformer: (product, context) => {
          if (broken && product.namespace === 'games') throw new Error('no mapping for games');
          return defaultApiportalEntityTransformer(product, context);
        },
      });
      expect(failed(await p.refresh()).message).toBe(
        'the entity transformer failed for product games/toys: no mapping for games',
      );
      expect(conn.mutations).toHaveLength(0);
      broken = false;
      expect((await p.refresh()).status).toBe('applied');
    });

    it('entities without location annotations get them; two products mapped to one entity keep the first', async () => {
      const { provider: p, connection: conn } = await connected(configFor(bridge), {
        transformer: product => ({
          apiVersion: 'backstage.io/v1alpha1',
          kind: 'API',
          metadata: { name: product.name },
          spec: { type: 'openapi', lifecycle: 'production', owner: 'x', definition: '{}' },
        }),
      });
      expect(await p.refresh()).toStrictEqual({
        status: 'applied',
        mutation: 'full',
        entities: 1,
        skipped: 1,
        consumersKnown: true,
      });
      expect(conn.entity('toys').metadata.annotations).toStrictEqual({
        'backstage.io/managed-by-location': `apiportal:${bridge.url}/api/v1/products/games/toys`,
        'backstage.io/managed-by-origin-location': `apiportal:${bridge.url}/api/v1/products/games/toys`,
      });
      expect(warnings()).toStrictEqual([
        'products games/toys and shop/toys both map to the entity api:default/toys; keeping the first',
      ]);
    });
  });

  it('two clusters serving the same namespace/name: two providers, two entities, each in its own mutation', async () => {
    const us = await startFakeBridge({ products: [makeProduct({ namespace: 'shop', name: 'toys', uid: 'uid-us' })] });
    try {
      const eu = await connected(configFor(bridge, { id: 'eu', cluster: 'eu' }), { clusterInName: true });
      const usp = await connected(configFor(us, { id: 'us', cluster: 'us' }), { clusterInName: true });
      expect((await eu.provider.refresh()).status).toBe('applied');
      expect((await usp.provider.refresh()).status).toBe('applied');
      expect(eu.connection.names()).toStrictEqual(['eu--games--toys', 'eu--shop--toys']);
      expect(usp.connection.names()).toStrictEqual(['us--shop--toys']);
      expect(usp.connection.full().map(e => e.locationKey)).toStrictEqual(['apiportal-provider:us']);
      expect(usp.connection.entity('us--shop--toys').metadata.annotations?.['apiportal.dev/cluster']).toBe('us');
      // One bridge down: its provider applies nothing; the other's mutations go on.
      await us.close();
      bridge.products = bridge.products.filter(p => p.namespace === 'shop');
      expect((await usp.provider.refresh()).status).toBe('failed');
      expect((await eu.provider.refresh()).status).toBe('applied');
      expect(usp.connection.mutations).toHaveLength(1);
      expect(eu.connection.names()).toStrictEqual(['eu--shop--toys']);
    } finally {
      await us.close();
    }
  });
});

describe('ApiportalEntityProvider.fromConfig', () => {
  function recordingScheduler() {
    const scheduled: { schedule: unknown; task?: SchedulerServiceTaskInvocationDefinition }[] = [];
    return {
      scheduled,
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
  }

  it('one provider per bridge, each on its own schedule and task; cluster names in entity names only with several', async () => {
    const scheduler = recordingScheduler();
    const logger = captureLogger();
    const config = new ConfigReader({
      catalog: {
        providers: {
          apiportal: {
            eu: { baseUrl: 'http://127.0.0.1:9', token: 't', schedule: { frequency: { seconds: 5 }, timeout: { seconds: 20 } } },
            us: { baseUrl: 'http://127.0.0.1:9', token: 't', schedule: { frequency: { minutes: 1 }, timeout: { seconds: 50 } } },
          },
        },
      },
    });
    const providers = ApiportalEntityProvider.fromConfig(config, { logger, scheduler: scheduler as never, timeoutMs: 500 });
    expect(providers.map(p => p.getProviderName())).toStrictEqual(['apiportal-provider:eu', 'apiportal-provider:us']);
    const connections = providers.map(() => new RecordingConnection());
    await Promise.all(providers.map((p, i) => p.connect(connections[i])));
    expect(scheduled(scheduler)).toStrictEqual([
      ['apiportal-provider:eu:refresh', { seconds: 5 }, { seconds: 20 }],
      ['apiportal-provider:us:refresh', { minutes: 1 }, { seconds: 50 }],
    ]);
    // Nothing listens on port 9: the task resolves, warns, and applies nothing.
    await scheduler.scheduled[0].task!.fn(new AbortController().signal as never);
    expect(connections[0].mutations).toHaveLength(0);
    expect(logger.lines.filter(l => l.level === 'warn')).toHaveLength(1);
    await Promise.all(providers.map(p => p.close()));

    function scheduled(s: ReturnType<typeof recordingScheduler>) {
      return s.scheduled.map(e => {
        const schedule = e.schedule as { frequency: unknown; timeout: unknown };
        return [e.task?.id, schedule.frequency, schedule.timeout];
      });
    }
  });

  it('entity names carry the cluster exactly when more than one provider is configured', async () => {
    const bridge = await startFakeBridge({ products: [makeProduct({ namespace: 'shop', name: 'toys' })] });
    try {
      const names = async (apiportal: object) => {
        const [p] = ApiportalEntityProvider.fromConfig(new ConfigReader({ catalog: { providers: { apiportal } } } as never), {
          logger: captureLogger(),
          scheduler: recordingScheduler() as never,
        });
        const conn = new RecordingConnection();
        await p.connect(conn);
        await p.refresh();
        await p.close();
        return conn.names();
      };
      const one = { baseUrl: bridge.url, token: bridge.token, cluster: 'eu' };
      expect(await names(one)).toStrictEqual(['shop--toys']);
      expect(await names({ eu: { baseUrl: bridge.url, token: bridge.token } })).toStrictEqual(['shop--toys']);
      expect(
        await names({ eu: { baseUrl: bridge.url, token: bridge.token }, us: { baseUrl: bridge.url, token: bridge.token } }),
      ).toStrictEqual(['eu--shop--toys']);
    } finally {
      await bridge.close();
    }
  });

  it('a token file or CA file that cannot be read fails at start-up, naming the provider and the file', () => {
    const fromConfig = (apiportal: object) =>
      ApiportalEntityProvider.fromConfig(new ConfigReader({ catalog: { providers: { apiportal } } } as never), {
        logger: captureLogger(),
        scheduler: recordingScheduler() as never,
      });
    expect(() => fromConfig({ eu: { baseUrl: 'https://b', tokenFile: '/nonexistent/token' } })).toThrow(
      'apiportal provider "eu": cannot read tokenFile /nonexistent/token: no such file',
    );
    expect(() => fromConfig({ eu: { baseUrl: 'https://b', token: 't', caFile: '/nonexistent/ca.crt' } })).toThrow(
      'apiportal provider "eu": cannot read caFile /nonexistent/ca.crt: no such file',
    );
  });

  it('warns when a remote bridge is read over plain http', () => {
    const logger = captureLogger();
    ApiportalEntityProvider.fromConfig(
      new ConfigReader({ catalog: { providers: { apiportal: { baseUrl: 'http://bridge.example.com:8080', token: 't' } } } }),
      { logger, scheduler: recordingScheduler() as never },
    );
    expect(logger.lines.map(l => [l.level, l.message])).toStrictEqual([
      [
        'warn',
        'the bridge at http://bridge.example.com:8080 is read over plain http, so its token crosses the network unencrypted; use https (the bridge\'s default) with caFile outside local development',
      ],
    ]);
  });

  it('empty when not configured', () => {
    expect(ApiportalEntityProvider.fromConfig(new ConfigReader({}), { logger: captureLogger() })).toStrictEqual([]);
  });
});
