import {
  apiEntityV1alpha1Validator,
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  makeValidator,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
  type Entity,
} from '@backstage/catalog-model';
import { makeProduct } from '../testing/fakeBridge';
import {
  authSchemeOf,
  entityLinks,
  entityName,
  entityTags,
  lifecycleOf,
  locationKey,
  ownerOf,
  productToEntity,
  sanitizeTag,
  stubDefinition,
  systemOf,
  type TransformOptions,
} from './transform';

const options: TransformOptions = {
  baseUrl: 'http://bridge.apiportal-system.svc:8080',
  defaultOwner: 'unknown',
  lifecycle: 'production',
};
const validators = makeValidator();

/** What the catalog itself checks before it accepts an entity. */
async function assertCatalogAccepts(entity: Entity) {
  const policy = EntityPolicies.allOf([
    new SchemaValidEntityPolicy(),
    new DefaultNamespaceEntityPolicy(),
    new NoForeignRootFieldsEntityPolicy(),
    new FieldFormatEntityPolicy(),
  ]);
  // The entity policies accept the entity...
  expect(await policy.enforce(entity)).toBeTruthy();
  // ...and it is a valid API entity.
  expect(await apiEntityV1alpha1Validator.check(entity)).toBe(true);
}

const toys = makeProduct({
  namespace: 'shop',
  name: 'toys',
  uid: '0d6c-uid',
  displayName: 'Toys API',
  description: 'Browse and order toys.',
  version: 'v1',
  tags: ['retail', 'Toys & Games', 'retail'],
  labels: { lifecycle: 'experimental', system: 'storefront' },
  annotations: { 'backstage.io/owner': 'group:default/toys-team' },
  approvalMode: 'manual',
  route: { name: 'toys', hostnames: ['toys.example.com', '*.toys.example.com'] },
  documentation: {
    openAPISpecURL: 'https://toys.example.com/openapi.json',
    swaggerUI: 'https://toys.example.com/docs',
    docsURL: 'https://docs.example.com/toys',
    gitRepository: 'https://git.example.com/shop/toys',
    techdocsRef: 'url:https://git.example.com/shop/toys/tree/main',
  },
  contact: { team: 'toys-team', email: 'toys@example.com', slack: null, url: 'not a url' },
  plans: [
    { tier: 'gold', description: null, limits: { daily: 10000, monthly: 200000 } },
    { tier: 'bronze', description: null, limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } },
  ],
  authScheme: {
    authentication: {
      'api-key': {
        apiKey: { selector: { matchLabels: { app: 'toys' } } },
        credentials: { authorizationHeader: { prefix: 'APIKEY' } },
      },
    },
  },
  openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
});

