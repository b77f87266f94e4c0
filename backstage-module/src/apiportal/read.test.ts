import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import {
  ApiportalReadError,
  normalizeBaseUrl,
  parseProductList,
  productUrl,
  readOpenApi,
  readProducts,
} from './read';

describe('readProducts and readOpenApi against a fake bridge', () => {
  let bridge: FakeBridge;
  before(async () => {
    bridge = await startFakeBridge({
      products: [
        makeProduct({ namespace: 'shop', name: 'toys', openapi: { available: true, lastSyncTime: 't1' } }),
        makeProduct({ namespace: 'shop', name: 'draft', publishStatus: 'Draft' }),
      ],
      openapi: { 'shop/toys': 'openapi: 3.0.3\n' },
    });
  });
  after(async () => bridge.close());

  const client = () => ({ baseUrl: `${bridge.url}/`, token: bridge.token });

  test('reads the list with the bearer token and returns its ETag', async () => {
    bridge.mode = 'ok';
    const result = await readProducts(client());
    assert.equal(result.notModified, false);
    assert.ok(!result.notModified);
    assert.deepEqual(
      result.products.map(p => `${p.namespace}/${p.name}`),
      ['shop/toys'],
    );
    assert.match(result.etag ?? '', /^"[0-9a-f]+"$/);
    const last = bridge.requests[bridge.requests.length - 1];
    assert.equal(last.path, '/api/v1/products');
    assert.equal(last.authorization, `Bearer ${bridge.token}`);
    assert.equal(last.ifNoneMatch, undefined);
  });

  test('sends If-None-Match and reports 304 as not modified', async () => {
    bridge.mode = 'ok';
    const first = await readProducts(client());
    assert.ok(!first.notModified);
    const second = await readProducts(client(), { etag: first.etag });
    assert.deepEqual(second, { notModified: true, etag: first.etag });
    assert.equal(bridge.requests[bridge.requests.length - 1].ifNoneMatch, first.etag);
    const stale = await readProducts(client(), { etag: '"something-else"' });
    assert.equal(stale.notModified, false);
  });

  test('a rejected token is an error that names the status, the code and the fix', async () => {
    bridge.mode = 'ok';
    await assert.rejects(readProducts({ baseUrl: bridge.url, token: 'wrong' }), (e: unknown) => {
      assert.ok(e instanceof ApiportalReadError);
      assert.equal(e.status, 401);
      assert.equal(e.code, 'Unauthorized');
      assert.match(e.message, /answered 401 Unauthorized: a valid bearer token is required/);
      assert.match(e.message, /catalog\.providers\.apiportal\.token/);
      return true;
    });
  });

  test('server errors, garbage and wrong shapes are errors', async () => {
    bridge.mode = 'error';
    await assert.rejects(readProducts(client()), /answered 500 InternalError: the fake bridge was told to fail/);
    bridge.mode = 'garbage';
    await assert.rejects(readProducts(client()), /body that is not JSON: "<html>this is not json<\/html>"/);
    bridge.mode = 'not-a-list';
    await assert.rejects(readProducts(client()), /not a product list: "items" is not an array/);
    bridge.mode = 'ok';
  });

  test('a slow bridge times out', async () => {
    bridge.mode = 'slow';
    bridge.slowMs = 2_000;
    const started = Date.now();
    await assert.rejects(readProducts({ ...client(), timeoutMs: 200 }), /no complete answer within 200 ms \(timed out\)/);
    assert.ok(Date.now() - started < 1_500, 'gave up at the timeout');
    bridge.mode = 'ok';
  });

  test('reads an OpenAPI document, and undefined when there is none', async () => {
    bridge.mode = 'ok';
    assert.equal(await readOpenApi(client(), 'shop', 'toys'), 'openapi: 3.0.3\n');
    assert.equal(bridge.requests[bridge.requests.length - 1].path, '/api/v1/products/shop/toys/openapi');
    assert.equal(await readOpenApi(client(), 'shop', 'draft'), undefined);
    bridge.mode = 'error';
    await assert.rejects(readOpenApi(client(), 'shop', 'toys'), ApiportalReadError);
    bridge.mode = 'ok';
  });
});

test('a bridge that is down is an error that says so', async () => {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise(resolve => server.close(resolve));
  await assert.rejects(
    readProducts({ baseUrl: `http://127.0.0.1:${port}`, token: 't' }),
    (e: unknown) => {
      assert.ok(e instanceof ApiportalReadError);
      assert.match(e.message, new RegExp(`GET http://127.0.0.1:${port}/api/v1/products failed: .*ECONNREFUSED`));
      return true;
    },
  );
});

test('a non-JSON error body is quoted', async () => {
  const server = createServer((_req, res) => {
    res.writeHead(502, { 'Content-Type': 'text/html' });
    res.end('<h1>Bad gateway</h1>');
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await assert.rejects(readProducts({ baseUrl: `http://127.0.0.1:${port}`, token: 't' }), /answered 502: "<h1>Bad gateway<\/h1>"/);
  } finally {
    server.close();
  }
});

describe('parseProductList', () => {
  test('fills in missing optional fields', () => {
    const [p] = parseProductList({ items: [{ namespace: 'a', name: 'b', publishStatus: 'Published' }] });
    assert.deepEqual(p, {
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

  test('keeps the contract example as it is', () => {
    const example = makeProduct({
      namespace: 'shop',
      name: 'toys',
      plans: [{ tier: 'bronze', description: null, limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } }],
      oidc: { issuerUrl: 'https://idp/x', tokenEndpoint: 'https://idp/token' },
      openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
    });
    assert.deepEqual(parseProductList(JSON.parse(JSON.stringify({ items: [example] }))), [example]);
  });

  test('drops values of the wrong type', () => {
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
    assert.deepEqual(p.tags, ['ok']);
    assert.deepEqual(p.labels, { ok: 'yes' });
    assert.deepEqual(p.plans, [{ tier: 'gold', description: null, limits: { monthly: 5 } }]);
    assert.deepEqual(p.openapi, { available: false, lastSyncTime: null });
  });

  test('rejects the whole list when an item has no namespace or name', () => {
    assert.throws(() => parseProductList({ items: [{ namespace: 'a', name: 'b' }, { name: 'c' }] }), /items\[1\]/);
    assert.throws(() => parseProductList([]), /expected a JSON object/);
    assert.throws(() => parseProductList({ items: null }), /"items" is not an array/);
  });
});

test('URLs', () => {
  assert.equal(normalizeBaseUrl('http://b:8080///'), 'http://b:8080');
  assert.equal(productUrl('http://b:8080/', 'shop', 'toys'), 'http://b:8080/api/v1/products/shop/toys');
});
