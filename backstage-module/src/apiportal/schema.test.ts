import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeKey, makeProduct, startFakeBridge } from '../testing/fakeBridge';
import { defaultViewSchema, VIEW_SCHEMA_PATH, ViewSchema } from './schema';

/** The bridge's schema in this checkout, generated from its Rust view types. */
const BRIDGE_SCHEMA = resolve(__dirname, '..', '..', '..', 'bridge', 'api', 'view.schema.json');

/**
 * The schema with `additionalProperties: false` on every object that lists its properties: what the module's own
 * idea of the contract (the fake bridge's products and keys) must satisfy, so that a field renamed or removed in
 * the bridge's Rust types fails here instead of silently reading as null.
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, closed(s)])) : closed(v);
  }
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

describe('the view schema', () => {
  it('the package has a copy of the schema', () => {
    expect(existsSync(VIEW_SCHEMA_PATH)).toBe(true);
    expect(defaultViewSchema().path).toBe(VIEW_SCHEMA_PATH);
    expect(defaultViewSchema().digest).toMatch(/^[0-9a-f]{12}$/);
  });

  it('the copy is the bridge schema of this checkout, byte for byte', () => {
    expect(readFileSync(VIEW_SCHEMA_PATH, 'utf8')).toBe(readFileSync(BRIDGE_SCHEMA, 'utf8'));
  });

  it("the fake bridge's answers, the module's model of the contract, are exactly the contract: no field the schema lacks, none it requires missing", async () => {
    const strict = new ViewSchema(closed(JSON.parse(readFileSync(VIEW_SCHEMA_PATH, 'utf8'))), 'closed');
    const product = makeProduct({
      namespace: 'shop',
      name: 'toys',
      labels: { lifecycle: 'production' },
      annotations: { 'backstage.io/owner': 'group:default/toys-team' },
      documentation: {
        openAPISpecURL: 'https://toys.example.com/openapi.json',
        swaggerUI: 'https://toys.example.com/docs',
        docsURL: 'https://docs.example.com/toys',
        gitRepository: 'https://git.example.com/shop/toys',
        techdocsRef: 'url:https://git.example.com/shop/toys/tree/main',
      },
      contact: { team: 'toys-team', email: 'toys@example.com', slack: '#toys', url: 'https://example.com/toys' },
      plans: [{ tier: 'gold', description: 'For partners', limits: { daily: 10000, custom: [{ limit: 5, window: '10s' }] } }],
      authScheme: {
        authentication: {
          'api-key': { apiKey: { selector: { matchLabels: { app: 'toys' } } }, credentials: { authorizationHeader: { prefix: 'APIKEY' } } },
          sso: { jwt: { issuerUrl: 'https://idp.example.com/realms/x' } },
        },
      },
      oidc: { issuerUrl: 'https://idp.example.com/realms/x', tokenEndpoint: 'https://idp.example.com/token' },
      openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
    });
    const bridge = await startFakeBridge({
      products: [product, makeProduct({ namespace: 'shop', name: 'bare', route: { name: 'bare', hostnames: [] } })],
      keys: [makeKey('shop/toys', 'gold', 'alice'), makeKey('shop/toys', 'gold', 'bob', { phase: 'Pending' })],
    });
    try {
      const get = async (path: string) =>
        (await (await fetch(`${bridge.url}${path}`, { headers: { Authorization: `Bearer ${bridge.token}` } })).json()) as {
          items?: unknown[];
        };
      bridge.scope = { allNamespaces: false, namespaces: ['shop'] };
      const [products, keys, error] = await Promise.all(
        ['/api/v1/products', '/api/v1/keys', '/api/v1/products/shop/none'].map(get),
      );
      expect(products.items).toHaveLength(2);
      expect(keys.items).toHaveLength(2);
      expect(() => strict.check('ProductList', products)).not.toThrow();
      expect(() => strict.check('KeyList', keys)).not.toThrow();
      expect(() => strict.check('Error', error)).not.toThrow();
      // What changed since that version: one product changed, one removed.
      bridge.products = [{ ...product, description: 'changed' }];
      const version = (products as { version?: string }).version ?? '';
      const changes = (await get(`/api/v1/products?since=${version}`)) as { items?: unknown[]; removed?: unknown[] };
      expect([changes.items?.length, changes.removed?.length]).toStrictEqual([1, 1]);
      expect(() => strict.check('ProductChanges', changes)).not.toThrow();
      const expired = await get('/api/v1/products?since=unknown');
      expect(() => strict.check('Error', expired)).not.toThrow();
    } finally {
      await bridge.close();
    }
  });

  it('names what does not match, with JSON paths', () => {
    const schema = defaultViewSchema();
    const scope = { allNamespaces: true, namespaces: [] };
    expect(() =>
      schema.check('ProductList', {
        kind: 'ProductList',
        items: [{ ...makeProduct({ namespace: 'a', name: 'b' }), name: 3 }],
        scope,
        version: 'v',
      }),
    ).toThrow(
      "does not match the bridge's view schema ($defs/ProductList): /items/0/name must be string",
    );
    expect(() => schema.check('KeyList', {})).toThrow(
      "does not match the bridge's view schema ($defs/KeyList): / must have required property 'items'",
    );
    expect(schema.matches('Error', { error: { code: 'Forbidden', message: 'no' } })).toBe(true);
    expect(schema.matches('Error', { message: 'no' })).toBe(false);
  });

  it('tolerates fields it does not know (a newer bridge)', () => {
    const item = { ...makeProduct({ namespace: 'a', name: 'b' }), somethingNew: [1, 2] };
    const scope = { allNamespaces: true, namespaces: [], alsoNew: 1 };
    expect(defaultViewSchema().matches('ProductList', { kind: 'ProductList', items: [item], scope, version: 'v', alsoNew: true })).toBe(true);
    const changes = {
      kind: 'ProductChanges',
      since: 'v',
      version: 'w',
      items: [item],
      removed: [{ namespace: 'a', name: 'c', uid: null, alsoNew: 2 }],
      scope,
    };
    expect(defaultViewSchema().matches('ProductChanges', changes)).toBe(true);
    // Neither answer passes for the other.
    expect(defaultViewSchema().matches('ProductList', changes)).toBe(false);
    expect(defaultViewSchema().matches('ProductChanges', { ...changes, kind: 'ProductList' })).toBe(false);
  });

  it('compiles a schema as schemars writes it: $schema, $id, nullable references, integer formats, extensions', () => {
    const schema = new ViewSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: 'https://apiportal.dev/bridge/view.schema.json',
      title: 'View',
      $defs: {
        ProductList: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/$defs/Product' } } }, required: ['items'] },
        ProductChanges: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/$defs/Product' } } }, required: ['items'] },
        Product: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            generation: { type: ['integer', 'null'], format: 'int64' },
            openapi: { anyOf: [{ $ref: '#/$defs/OpenApi' }, { type: 'null' }] },
          },
          required: ['name', 'generation', 'openapi'],
          'x-kubernetes-preserve-unknown-fields': true,
        },
        OpenApi: { type: 'object', properties: { lastSyncTime: { type: 'string', format: 'date-time' } } },
        KeyList: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/$defs/Key' } } }, required: ['items'] },
        Key: { type: 'object', properties: { limit: { type: 'integer', format: 'uint32', minimum: 0 } } },
        Error: { type: 'object', properties: { error: { type: 'object' } }, required: ['error'] },
      },
    });
    expect(schema.matches('ProductList', { items: [{ name: 'a', generation: 1, openapi: null }] })).toBe(true);
    expect(() => schema.check('ProductList', { items: [{ name: 'a', generation: 1, openapi: { lastSyncTime: 5 } }] })).toThrow(
      "($defs/ProductList): /items/0/openapi/lastSyncTime must be string; /items/0/openapi must be null",
    );
    expect(schema.matches('KeyList', { items: [{ limit: -1 }] })).toBe(false);
  });

  describe('loading', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'apiportal-schema-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('a missing file says how the package gets one', () => {
      expect(() => ViewSchema.load(join(dir, 'view.schema.json'))).toThrow(
        `cannot read the apiportal bridge's view schema at ${join(dir, 'view.schema.json')} (ENOENT); a package built with \`npm run build\` or backstage-module/package.sh carries it (copied from bridge/api/view.schema.json)`,
      );
    });

    it('a file that is not JSON, or not the view schema, is refused', () => {
      const path = join(dir, 'view.schema.json');
      writeFileSync(path, '{');
      expect(() => ViewSchema.load(path)).toThrow(`the apiportal bridge's view schema at ${path} is not JSON`);
      writeFileSync(path, JSON.stringify({ $defs: { ProductList: {} } }));
      expect(() => ViewSchema.load(path)).toThrow(
        `the apiportal bridge's view schema at ${path} has no $defs ProductChanges, KeyList, Error; it is not the view schema this module expects`,
      );
    });
  });
});