describe('productToEntity', () => {
  it('maps a full product to an API entity the catalog accepts', async () => {
    const entity = productToEntity(toys, options, '{"openapi":"3.0.3"}');
    expect(entity.apiVersion).toBe('backstage.io/v1alpha1');
    expect(entity.kind).toBe('API');
    expect(entity.metadata.name).toBe('shop--toys');
    expect(entity.metadata.namespace).toBe('default');
    expect(entity.metadata.title).toBe('Toys API');
    expect(entity.metadata.description).toBe('Browse and order toys.');
    expect(entity.metadata.tags).toStrictEqual(['retail', 'toys-games', 'apiportal']);
    expect(entity.spec).toStrictEqual({
      type: 'openapi',
      lifecycle: 'experimental',
      owner: 'group:default/toys-team',
      definition: '{"openapi":"3.0.3"}',
      system: 'storefront',
    });
    const location = 'apiportal:http://bridge.apiportal-system.svc:8080/api/v1/products/shop/toys';
    expect(entity.metadata.annotations).toStrictEqual({
      'backstage.io/managed-by-location': location,
      'backstage.io/managed-by-origin-location': location,
      'apiportal.dev/product-namespace': 'shop',
      'apiportal.dev/product-name': 'toys',
      'apiportal.dev/product-uid': '0d6c-uid',
      'apiportal.dev/approval-mode': 'manual',
      'apiportal.dev/plans': JSON.stringify([
        { tier: 'gold', limits: { daily: 10000, monthly: 200000 } },
        { tier: 'bronze', limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } },
      ]),
      'apiportal.dev/auth-scheme': 'api-key',
      'backstage.io/source-location': 'url:https://git.example.com/shop/toys',
      'backstage.io/techdocs-ref': 'url:https://git.example.com/shop/toys/tree/main',
    });
    await assertCatalogAccepts(entity);
  });

  it('a bare product still maps to a valid entity (stub definition, default owner and lifecycle)', async () => {
    const bare = makeProduct({
      namespace: 'n',
      name: 'bare',
      displayName: null,
      description: null,
      version: null,
      tags: [],
      route: null,
      documentation: null,
      contact: null,
      openapi: null,
    });
    const entity = productToEntity(bare, { ...options, defaultOwner: 'group:default/platform', lifecycle: 'beta' });
    expect(entity.metadata.title).toBeUndefined();
    expect(entity.metadata.links).toBeUndefined();
    expect(entity.metadata.tags).toStrictEqual(['apiportal']);
    expect(entity.spec.owner).toBe('group:default/platform');
    expect(entity.spec.lifecycle).toBe('beta');
    expect(entity.spec.system).toBeUndefined();
    expect(entity.metadata.annotations?.['apiportal.dev/auth-scheme']).toBe('none');
    expect(entity.metadata.annotations?.['apiportal.dev/plans']).toBe('[]');
    expect(entity.metadata.annotations?.['backstage.io/source-location']).toBeUndefined();
    const stub = JSON.parse(entity.spec.definition);
    expect(stub).toStrictEqual({ openapi: '3.0.3', info: { title: 'bare', version: '0.0.0' }, paths: {} });
    await assertCatalogAccepts(entity);
  });

  it('location key names the bridge', () => {
    expect(locationKey('http://bridge:8080/')).toBe('apiportal:http://bridge:8080');
  });
});

describe('owner', () => {
  it('backstage.io/owner annotation, then contact team, then the configured default, then unknown', () => {
    const team = { team: 'toys-team', email: null, slack: null, url: null };
    const annotated = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: { 'backstage.io/owner': 'user:default/alice' },
      contact: team,
    });
    expect(ownerOf(annotated, 'platform')).toBe('user:default/alice');
    expect(ownerOf(makeProduct({ namespace: 'a', name: 'b', contact: team }), 'platform')).toBe('toys-team');
    expect(ownerOf(makeProduct({ namespace: 'a', name: 'b' }), 'platform')).toBe('platform');
    expect(ownerOf(makeProduct({ namespace: 'a', name: 'b', contact: null }), '')).toBe('unknown');
    // Blank values do not count.
    const blank = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: { 'backstage.io/owner': '  ' },
      contact: { team: ' ', email: null, slack: null, url: null },
    });
    expect(ownerOf(blank, 'platform')).toBe('platform');
  });
});

