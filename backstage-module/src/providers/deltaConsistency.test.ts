/*
 * A provider that applies what changed (delta mutations) never leaves the catalog different from a full refresh,
 * whatever answers it misses or gets out of order. Over generated histories of a bridge (products created,
 * changed, published and unpublished, deleted, recreated under a new uid, renamed onto another's entity or left
 * out by the transformer, documents synced again, keys approved, suspended and deleted, the bridge forgetting its
 * versions as after a restart), a provider reads the bridge through a network that drops requests and answers
 * product reads with earlier answers: to the same question (a stale replica or cache) or to another one (changes
 * since another version). After every run:
 *
 * - a failed run applied nothing: the catalog is what it was;
 * - a run that got only true answers leaves exactly the entities a new provider's full refresh of the same bridge
 *   gives, whatever came before.
 */
import { stringifyEntityRef } from '@backstage/catalog-model';
import { fetch as undiciFetch } from 'undici';
import type { Key, KeyPhase } from '../apiportal/types';
import { makeKey, makeProduct, startFakeBridge, type FakeBridge } from '../testing/fakeBridge';
import { captureLogger } from '../testing/logger';
import { RecordingConnection } from '../testing/recordingConnection';
import { defaultApiportalEntityTransformer } from '../transformers/defaultApiportalEntityTransformer';
import { DEFAULT_OWNER_POLICY, DEFAULT_SYSTEM_POLICY } from '../transformers/ownership';
import type { ApiportalEntityTransformer } from '../transformers/types';
import { ApiportalEntityProvider, type ApiportalEntityProviderOptions } from './ApiportalEntityProvider';
import { DEFAULT_SCHEDULE } from './ApiportalEntityProviderConfig';

/** mulberry32: a small seeded generator, so that a failing history is replayed by its seed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    chance: (p: number) => next() < p,
    int: (n: number) => Math.floor(next() * n),
    pick<T>(items: readonly T[]): T {
      return items[Math.floor(next() * items.length)];
    },
  };
}
type Random = ReturnType<typeof random>;

/** Products named `alias` share one entity (the first in the list's order is kept); `skip` leaves one out. */
const transformer: ApiportalEntityTransformer = (product, context) => {
  if (product.labels.skip) return undefined;
  const entity = defaultApiportalEntityTransformer(product, context);
  if (product.labels.alias) entity.metadata.name = product.labels.alias;
  return entity;
};

function config(bridge: FakeBridge) {
  return {
    id: 'default',
    cluster: 'default',
    baseUrl: bridge.url,
    token: bridge.token,
    schedule: DEFAULT_SCHEDULE,
    owner: DEFAULT_OWNER_POLICY,
    defaultOwner: 'unknown',
    system: DEFAULT_SYSTEM_POLICY,
    allowedHosts: [],
    lifecycle: 'production',
  };
}

