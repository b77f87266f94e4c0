import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import {
  ApiportalReadError,
  normalizeBaseUrl,
  parseProductList,
  productUrl,
  readOpenApi,
  readProducts,
  type ReadProductsResult,
} from './read';

/** The result of a full read, after an expect() checked that it is one. */
const fullRead = (result: ReadProductsResult) => result as Extract<ReadProductsResult, { notModified: false }>;

describe('readProducts and readOpenApi against a fake bridge', () => {
  let bridge: FakeBridge;
  beforeAll(async () => {
    bridge = await startFakeBridge({
      products: [
        makeProduct({ namespace: 'shop', name: 'toys', openapi: { available: true, lastSyncTime: 't1' } }),
        makeProduct({ namespace: 'shop', name: 'draft', publishStatus: 'Draft' }),
      ],
      openapi: { 'shop/toys': 'openapi: 3.0.3\n' },
    });
  });
  afterAll(async () => bridge.close());

  const client = () => ({ baseUrl: `${bridge.url}/`, token: bridge.token });

  it('reads the list with the bearer token and returns its ETag', async () => {
    bridge.mode = 'ok';
    const result = await readProducts(client());
    expect(result.notModified).toBe(false);
    expect(fullRead(result).products.map(p => `${p.namespace}/${p.name}`)).toStrictEqual(['shop/toys']);
    expect(result.etag ?? '').toMatch(/^"[0-9a-f]+"$/);
    const last = bridge.requests[bridge.requests.length - 1];
    expect(last.path).toBe('/api/v1/products');
    expect(last.authorization).toBe(`Bearer ${bridge.token}`);
    expect(last.ifNoneMatch).toBeUndefined();
  });

  it('sends If-None-Match and reports 304 as not modified', async () => {
    bridge.mode = 'ok';
    const first = await readProducts(client());
    expect(first.notModified).toBe(false);
    const second = await readProducts(client(), { etag: first.etag });
    expect(second).toStrictEqual({ notModified: true, etag: first.etag });
    expect(bridge.requests[bridge.requests.length - 1].ifNoneMatch).toBe(first.etag);
    const stale = await readProducts(client(), { etag: '"something-else"' });
    expect(stale.notModified).toBe(false);
  });

  it('a rejected token is an error that names the status, the code and the fix', async () => {
    bridge.mode = 'ok';
    const read = readProducts({ baseUrl: bridge.url, token: 'wrong' });
    await expect(read).rejects.toBeInstanceOf(ApiportalReadError);
    await expect(read).rejects.toMatchObject({ status: 401, code: 'Unauthorized' });
    await expect(read).rejects.toThrow(/answered 401 Unauthorized: a valid bearer token is required/);
    await expect(read).rejects.toThrow(/catalog\.providers\.apiportal\.token/);
  });

  it('server errors, garbage and wrong shapes are errors', async () => {
    bridge.mode = 'error';
    await expect(readProducts(client())).rejects.toThrow(
      /answered 500 InternalError: the fake bridge was told to fail/,
    );
    bridge.mode = 'garbage';
    await expect(readProducts(client())).rejects.toThrow(/body that is not JSON: "<html>this is not json<\/html>"/);
    bridge.mode = 'not-a-list';
    await expect(readProducts(client())).rejects.toThrow(/not a product list: "items" is not an array/);
    bridge.mode = 'ok';
  });

  it('a slow bridge times out', async () => {
    bridge.mode = 'slow';
    bridge.slowMs = 2_000;
    const started = Date.now();
    await expect(readProducts({ ...client(), timeoutMs: 200 })).rejects.toThrow(
      /no complete answer within 200 ms \(timed out\)/,
    );
    // Gave up at the timeout.
    expect(Date.now() - started).toBeLessThan(1_500);
    bridge.mode = 'ok';
  });

  it('reads an OpenAPI document, and undefined when there is none', async () => {
    bridge.mode = 'ok';
    expect(await readOpenApi(client(), 'shop', 'toys')).toBe('openapi: 3.0.3\n');
    expect(bridge.requests[bridge.requests.length - 1].path).toBe('/api/v1/products/shop/toys/openapi');
    expect(await readOpenApi(client(), 'shop', 'draft')).toBeUndefined();
    bridge.mode = 'error';
    await expect(readOpenApi(client(), 'shop', 'toys')).rejects.toThrow(ApiportalReadError);
    bridge.mode = 'ok';
  });
});

