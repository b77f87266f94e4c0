/*
 * A product's owner writes its annotations, labels, contact, documentation URLs and texts, and the bridge serves
 * them as written. These tests play such an owner (a tenant with ordinary rights in one namespace) against the
 * module, configured as a platform team configures it, and check what reaches the catalog: the whole path from the
 * bridge's answer to the entities the provider applies.
 */
import { ConfigReader } from '@backstage/config';
import type { Entity } from '@backstage/catalog-model';
import type { EntityProviderConnection, EntityProviderMutation } from '@backstage/plugin-catalog-node';
import type { Key, Product } from './apiportal/types';
import { ApiportalEntityProvider } from './providers/ApiportalEntityProvider';
import { readProviderConfigs } from './providers/ApiportalEntityProviderConfig';
import { makeKey, makeProduct, startFakeBridge, type FakeBridge } from './testing/fakeBridge';
import { captureLogger } from './testing/logger';

/** Every character that may not reach an entity: C0 but TAB and LF, DEL, C1, and bidirectional controls. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;

let bridge: FakeBridge | undefined;
const providers: ApiportalEntityProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map(p => p.close()));
  await bridge?.close();
  bridge = undefined;
});

/**
 * The entities one refresh applies for `products`, read through a fake bridge by a provider configured with
 * `settings` (what a platform writes under `catalog.providers.apiportal`, besides baseUrl and token).
 */
async function catalogOf(
  products: Product[],
  settings: Record<string, unknown> = {},
  extra: { openapi?: Record<string, string>; keys?: Key[] } = {},
): Promise<Map<string, Entity>> {
  bridge = await startFakeBridge({ products, ...extra });
  const [config] = readProviderConfigs(
    new ConfigReader({ catalog: { providers: { apiportal: { baseUrl: bridge.url, token: bridge.token, ...settings } } } }),
  );
  const provider = new ApiportalEntityProvider(config, { logger: captureLogger() });
  providers.push(provider);
  const mutations: EntityProviderMutation[] = [];
  const connection: EntityProviderConnection = {
    applyMutation: async mutation => {
      mutations.push(mutation);
    },
    refresh: async () => {},
  };
  await provider.connect(connection);
  const result = await provider.refresh();
  expect(result.status).toBe('applied');
  const last = mutations[mutations.length - 1];
  if (last?.type !== 'full') throw new Error('expected a full mutation');
  return new Map(last.entities.map(e => [e.entity.metadata.name, e.entity]));
}

/** Every string in `value`, with its path. */
function strings(value: unknown, path = ''): [string, string][] {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [...strings(k, `${path}{key}`), ...strings(v, `${path}.${k}`)]);
  }
  return [];
}

const claimsEverything = (namespace: string, name: string) =>
  makeProduct({
    namespace,
    name,
    annotations: { 'backstage.io/owner': 'group:default/security', 'backstage.io/system': 'payments' },
    labels: { system: 'payments' },
    contact: { team: 'group:default/security', email: null, slack: null, url: null },
  });

describe('a product cannot choose who owns it or which system it belongs to', () => {
  it('by default the platform decides, by namespace: the product claiming group:default/security gets its namespace owner', async () => {
    const catalog = await catalogOf([claimsEverything('shop', 'toys'), claimsEverything('evil', 'grab')], {
      owner: { namespaces: { shop: 'group:default/toys-team' } },
      system: { namespaces: { shop: 'storefront' } },
    });
    expect(catalog.get('shop--toys')?.spec).toMatchObject({ owner: 'group:default/toys-team', system: 'storefront' });
    // A namespace the platform did not map gets the configured default (here the default default), and no system.
    const grab = catalog.get('evil--grab');
    expect(grab?.spec?.owner).toBe('unknown');
    expect(grab?.spec?.system).toBeUndefined();
  });

  it('a default owner derived from the namespace, which the platform controls', async () => {
    const catalog = await catalogOf([claimsEverything('evil', 'grab')], { defaultOwner: 'group:default/{namespace}-owners' });
    expect(catalog.get('evil--grab')?.spec?.owner).toBe('group:default/evil-owners');
  });

  it("the product's own annotation, contact team or system label only where the platform enables them", async () => {
    const catalog = await catalogOf([claimsEverything('shop', 'toys')], {
      owner: { from: ['contactTeam', 'namespace'], namespaces: { shop: 'group:default/toys-team' } },
      system: { from: ['label'] },
    });
    expect(catalog.get('shop--toys')?.spec).toMatchObject({ owner: 'group:default/security', system: 'payments' });
  });

  it('an enabled owner-controlled source that is not an entity reference is skipped', async () => {
    const product = makeProduct({
      namespace: 'shop',
      name: 'toys',
      annotations: { 'backstage.io/owner': 'group:default/security team', 'backstage.io/system': 'a/b/c' },
    });
    const catalog = await catalogOf([product], {
      owner: { from: ['annotation', 'namespace'], namespaces: { shop: 'group:default/toys-team' } },
      system: { from: ['annotation'] },
    });
    expect(catalog.get('shop--toys')?.spec?.owner).toBe('group:default/toys-team');
    expect(catalog.get('shop--toys')?.spec?.system).toBeUndefined();
  });
});