describe('entityName', () => {
  it('namespace--name when it fits', () => {
    expect(entityName('shop', 'toys')).toBe('shop--toys');
    expect(entityName('shop', 'toys.v1')).toBe('shop--toys.v1');
  });

  it('equal names in two namespaces never collide', () => {
    expect(entityName('shop', 'toys')).not.toBe(entityName('games', 'toys'));
  });

  it('a namespace with its own -- cannot make two products share a name', () => {
    const a = entityName('a--b', 'c');
    const b = entityName('a', 'b--c');
    expect(b).toBe('a--b--c');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^a--b--c_[0-9a-f]{10}$/);
  });

  it('long names are truncated to 63 characters with a hash that keeps them apart', () => {
    const ns = 'team-with-a-rather-long-namespace-name';
    const one = entityName(ns, 'an-equally-long-product-name-number-one');
    const two = entityName(ns, 'an-equally-long-product-name-number-two');
    expect(one).toHaveLength(63);
    expect(two).toHaveLength(63);
    expect(one).not.toBe(two);
    expect(one.startsWith('team-with-a-rather-long-namespace-name--an-equal')).toBe(true);
    expect(validators.isValidEntityName(one)).toBe(true);
    // Stable across runs.
    expect(one).toBe(entityName(ns, 'an-equally-long-product-name-number-one'));
    // 63 fits exactly.
    const exact = entityName('n'.repeat(30), 'p'.repeat(31));
    expect(exact).toBe(`${'n'.repeat(30)}--${'p'.repeat(31)}`);
    expect(entityName('n'.repeat(30), 'p'.repeat(32))).toMatch(/_[0-9a-f]{10}$/);
  });

  it('characters Backstage does not allow are replaced', () => {
    const invalid = [
      ['Shop', 'Toys API'],
      ['-x-', '..y..'],
      ['ü', 'ö'],
      ['', ''],
      ['a', 'b_c'],
    ]
      .map(([ns, name]) => ({ product: [ns, name], name: entityName(ns, name) }))
      .filter(mapped => !validators.isValidEntityName(mapped.name));
    expect(invalid).toStrictEqual([]);
    expect(entityName('Shop', 'Toys API')).toMatch(/^shop--toys-api_[0-9a-f]{10}$/);
    expect(entityName('ü', 'ö')).toMatch(/^apiportal_[0-9a-f]{10}$/);
  });

  it('many products: every name valid and distinct', () => {
    const seen = new Map<string, string>();
    const namespaces = ['a', 'a-', 'a--b', 'a-b', 'b', 'x'.repeat(63), 'shop', 'team-a--b'];
    const names = ['b', 'b--c', '-b', 'c', 'a.b', 'a--b--c', 'y'.repeat(253), 'y'.repeat(252) + 'z', 'toys'];
    const invalid: string[] = [];
    const collisions: string[] = [];
    for (const ns of namespaces) {
      for (const name of names) {
        const n = entityName(ns, name);
        if (!validators.isValidEntityName(n)) invalid.push(`${ns}/${name} -> ${n}`);
        const key = n.toLowerCase(); // the catalog compares names case-insensitively
        if (seen.get(key) !== undefined) collisions.push(`${ns}/${name} and ${seen.get(key)} both map to ${n}`);
        seen.set(key, `${ns}/${name}`);
      }
    }
    expect(invalid).toStrictEqual([]);
    expect(collisions).toStrictEqual([]);
  });
});

describe('tags', () => {
  it('sanitised to Backstage tag rules, deduplicated, plus apiportal', () => {
    expect(sanitizeTag('Retail')).toBe('retail');
    expect(sanitizeTag('Toys & Games')).toBe('toys-games');
    expect(sanitizeTag('c++')).toBe('c++');
    expect(sanitizeTag('foo_bar.baz')).toBe('foo-bar-baz');
    expect(sanitizeTag('--edge--')).toBe('edge');
    expect(sanitizeTag('ns:tag')).toBe('ns:tag');
    expect(sanitizeTag('!!!')).toBeUndefined();
    const long = sanitizeTag(`${'a'.repeat(62)}-bbb`)!;
    expect(long).toBe('a'.repeat(62));
    expect(entityTags(['B', 'b', '', 'apiportal', 'x y'])).toStrictEqual(['b', 'apiportal', 'x-y']);
    const tags = entityTags(['Hello World', 'a'.repeat(100), 'ÄÖÜ-ok', '#1', '+1', 'a:b']);
    expect(tags.filter(tag => !validators.isValidTag(tag))).toStrictEqual([]);
  });
});

