/*
 * End to end: a REAL Backstage backend (createBackend() from @backstage/backend-defaults 0.19.0 with
 * @backstage/plugin-catalog-backend 4.0.5, in-memory SQLite), with this module installed from its packed tarball
 * into a fresh backend package by e2e/backend.sh, reads bridges; Backstage's own catalog REST API shows the
 * products as `kind: API` entities. Run it with `npm run test:e2e` (e2e/test.sh), which prepares the backend.
 *
 * - With APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN set (and APIPORTAL_BRIDGE_CA_FILE for https), the bridge is
 *   that real bridge: every product it lists must appear with every mapped field as the module maps it. With
 *   APIPORTAL_E2E_REMOVE_PRODUCT=ns/name and APIPORTAL_E2E_REMOVE_CMD (a shell command that unpublishes or deletes
 *   that product), the test runs the command and waits for the entity to disappear.
 * - Without them, fake bridges serving the contract stand in: two clusters over https with their own CAs and token
 *   files, one of which may not read keys; a product with the same namespace/name in both; one bridge stopped; a
 *   token rotated; 429 and 503 answers; and the single-bridge configuration of earlier versions.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Entity } from '@backstage/catalog-model';
import { parse as parseYaml } from 'yaml';
import { BridgeTls, FileToken } from './apiportal/credentials';
import { BridgeClient } from './apiportal/read';
import { ViewSchema } from './apiportal/schema';
import { usageByProduct, NO_USAGE, productKey } from './apiportal/usage';
import { makeTestCertificates, type TestCertificates } from './testing/certs';
import { makeKey, makeProduct, startFakeBridge, type FakeBridge } from './testing/fakeBridge';
import {
  apiEntityNames,
  countLogs,
  e2eBackendDir,
  e2eNode,
  getApiEntities,
  startBackstage,
  waitForCatalog,
  waitForEntity,
  waitForLogs,
  waitForNoEntity,
  type RunningBackstage,
} from './testing/backstage';
import { defaultApiportalEntityTransformer } from './transformers/defaultApiportalEntityTransformer';
import { entityName } from './transformers/entityName';
import { DEFAULT_OWNER_POLICY, DEFAULT_SYSTEM_POLICY } from './transformers/ownership';

const PACKAGE = '@apiportal/backstage-plugin-catalog-backend-module-apiportal';

/** The fenced block of README.md between `<!-- NAME:start ... -->` and `<!-- NAME:end -->`, without its fence. */
function readmeBlock(name: string): string {
  const readme = readFileSync(resolve(__dirname, '..', 'README.md'), 'utf8');
  const match = new RegExp(`<!-- ${name}:start[^>]*-->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\`\\n<!-- ${name}:end -->`).exec(readme);
  if (!match) throw new Error(`README.md has no ${name} block`);
  return match[1].trim();
}
const realBridgeUrl = process.env.APIPORTAL_BRIDGE_URL;
const realBridgeToken = process.env.APIPORTAL_BRIDGE_TOKEN;
const every = { frequency: { seconds: 1 }, timeout: { seconds: 30 } };

/** The fields a user sees, without what the catalog adds (uid, etag, relations, status). */
function mapped(entity: Entity) {
  const metadata = { ...entity.metadata };
  delete metadata.uid;
  delete metadata.etag;
  return { apiVersion: entity.apiVersion, kind: entity.kind, metadata, spec: entity.spec };
}

