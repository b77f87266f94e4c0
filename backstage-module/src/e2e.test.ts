/*
 * End to end: a REAL Backstage backend (@backstage/plugin-catalog-backend plus this module, in-memory SQLite)
 * reads a bridge, and Backstage's own catalog REST API shows the products as `kind: API` entities.
 *
 * - With APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN set, the bridge is that real bridge: every product it
 *   lists must appear in the catalog. With APIPORTAL_E2E_REMOVE_PRODUCT=ns/name and APIPORTAL_E2E_REMOVE_CMD (a
 *   shell command that unpublishes or deletes that product), the test runs the command and waits for the entity
 *   to disappear.
 * - Without them, a local fake bridge serving the contract stands in, and the test proves that products appear,
 *   that a bridge failure keeps the catalog, and that a product removed from the list disappears.
 */
import { execSync } from 'node:child_process';
import { readProducts } from './apiportal/read';
import { entityName } from './apiportal/transform';
import { makeProduct, startFakeBridge, type FakeBridge } from './testing/fakeBridge';
import {
  getApiEntities,
  startCatalogBackend,
  waitForEntity,
  type RunningCatalogBackend,
} from './testing/backstage';

const realBridgeUrl = process.env.APIPORTAL_BRIDGE_URL;
const realBridgeToken = process.env.APIPORTAL_BRIDGE_TOKEN;

if (Boolean(realBridgeUrl) !== Boolean(realBridgeToken)) {
  // eslint-disable-next-line jest/expect-expect -- fails with a message that says what to set
  it('APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN come together', () => {
    throw new Error(
      'set both APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN for the real bridge, or neither for the fake one',
    );
  });
} else if (realBridgeUrl && realBridgeToken) {
  describe('Backstage catalog against the real apiportal bridge', () => {
    let backstage: RunningCatalogBackend | undefined;
    afterAll(async () => backstage?.stop(), 60_000);

    it('every product the bridge lists becomes an API entity', async () => {
      const list = await readProducts({ baseUrl: realBridgeUrl, token: realBridgeToken });
      expect(list.notModified).toBe(false);
      const published = list.notModified ? [] : list.products.filter(p => p.publishStatus === 'Published');
      // The bridge at APIPORTAL_BRIDGE_URL lists at least one published product.
      expect(published.length).toBeGreaterThan(0);

      backstage = await startCatalogBackend({ bridgeUrl: realBridgeUrl, token: realBridgeToken });
      const url = backstage.url;
      for (const product of published) {
        const entity = await waitForEntity(url, entityName(product.namespace, product.name), true);
        expect(entity.metadata.annotations?.['apiportal.dev/product-uid']).toBe(product.uid);
        expect(entity.metadata.title).toBe(product.displayName ?? undefined);
      }
    }, 120_000);

    const removeProduct = process.env.APIPORTAL_E2E_REMOVE_PRODUCT;
    const removeCmd = process.env.APIPORTAL_E2E_REMOVE_CMD;
    // Runs only with APIPORTAL_E2E_REMOVE_PRODUCT and APIPORTAL_E2E_REMOVE_CMD set; reported as skipped otherwise.
    (removeProduct && removeCmd ? it : it.skip)('a product removed from the bridge leaves the catalog', async () => {
      if (!backstage) throw new Error('the previous test did not start Backstage');
      const url = backstage.url;
      const [ns, name] = removeProduct!.split('/');
      const entity = entityName(ns, name);
      await waitForEntity(url, entity, true);
      execSync(removeCmd!, { stdio: 'inherit', shell: '/bin/sh' });
      await waitForEntity(url, entity, false);
    }, 120_000);
  });
} else {
  describe('Backstage catalog against a local fake bridge', () => {
    let bridge: FakeBridge | undefined;
    let backstage: RunningCatalogBackend | undefined;
    afterAll(async () => {
      await backstage?.stop();
      await bridge?.close();
    }, 60_000);

    /** The bridge and Backstage that the first test started. */
    function started() {
      expect(bridge).toBeDefined();
      expect(backstage).toBeDefined();
      return { bridge: bridge!, backstage: backstage! };
    }

    const openapi = JSON.stringify({ openapi: '3.0.3', info: { title: 'Toys', version: 'v1' }, paths: { '/toys': {} } });

    it('published products appear as API entities, drafts do not', async () => {
      bridge = await startFakeBridge({
        products: [
          makeProduct({
            namespace: 'shop',
            name: 'toys',
            displayName: 'Toys API',
            annotations: { 'backstage.io/owner': 'group:default/toys-team' },
            openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
          }),
          // The same name in another namespace, and no owner annotation: upstream would collide and skip it.
          makeProduct({
            namespace: 'games',
            name: 'toys',
            displayName: 'Game toys',
            contact: { team: 'games-team', email: null, slack: null, url: null },
          }),
          makeProduct({ namespace: 'shop', name: 'secret', publishStatus: 'Draft' }),
        ],
        openapi: { 'shop/toys': openapi },
      });
      backstage = await startCatalogBackend({ bridgeUrl: bridge.url, token: bridge.token });

      const toys = await waitForEntity(backstage.url, 'shop--toys', true);
      expect(toys.kind).toBe('API');
      expect(toys.metadata.title).toBe('Toys API');
      expect(toys.spec?.owner).toBe('group:default/toys-team');
      expect(toys.spec?.definition).toBe(openapi);
      expect(toys.metadata.annotations?.['apiportal.dev/product-namespace']).toBe('shop');
      expect(toys.metadata.annotations?.['backstage.io/managed-by-location']).toBe(
        `apiportal:${bridge.url}/api/v1/products/shop/toys`,
      );
      // The catalog resolved the owner into a relation.
      expect(toys.relations).toContainEqual(
        expect.objectContaining({ type: 'ownedBy', targetRef: 'group:default/toys-team' }),
      );

      const games = await waitForEntity(backstage.url, 'games--toys', true);
      expect(games.spec?.owner).toBe('games-team');
      expect(String(games.spec?.definition)).toMatch(/"openapi": "3\.0\.3"/);

      const names = (await getApiEntities(backstage.url)).map(e => e.metadata.name).sort();
      expect(names).toStrictEqual(['games--toys', 'shop--toys']);
      // Every request carried the bearer token.
      const token = `Bearer ${bridge.token}`;
      expect(bridge.requests.filter(r => r.authorization !== token)).toStrictEqual([]);
    }, 60_000);

    it('a failing bridge keeps the catalog as it was', async () => {
      const { bridge, backstage } = started();
      const before = bridge.requests.length;
      bridge.mode = 'error';
      // Let at least two scheduled runs hit the failing bridge.
      const deadline = Date.now() + 15_000;
      while (bridge.requests.filter((r, i) => i >= before && r.path === '/api/v1/products').length < 2) {
        // The provider kept polling the bridge.
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise(r => setTimeout(r, 100));
      }
      const names = (await getApiEntities(backstage.url)).map(e => e.metadata.name).sort();
      expect(names).toStrictEqual(['games--toys', 'shop--toys']);
      bridge.mode = 'ok';
    }, 60_000);

    it('a product removed from the bridge disappears after the next refresh', async () => {
      const { bridge, backstage } = started();
      bridge.products = bridge.products.filter(p => p.namespace !== 'games');
      await waitForEntity(backstage.url, 'games--toys', false, { timeoutMs: 15_000 });
      const names = (await getApiEntities(backstage.url)).map(e => e.metadata.name);
      expect(names).toStrictEqual(['shop--toys']);
    }, 60_000);
  });
}