describe('links', () => {
  it('documentation, OpenAPI, Swagger UI, repository and contact when they are http(s) URLs', () => {
    const links = entityLinks(toys);
    expect(links.map(l => [l.title, l.url])).toStrictEqual([
      ['Documentation', 'https://docs.example.com/toys'],
      ['OpenAPI specification', 'https://toys.example.com/openapi.json'],
      ['Swagger UI', 'https://toys.example.com/docs'],
      ['Source repository', 'https://git.example.com/shop/toys'],
    ]);
    const other = makeProduct({
      namespace: 'a',
      name: 'b',
      documentation: {
        openAPISpecURL: 'ftp://x/y',
        swaggerUI: null,
        docsURL: 'relative/path',
        gitRepository: 'url:https://git.example.com/a/b',
        techdocsRef: null,
      },
      contact: { team: null, email: null, slack: null, url: 'https://example.com/contact' },
    });
    expect(entityLinks(other).map(l => l.url)).toStrictEqual([
      'https://git.example.com/a/b',
      'https://example.com/contact',
    ]);
    expect(productToEntity(other, options).metadata.annotations?.['backstage.io/source-location']).toBe(
      'url:https://git.example.com/a/b',
    );
  });
});

describe('lifecycle and system', () => {
  it('lifecycle label, then configured lifecycle, then production', () => {
    expect(lifecycleOf(makeProduct({ namespace: 'a', name: 'b', labels: { lifecycle: 'beta' } }), 'x')).toBe('beta');
    expect(lifecycleOf(makeProduct({ namespace: 'a', name: 'b' }), 'experimental')).toBe('experimental');
    expect(lifecycleOf(makeProduct({ namespace: 'a', name: 'b' }), '')).toBe('production');
  });

  it('system annotation, then system label, else none', () => {
    const both = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: { 'backstage.io/system': 'payments' },
      labels: { system: 'other' },
    });
    expect(systemOf(both)).toBe('payments');
    expect(systemOf(makeProduct({ namespace: 'a', name: 'b', labels: { system: 'other' } }))).toBe('other');
    expect(systemOf(makeProduct({ namespace: 'a', name: 'b' }))).toBeUndefined();
  });
});

describe('auth scheme', () => {
  it('api-key, oidc (JWT rule or discovered OIDC) or none', () => {
    expect(authSchemeOf(toys)).toBe('api-key');
    const jwt = makeProduct({
      namespace: 'a',
      name: 'b',
      authScheme: { authentication: { sso: { jwt: { issuerUrl: 'https://idp.example.com/realms/x' } } } },
      oidc: { issuerUrl: 'https://idp.example.com/realms/x', tokenEndpoint: 'https://idp.example.com/token' },
    });
    expect(authSchemeOf(jwt)).toBe('oidc');
    const entity = productToEntity(jwt, options);
    expect(entity.metadata.annotations?.['apiportal.dev/oidc-token-endpoint']).toBe('https://idp.example.com/token');
    expect(authSchemeOf(makeProduct({ namespace: 'a', name: 'b', authScheme: { authentication: {} } }))).toBe('none');
    expect(authSchemeOf(makeProduct({ namespace: 'a', name: 'b', authScheme: null }))).toBe('none');
  });
});

describe('definition', () => {
  it('the fetched document when there is one, else a valid OpenAPI 3.0 stub', () => {
    expect(productToEntity(toys, options, 'openapi: 3.1.0\n').spec.definition).toBe('openapi: 3.1.0\n');
    const stub = JSON.parse(stubDefinition(toys));
    expect(stub).toStrictEqual({
      openapi: '3.0.3',
      info: { title: 'Toys API', version: 'v1', description: 'Browse and order toys.' },
      // The wildcard hostname is no server URL.
      servers: [{ url: 'https://toys.example.com' }],
      paths: {},
    });
    expect(productToEntity(toys, options).spec.definition).toBe(stubDefinition(toys));
  });
});
