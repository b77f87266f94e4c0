/*
 * A stand-in for the apiportal bridge's HTTP view (bridge/API.md), for tests: Bearer token check, http or https
 * (with a certificate the test makes), gzip when asked, strong ETags (`-gzip` suffix on compressed bodies) with
 * If-None-Match -> 304, the product list with its scope and version, what changed since a version (a plain diff of
 * the products it served at that version and now; 410 for a version it does not keep), the key view, the OpenAPI
 * endpoint, the contract's error bodies, and switches to make it misbehave (slow, garbage, server errors, rate
 * limiting, forbidding keys, forgetting versions).
 * Listens on 127.0.0.1 on a free port.
 */
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Key, Product, ProductListScope } from '../apiportal/types';

export type FakeBridgeMode =
  /** Serve the contract. */
  | 'ok'
  /** 200 with a body that is not JSON. */
  | 'garbage'
  /** 200 with JSON that is not a product list. */
  | 'not-a-list'
  /** 500 with the contract's error body. */
  | 'error'
  /** 429 with Retry-After: `retryAfterSeconds`. */
  | 'rate-limited'
  /** 503 with Retry-After: `retryAfterSeconds`, as while the watch caches sync. */
  | 'unavailable'
  /** Wait `slowMs` before answering. */
  | 'slow';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  ifNoneMatch?: string;
  acceptEncoding?: string;
  /** The status the fake answered. */
  status?: number;
}

