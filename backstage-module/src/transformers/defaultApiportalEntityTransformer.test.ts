import {
  apiEntityV1alpha1Validator,
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
  type Entity,
} from '@backstage/catalog-model';
import { NO_USAGE } from '../apiportal/usage';
import { makeProduct } from '../testing/fakeBridge';
import {
  authSchemeOf,
  defaultApiportalEntityTransformer,
  entityLinks,
  entityTags,
  lifecycleOf,
  sanitizeTag,
  sourceLocationOf,
  stubDefinition,
  viewUrlOf,
} from './defaultApiportalEntityTransformer';
import { DEFAULT_OWNER_POLICY, DEFAULT_SYSTEM_POLICY } from './ownership';
import type { ApiportalTransformContext } from './types';

const context: ApiportalTransformContext = {
  providerId: 'default',
  cluster: 'default',
  clusterInName: false,
  baseUrl: 'https://apiportal-bridge.apiportal-system.svc',
  owner: DEFAULT_OWNER_POLICY,
  defaultOwner: 'unknown',
  system: DEFAULT_SYSTEM_POLICY,
  allowedHosts: [],
  lifecycle: 'production',
};

/** The platform's mapping of the `shop` namespace, as a provider's `owner` and `system` configure it. */
const shopMapped: ApiportalTransformContext = {
  ...context,
  owner: { from: ['namespace'], namespaces: { shop: 'group:default/toys-team' } },
  system: { from: ['namespace'], namespaces: { shop: 'storefront' } },
};

