/*
 * A stand-in for the apiportal bridge's HTTP view (bridge/API.md), for tests: Bearer token check, strong ETag on
 * the list with If-None-Match -> 304, the OpenAPI endpoint, the contract's error bodies, and switches to make it
 * misbehave (slow, garbage, server errors). Listens on 127.0.0.1 on a free port.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Product } from '../apiportal/types';

export type FakeBridgeMode =
  /** Serve the contract. */
  | 'ok'
  /** 200 with a body that is not JSON. */
  | 'garbage'
  /** 200 with JSON that is not a product list. */
  | 'not-a-list'
  /** 500 with the contract's error body. */
  | 'error'
  /** Wait `slowMs` before answering. */
  | 'slow';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  ifNoneMatch?: string;
}

export interface FakeBridge {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly token: string;
  /** The products served (Published and Draft alike; the list shows Published ones unless `?all=true`). */
  products: Product[];
  /** OpenAPI documents by `namespace/name`. */
  openapi: Map<string, string>;
  mode: FakeBridgeMode;
  slowMs: number;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeBridge(
  options: { token?: string; products?: Product[]; openapi?: Record<string, string> } = {},
): Promise<FakeBridge> {
  const requests: RecordedRequest[] = [];
  const state = {
    token: options.token ?? 'test-token',
    products: options.products ?? [],
    openapi: new Map(Object.entries(options.openapi ?? {})),
    mode: 'ok' as FakeBridgeMode,
    slowMs: 0,
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      authorization: req.headers.authorization,
      ifNoneMatch: header(req, 'if-none-match'),
    });
    const answer = () => handle(req, res, url);
    if (state.mode === 'slow') {
      const timer = setTimeout(answer, state.slowMs);
      res.on('close', () => clearTimeout(timer));
    } else {
      answer();
    }
  });

  function handle(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      return send(res, 200, 'text/plain', 'ok');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return error(res, 405, 'MethodNotAllowed', `${req.method} is not allowed`);
    }
    if (req.headers.authorization !== `Bearer ${state.token}`) {
      return error(res, 401, 'Unauthorized', 'a valid bearer token is required');
    }
    if (state.mode === 'error') {
      return error(res, 500, 'InternalError', 'the fake bridge was told to fail');
    }
    if (state.mode === 'garbage') {
      return send(res, 200, 'application/json', '<html>this is not json</html>');
    }
    if (state.mode === 'not-a-list') {
      return send(res, 200, 'application/json', JSON.stringify({ products: 'nope' }));
    }

    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 3 && parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'products') {
      const ns = url.searchParams.get('namespace');
      const all = url.searchParams.get('all') === 'true';
      const items = state.products
        .filter(p => (all || p.publishStatus === 'Published') && (!ns || p.namespace === ns))
        .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
      return sendWithEtag(req, res, 'application/json', JSON.stringify({ items }));
    }
    if (parts.length >= 5 && parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'products') {
      const [, , , ns, name, sub] = parts;
      const product = state.products.find(p => p.namespace === ns && p.name === name);
      if (!product || parts.length > 6 || (sub !== undefined && sub !== 'openapi')) {
        return error(res, 404, 'NotFound', `no product ${ns}/${name}`);
      }
      if (sub === 'openapi') {
        const doc = state.openapi.get(`${ns}/${name}`);
        if (doc === undefined) {
          return error(res, 404, 'NotFound', `no OpenAPI document for ${ns}/${name}`);
        }
        return sendWithEtag(req, res, 'text/plain; charset=utf-8', doc);
      }
      return sendWithEtag(req, res, 'application/json', JSON.stringify(product));
    }
    return error(res, 404, 'NotFound', `no route ${url.pathname}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const bridge: FakeBridge = {
    url: `http://127.0.0.1:${port}`,
    get token() {
      return state.token;
    },
    get products() {
      return state.products;
    },
    set products(v) {
      state.products = v;
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
    requests,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return bridge;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function sendWithEtag(req: IncomingMessage, res: ServerResponse, type: string, body: string) {
  const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
  const ifNoneMatch = header(req, 'if-none-match');
  if (ifNoneMatch && ifNoneMatch.split(',').some(t => t.trim() === etag || t.trim() === '*')) {
    res.writeHead(304, { ETag: etag });
    return res.end();
  }
  res.setHeader('ETag', etag);
  return send(res, 200, type, body);
}

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function error(res: ServerResponse, status: number, code: string, message: string) {
  send(res, status, 'application/json', JSON.stringify({ error: { code, message } }));
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
    conditions: [{ type: 'Ready', status: 'True', reason: 'HTTPRouteAccepted', message: 'route accepted' }],
    ...overrides,
  };
}