it('a bridge that is down is an error that says so', async () => {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise(resolve => server.close(resolve));
  const read = readProducts({ baseUrl: `http://127.0.0.1:${port}`, token: 't' });
  await expect(read).rejects.toBeInstanceOf(ApiportalReadError);
  await expect(read).rejects.toThrow(
    new RegExp(`GET http://127.0.0.1:${port}/api/v1/products failed: .*ECONNREFUSED`),
  );
});

it('a non-JSON error body is quoted', async () => {
  const server = createServer((_req, res) => {
    res.writeHead(502, { 'Content-Type': 'text/html' });
    res.end('<h1>Bad gateway</h1>');
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await expect(readProducts({ baseUrl: `http://127.0.0.1:${port}`, token: 't' })).rejects.toThrow(
      /answered 502: "<h1>Bad gateway<\/h1>"/,
    );
  } finally {
    server.close();
  }
});

describe('parseProductList', () => {
  it('fills in missing optional fields', () => {
    const [p] = parseProductList({ items: [{ namespace: 'a', name: 'b', publishStatus: 'Published' }] });
    expect(p).toStrictEqual({
      namespace: 'a',
      name: 'b',
      uid: 'a/b',
      generation: null,
      createdAt: null,
      displayName: null,
      description: null,
      version: null,
      tags: [],
      labels: {},
      annotations: {},
      approvalMode: 'manual',
      publishStatus: 'Published',
      route: null,
      documentation: null,
      contact: null,
      plans: [],
      authScheme: null,
      oidc: null,
      openapi: null,
      ready: null,
      conditions: [],
    });
  });

  it('keeps the contract example as it is', () => {
    const example = makeProduct({
      namespace: 'shop',
      name: 'toys',
      plans: [{ tier: 'bronze', description: null, limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } }],
      oidc: { issuerUrl: 'https://idp/x', tokenEndpoint: 'https://idp/token' },
      openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
    });
    expect(parseProductList(JSON.parse(JSON.stringify({ items: [example] })))).toStrictEqual([example]);
  });

  it('drops values of the wrong type', () => {
    const [p] = parseProductList({
      items: [
        {
          namespace: 'a',
          name: 'b',
          tags: ['ok', 3, null],
          labels: { ok: 'yes', no: 1 },
          plans: [{ tier: 'gold', limits: { daily: '10', monthly: 5 } }, { description: 'no tier' }],
          openapi: { available: 'yes' },
        },
      ],
    });
    expect(p.tags).toStrictEqual(['ok']);
    expect(p.labels).toStrictEqual({ ok: 'yes' });
    expect(p.plans).toStrictEqual([{ tier: 'gold', description: null, limits: { monthly: 5 } }]);
    expect(p.openapi).toStrictEqual({ available: false, lastSyncTime: null });
  });

  it('rejects the whole list when an item has no namespace or name', () => {
    expect(() => parseProductList({ items: [{ namespace: 'a', name: 'b' }, { name: 'c' }] })).toThrow(/items\[1\]/);
    expect(() => parseProductList([])).toThrow(/expected a JSON object/);
    expect(() => parseProductList({ items: null })).toThrow(/"items" is not an array/);
  });
});

it('URLs', () => {
  expect(normalizeBaseUrl('http://b:8080///')).toBe('http://b:8080');
  expect(productUrl('http://b:8080/', 'shop', 'toys')).toBe('http://b:8080/api/v1/products/shop/toys');
});