/** What the catalog itself checks before it accepts an entity. */
async function assertCatalogAccepts(entity: Entity) {
  const policy = EntityPolicies.allOf([
    new SchemaValidEntityPolicy(),
    new DefaultNamespaceEntityPolicy(),
    new NoForeignRootFieldsEntityPolicy(),
    new FieldFormatEntityPolicy(),
  ]);
  // enforce() resolves to the entity when every policy accepts it, and rejects otherwise.
  await expect(policy.enforce(entity)).resolves.toStrictEqual(entity);
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

describe('defaultApiportalEntityTransformer', () => {
  it('maps a full product, with its consumers, to an API entity the catalog accepts', async () => {
    const entity = defaultApiportalEntityTransformer(toys, {
      ...shopMapped,
      definition: '{"openapi":"3.0.3"}',
      usage: { consumers: 3, consumersByPlan: { bronze: 1, gold: 2 }, consumersByApplication: { 'team-a/web': 2 } },
    });
    const location = 'apiportal:https://apiportal-bridge.apiportal-system.svc/api/v1/products/shop/toys';
    expect(entity).toStrictEqual({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'API',
      metadata: {
        name: 'shop--toys',
        namespace: 'default',
        title: 'Toys API',
        description: 'Browse and order toys.',
        tags: ['retail', 'toys-games', 'apiportal'],
        links: [
          { url: 'https://docs.example.com/toys', title: 'Documentation', icon: 'docs', type: 'documentation' },
          { url: 'https://toys.example.com/openapi.json', title: 'OpenAPI specification', icon: 'code', type: 'openapi' },
          { url: 'https://toys.example.com/docs', title: 'Swagger UI', icon: 'web', type: 'swagger-ui' },
          { url: 'https://git.example.com/shop/toys', title: 'Source repository', icon: 'github', type: 'source' },
        ],
        annotations: {
          'backstage.io/managed-by-location': location,
          'backstage.io/managed-by-origin-location': location,
          'apiportal.dev/cluster': 'default',
          'apiportal.dev/product-namespace': 'shop',
          'apiportal.dev/product-name': 'toys',
          'apiportal.dev/product-uid': '0d6c-uid',
          'kuadrant.io/namespace': 'shop',
          'kuadrant.io/apiproduct': 'toys',
          'apiportal.dev/approval-mode': 'manual',
          'apiportal.dev/plans': JSON.stringify([
            { tier: 'gold', limits: { daily: 10000, monthly: 200000 } },
            { tier: 'bronze', limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } },
          ]),
          'apiportal.dev/auth-scheme': 'api-key',
          'apiportal.dev/consumers': '3',
          'apiportal.dev/consumers-by-plan': '{"bronze":1,"gold":2}',
          'apiportal.dev/consumers-by-application': '{"team-a/web":2}',
          'backstage.io/source-location': 'url:https://git.example.com/shop/toys',
          'backstage.io/view-url': 'https://git.example.com/shop/toys',
          'backstage.io/techdocs-ref': 'url:https://git.example.com/shop/toys/tree/main',
        },
      },
      spec: {
        type: 'openapi',
        lifecycle: 'experimental',
        owner: 'group:default/toys-team',
        definition: '{"openapi":"3.0.3"}',
        system: 'storefront',
      },
    });
    await assertCatalogAccepts(entity);
  });

  it('with several clusters configured the name carries the cluster; the annotation always does', () => {
    const eu = defaultApiportalEntityTransformer(toys, { ...context, providerId: 'eu', cluster: 'eu-west', clusterInName: true });
    expect(eu.metadata.name).toBe('eu-west--shop--toys');
    expect(eu.metadata.annotations?.['apiportal.dev/cluster']).toBe('eu-west');
    const single = defaultApiportalEntityTransformer(toys, { ...context, providerId: 'eu', cluster: 'eu-west' });
    expect(single.metadata.name).toBe('shop--toys');
    expect(single.metadata.annotations?.['apiportal.dev/cluster']).toBe('eu-west');
  });

  it('consumers: absent when unknown, zero when nobody has an approved key', () => {
    const unknown = defaultApiportalEntityTransformer(toys, context).metadata.annotations ?? {};
    expect(Object.keys(unknown).filter(k => k.startsWith('apiportal.dev/consumers'))).toStrictEqual([]);
    const none = defaultApiportalEntityTransformer(toys, { ...context, usage: NO_USAGE });
    expect(none.metadata.annotations?.['apiportal.dev/consumers']).toBe('0');
    expect(none.metadata.annotations?.['apiportal.dev/consumers-by-plan']).toBe('{}');
    expect(none.metadata.annotations?.['apiportal.dev/consumers-by-application']).toBe('{}');
  });

  it('a bare product still maps to a valid entity (stub definition, default owner and lifecycle)', async () => {
    const bare = makeProduct({
      namespace: 'n',
      name: 'bare',
      // The least the view schema allows: every optional field left out, required ones empty.
      displayName: '',
      description: undefined,
      version: undefined,
      tags: [],
      route: { name: 'bare', hostnames: [] },
      documentation: {},
      contact: {},
      openapi: { available: false },
    });
    const entity = defaultApiportalEntityTransformer(bare, {
      ...context,
      defaultOwner: 'group:default/platform',
      lifecycle: 'beta',
    });
    expect(entity.metadata.title).toBeUndefined();
    expect(entity.metadata.links).toBeUndefined();
    expect(entity.metadata.tags).toStrictEqual(['apiportal']);
    expect(entity.spec.owner).toBe('group:default/platform');
    expect(entity.spec.lifecycle).toBe('beta');
    expect(entity.spec.system).toBeUndefined();
    expect(entity.metadata.annotations?.['apiportal.dev/auth-scheme']).toBe('none');
    expect(entity.metadata.annotations?.['apiportal.dev/plans']).toBe('[]');
    const absent = ['backstage.io/source-location', 'backstage.io/view-url', 'backstage.io/edit-url', 'backstage.io/techdocs-ref'];
    expect(absent.filter(a => entity.metadata.annotations?.[a] !== undefined)).toStrictEqual([]);
    const stub = JSON.parse(entity.spec.definition);
    expect(stub).toStrictEqual({ openapi: '3.0.3', info: { title: 'bare', version: '0.0.0' }, paths: {} });
    await assertCatalogAccepts(entity);
  });
});

