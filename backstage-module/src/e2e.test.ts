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
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
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
  test('APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN come together', () => {
    assert.fail('set both APIPORTAL_BRIDGE_URL and APIPORTAL_BRIDGE_TOKEN for the real bridge, or neither for the fake one');
  });
} else if (realBridgeUrl && realBridgeToken) {
  describe('Backstage catalog against the real apiportal bridge', { timeout: 120_000 }, () => {
    let backstage: RunningCatalogBackend | undefined;
    after(async () => backstage?.stop());

    test('every product the bridge lists becomes an API entity', async () => {
      const list = await readProducts({ baseUrl: realBridgeUrl, token: realBridgeToken });
      assert.equal(list.notModified, false);
      const published = list.notModified ? [] : list.products.filter(p => p.publishStatus === 'Published');
      assert.ok(published.length > 0, `the bridge at ${realBridgeUrl} lists no published product`);

      backstage = await startCatalogBackend({ bridgeUrl: realBridgeUrl, token: realBridgeToken });
      const url = backstage.url;
      for (const product of published) {
        const entity = await waitForEntity(url, entityName(product.namespace, product.name), true);
        assert.equal(entity.metadata.annotations?.['apiportal.dev/product-uid'], product.uid);
        assert.equal(entity.metadata.title, product.displayName ?? undefined);
      }
    });

    const removeProduct = process.env.APIPORTAL_E2E_REMOVE_PRODUCT;
    const removeCmd = process.env.APIPORTAL_E2E_REMOVE_CMD;
    test(
      'a product removed from the bridge leaves the catalog',
      { skip: !(removeProduct && removeCmd) && 'set APIPORTAL_E2E_REMOVE_PRODUCT and APIPORTAL_E2E_REMOVE_CMD' },
      async () => {
        assert.ok(backstage, 'the previous test started Backstage');
        const [ns, name] = removeProduct!.split('/');
        const entity = entityName(ns, name);
        await waitForEntity(backstage.url, entity, true);
        execSync(removeCmd!, { stdio: 'inherit', shell: '/bin/sh' });
        await waitForEntity(backstage.url, entity, false);
      },
    );
  });
} else {
  describe('Backstage catalog against a local fake bridge', { timeout: 60_000 }, () => {
    let bridge: FakeBridge | undefined;
    let backstage: RunningCatalogBackend | undefined;
    after(async () => {
      await backstage?.stop();
      await bridge?.close();
    });

    const openapi = JSON.stringify({ openapi: '3.0.3', info: { title: 'Toys', version: 'v1' }, paths: { '/toys': {} } });

    test('published products appear as API entities, drafts do not', async () => {
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
      assert.equal(toys.kind, 'API');
      assert.equal(toys.metadata.title, 'Toys API');
      assert.equal(toys.spec?.owner, 'group:default/toys-team');
      assert.equal(toys.spec?.definition, openapi);
      assert.equal(toys.metadata.annotations?.['apiportal.dev/product-namespace'], 'shop');
      assert.equal(
        toys.metadata.annotations?.['backstage.io/managed-by-location'],
        `apiportal:${bridge.url}/api/v1/products/shop/toys`,
      );
      // The catalog resolved the owner into a relation.
      assert.ok(
        toys.relations?.some(r => r.type === 'ownedBy' && r.targetRef === 'group:default/toys-team'),
        `relations: ${JSON.stringify(toys.relations)}`,
      );

      const games = await waitForEntity(backstage.url, 'games--toys', true);
      assert.equal(games.spec?.owner, 'games-team');
      assert.match(String(games.spec?.definition), /"openapi": "3\.0\.3"/);

      const names = (await getApiEntities(backstage.url)).map(e => e.metadata.name).sort();
      assert.deepEqual(names, ['games--toys', 'shop--toys']);
      assert.ok(
        bridge.requests.every(r => r.authorization === `Bearer ${bridge!.token}`),
        'every request carried the bearer token',
      );
    });

    test('a failing bridge keeps the catalog as it was', async () => {
      assert.ok(bridge && backstage);
      const before = bridge.requests.length;
      bridge.mode = 'error';
      // Let at least two scheduled runs hit the failing bridge.
      const deadline = Date.now() + 15_000;
      while (bridge.requests.filter((r, i) => i >= before && r.path === '/api/v1/products').length < 2) {
        assert.ok(Date.now() < deadline, 'the provider kept polling the bridge');
        await new Promise(r => setTimeout(r, 100));
      }
      const names = (await getApiEntities(backstage.url)).map(e => e.metadata.name).sort();
      assert.deepEqual(names, ['games--toys', 'shop--toys']);
      bridge.mode = 'ok';
    });

    test('a product removed from the bridge disappears after the next refresh', async () => {
      assert.ok(bridge && backstage);
      bridge.products = bridge.products.filter(p => p.namespace !== 'games');
      await waitForEntity(backstage.url, 'games--toys', false, { timeoutMs: 15_000 });
      const names = (await getApiEntities(backstage.url)).map(e => e.metadata.name);
      assert.deepEqual(names, ['shop--toys']);
    });
  });
}