/** One random change to the bridge. */
function change(bridge: FakeBridge, r: Random, step: number) {
  const namespace = r.pick(['a', 'b', 'c']);
  const name = r.pick(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
  const index = bridge.products.findIndex(p => p.namespace === namespace && p.name === name);
  const products = [...bridge.products];
  const existing = index >= 0 ? products[index] : undefined;
  const kind = r.int(10);
  if (!existing) {
    products.push(
      makeProduct({
        namespace,
        name,
        uid: `uid-${namespace}-${name}-${step}`,
        publishStatus: r.chance(0.8) ? 'Published' : 'Draft',
        openapi: r.chance(0.3) ? { available: true, lastSyncTime: `t${step}` } : { available: false, lastSyncTime: null },
      }),
    );
  } else if (kind <= 2) {
    products[index] = { ...existing, displayName: `${name} API, version ${step}` };
  } else if (kind === 3) {
    products[index] = { ...existing, publishStatus: existing.publishStatus === 'Published' ? 'Draft' : 'Published' };
  } else if (kind === 4) {
    products.splice(index, 1);
  } else if (kind === 5) {
    products[index] = { ...existing, uid: `uid-${namespace}-${name}-${step}`, description: `recreated at ${step}` };
  } else if (kind === 6) {
    const labels = { ...existing.labels };
    if (labels.alias) delete labels.alias;
    else labels.alias = r.pick(['shared-x', 'shared-y']);
    products[index] = { ...existing, labels };
  } else if (kind === 7) {
    const labels = { ...existing.labels };
    if (labels.skip) delete labels.skip;
    else labels.skip = 'true';
    products[index] = { ...existing, labels };
  } else {
    products[index] = { ...existing, openapi: { available: true, lastSyncTime: `t${step}` } };
  }
  bridge.products = products;
  for (const p of bridge.products) {
    if (p.openapi?.available) {
      bridge.openapi.set(`${p.namespace}/${p.name}`, `openapi: 3.0.3\ninfo: {title: ${p.name}, version: "${p.openapi.lastSyncTime}"}\n`);
    }
  }
}

/** One random change to the keys: approved, suspended, another phase, deleted. */
function changeKeys(bridge: FakeBridge, r: Random) {
  const keys: Key[] = [...bridge.keys];
  if (keys.length > 0 && r.chance(0.4)) {
    const i = r.int(keys.length);
    if (r.chance(0.5)) {
      keys.splice(i, 1);
    } else {
      const phase: KeyPhase = r.pick(['Approved', 'Suspended', 'Revoked']);
      keys[i] = { ...keys[i], phase };
    }
  } else {
    const product = `${r.pick(['a', 'b', 'c'])}/${r.pick(['p0', 'p1', 'p2', 'p3', 'p4', 'p5'])}`;
    keys.push(
      makeKey(product, r.pick(['gold', 'bronze']), r.pick(['alice', 'bob', 'carol']), {
        name: `key-${keys.length}-${r.int(1000)}`,
        application: r.chance(0.5) ? r.pick(['web', 'batch']) : null,
      }),
    );
  }
  bridge.keys = keys;
}

interface Recorded {
  status: number;
  headers: [string, string][];
  body: string;
}

/**
 * The network between provider and bridge: `fault()` decides, per request, whether to drop it, answer a product
 * read with an earlier answer to the same URL, or with an earlier answer about changes since another version.
 */
function unreliable(decide: (url: URL) => 'drop' | 'same' | 'other' | 'ok', injected: () => void) {
  const answers = new Map<string, Recorded[]>();
  const fetchLike: ApiportalEntityProviderOptions['fetch'] = async (input, init) => {
    const url = new URL(String(input));
    const productRead = url.pathname === '/api/v1/products';
    const fault = decide(url);
    if (fault === 'drop') {
      injected();
      throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET', message: 'the network dropped it' } });
    }
    if (productRead && fault !== 'ok') {
      const key = url.search;
      const candidates =
        fault === 'same'
          ? (answers.get(key) ?? [])
          : [...answers.entries()].filter(([k]) => k !== key && k.startsWith('?since=')).flatMap(([, v]) => v);
      if (candidates.length > 0) {
        injected();
        const old = candidates[Math.floor(candidates.length / 2)];
        return new Response(old.body, { status: old.status, headers: old.headers }) as never;
      }
    }
    const response = await undiciFetch(url.toString(), init);
    if (!productRead) return response;
    const body = await response.text();
    const headers: [string, string][] = [...response.headers.entries()].filter(
      ([k]) => k !== 'content-encoding' && k !== 'content-length',
    );
    const recorded = { status: response.status, headers, body };
    answers.set(url.search, [...(answers.get(url.search) ?? []), recorded]);
    return new Response(body, { status: response.status, headers }) as never;
  };
  return fetchLike;
}

/** The catalog as Backstage holds it: entity references to entities and location keys. */
const contents = (connection: RecordingConnection) =>
  [...connection.catalog.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([ref, e]) => [ref, e.locationKey, e.entity]);

describe('delta mutations against full refreshes', () => {
  const seeds = Array.from({ length: 24 }, (_, i) => 1000 + i);

  it.each(seeds)('history %i: every run with true answers leaves what a full refresh gives', async seed => {
    const r = random(seed);
    const bridge = await startFakeBridge({ products: [], keys: [] });
    bridge.keepVersions = 3 + r.int(6);
    const logger = captureLogger();
    let faults = 0;
    const provider = new ApiportalEntityProvider(config(bridge), {
      logger,
      transformer,
      timeoutMs: 2000,
      fetch: unreliable(
        url => {
          const roll = r.int(100);
          if (roll < 8) return 'drop';
          if (url.pathname === '/api/v1/products' && roll < 20) return 'same';
          if (url.pathname === '/api/v1/products' && roll < 26) return 'other';
          return 'ok';
        },
        () => faults++,
      ),
    });
    const connection = new RecordingConnection();
    await provider.connect(connection);
    const mutations = { full: 0, delta: 0, checked: 0 };
    try {
      for (let step = 0; step < 30; step++) {
        for (let i = 0, n = 1 + r.int(3); i < n; i++) change(bridge, r, step);
        if (r.chance(0.5)) changeKeys(bridge, r);
        if (r.chance(0.05)) bridge.forgetVersions();

        const before = contents(connection);
        const faultsBefore = faults;
        const result = await provider.refresh();
        if (result.status === 'applied') mutations[result.mutation]++;
        // A failed run applied nothing.
        expect({ seed, step, catalog: result.status === 'failed' ? contents(connection) : before }).toStrictEqual({
          seed,
          step,
          catalog: before,
        });
        if (result.status === 'failed' || faults !== faultsBefore) continue;

        // A new provider's full refresh of the same bridge, through a network without faults.
        const reference = new ApiportalEntityProvider(config(bridge), { logger: captureLogger(), transformer });
        const full = new RecordingConnection();
        await reference.connect(full);
        const fullResult = await reference.refresh();
        await reference.close();
        expect(fullResult).toMatchObject({ status: 'applied', mutation: 'full' });
        expect({ seed, step, catalog: contents(connection) }).toStrictEqual({ seed, step, catalog: contents(full) });
        mutations.checked++;
      }
      // The history exercised both kinds of mutation, and was compared often.
      expect(mutations.delta).toBeGreaterThan(3);
      expect(mutations.full).toBeGreaterThan(0);
      expect(mutations.checked).toBeGreaterThan(5);
    } finally {
      await provider.close();
      await bridge.close();
    }
  }, 60_000);

  it('the comparison sees a difference: a catalog missing one entity is not what a full refresh gives', async () => {
    const bridge = await startFakeBridge({ products: [makeProduct({ namespace: 'a', name: 'p0' })] });
    try {
      const provider = new ApiportalEntityProvider(config(bridge), { logger: captureLogger(), transformer });
      const connection = new RecordingConnection();
      await provider.connect(connection);
      await provider.refresh();
      const whole = contents(connection);
      connection.catalog.delete(stringifyEntityRef({ kind: 'API', namespace: 'default', name: 'a--p0' }));
      expect(contents(connection)).not.toStrictEqual(whole);
      await provider.close();
    } finally {
      await bridge.close();
    }
  });
});
