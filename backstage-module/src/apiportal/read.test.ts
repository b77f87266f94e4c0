import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeTestCertificates, type TestCertificates } from '../testing/certs';
import { makeKey, makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import { BridgeTls, StaticToken } from './credentials';
import {
  ApiportalReadError,
  BridgeClient,
  normalizeBaseUrl,
  parseRetryAfter,
  productUrl,
  type ConditionalRead,
} from './read';

/** The value of a full read, after an expect() checked that it is one. */
function value<T>(result: ConditionalRead<T>): T {
  if (result.notModified) throw new Error('expected a full read, got 304');
  return result.value;
}

const client = (bridge: FakeBridge, extra: Partial<ConstructorParameters<typeof BridgeClient>[0]> = {}) =>
  new BridgeClient({ baseUrl: `${bridge.url}/`, token: new StaticToken(bridge.token, 'the token setting'), ...extra });

describe('BridgeClient against a fake bridge', () => {
  let bridge: FakeBridge;
  beforeAll(async () => {
    bridge = await startFakeBridge({
      products: [
        makeProduct({ namespace: 'shop', name: 'toys', openapi: { available: true, lastSyncTime: 't1' } }),
        makeProduct({ namespace: 'shop', name: 'draft', publishStatus: 'Draft' }),
      ],
      keys: [
        makeKey('shop/toys', 'gold', 'alice'),
        makeKey('shop/toys', 'gold', 'bob', { phase: 'Pending' }),
      ],
      openapi: { 'shop/toys': 'openapi: 3.0.3\n' },
    });
  });
  afterAll(async () => bridge.close());
  afterEach(() => {
    bridge.mode = 'ok';
    bridge.keysForbidden = false;
  });

  const last = () => bridge.requests[bridge.requests.length - 1];

  it('reads the list and its scope with the bearer token, gzip-compressed, and returns its ETag', async () => {
    const result = await client(bridge).readProducts();
    expect(value(result).items.map(p => `${p.namespace}/${p.name}`)).toStrictEqual(['shop/toys']);
    expect(value(result).scope).toStrictEqual({ allNamespaces: true, namespaces: [] });
    expect(result.etag ?? '').toMatch(/^"[0-9a-f]{32}-gzip"$/);
    expect(last()).toMatchObject({
      path: '/api/v1/products',
      authorization: `Bearer ${bridge.token}`,
      acceptEncoding: 'gzip',
      ifNoneMatch: undefined,
      status: 200,
    });
  });

  it('sends back exactly the ETag it received, -gzip suffix included, and reports 304 as not modified', async () => {
    const first = await client(bridge).readProducts();
    const second = await client(bridge).readProducts({ etag: first.etag });
    expect(second).toStrictEqual({ notModified: true, etag: first.etag });
    expect(last()).toMatchObject({ ifNoneMatch: first.etag, status: 304 });
    const stale = await client(bridge).readProducts({ etag: '"something-else"' });
    expect(stale.notModified).toBe(false);
  });

  it('reads what changed since a version, and reports a version the bridge cannot answer from as expired', async () => {
    const list = value(await client(bridge).readProducts());
    const saved = bridge.products;
    try {
      bridge.products = [...saved, makeProduct({ namespace: 'shop', name: 'new' })];
      const read = await client(bridge).readProductChanges(list.version);
      if (read.expired) throw new Error(`expired: ${read.reason}`);
      expect(read.value.since).toBe(list.version);
      expect(read.value.items.map(p => p.name)).toStrictEqual(['new']);
      expect(read.value.removed).toStrictEqual([]);
      expect(last()).toMatchObject({ path: `/api/v1/products?since=${list.version}`, acceptEncoding: 'gzip', status: 200 });
      bridge.forgetVersions();
      expect(await client(bridge).readProductChanges(read.value.version)).toStrictEqual({
        expired: true,
        reason: `Expired: this bridge cannot tell what changed since version ${read.value.version}`,
      });
      bridge.mode = 'not-a-list';
      await expect(client(bridge).readProductChanges('v')).rejects.toThrow(
        "does not match the bridge's view schema ($defs/ProductChanges)",
      );
    } finally {
      bridge.products = saved;
    }
  });

  it('reads approved keys only, with their own ETag', async () => {
    const result = await client(bridge).readApprovedKeys();
    expect(value(result).items.map(k => k.requestedBy.userId)).toStrictEqual(['alice']);
    expect(last()).toMatchObject({ path: '/api/v1/keys?phase=Approved', status: 200 });
    const again = await client(bridge).readApprovedKeys({ etag: result.etag });
    expect(again.notModified).toBe(true);
  });

  it('a bridge that ignores ?phase cannot inflate the approved keys', async () => {
    const everyKey = JSON.stringify({ items: bridge.keys, scope: { allNamespaces: true, namespaces: [] } });
    const fetch = async () => new Response(everyKey, { status: 200, headers: { 'content-type': 'application/json' } });
    const result = await client(bridge, { fetch: fetch as never }).readApprovedKeys();
    expect(value(result).items.map(k => k.requestedBy.userId)).toStrictEqual(['alice']);
  });

  it('a rejected token is an error that names the status, the code and where the token came from, never the token', async () => {
    const read = new BridgeClient({
      baseUrl: bridge.url,
      token: new StaticToken('wrong-secret-value', 'the apiportal provider "eu" token setting'),
    }).readProducts();
    await expect(read).rejects.toBeInstanceOf(ApiportalReadError);
    await expect(read).rejects.toMatchObject({ status: 401, code: 'Unauthorized' });
    const message = await read.catch((e: Error) => e.message);
    expect(message).toBe(
      `apiportal bridge GET ${bridge.url}/api/v1/products answered 401 Unauthorized: a valid bearer token is required (the bridge did not accept the token from the apiportal provider "eu" token setting: it must be a token the API server accepts for the audience apiportal-bridge)`,
    );
    expect(message).not.toContain('wrong-secret-value');
  });

  it('403 for keys names the ClusterRole that is missing', async () => {
    bridge.keysForbidden = true;
    const read = client(bridge).readApprovedKeys();
    await expect(read).rejects.toMatchObject({ status: 403, code: 'Forbidden' });
    await expect(read).rejects.toThrow(/needs the apiportal-key-reader ClusterRole, bound cluster-wide/);
  });

  it('429 and 503 carry Retry-After', async () => {
    bridge.retryAfterSeconds = 7;
    bridge.mode = 'rate-limited';
    const limited = client(bridge).readProducts();
    await expect(limited).rejects.toMatchObject({ status: 429, retryAfterMs: 7000 });
    await expect(limited).rejects.toThrow(/answered 429 TooManyRequests: .*\(rate limited; it asked to retry after 7 s\)/);
    bridge.mode = 'unavailable';
    const unavailable = client(bridge).readProducts();
    await expect(unavailable).rejects.toMatchObject({ status: 503, retryAfterMs: 7000 });
    await expect(unavailable).rejects.toThrow(/answered 503 Unavailable: the watch caches have not synced yet/);
  });

  it('server errors, garbage and bodies that do not match the schema are errors', async () => {
    bridge.mode = 'error';
    await expect(client(bridge).readProducts()).rejects.toThrow(
      /answered 500 InternalError: the fake bridge was told to fail/,
    );
    bridge.mode = 'garbage';
    await expect(client(bridge).readProducts()).rejects.toThrow(
      /body that is not JSON: "<html>this is not json<\/html>"/,
    );
    bridge.mode = 'not-a-list';
    await expect(client(bridge).readProducts()).rejects.toThrow(
      /with a body that does not match the bridge's view schema \(\$defs\/ProductList\): \/ must have required property 'kind'; \/ must have required property 'items'/,
    );
  });

  it('a product of the wrong shape rejects the whole list, naming the field', async () => {
    const { namespace: _, ...withoutNamespace } = makeProduct({ namespace: 'a', name: 'c' });
    void _;
    const body = JSON.stringify({
      items: [makeProduct({ namespace: 'a', name: 'b' }), withoutNamespace],
      scope: { allNamespaces: true, namespaces: [] },
    });
    const fetch = async () => new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    await expect(client(bridge, { fetch: fetch as never }).readProducts()).rejects.toThrow(
      /\/items\/1 must have required property 'namespace'/,
    );
  });

  it('a slow bridge times out', async () => {
    // Far longer than the test may take: only the client's own timeout can end this request.
    bridge.mode = 'slow';
    bridge.slowMs = 10 * 60_000;
    await expect(client(bridge, { timeoutMs: 200 }).readProducts()).rejects.toThrow(
      /no complete answer within 200 ms \(timed out\)/,
    );
  });

  it('reads an OpenAPI document, and undefined when there is none', async () => {
    expect(await client(bridge).readOpenApi('shop', 'toys')).toBe('openapi: 3.0.3\n');
    expect(last().path).toBe('/api/v1/products/shop/toys/openapi');
    expect(await client(bridge).readOpenApi('shop', 'draft')).toBeUndefined();
    bridge.mode = 'error';
    await expect(client(bridge).readOpenApi('shop', 'toys')).rejects.toThrow(ApiportalReadError);
  });
});

describe('BridgeClient over https with a private CA', () => {
  let certs: TestCertificates;
  let other: TestCertificates;
  let bridge: FakeBridge;
  beforeAll(async () => {
    certs = makeTestCertificates('bridge-ca');
    other = makeTestCertificates('some-other-ca');
    bridge = await startFakeBridge({ products: [makeProduct({ namespace: 'a', name: 'b' })], tls: certs });
  });
  afterAll(async () => {
    await bridge.close();
    certs.cleanup();
    other.cleanup();
  });

  it('trusts the bridge through caFile', async () => {
    const tls = new BridgeTls(certs.caFile);
    try {
      const result = await client(bridge, { tls }).readProducts();
      expect(value(result).items.map(p => p.name)).toStrictEqual(['b']);
      expect(bridge.url).toMatch(/^https:\/\/localhost:\d+$/);
    } finally {
      await tls.close();
    }
  });

  it('without caFile the certificate is not trusted, and the error says to set caFile', async () => {
    await expect(client(bridge).readProducts()).rejects.toThrow(
      /failed: fetch failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate\): set caFile to the CA that signed the bridge's certificate/,
    );
  });

  it('another CA is not trusted either', async () => {
    const tls = new BridgeTls(other.caFile);
    try {
      await expect(client(bridge, { tls }).readProducts()).rejects.toThrow(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    } finally {
      await tls.close();
    }
  });
});

it('a bridge that is down is an error that says so', async () => {
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise(resolve => server.close(resolve));
  const read = new BridgeClient({ baseUrl: `http://127.0.0.1:${port}`, token: new StaticToken('t', 'x') }).readProducts();
  await expect(read).rejects.toBeInstanceOf(ApiportalReadError);
  await expect(read).rejects.toThrow(
    new RegExp(`GET http://127.0.0.1:${port}/api/v1/products failed: fetch failed \\(ECONNREFUSED`),
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
    await expect(
      new BridgeClient({ baseUrl: `http://127.0.0.1:${port}`, token: new StaticToken('t', 'x') }).readProducts(),
    ).rejects.toThrow(/answered 502: "<h1>Bad gateway<\/h1>"/);
  } finally {
    server.close();
  }
});

describe('the answers as the module reads them', () => {
  it('the contract example as it is, with its scope; fields the schema does not know are ignored, not refused', async () => {
    const example = makeProduct({
      namespace: 'shop',
      name: 'toys',
      plans: [{ tier: 'bronze', description: null, limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } }],
      oidc: { issuerUrl: 'https://idp/x', tokenEndpoint: 'https://idp/token' },
      openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
    });
    const scope = { allNamespaces: false, namespaces: ['shop'] };
    const body = JSON.stringify({ kind: 'ProductList', items: [{ ...example, somethingNew: { x: 1 } }], scope, version: 'v1', alsoNew: true });
    const fetch = async () => new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    const read = await new BridgeClient({ baseUrl: 'http://bridge', token: new StaticToken('t', 'x'), fetch: fetch as never }).readProducts();
    if (read.notModified) throw new Error('304 without If-None-Match');
    expect(read.value.scope).toStrictEqual(scope);
    expect(read.value.version).toBe('v1');
    expect(read.value.items).toMatchObject([example]);
  });
});

it('Retry-After as seconds or an HTTP date', () => {
  expect(parseRetryAfter('30')).toBe(30_000);
  expect(parseRetryAfter('Thu, 26 Nov 2026 12:00:10 GMT', Date.parse('2026-11-26T12:00:00Z'))).toBe(10_000);
  expect(parseRetryAfter('soon')).toBeUndefined();
  expect(parseRetryAfter(null)).toBeUndefined();
});

it('URLs', () => {
  expect(normalizeBaseUrl('http://b:8080///')).toBe('http://b:8080');
  expect(productUrl('http://b:8080/', 'shop', 'toys')).toBe('http://b:8080/api/v1/products/shop/toys');
});