if (Boolean(realBridgeUrl) !== Boolean(realBridgeToken)) {
  // eslint-disable-next-line jest/expect-expect -- fails with a message that says what to set
  it('APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN come together', () => {
    throw new Error(
      'set both APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN for the real bridge, or neither for the fake ones',
    );
  });
} else if (realBridgeUrl && realBridgeToken) {
  describe('Backstage catalog against the real apiportal bridge', () => {
    let backstage: RunningBackstage | undefined;
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'apiportal-e2e-'));
      writeFileSync(join(dir, 'token'), realBridgeToken);
    });
    afterAll(async () => {
      await backstage?.stop();
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('every product the bridge lists becomes an API entity, every field as the module maps it', async () => {
      const caFile = process.env.APIPORTAL_BRIDGE_CA_FILE;
      const tls = new BridgeTls(caFile);
      const client = new BridgeClient({
        baseUrl: realBridgeUrl,
        token: new FileToken(join(dir, 'token')),
        tls,
        schema: ViewSchema.load(resolve(__dirname, '..', 'schema', 'view.schema.json')),
      });
      const list = await client.readProducts();
      if (list.notModified) throw new Error('304 without If-None-Match');
      const published = list.value.items.filter(p => p.publishStatus === 'Published');
      // The bridge at APIPORTAL_BRIDGE_URL lists at least one published product.
      expect(published.length).toBeGreaterThan(0);
      const keys = await client.readApprovedKeys().catch(() => undefined);
      const usage =
        keys && !keys.notModified && (keys.value.scope?.allNamespaces ?? true) ? usageByProduct(keys.value.items) : undefined;

      backstage = await startBackstage({
        catalog: {
          providers: {
            apiportal: { baseUrl: realBridgeUrl, tokenFile: join(dir, 'token'), ...(caFile ? { caFile } : {}), schedule: every },
          },
        },
      });
      for (const product of published) {
        const definition = product.openapi?.available
          ? await client.readOpenApi(product.namespace, product.name)
          : undefined;
        const expected = defaultApiportalEntityTransformer(product, {
          providerId: 'default',
          cluster: 'default',
          clusterInName: false,
          baseUrl: realBridgeUrl.replace(/\/+$/, ''),
          owner: DEFAULT_OWNER_POLICY,
          defaultOwner: 'unknown',
          system: DEFAULT_SYSTEM_POLICY,
          allowedHosts: [],
          lifecycle: 'production',
          definition,
          usage: usage ? (usage.get(productKey(product.namespace, product.name)) ?? NO_USAGE) : undefined,
        });
        const entity = await waitForEntity(backstage, entityName(product.namespace, product.name), 60_000);
        expect(mapped(entity)).toStrictEqual(expected);
      }
      await tls.close();
    }, 120_000);

    const removeProduct = process.env.APIPORTAL_E2E_REMOVE_PRODUCT;
    const removeCmd = process.env.APIPORTAL_E2E_REMOVE_CMD;
    // Runs only with APIPORTAL_E2E_REMOVE_PRODUCT and APIPORTAL_E2E_REMOVE_CMD set; reported as skipped otherwise.
    (removeProduct && removeCmd ? it : it.skip)('a product removed from the bridge leaves the catalog', async () => {
      if (!backstage) throw new Error('the previous test did not start Backstage');
      const [ns, name] = removeProduct!.split('/');
      await waitForEntity(backstage, entityName(ns, name));
      execSync(removeCmd!, { stdio: 'inherit', shell: '/bin/sh' });
      await waitForNoEntity(backstage, entityName(ns, name));
    }, 120_000);
  });
} else {
  describe('a real Backstage backend reading two clusters through fake bridges', () => {
    let euCerts: TestCertificates;
    let usCerts: TestCertificates;
    let eu: FakeBridge;
    let us: FakeBridge;
    let backstage: RunningBackstage | undefined;
    let dir: string;

    const toysDoc = JSON.stringify({ openapi: '3.0.3', info: { title: 'Toys', version: 'v1' }, paths: { '/toys': {} } });
    const euToys = makeProduct({
      namespace: 'shop',
      name: 'toys',
      uid: 'uid-eu-toys',
      displayName: 'Toys API',
      description: 'Browse and order toys.',
      tags: ['retail', 'Toys'],
      labels: { lifecycle: 'beta', system: 'storefront' },
      annotations: { 'backstage.io/owner': 'group:default/toys-team' },
      documentation: {
        openAPISpecURL: 'https://toys.example.com/openapi.json',
        swaggerUI: null,
        docsURL: 'https://docs.example.com/toys',
        gitRepository: 'https://git.example.com/shop/toys',
        techdocsRef: null,
      },
      plans: [
        { tier: 'gold', description: null, limits: { daily: 10000 } },
        { tier: 'bronze', description: null, limits: { daily: 100 } },
      ],
      authScheme: { authentication: { 'api-key': { apiKey: { selector: {} }, credentials: {} } } },
      openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
    });

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'apiportal-e2e-'));
      euCerts = makeTestCertificates('eu-bridge-ca');
      usCerts = makeTestCertificates('us-bridge-ca');
      eu = await startFakeBridge({
        token: 'eu-token-1',
        tls: euCerts,
        products: [
          euToys,
          makeProduct({ namespace: 'games', name: 'toys', contact: { team: 'games-team', email: null, slack: null, url: null } }),
          makeProduct({ namespace: 'shop', name: 'secret', publishStatus: 'Draft' }),
        ],
        keys: [
          makeKey('shop/toys', 'gold', 'alice', { application: 'stock-sync' }),
          makeKey('shop/toys', 'gold', 'bob'),
          makeKey('shop/toys', 'bronze', 'bob'),
          // A suspended key is no consumer.
          makeKey('shop/toys', 'bronze', 'erin', { phase: 'Suspended', application: 'stock-sync' }),
        ],
        openapi: { 'shop/toys': toysDoc },
      });
      us = await startFakeBridge({
        token: 'us-token-1',
        tls: usCerts,
        products: [makeProduct({ namespace: 'shop', name: 'toys', uid: 'uid-us-toys', displayName: 'Toys API (US)' })],
      });
      // The US cluster did not bind apiportal-key-reader for Backstage.
      us.keysForbidden = true;
      writeFileSync(join(dir, 'eu-token'), 'eu-token-1\n');
      writeFileSync(join(dir, 'us-token'), 'us-token-1\n');
    });
    afterAll(async () => {
      await backstage?.stop();
      await eu?.close();
      await us?.close();
      euCerts?.cleanup();
      usCerts?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    function started() {
      if (!backstage) throw new Error('the first test did not start Backstage');
      return backstage;
    }

    it("both clusters' products appear, the same namespace/name in each as two entities, every field mapped", async () => {
      backstage = await startBackstage({
        catalog: {
          providers: {
            apiportal: {
              eu: {
                baseUrl: eu.url,
                tokenFile: join(dir, 'eu-token'),
                caFile: euCerts.caFile,
                cluster: 'eu-west',
                schedule: every,
                // The platform decides owners and systems by namespace; the product's own claims are ignored.
                owner: { namespaces: { shop: 'group:default/toys-team' } },
                defaultOwner: 'group:default/{namespace}-team',
                system: { namespaces: { shop: 'storefront' } },
              },
              us: { baseUrl: us.url, tokenFile: join(dir, 'us-token'), caFile: usCerts.caFile, schedule: every },
            },
          },
        },
      });
      await waitForCatalog(backstage, 'three API entities', entities => (entities.length === 3 ? true : undefined));
      expect(await apiEntityNames(backstage)).toStrictEqual(['eu-west--games--toys', 'eu-west--shop--toys', 'us--shop--toys']);

      const toys = await waitForEntity(backstage, 'eu-west--shop--toys');
      const location = `apiportal:${eu.url}/api/v1/products/shop/toys`;
      expect(mapped(toys)).toStrictEqual({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'API',
        metadata: {
          name: 'eu-west--shop--toys',
          namespace: 'default',
          title: 'Toys API',
          description: 'Browse and order toys.',
          tags: ['retail', 'toys', 'apiportal'],
          links: [
            { url: 'https://docs.example.com/toys', title: 'Documentation', icon: 'docs', type: 'documentation' },
            { url: 'https://toys.example.com/openapi.json', title: 'OpenAPI specification', icon: 'code', type: 'openapi' },
            { url: 'https://git.example.com/shop/toys', title: 'Source repository', icon: 'github', type: 'source' },
          ],
          annotations: {
            'backstage.io/managed-by-location': location,
            'backstage.io/managed-by-origin-location': location,
            'apiportal.dev/cluster': 'eu-west',
            'apiportal.dev/product-namespace': 'shop',
            'apiportal.dev/product-name': 'toys',
            'apiportal.dev/product-uid': 'uid-eu-toys',
            'kuadrant.io/namespace': 'shop',
            'kuadrant.io/apiproduct': 'toys',
            'apiportal.dev/approval-mode': 'automatic',
            'apiportal.dev/plans': '[{"tier":"gold","limits":{"daily":10000}},{"tier":"bronze","limits":{"daily":100}}]',
            'apiportal.dev/auth-scheme': 'api-key',
            'apiportal.dev/consumers': '2',
            'apiportal.dev/consumers-by-plan': '{"bronze":1,"gold":2}',
            'apiportal.dev/consumers-by-application': '{"team-alice/stock-sync":1}',
            'backstage.io/source-location': 'url:https://git.example.com/shop/toys',
            'backstage.io/view-url': 'https://git.example.com/shop/toys',
          },
        },
        spec: {
          type: 'openapi',
          lifecycle: 'beta',
          owner: 'group:default/toys-team',
          system: 'storefront',
          definition: toysDoc,
        },
      });
      // The catalog resolved owner and system into relations.
      expect(toys.relations?.map(r => `${r.type} ${r.targetRef}`).sort()).toStrictEqual([
        'ownedBy group:default/toys-team',
        'partOf system:default/storefront',
      ]);

      const games = await waitForEntity(backstage, 'eu-west--games--toys');
      expect(games.spec?.owner).toBe('group:default/games-team');
      expect(games.metadata.annotations?.['apiportal.dev/consumers']).toBe('0');

      // The US cluster's token may not list keys: its entity has no consumer counts, and that was said once.
      const usToys = await waitForEntity(backstage, 'us--shop--toys');
      expect(usToys.metadata.title).toBe('Toys API (US)');
      expect(usToys.metadata.annotations?.['apiportal.dev/cluster']).toBe('us');
      expect(usToys.metadata.annotations?.['apiportal.dev/product-uid']).toBe('uid-us-toys');
      expect(Object.keys(usToys.metadata.annotations ?? {}).filter(a => a.startsWith('apiportal.dev/consumers'))).toStrictEqual([]);
      await waitForCatalog(backstage, 'several runs against the US bridge', () =>
        us.requests.filter(r => r.path.startsWith('/api/v1/keys')).length >= 3 ? true : undefined,
      );
      expect(countLogs(backstage, /does not let this token list API keys/)).toBe(1);

      // Every request carried its own cluster's token, and the bridges' answers were gzip-compressed.
      expect(eu.requests.filter(r => r.authorization !== 'Bearer eu-token-1')).toStrictEqual([]);
      expect(us.requests.filter(r => r.authorization !== 'Bearer us-token-1')).toStrictEqual([]);
      expect(eu.requests.filter(r => r.acceptEncoding !== 'gzip')).toStrictEqual([]);
      // After the first run, the product list is not read again: each run asks what changed since the version held.
      expect(eu.requests.filter(r => r.path === '/api/v1/products')).toHaveLength(1);
      expect(eu.requests.filter(r => r.path.startsWith('/api/v1/products?since=') && r.status === 200).length).toBeGreaterThan(0);
    }, 90_000);

    it('a rotated token file is picked up without a restart', async () => {
      const backstage = started();
      // The API server stops accepting the old token before the kubelet has written the new one.
      eu.token = 'eu-token-2';
      eu.products = [...eu.products, makeProduct({ namespace: 'shop', name: 'new' })];
      await waitForLogs(backstage, /answered 401 Unauthorized: .*tokenFile .*eu-token/, 1);
      expect(await apiEntityNames(backstage)).toStrictEqual(['eu-west--games--toys', 'eu-west--shop--toys', 'us--shop--toys']);
      writeFileSync(join(dir, 'eu-token'), 'eu-token-2\n');
      await waitForEntity(backstage, 'eu-west--shop--new');
      // The token file's name is in the 401's hint; the tokens themselves never are.
      expect(backstage.logs()).not.toContain('eu-token-1');
      expect(backstage.logs()).not.toContain('eu-token-2');
    }, 60_000);

    for (const mode of ['rate-limited', 'unavailable'] as const) {
      it(`a bridge answering ${mode === 'rate-limited' ? '429' : '503'} keeps the catalog, and is read again after Retry-After`, async () => {
        const backstage = started();
        const status = mode === 'rate-limited' ? 429 : 503;
        const before = eu.requests.filter(r => r.status === status).length;
        eu.retryAfterSeconds = 1;
        eu.mode = mode;
        eu.products = eu.products.filter(p => p.name !== 'new');
        await waitForCatalog(backstage, `two ${status} answers from the EU bridge`, () =>
          eu.requests.filter(r => r.status === status).length >= before + 2 ? true : undefined,
        );
        expect(await apiEntityNames(backstage)).toStrictEqual([
          'eu-west--games--toys',
          'eu-west--shop--new',
          'eu-west--shop--toys',
          'us--shop--toys',
        ]);
        eu.mode = 'ok';
        await waitForNoEntity(backstage, 'eu-west--shop--new');
        eu.products = [...eu.products, makeProduct({ namespace: 'shop', name: 'new' })];
        await waitForEntity(backstage, 'eu-west--shop--new');
      }, 60_000);
    }

    it("a stopped bridge keeps its cluster's entities, and leaves the other cluster's untouched", async () => {
      const backstage = started();
      const usBefore = (await getApiEntities(backstage)).find(e => e.metadata.name === 'us--shop--toys');
      await us.close();
      const failures = /refresh failed, the catalog keeps its last good set of API entities from cluster us: .*ECONNREFUSED/;
      await waitForLogs(backstage, failures, 2);
      // Meanwhile the EU cluster changes, and the catalog follows it: a delta mutation, in the real catalog.
      eu.products = eu.products.filter(p => p.namespace !== 'games');
      await waitForNoEntity(backstage, 'eu-west--games--toys');
      expect(
        countLogs(backstage, /applied changes to API entities from cluster eu-west \(.*\): 0 added or changed, 1 removed, 2 in all, in \d+ ms/),
      ).toBe(1);
      await waitForLogs(backstage, failures, countLogs(backstage, failures) + 2);
      const entities = await getApiEntities(backstage);
      expect(entities.map(e => e.metadata.name).sort()).toStrictEqual([
        'eu-west--shop--new',
        'eu-west--shop--toys',
        'us--shop--toys',
      ]);
      expect(entities.find(e => e.metadata.name === 'us--shop--toys')).toStrictEqual(usBefore);
    }, 60_000);

    it('stops cleanly on SIGTERM', async () => {
      // Exit status 0: the backend stopped by itself (stop() falls back to SIGKILL, which gives none).
      expect(await started().stop()).toBe(0);
    }, 30_000);
  });

  describe('a real Backstage backend with the single-bridge configuration of earlier versions', () => {
    let bridge: FakeBridge | undefined;
    let backstage: RunningBackstage | undefined;
    afterAll(async () => {
      await backstage?.stop();
      await bridge?.close();
    }, 60_000);

    const esc = '\u001b';
    const hostile = makeProduct({
      namespace: 'evil',
      name: 'grab',
      displayName: `Grab${esc}]52;c;cHduZWQ=\u0007${esc}[2J API\u202Etxt.exe`,
      description: `Takes${esc}[8m everything`,
      annotations: {
        'backstage.io/owner': 'group:default/security',
        'backstage.io/system': 'payments',
        'backstage.io/techdocs-ref': 'dir:../../etc',
        'backstage.io/source-location': 'file:/etc/passwd',
      },
      labels: { system: 'payments' },
      contact: { team: 'group:default/security', email: null, slack: null, url: 'javascript:alert(1)' },
    });

    it('keeps working: provider "default", names without a cluster, an inline token over local http', async () => {
      bridge = await startFakeBridge({ products: [makeProduct({ namespace: 'shop', name: 'toys' }), hostile] });
      backstage = await startBackstage({
        catalog: { providers: { apiportal: { baseUrl: bridge.url, token: bridge.token, schedule: every } } },
      });
      const toys = await waitForEntity(backstage, 'shop--toys');
      expect(toys.metadata.annotations?.['apiportal.dev/cluster']).toBe('default');
      expect(toys.metadata.annotations?.['apiportal.dev/consumers']).toBe('0');
      expect(backstage.logs()).toMatch(/apiportal entity providers: apiportal-provider:default/);
    }, 60_000);

    it("a product's claims on owner and system, its dir: and file: references and its terminal escapes stay out of the catalog", async () => {
      if (!backstage) throw new Error('the previous test did not start Backstage');
      const grab = await waitForEntity(backstage, 'evil--grab');
      expect({
        title: grab.metadata.title,
        description: grab.metadata.description,
        owner: grab.spec?.owner,
        system: grab.spec?.system,
        links: grab.metadata.links,
        references: ['backstage.io/techdocs-ref', 'backstage.io/source-location'].filter(a => a in (grab.metadata.annotations ?? {})),
        relations: grab.relations?.map(r => `${r.type} ${r.targetRef}`),
      }).toStrictEqual({
        title: 'Grab APItxt.exe',
        description: 'Takes everything',
        owner: 'unknown',
        system: undefined,
        links: undefined,
        references: [],
        relations: ['ownedBy group:default/unknown'],
      });
    }, 60_000);
  });

  describe("README.md's install steps, carried out by e2e/backend.sh in an app made like Backstage's template", () => {
    const app = e2eBackendDir();
    const template = resolve(__dirname, '..', 'e2e', 'app');
    /** The `resolution:` of every package in a Yarn 4 lockfile. */
    const resolutions = (lockfile: string) =>
      new Set(Object.values(parseYaml(readFileSync(lockfile, 'utf8')) as Record<string, { resolution?: string }>).flatMap(e => e.resolution ?? []));

    it('the backend depends on the tarball vendored into the app, by a relative path, and on nothing else new', () => {
      const backend = JSON.parse(readFileSync(join(app, 'packages', 'backend', 'package.json'), 'utf8'));
      const dependency: string = backend.dependencies[PACKAGE];
      expect(dependency).toMatch(/^file:\.\.\/\.\.\/vendor\/apiportal-backstage-plugin-catalog-backend-module-apiportal-[\d.]+\.tgz$/);
      expect(existsSync(join(app, 'packages', 'backend', dependency.slice('file:'.length)))).toBe(true);
      // Nothing in the lockfile names a place outside the app, which a Docker build or another clone would not have.
      expect(readFileSync(join(app, 'yarn.lock'), 'utf8')).not.toMatch(/file:\//);
      // The module's dependencies are all in the template's backend already: it adds exactly itself.
      const before = resolutions(join(template, 'yarn.lock'));
      const added = [...resolutions(join(app, 'yarn.lock'))].filter(r => !before.has(r));
      expect(added.map(r => r.split('@file:')[0])).toStrictEqual([PACKAGE]);
    });

    it("the README's config, merged into the template's app-config.yaml, and its curl: the catalog shows the bridge's products", async () => {
      const merged = parseYaml(readFileSync(join(app, 'app-config.readme.yaml'), 'utf8'));
      const original = parseYaml(readFileSync(join(template, 'app-config.yaml'), 'utf8'));
      // The template's own catalog and backend settings are still there.
      expect(merged.catalog.rules).toStrictEqual(original.catalog.rules);
      expect(merged.backend.database).toStrictEqual(original.backend.database);

      const certs = makeTestCertificates('readme-bridge-ca');
      const bridge = await startFakeBridge({ token: 'readme-token', tls: certs, products: [makeProduct({ namespace: 'shop', name: 'toys' })] });
      const dir = mkdtempSync(join(tmpdir(), 'apiportal-readme-'));
      writeFileSync(join(dir, 'token'), 'readme-token\n');
      const catalogToken = 'readme-catalog-reader-token';
      const backstage = await startBackstage(
        {},
        {
          configFiles: [join(app, 'app-config.readme.yaml')],
          env: {
            APIPORTAL_URL: bridge.url,
            APIPORTAL_TOKEN_FILE: join(dir, 'token'),
            APIPORTAL_CA_FILE: certs.caFile,
            BACKSTAGE_CATALOG_TOKEN: catalogToken,
          },
          token: catalogToken,
        },
      );
      try {
        const toys = await waitForEntity(backstage, 'shop--toys');
        expect(toys.spec?.owner).toBe('group:default/toys-team');
        const curl = readmeBlock('install-read').replace('http://localhost:7007', backstage.url);
        const read = (token: string) =>
          // The README's command as written, with curl's status code printed after the body.
          execFileSync('bash', ['-c', `${curl} -sS -w '\\n%{http_code}'`], {
            encoding: 'utf8',
            env: { ...process.env, BACKSTAGE_CATALOG_TOKEN: token },
          });
        const [body, status] = read(catalogToken).split(/\n(?=\d+$)/);
        expect(status).toBe('200');
        expect((JSON.parse(body) as { items: Entity[] }).items.map(e => e.metadata.name)).toStrictEqual(['shop--toys']);
        expect(read('not-the-token').split('\n').pop()).toBe('401');
      } finally {
        expect(await backstage.stop()).toBe(0);
        await bridge.close();
        certs.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 90_000);
  });

  describe('the package as installed from its tarball', () => {
    const installed = join(e2eBackendDir(), 'node_modules', ...PACKAGE.split('/'));

    it('carries the view schema of this checkout', () => {
      const bridgeSchema = resolve(__dirname, '..', '..', 'bridge', 'api', 'view.schema.json');
      expect(readFileSync(join(installed, 'schema', 'view.schema.json'), 'utf8')).toBe(readFileSync(bridgeSchema, 'utf8'));
    });

    it("Backstage's config loader reads its config.d.ts: token is a secret in both forms, nothing else is", () => {
      // Runs in the backend package, with the config-loader Backstage itself uses.
      const script = `
        const { loadConfigSchema } = require('@backstage/config-loader');
        (async () => {
          const schema = await loadConfigSchema({ dependencies: [${JSON.stringify(PACKAGE)}] });
          const secrets = data => schema.process([{ data, context: 'test' }], { visibility: ['secret'] }).map(c => c.data);
          const one = { baseUrl: 'https://b', token: 'token-one', cluster: 'c', tokenFile: '/f', caFile: '/ca' };
          const many = { eu: { baseUrl: 'https://b', token: 'token-eu' }, us: { baseUrl: 'https://c', tokenFile: '/t' } };
          process.stdout.write(JSON.stringify({
            single: secrets({ catalog: { providers: { apiportal: one } } }),
            multi: secrets({ catalog: { providers: { apiportal: many } } }),
          }));
        })().catch(e => { console.error(e); process.exit(1); });`;
      const out = execFileSync(e2eNode(), ['-e', script], { cwd: join(e2eBackendDir(), 'packages', 'backend'), encoding: 'utf8' });
      expect(JSON.parse(out)).toStrictEqual({
        single: [{ catalog: { providers: { apiportal: { token: 'token-one' } } } }],
        multi: [{ catalog: { providers: { apiportal: { eu: { token: 'token-eu' } } } } }],
      });
    });
  });
}