describe('where the product lives', () => {
  it('its own source-location, view-url and edit-url annotations win over gitRepository', () => {
    const product = makeProduct({
      namespace: 'a',
      name: 'b',
      annotations: {
        'backstage.io/source-location': 'url:https://git.example.com/platform/apis/tree/main/b',
        'backstage.io/view-url': 'https://git.example.com/platform/apis/blob/main/b/apiproduct.yaml',
        'backstage.io/edit-url': 'https://git.example.com/platform/apis/edit/main/b/apiproduct.yaml',
      },
      documentation: { openAPISpecURL: null, swaggerUI: null, docsURL: null, gitRepository: 'https://git.example.com/b', techdocsRef: null },
    });
    const annotations = defaultApiportalEntityTransformer(product, context).metadata.annotations ?? {};
    expect(annotations['backstage.io/source-location']).toBe('url:https://git.example.com/platform/apis/tree/main/b');
    expect(annotations['backstage.io/view-url']).toBe('https://git.example.com/platform/apis/blob/main/b/apiproduct.yaml');
    expect(annotations['backstage.io/edit-url']).toBe('https://git.example.com/platform/apis/edit/main/b/apiproduct.yaml');
  });

  it('gitRepository with or without url:, and only http(s) URLs as view-url', () => {
    const repo = (gitRepository: string) =>
      makeProduct({
        namespace: 'a',
        name: 'b',
        documentation: { openAPISpecURL: null, swaggerUI: null, docsURL: null, gitRepository, techdocsRef: null },
      });
    expect(sourceLocationOf(repo('https://git.example.com/a/b'))).toBe('url:https://git.example.com/a/b');
    expect(sourceLocationOf(repo('url:https://git.example.com/a/b'))).toBe('url:https://git.example.com/a/b');
    expect(viewUrlOf(repo('url:https://git.example.com/a/b'))).toBe('https://git.example.com/a/b');
    expect(viewUrlOf(repo('git@git.example.com:a/b.git'))).toBeUndefined();
    expect(sourceLocationOf(makeProduct({ namespace: 'a', name: 'b' }))).toBeUndefined();
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
    expect(sanitizeTag(`${'a'.repeat(62)}-bbb`)).toBe('a'.repeat(62));
    expect(entityTags(['B', 'b', '', 'apiportal', 'x y'])).toStrictEqual(['b', 'apiportal', 'x-y']);
  });
});

describe('links', () => {
  it('documentation, OpenAPI, Swagger UI, repository and contact when they are http(s) URLs', () => {
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
  });
});

describe('lifecycle', () => {
  it('lifecycle label, then configured lifecycle, then production', () => {
    expect(lifecycleOf(makeProduct({ namespace: 'a', name: 'b', labels: { lifecycle: 'beta' } }), 'x')).toBe('beta');
    expect(lifecycleOf(makeProduct({ namespace: 'a', name: 'b' }), 'experimental')).toBe('experimental');
    expect(lifecycleOf(makeProduct({ namespace: 'a', name: 'b' }), '')).toBe('production');
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
    const entity = defaultApiportalEntityTransformer(jwt, context);
    expect(entity.metadata.annotations?.['apiportal.dev/oidc-token-endpoint']).toBe('https://idp.example.com/token');
    expect(authSchemeOf(makeProduct({ namespace: 'a', name: 'b', authScheme: { authentication: {} } }))).toBe('none');
    expect(authSchemeOf(makeProduct({ namespace: 'a', name: 'b', authScheme: null }))).toBe('none');
  });
});

describe('definition', () => {
  it('the fetched document when there is one, else a valid OpenAPI 3.0 stub', () => {
    expect(defaultApiportalEntityTransformer(toys, { ...context, definition: 'openapi: 3.1.0\n' }).spec.definition).toBe(
      'openapi: 3.1.0\n',
    );
    expect(JSON.parse(stubDefinition(toys))).toStrictEqual({
      openapi: '3.0.3',
      info: { title: 'Toys API', version: 'v1', description: 'Browse and order toys.' },
      // The wildcard hostname is no server URL.
      servers: [{ url: 'https://toys.example.com' }],
      paths: {},
    });
    expect(defaultApiportalEntityTransformer(toys, context).spec.definition).toBe(stubDefinition(toys));
  });
});
