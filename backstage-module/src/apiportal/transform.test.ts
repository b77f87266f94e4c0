import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
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
  const checked = await policy.enforce(entity);
  assert.ok(checked, 'the entity policies accept the entity');
  assert.equal(await apiEntityV1alpha1Validator.check(entity), true, 'a valid API entity');
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
  test('maps a full product to an API entity the catalog accepts', async () => {
    const entity = productToEntity(toys, options, '{"openapi":"3.0.3"}');
    assert.equal(entity.apiVersion, 'backstage.io/v1alpha1');
    assert.equal(entity.kind, 'API');
    assert.equal(entity.metadata.name, 'shop--toys');
    assert.equal(entity.metadata.namespace, 'default');
    assert.equal(entity.metadata.title, 'Toys API');
    assert.equal(entity.metadata.description, 'Browse and order toys.');
    assert.deepEqual(entity.metadata.tags, ['retail', 'toys-games', 'apiportal']);
    assert.deepEqual(entity.spec, {
      type: 'openapi',
      lifecycle: 'experimental',
      owner: 'group:default/toys-team',
      definition: '{"openapi":"3.0.3"}',
      system: 'storefront',
    });
    const location = 'apiportal:http://bridge.apiportal-system.svc:8080/api/v1/products/shop/toys';
    assert.deepEqual(entity.metadata.annotations, {
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

  test('a bare product still maps to a valid entity (stub definition, default owner and lifecycle)', async () => {
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
    assert.equal(entity.metadata.title, undefined);
    assert.equal(entity.metadata.links, undefined);
    assert.deepEqual(entity.metadata.tags, ['apiportal']);
    assert.equal(entity.spec.owner, 'group:default/platform');
    assert.equal(entity.spec.lifecycle, 'beta');
    assert.equal(entity.spec.system, undefined);
    assert.equal(entity.metadata.annotations?.['apiportal.dev/auth-scheme'], 'none');
    assert.equal(entity.metadata.annotations?.['apiportal.dev/plans'], '[]');
    assert.equal(entity.metadata.annotations?.['backstage.io/source-location'], undefined);
    const stub = JSON.parse(entity.spec.definition);
    assert.deepEqual(stub, { openapi: '3.0.3', info: { title: 'bare', version: '0.0.0' }, paths: {} });
    await assertCatalogAccepts(entity);
  });

  test('location key names the bridge', () => {
    assert.equal(locationKey('http://bridge:8080/'), 'apiportal:http://bridge:8080');
  });
});

describe('owner', () => {
  test('backstage.io/owner annotation, then contact team, then the configured default, then unknown', () => {
    const team = { team: 'toys-team', email: null, slack: null, url: null };
    const annotated = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: { 'backstage.io/owner': 'user:default/alice' },
      contact: team,
    });
    assert.equal(ownerOf(annotated, 'platform'), 'user:default/alice');
    assert.equal(ownerOf(makeProduct({ namespace: 'a', name: 'b', contact: team }), 'platform'), 'toys-team');
    assert.equal(ownerOf(makeProduct({ namespace: 'a', name: 'b' }), 'platform'), 'platform');
    assert.equal(ownerOf(makeProduct({ namespace: 'a', name: 'b', contact: null }), ''), 'unknown');
    // Blank values do not count.
    const blank = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: { 'backstage.io/owner': '  ' },
      contact: { team: ' ', email: null, slack: null, url: null },
    });
    assert.equal(ownerOf(blank, 'platform'), 'platform');
  });
});

describe('entityName', () => {
  test('namespace--name when it fits', () => {
    assert.equal(entityName('shop', 'toys'), 'shop--toys');
    assert.equal(entityName('shop', 'toys.v1'), 'shop--toys.v1');
  });

  test('equal names in two namespaces never collide', () => {
    assert.notEqual(entityName('shop', 'toys'), entityName('games', 'toys'));
  });

  test('a namespace with its own -- cannot make two products share a name', () => {
    const a = entityName('a--b', 'c');
    const b = entityName('a', 'b--c');
    assert.equal(b, 'a--b--c');
    assert.notEqual(a, b);
    assert.match(a, /^a--b--c_[0-9a-f]{10}$/);
  });

  test('long names are truncated to 63 characters with a hash that keeps them apart', () => {
    const ns = 'team-with-a-rather-long-namespace-name';
    const one = entityName(ns, 'an-equally-long-product-name-number-one');
    const two = entityName(ns, 'an-equally-long-product-name-number-two');
    assert.equal(one.length, 63);
    assert.equal(two.length, 63);
    assert.notEqual(one, two);
    assert.ok(one.startsWith('team-with-a-rather-long-namespace-name--an-equal'));
    assert.ok(validators.isValidEntityName(one));
    // Stable across runs.
    assert.equal(one, entityName(ns, 'an-equally-long-product-name-number-one'));
    // 63 fits exactly.
    const exact = entityName('n'.repeat(30), 'p'.repeat(31));
    assert.equal(exact, `${'n'.repeat(30)}--${'p'.repeat(31)}`);
    assert.match(entityName('n'.repeat(30), 'p'.repeat(32)), /_[0-9a-f]{10}$/);
  });

  test('characters Backstage does not allow are replaced', () => {
    for (const [ns, name] of [
      ['Shop', 'Toys API'],
      ['-x-', '..y..'],
      ['ü', 'ö'],
      ['', ''],
      ['a', 'b_c'],
    ]) {
      const n = entityName(ns, name);
      assert.ok(validators.isValidEntityName(n), `${JSON.stringify([ns, name])} -> ${n}`);
    }
    assert.match(entityName('Shop', 'Toys API'), /^shop--toys-api_[0-9a-f]{10}$/);
    assert.match(entityName('ü', 'ö'), /^apiportal_[0-9a-f]{10}$/);
  });

  test('many products: every name valid and distinct', () => {
    const seen = new Map<string, string>();
    const namespaces = ['a', 'a-', 'a--b', 'a-b', 'b', 'x'.repeat(63), 'shop', 'team-a--b'];
    const names = ['b', 'b--c', '-b', 'c', 'a.b', 'a--b--c', 'y'.repeat(253), 'y'.repeat(252) + 'z', 'toys'];
    for (const ns of namespaces) {
      for (const name of names) {
        const n = entityName(ns, name);
        assert.ok(validators.isValidEntityName(n), `${ns}/${name} -> ${n}`);
        const key = n.toLowerCase(); // the catalog compares names case-insensitively
        assert.equal(seen.get(key), undefined, `${ns}/${name} and ${seen.get(key)} both map to ${n}`);
        seen.set(key, `${ns}/${name}`);
      }
    }
  });
});