describe('links, techdocs-ref and source-location', () => {
  const hostile = makeProduct({
    namespace: 'shop',
    name: 'toys',
    annotations: {
      'backstage.io/techdocs-ref': 'dir:../../etc',
      'backstage.io/source-location': 'file:/etc/passwd',
      'backstage.io/view-url': 'javascript:alert(document.cookie)',
      'backstage.io/edit-url': 'file:///etc/passwd',
    },
    documentation: {
      docsURL: 'javascript:alert(document.cookie)',
      openAPISpecURL: 'file:///etc/passwd',
      swaggerUI: 'data:text/html,<script>alert(1)</script>',
      gitRepository: 'dir:../../etc',
      techdocsRef: 'dir:../../etc',
    },
    contact: { team: null, email: null, slack: null, url: 'https://docs.example.com@evil.example.net/login' },
    oidc: { issuerUrl: 'https://idp.example.com', tokenEndpoint: 'javascript:alert(1)' },
  });

  it('a javascript:, file: or data: URL, a dir: reference or a URL with credentials never reaches the entity', async () => {
    const entity = (await catalogOf([hostile])).get('shop--toys')!;
    const annotations = entity.metadata.annotations ?? {};
    const kept = [
      'backstage.io/techdocs-ref',
      'backstage.io/source-location',
      'backstage.io/view-url',
      'backstage.io/edit-url',
      'apiportal.dev/oidc-token-endpoint',
    ].filter(a => a in annotations);
    expect({
      links: entity.metadata.links?.map(l => l.url) ?? [],
      annotations: kept.map(a => `${a}: ${annotations[a]}`),
    }).toStrictEqual({ links: [], annotations: [] });
  });

  it('with allowedHosts, only URLs on those hosts', async () => {
    const product = makeProduct({
      namespace: 'shop',
      name: 'toys',
      documentation: {
        docsURL: 'https://docs.example.com/toys',
        openAPISpecURL: 'https://evil.example.net/openapi.json',
        swaggerUI: 'https://api.example.org/ui',
        gitRepository: 'https://git.example.org/shop/toys',
        techdocsRef: 'url:https://evil.example.net/docs',
      },
      annotations: { 'backstage.io/edit-url': 'https://evil.example.net/edit' },
      oidc: { issuerUrl: 'https://idp.example.com', tokenEndpoint: 'https://evil.example.net/token' },
    });
    const entity = (await catalogOf([product], { allowedHosts: ['docs.example.com', '*.example.org'] })).get('shop--toys')!;
    expect(entity.metadata.links?.map(l => l.url)).toStrictEqual([
      'https://docs.example.com/toys',
      'https://api.example.org/ui',
      'https://git.example.org/shop/toys',
    ]);
    const annotations = entity.metadata.annotations ?? {};
    expect(annotations['backstage.io/source-location']).toBe('url:https://git.example.org/shop/toys');
    expect(annotations['backstage.io/view-url']).toBe('https://git.example.org/shop/toys');
    expect(
      ['backstage.io/techdocs-ref', 'backstage.io/edit-url', 'apiportal.dev/oidc-token-endpoint'].filter(a => a in annotations),
    ).toStrictEqual([]);
  });
});

describe('text', () => {
  it('terminal escapes (colour, cursor moves, an OSC 52 clipboard write), C0/C1 controls and bidi overrides are removed from every field', async () => {
    const esc = '\u001b';
    const product = makeProduct({
      namespace: 'shop',
      name: 'toys',
      displayName: `Toys${esc}[2J${esc}[H${esc}]52;c;ZWNobyBwd25lZA==\u0007 API\u202Egnp.exe`,
      description: `Line one${esc}[31m red${esc}[0m\r\nLine two\u009b31m\u0000 ${esc}]8;;https://evil.example.net${esc}\\link${esc}]8;;${esc}\\`,
      version: `v1${esc}[1A`,
      tags: [`retail${esc}[5m`],
      labels: { lifecycle: `production\u2066`, system: 'storefront' },
      plans: [{ tier: `gold\u202E`, description: `For ${esc}[8mpartners`, limits: { daily: 10 } }],
      documentation: {
        docsURL: `https://docs.example.com/toys`,
        openAPISpecURL: null,
        swaggerUI: null,
        gitRepository: null,
        techdocsRef: null,
      },
      openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
    });
    const document = `openapi: 3.0.3\ninfo: {title: "Toys${esc}]52;c;cHduZWQ=\u0007", version: v1}\npaths: {}\n`;
    const entity = (
      await catalogOf(
        [product],
        { owner: { namespaces: { shop: 'group:default/toys-team' } } },
        { openapi: { 'shop/toys': document }, keys: [makeKey('shop/toys', 'gold\u202E', `alice${esc}[2J`)] },
      )
    ).get('shop--toys')!;
    expect(strings(entity).filter(([, s]) => CONTROL.test(s))).toStrictEqual([]);
    expect(entity.metadata.title).toBe('Toys APIgnp.exe');
    // Multi-line text keeps its line breaks.
    expect(entity.metadata.description).toBe('Line one red\nLine two link');
    expect(entity.spec?.definition).toBe('openapi: 3.0.3\ninfo: {title: "Toys", version: v1}\npaths: {}\n');
    expect(entity.spec?.lifecycle).toBe('production');
    expect(JSON.parse(entity.metadata.annotations?.['apiportal.dev/plans'] ?? '')).toStrictEqual([
      { tier: 'gold', limits: { daily: 10 } },
    ]);
    expect(entity.metadata.annotations?.['apiportal.dev/consumers-by-plan']).toBe('{"gold":1}');
  });
});