export interface FakeBridge {
  /** Base URL, e.g. `http://127.0.0.1:41234` or `https://localhost:41234`. */
  readonly url: string;
  /** The token the bridge accepts now; set it to "rotate" the token. */
  token: string;
  /** The products served (Published and Draft alike; the list shows Published ones unless `?all=true`). */
  products: Product[];
  /** The keys served by `GET /api/v1/keys` (filtered by `?phase=`). */
  keys: Key[];
  /** Answer 403 for the key view, as for a token without the apiportal-key-reader ClusterRole. */
  keysForbidden: boolean;
  /** The scope of the product list (which namespaces the token may list products in); default cluster-wide. */
  scope: ProductListScope;
  /** The scope of the key list (which namespaces the token may list keys in); default cluster-wide. */
  keyScope: ProductListScope;
  /** OpenAPI documents by `namespace/name`. */
  openapi: Map<string, string>;
  mode: FakeBridgeMode;
  slowMs: number;
  retryAfterSeconds: number;
  /** How many versions of its list it can answer changes since (the oldest are forgotten); default 16. */
  keepVersions: number;
  /** Forgets every version, as a restarted bridge or another replica: changes since any of them are 410. */
  forgetVersions(): void;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface FakeBridgeOptions {
  token?: string;
  products?: Product[];
  keys?: Key[];
  openapi?: Record<string, string>;
  /** Serve https with this certificate and key (PEM); the URL then uses `localhost`. */
  tls?: { cert: string; key: string };
}

export async function startFakeBridge(options: FakeBridgeOptions = {}): Promise<FakeBridge> {
  const requests: RecordedRequest[] = [];
  const state = {
    token: options.token ?? 'test-token',
    products: options.products ?? [],
    keys: options.keys ?? [],
    keysForbidden: false,
    scope: { allNamespaces: true, namespaces: [] } as ProductListScope,
    keyScope: { allNamespaces: true, namespaces: [] } as ProductListScope,
    openapi: new Map(Object.entries(options.openapi ?? {})),
    mode: 'ok' as FakeBridgeMode,
    slowMs: 0,
    retryAfterSeconds: 1,
    keepVersions: 16,
  };
  /** The products served at each version, with the filter of the list they were served in, oldest first. */
  const versions = new Map<string, { filter: string; products: Product[] }>();

  /** Which products a list shows: the query's `all` and `namespace`, and the token's scope. */
  function listFilter(url: URL) {
    const ns = url.searchParams.get('namespace');
    const all = url.searchParams.get('all') === 'true';
    const scope = state.scope;
    return {
      key: JSON.stringify({ ns, all, scope }),
      shows: (p: Product) =>
        (all || p.publishStatus === 'Published') &&
        (!ns || p.namespace === ns) &&
        (scope.allNamespaces || scope.namespaces.includes(p.namespace)),
    };
  }

  /** The version of the list the filter shows now, kept to answer changes since it. */
  function currentVersion(filter: { key: string }): string {
    const products = JSON.parse(JSON.stringify(state.products)) as Product[];
    const version = createHash('sha256').update(JSON.stringify({ products, filter: filter.key })).digest('hex').slice(0, 32);
    versions.delete(version);
    versions.set(version, { filter: filter.key, products });
    while (versions.size > Math.max(1, state.keepVersions)) versions.delete(versions.keys().next().value as string);
    return version;
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      authorization: req.headers.authorization,
      ifNoneMatch: header(req, 'if-none-match'),
      acceptEncoding: header(req, 'accept-encoding'),
    };
    requests.push(recorded);
    res.on('finish', () => {
      recorded.status = res.statusCode;
    });
    const answer = () => handle(req, res, url);
    if (state.mode === 'slow') {
      const timer = setTimeout(answer, state.slowMs);
      res.on('close', () => clearTimeout(timer));
    } else {
      answer();
    }
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
    : createHttpServer(listener);

  function handle(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      return send(req, res, 200, 'text/plain', 'ok');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return error(req, res, 405, 'MethodNotAllowed', `${req.method} is not allowed`);
    }
    if (state.mode === 'rate-limited') {
      res.setHeader('Retry-After', String(state.retryAfterSeconds));
      return error(req, res, 429, 'TooManyRequests', 'too many requests from unknown tokens');
    }
    if (req.headers.authorization !== `Bearer ${state.token}`) {
      return error(req, res, 401, 'Unauthorized', 'a valid bearer token is required');
    }
    if (state.mode === 'unavailable') {
      res.setHeader('Retry-After', String(state.retryAfterSeconds));
      return error(req, res, 503, 'Unavailable', 'the watch caches have not synced yet');
    }
    if (state.mode === 'error') {
      return error(req, res, 500, 'InternalError', 'the fake bridge was told to fail');
    }
    if (state.mode === 'garbage') {
      return send(req, res, 200, 'application/json', '<html>this is not json</html>');
    }
    if (state.mode === 'not-a-list') {
      return send(req, res, 200, 'application/json', JSON.stringify({ products: 'nope' }));
    }

    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 3 && parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'keys') {
      if (state.keysForbidden) {
        return error(req, res, 403, 'Forbidden', 'system:serviceaccount:backstage:backstage may not list apikeys');
      }
      const phase = url.searchParams.get('phase');
      const items = state.keys
        .filter(k => !phase || k.phase === phase)
        .filter(k => state.keyScope.allNamespaces || state.keyScope.namespaces.includes(k.namespace));
      return sendWithEtag(req, res, 'application/json', JSON.stringify({ items, scope: state.keyScope }));
    }
    if (parts.length === 3 && parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'products') {
      const filter = listFilter(url);
      const since = url.searchParams.get('since');
      if (since !== null) {
        const then = versions.get(since);
        if (!then || then.filter !== filter.key) {
          return error(req, res, 410, 'Expired', `this bridge cannot tell what changed since version ${since}`);
        }
        const before = new Map(then.products.filter(filter.shows).map(p => [`${p.namespace}/${p.name}`, p]));
        const now = sorted(state.products.filter(filter.shows));
        const items = now.filter(p => JSON.stringify(before.get(`${p.namespace}/${p.name}`)) !== JSON.stringify(p));
        const present = new Set(now.map(p => `${p.namespace}/${p.name}`));
        const removed = sorted([...before.values()].filter(p => !present.has(`${p.namespace}/${p.name}`))).map(p => ({
          namespace: p.namespace,
          name: p.name,
          uid: p.uid ?? null,
        }));
        const version = currentVersion(filter);
        const changes = { kind: 'ProductChanges', since, version, items, removed, scope: state.scope };
        return send(req, res, 200, 'application/json', JSON.stringify(changes));
      }
      const items = sorted(state.products.filter(filter.shows));
      const version = currentVersion(filter);
      return sendWithEtag(req, res, 'application/json', JSON.stringify({ kind: 'ProductList', items, scope: state.scope, version }));
    }
    if (parts.length >= 5 && parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'products') {
      const [, , , ns, name, sub] = parts;
      const product = state.products.find(p => p.namespace === ns && p.name === name);
      if (!product || parts.length > 6 || (sub !== undefined && sub !== 'openapi')) {
        return error(req, res, 404, 'NotFound', `no product ${ns}/${name}`);
      }
      if (sub === 'openapi') {
        const doc = state.openapi.get(`${ns}/${name}`);
        if (doc === undefined) {
          return error(req, res, 404, 'NotFound', `no OpenAPI document for ${ns}/${name}`);
        }
        return sendWithEtag(req, res, 'text/plain; charset=utf-8', doc);
      }
      return sendWithEtag(req, res, 'application/json', JSON.stringify(product));
    }
    return error(req, res, 404, 'NotFound', `no route ${url.pathname}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const bridge: FakeBridge = {
    url: options.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    get token() {
      return state.token;
    },
    set token(v) {
      state.token = v;
    },
    get products() {
      return state.products;
    },
    set products(v) {
      state.products = v;
    },
    get keys() {
      return state.keys;
    },
    set keys(v) {
      state.keys = v;
    },
    get keysForbidden() {
      return state.keysForbidden;
    },
    set keysForbidden(v) {
      state.keysForbidden = v;
    },
    get scope() {
      return state.scope;
    },
    set scope(v) {
      state.scope = v;
    },
    get keyScope() {
      return state.keyScope;
    },
    set keyScope(v) {
      state.keyScope = v;
    },
    get openapi() {
      return state.openapi;
    },
    set openapi(v) {
      state.openapi = v;
    },
    get mode() {
      return state.mode;
    },
    set mode(v) {
      state.mode = v;
    },
    get slowMs() {
      return state.slowMs;
    },
    set slowMs(v) {
      state.slowMs = v;
    },
    get retryAfterSeconds() {
      return state.retryAfterSeconds;
    },
    set retryAfterSeconds(v) {
      state.retryAfterSeconds = v;
    },
    get keepVersions() {
      return state.keepVersions;
    },
    set keepVersions(v) {
      state.keepVersions = v;
    },
    forgetVersions: () => versions.clear(),
    requests,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return bridge;
}

/** In the order of the bridge's lists: by namespace, then name. */
function sorted(products: Product[]): Product[] {
  return [...products].sort((a, b) =>
    a.namespace !== b.namespace ? (a.namespace < b.namespace ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function wantsGzip(req: IncomingMessage): boolean {
  return (header(req, 'accept-encoding') ?? '').split(',').some(e => e.trim().split(';')[0] === 'gzip');
}

/** A strong ETag of the body; a gzip-compressed answer's ETag carries `-gzip` inside the quotes, as the bridge's. */
function sendWithEtag(req: IncomingMessage, res: ServerResponse, type: string, body: string) {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 32);
  const gzip = wantsGzip(req);
  const etag = gzip ? `"${hash}-gzip"` : `"${hash}"`;
  const ifNoneMatch = header(req, 'if-none-match');
  if (ifNoneMatch && ifNoneMatch.split(',').some(t => t.trim() === etag || t.trim() === '*')) {
    res.writeHead(304, { ETag: etag, Vary: 'Accept-Encoding' });
    return res.end();
  }
  res.setHeader('ETag', etag);
  res.setHeader('Vary', 'Accept-Encoding');
  return send(req, res, 200, type, body);
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string) {
  if (wantsGzip(req) && body.length > 0) {
    const compressed = gzipSync(body);
    res.writeHead(status, { 'Content-Type': type, 'Content-Encoding': 'gzip', 'Content-Length': compressed.length });
    return res.end(compressed);
  }
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function error(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string) {
  send(req, res, status, 'application/json', JSON.stringify({ error: { code, message } }));
}

/** A product as the bridge serves it, every field present, with `overrides` applied. */
export function makeProduct(overrides: Partial<Product> & { namespace: string; name: string }): Product {
  const { namespace, name } = overrides;
  return {
    uid: createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8) + '-uid',
    generation: 1,
    createdAt: '2026-11-25T12:00:00Z',
    displayName: `${name} API`,
    description: `The ${name} API.`,
    version: 'v1',
    tags: ['retail'],
    labels: {},
    annotations: {},
    approvalMode: 'automatic',
    publishStatus: 'Published',
    route: { name, hostnames: [`${name}.example.com`] },
    documentation: {
      openAPISpecURL: null,
      swaggerUI: null,
      docsURL: null,
      gitRepository: null,
      techdocsRef: null,
    },
    contact: { team: null, email: null, slack: null, url: null },
    plans: [],
    authScheme: null,
    oidc: null,
    openapi: { available: false, lastSyncTime: null },
    ready: true,
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'HTTPRouteAccepted',
        message: 'route accepted',
        lastTransitionTime: '2026-11-25T12:00:01Z',
      },
    ],
    ...overrides,
  };
}

/**
 * An approved key (request) by `userId` for `product` on `planTier`, as the bridge serves it: with the fields the
 * module does not read too (use case, review, history, which follow the phase).
 */
export function makeKey(product: string, planTier: string, userId: string, overrides: Partial<Key> = {}): Key {
  const [namespace, name] = product.split('/');
  const phase = overrides.phase ?? 'Approved';
  const createdAt = overrides.createdAt ?? '2026-11-25T12:00:00Z';
  const history: Key['history'] = [{ action: 'Requested', by: userId, at: createdAt, reason: null }];
  if (phase !== 'Pending') {
    history.push({ action: phase, by: 'owner', at: '2026-11-25T12:01:00Z', reason: null });
  }
  return {
    namespace: `team-${userId}`,
    name: `${name}-${planTier}-${createHash('sha256').update(`${product}/${planTier}/${userId}/${JSON.stringify(overrides)}`).digest('hex').slice(0, 6)}`,
    product: { namespace, name },
    planTier,
    pendingPlanTier: null,
    application: null,
    requestedBy: { userId, email: `${userId}@example.com` },
    useCase: null,
    phase,
    reviewedBy: phase === 'Pending' ? null : 'owner',
    reviewedAt: phase === 'Pending' ? null : '2026-11-25T12:01:00Z',
    reason: null,
    createdAt,
    expiresAt: null,
    keyIssuedAt: phase === 'Approved' ? '2026-11-25T12:01:01Z' : null,
    previousKeyValidUntil: null,
    history,
    ...overrides,
  };
}