describe('tags', () => {
  test('sanitised to Backstage tag rules, deduplicated, plus apiportal', () => {
    assert.equal(sanitizeTag('Retail'), 'retail');
    assert.equal(sanitizeTag('Toys & Games'), 'toys-games');
    assert.equal(sanitizeTag('c++'), 'c++');
    assert.equal(sanitizeTag('foo_bar.baz'), 'foo-bar-baz');
    assert.equal(sanitizeTag('--edge--'), 'edge');
    assert.equal(sanitizeTag('ns:tag'), 'ns:tag');
    assert.equal(sanitizeTag('!!!'), undefined);
    const long = sanitizeTag(`${'a'.repeat(62)}-bbb`)!;
    assert.equal(long, 'a'.repeat(62));
    assert.deepEqual(entityTags(['B', 'b', '', 'apiportal', 'x y']), ['b', 'apiportal', 'x-y']);
    for (const tag of entityTags(['Hello World', 'a'.repeat(100), 'ÄÖÜ-ok', '#1', '+1', 'a:b'])) {
      assert.ok(validators.isValidTag(tag), tag);
    }
  });
});

describe('links', () => {
  test('documentation, OpenAPI, Swagger UI, repository and contact when they are http(s) URLs', () => {
    const links = entityLinks(toys);
    assert.deepEqual(
      links.map(l => [l.title, l.url]),
      [
        ['Documentation', 'https://docs.example.com/toys'],
        ['OpenAPI specification', 'https://toys.example.com/openapi.json'],
        ['Swagger UI', 'https://toys.example.com/docs'],
        ['Source repository', 'https://git.example.com/shop/toys'],
      ],
    );
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
    assert.deepEqual(
      entityLinks(other).map(l => l.url),
      ['https://git.example.com/a/b', 'https://example.com/contact'],
    );
    assert.equal(
      productToEntity(other, options).metadata.annotations?.['backstage.io/source-location'],
      'url:https://git.example.com/a/b',
    );
  });
});

describe('lifecycle and system', () => {
  test('lifecycle label, then configured lifecycle, then production', () => {
    assert.equal(lifecycleOf(makeProduct({ namespace: 'a', name: 'b', labels: { lifecycle: 'beta' } }), 'x'), 'beta');
    assert.equal(lifecycleOf(makeProduct({ namespace: 'a', name: 'b' }), 'experimental'), 'experimental');
    assert.equal(lifecycleOf(makeProduct({ namespace: 'a', name: 'b' }), ''), 'production');
  });

  test('system annotation, then system label, else none', () => {
    const both = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: { 'backstage.io/system': 'payments' },
      labels: { system: 'other' },
    });
    assert.equal(systemOf(both), 'payments');
    assert.equal(systemOf(makeProduct({ namespace: 'a', name: 'b', labels: { system: 'other' } })), 'other');
    assert.equal(systemOf(makeProduct({ namespace: 'a', name: 'b' })), undefined);
  });
});

describe('auth scheme', () => {
  test('api-key, oidc (JWT rule or discovered OIDC) or none', () => {
    assert.equal(authSchemeOf(toys), 'api-key');
    const jwt = makeProduct({
      namespace: 'a',
      name: 'b',
      authScheme: { authentication: { sso: { jwt: { issuerUrl: 'https://idp.example.com/realms/x' } } } },
      oidc: { issuerUrl: 'https://idp.example.com/realms/x', tokenEndpoint: 'https://idp.example.com/token' },
    });
    assert.equal(authSchemeOf(jwt), 'oidc');
    const entity = productToEntity(jwt, options);
    assert.equal(entity.metadata.annotations?.['apiportal.dev/oidc-token-endpoint'], 'https://idp.example.com/token');
    assert.equal(authSchemeOf(makeProduct({ namespace: 'a', name: 'b', authScheme: { authentication: {} } })), 'none');
    assert.equal(authSchemeOf(makeProduct({ namespace: 'a', name: 'b', authScheme: null })), 'none');
  });
});

describe('definition', () => {
  test('the fetched document when there is one, else a valid OpenAPI 3.0 stub', () => {
    assert.equal(productToEntity(toys, options, 'openapi: 3.1.0\n').spec.definition, 'openapi: 3.1.0\n');
    const stub = JSON.parse(stubDefinition(toys));
    assert.deepEqual(stub, {
      openapi: '3.0.3',
      info: { title: 'Toys API', version: 'v1', description: 'Browse and order toys.' },
      // The wildcard hostname is no server URL.
      servers: [{ url: 'https://toys.example.com' }],
      paths: {},
    });
    assert.equal(productToEntity(toys, options).spec.definition, stubDefinition(toys));
  });
});
