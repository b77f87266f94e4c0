import type {
  LoggerService,
  SchedulerService,
  SchedulerServiceTaskRunner,
} from '@backstage/backend-plugin-api';
import { ANNOTATION_LOCATION, ANNOTATION_ORIGIN_LOCATION, stringifyEntityRef, type Entity } from '@backstage/catalog-model';
import type { Config } from '@backstage/config';
import type { EntityProvider, EntityProviderConnection } from '@backstage/plugin-catalog-node';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { BridgeTls, FileToken, StaticToken, type TokenSource } from '../apiportal/credentials';
import { ApiportalReadError, BridgeClient, type FetchLike } from '../apiportal/read';
import { defaultViewSchema, type ViewSchema } from '../apiportal/schema';
import type { Product, ProductListScope } from '../apiportal/types';
import { NO_USAGE, productKey, usageByProduct, type ProductUsage } from '../apiportal/usage';
import {
  defaultApiportalEntityTransformer,
  productLocation,
} from '../transformers/defaultApiportalEntityTransformer';
import type { ApiportalEntityTransformer, ApiportalTransformContext } from '../transformers/types';
import { readProviderConfigs, type ApiportalEntityProviderConfig } from './ApiportalEntityProviderConfig';

/** After this long without a full mutation, read everything and apply it in full once. */
export const FULL_RESYNC_INTERVAL_MS = 10 * 60 * 1000;
/** The longest a `Retry-After` from the bridge postpones the next read. */
export const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;
/** OpenAPI documents fetched at the same time (p-limit). */
const OPENAPI_CONCURRENCY = 4;

/**
 * What one refresh did; `refresh()` never throws for bridge or catalog failures, it reports them here.
 *
 * @public
 */
export type RefreshResult =
  /**
   * Every entity was applied as a full mutation (the first run, a periodic resync, after a failure, or when the
   * bridge could not tell what changed); `consumersKnown` is false when the bridge would not show keys to the
   * token.
   */
  | { status: 'applied'; mutation: 'full'; entities: number; skipped: number; consumersKnown: boolean }
  /** Only the entities that changed were applied, as a delta mutation: `added` added or replaced, `removed` removed. */
  | {
      status: 'applied';
      mutation: 'delta';
      entities: number;
      added: number;
      removed: number;
      skipped: number;
      consumersKnown: boolean;
    }
  /** Nothing changed since the last mutation. */
  | { status: 'unchanged' }
  /** The bridge asked (429/503 with Retry-After) not to be called before `until`; nothing was read. */
  | { status: 'deferred'; until: Date }
  /** Something failed; nothing was applied, the catalog keeps its last good set, and the next run is a full one. */
  | { status: 'failed'; error: Error };

/** The bridge's published products at one version of its list, by `namespace/name`. */
interface Catalog {
  version: string;
  products: Map<string, Product>;
}

/** The entity a product became (after location annotations), and the inputs it became it from. */
interface Transformed {
  product: Product;
  usage: ProductUsage | undefined;
  definition: string | undefined;
  entity: Entity | undefined;
}

/** Whether two usages are the same: the same object (keys unchanged since), or the same counts. */
function sameUsage(a: ProductUsage | undefined, b: ProductUsage | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b));
}

/** @public */
export interface ApiportalEntityProviderOptions {
  logger: LoggerService;
  /** Runs `refresh()` on a schedule once connected. Without it, call `refresh()` yourself. */
  taskRunner?: SchedulerServiceTaskRunner;
  /** Maps products to entities; default `defaultApiportalEntityTransformer`. */
  transformer?: ApiportalEntityTransformer;
  /** Whether entity names include the cluster; `fromConfig` sets it when more than one provider is configured. */
  clusterInName?: boolean;
  /** Per-request timeout towards the bridge, default 10 s. */
  timeoutMs?: number;
  /** For tests: the `fetch` to use. */
  fetch?: FetchLike;
  /** For tests: the view schema; default the package's copy. */
  schema?: ViewSchema;
}

/**
 * Reads one apiportal bridge (one cluster) and keeps its published API products in the catalog as `kind: API`
 * entities under its own provider name, `apiportal-provider:<id>`: another provider's entities are never touched.
 * It asks the bridge what changed since the version it holds and applies the entities that changed as a delta
 * mutation; it reads and applies everything as a full mutation on its first run, every ten minutes, after any
 * failure, and whenever the bridge cannot tell what changed. When the bridge is down, slow or answers anything but
 * the contract, it logs a warning and applies nothing, so the catalog keeps the last good set.
 *
 * @public
 */
export class ApiportalEntityProvider implements EntityProvider {
  private readonly config: ApiportalEntityProviderConfig;
  private readonly logger: LoggerService;
  private readonly taskRunner?: SchedulerServiceTaskRunner;
  private readonly transformer: ApiportalEntityTransformer;
  private readonly clusterInName: boolean;
  private readonly tls: BridgeTls;
  private readonly client: BridgeClient;
  private connection?: EntityProviderConnection;
  /** The products the last applied mutation was made from. */
  private catalog?: Catalog;
  /** The entities of the last applied mutation, by entity reference. */
  private applied?: Map<string, Entity>;
  /** Whether the next run reads everything and applies it as a full mutation. */
  private fullNext = true;
  private lastFullAt = 0;
  /** What each product (`namespace/name`) became, so that a product whose inputs did not change is not transformed again. */
  private readonly transformed = new Map<string, Transformed>();
  /**
   * The last approved keys read, for 304s and for keeping usage through a transient key-view failure; `usage` is
   * undefined when the list covered only some namespaces.
   */
  private keys?: { etag?: string; usage?: Map<string, ProductUsage> };
  /** Why consumer counts are unknown, while they are. */
  private keysUnavailable?: 'forbidden' | 'absent' | 'partial';
  /** From a Retry-After: no request before this time. */
  private notBefore = 0;
  private loggedScope?: string;
  private loggedCollisions = '';
  /** OpenAPI documents by product uid, valid while the product's `openapi.lastSyncTime` is unchanged. */
  private readonly definitions = new Map<string, { lastSyncTime: string; definition: string }>();
  private running?: Promise<RefreshResult>;

  /**
   * One provider per bridge configured under `catalog.providers.apiportal` (none when the section is absent),
   * each scheduled with its own `schedule` through `scheduler` (or all with the given `schedule`). Throws a
   * descriptive error when the configuration is invalid, a token or CA file cannot be read, or the package's view
   * schema is missing.
   */
  static fromConfig(
    rootConfig: Config,
    deps: {
      logger: LoggerService;
      scheduler?: SchedulerService;
      schedule?: SchedulerServiceTaskRunner;
      transformer?: ApiportalEntityTransformer;
      timeoutMs?: number;
    },
  ): ApiportalEntityProvider[] {
    const configs = readProviderConfigs(rootConfig);
    const clusterInName = configs.length > 1;
    return configs.map(config => {
      const taskRunner = deps.schedule ?? deps.scheduler?.createScheduledTaskRunner(config.schedule);
      if (!taskRunner) {
        throw new Error('ApiportalEntityProvider.fromConfig needs either a scheduler or a schedule');
      }
      return new ApiportalEntityProvider(config, {
        logger: deps.logger,
        taskRunner,
        transformer: deps.transformer,
        clusterInName,
        timeoutMs: deps.timeoutMs,
      });
    });
  }

  constructor(config: ApiportalEntityProviderConfig, options: ApiportalEntityProviderOptions) {
    this.config = config;
    this.logger = options.logger.child({ target: this.getProviderName(), cluster: config.cluster });
    this.taskRunner = options.taskRunner;
    this.transformer = options.transformer ?? defaultApiportalEntityTransformer;
    this.clusterInName = options.clusterInName ?? false;

    const where = `apiportal provider "${config.id}"`;
    let token: TokenSource;
    if (config.tokenFile) {
      const file = new FileToken(config.tokenFile);
      try {
        file.checkNow();
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      token = file;
    } else if (config.token) {
      token = new StaticToken(config.token, `the ${where}'s token setting`);
    } else {
      throw new Error(`${where}: set token or tokenFile`);
    }
    this.tls = new BridgeTls(config.caFile);
    try {
      this.tls.checkNow();
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    // Fail at start-up, not at every run, when the package has no schema.
    const schema = options.schema ?? defaultViewSchema();
    this.client = new BridgeClient({
      baseUrl: config.baseUrl,
      token,
      tls: this.tls,
      schema,
      timeoutMs: options.timeoutMs,
      fetch: options.fetch,
    });

    const url = new URL(config.baseUrl);
    if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
      this.logger.warn(
        `the bridge at ${config.baseUrl} is read over plain http, so its token crosses the network unencrypted; use https (the bridge's default) with caFile outside local development`,
      );
    }
  }

  getProviderName(): string {
    return `apiportal-provider:${this.config.id}`;
  }

  async connect(connection: EntityProviderConnection): Promise<void> {
    this.connection = connection;
    if (this.taskRunner) {
      await this.taskRunner.run({
        id: `${this.getProviderName()}:refresh`,
        fn: async abortSignal => {
          await this.refresh(abortSignal);
        },
      });
    }
  }

  /** Closes the connections to the bridge. */
  async close(): Promise<void> {
    await this.tls.close();
  }

  /**
   * Reads the bridge once and, when anything changed, applies it: as a delta mutation of the entities that changed
   * (from what changed in the bridge's list since the version this provider holds), or as a full mutation on the
   * first run, every `FULL_RESYNC_INTERVAL_MS`, after any failure, and when the bridge cannot tell what changed.
   * Concurrent calls share one run. Failures are logged and returned, never thrown, so the scheduled task cannot
   * take the backend down. `signal` (the scheduled task's) cancels the run's requests; a cancelled run applies
   * nothing.
   */
  refresh(signal?: AbortSignal): Promise<RefreshResult> {
    if (!this.running) {
      this.running = this.refreshOnce(signal).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async refreshOnce(signal?: AbortSignal): Promise<RefreshResult> {
    const connection = this.connection;
    if (!connection) {
      const error = new Error('ApiportalEntityProvider is not connected to the catalog yet');
      this.logger.warn(error.message);
      return { status: 'failed', error };
    }
    const now = Date.now();
    if (now < this.notBefore) {
      this.logger.debug(`the bridge asked not to be called before ${new Date(this.notBefore).toISOString()}`);
      return { status: 'deferred', until: new Date(this.notBefore) };
    }
    // Long after the last full mutation, read and apply everything once more, in case the catalog changed behind
    // this replica's back (another replica ran the task meanwhile).
    const resync = now - this.lastFullAt >= FULL_RESYNC_INTERVAL_MS;
    const started = performance.now();
    const took = () => `${Math.round(performance.now() - started)} ms`;
    try {
      const read = await this.readCatalog(this.fullNext || resync, signal);
      const keys = await this.readUsage(!read.changes, signal);
      const published = [...read.catalog.products.values()].sort(byNamespaceAndName);
      const definitions = await this.fetchDefinitions(published, signal);
      const desired = await this.desiredEntities(published, definitions, keys.usage);
      if (signal?.aborted) {
        throw new Error('the refresh was cancelled (task timeout or shutdown) before it could be applied');
      }
      const skipped = published.length - desired.size + read.notPublished;
      const consumersKnown = keys.usage !== undefined;
      const without = consumersKnown ? '' : ', without consumers';
      const locationKey = this.getProviderName();

      if (!read.changes || !this.applied) {
        await connection.applyMutation({
          type: 'full',
          entities: [...desired.values()].map(entity => ({ entity, locationKey })),
        });
        this.committed(read.catalog, desired, true);
        this.logger.info(
          `applied ${desired.size} API entities from cluster ${this.config.cluster} (${this.config.baseUrl})${without}, in full, in ${took()}`,
        );
        return { status: 'applied', mutation: 'full', entities: desired.size, skipped, consumersKnown };
      }

      const applied = this.applied;
      const added = [...desired.values()].filter(entity => {
        const before = applied.get(stringifyEntityRef(entity));
        return before !== entity && (before === undefined || JSON.stringify(before) !== JSON.stringify(entity));
      });
      const removed = [...applied.keys()].filter(ref => !desired.has(ref));
      if (added.length === 0 && removed.length === 0) {
        this.committed(read.catalog, desired, false);
        this.logger.debug('apiportal products, keys and documents unchanged; keeping the catalog as it is');
        return { status: 'unchanged' };
      }
      await connection.applyMutation({
        type: 'delta',
        added: added.map(entity => ({ entity, locationKey })),
        removed: removed.map(entityRef => ({ entityRef, locationKey })),
      });
      this.committed(read.catalog, desired, false);
      this.logger.info(
        `applied changes to API entities from cluster ${this.config.cluster} (${this.config.baseUrl}): ${added.length} added or changed, ${removed.length} removed, ${desired.size} in all${without}, in ${took()}`,
      );
      return {
        status: 'applied',
        mutation: 'delta',
        entities: desired.size,
        added: added.length,
        removed: removed.length,
        skipped,
        consumersKnown,
      };
    } catch (e) {
      // Whatever failed (the bridge, its answer, the transformer, the catalog's write), the next run starts over.
      this.fullNext = true;
      const error = e instanceof Error ? e : new Error(String(e));
      if (error instanceof ApiportalReadError && error.retryAfterMs !== undefined) {
        this.notBefore = Date.now() + Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS);
      }
      this.logger.warn(
        `apiportal catalog refresh failed, the catalog keeps its last good set of API entities from cluster ${this.config.cluster}: ${error.message}`,
      );
      return { status: 'failed', error };
    }
  }

  /** Remembers what the catalog now holds, once a mutation was applied (or none was needed). */
  private committed(catalog: Catalog, entities: Map<string, Entity>, full: boolean) {
    this.catalog = catalog;
    this.applied = entities;
    this.fullNext = false;
    if (full) this.lastFullAt = Date.now();
    const uids = new Set([...catalog.products.values()].map(uidOf));
    for (const uid of this.definitions.keys()) {
      if (!uids.has(uid)) this.definitions.delete(uid);
    }
  }

  /**
   * The bridge's published products: what changed since the version this provider holds applied to what it
   * holds (`changes: true`), or, when `full` is asked or the bridge cannot tell what changed (410, or an answer
   * for another version), the whole list. Nothing here changes the provider's state: a run that fails later
   * leaves it as it was.
   */
  private async readCatalog(
    full: boolean,
    signal?: AbortSignal,
  ): Promise<{ catalog: Catalog; changes: boolean; notPublished: number }> {
    const held = this.catalog;
    if (!full && held) {
      const read = await this.client.readProductChanges(held.version, { signal });
      if (read.expired) {
        this.logger.info(`the bridge cannot tell what changed since the list this provider holds (${read.reason}); reading every product`);
      } else if (read.value.since !== held.version) {
        this.logger.warn(
          `the bridge answered what changed since version ${read.value.since} to a request for what changed since ${held.version}; reading every product`,
        );
      } else {
        this.logScope(read.value.scope);
        const products = new Map(held.products);
        for (const removed of read.value.removed) products.delete(productKey(removed.namespace, removed.name));
        const notPublished = addPublished(products, read.value.items);
        return { catalog: { version: read.value.version, products }, changes: true, notPublished };
      }
    }
    const read = await this.client.readProducts({ signal });
    if (read.notModified) {
      throw new Error('the bridge answered 304 to a request for its product list without If-None-Match');
    }
    this.logScope(read.value.scope);
    const products = new Map<string, Product>();
    const notPublished = addPublished(products, read.value.items);
    if (notPublished > 0) {
      this.logger.debug(`skipping ${notPublished} apiportal product(s) that are not Published`);
    }
    return { catalog: { version: read.value.version, products }, changes: false, notPublished };
  }

  /**
   * Approved consumers per product. Unknown (`usage: undefined`, entities go out without consumer annotations, a
   * warning logged once) when the bridge answers 403 or 404 (the token may not list keys, or the bridge has no key
   * view) or lists keys of only some namespaces (counts would be too low). Any other failure keeps the last usage
   * read; with none read yet, the run fails (and the catalog keeps its entities).
   */
  private async readUsage(full: boolean, signal?: AbortSignal): Promise<{ usage?: Map<string, ProductUsage> }> {
    const cached = this.keys;
    try {
      const read = await this.client.readApprovedKeys({ etag: full ? undefined : cached?.etag, signal });
      if (read.notModified) {
        if (!cached) throw new Error('the bridge answered 304 for a key list this provider never read');
        return cached;
      }
      const scope = read.value.scope;
      if (scope && !scope.allNamespaces) {
        this.keys = { etag: read.etag };
        this.keysUnavailableBecause(
          'partial',
          `the token may list API keys only in these namespaces, so consumer counts would be too low and entities carry none: ${
            scope.namespaces.join(', ') || '(none)'
          }; bind the apiportal-key-reader ClusterRole cluster-wide to the token's ServiceAccount to show them`,
        );
        return this.keys;
      }
      this.keysUnavailableBecause(undefined, 'the bridge shows every approved key again: entities carry their consumers');
      this.keys = { etag: read.etag, usage: usageByProduct(read.value.items) };
      return this.keys;
    } catch (e) {
      if (e instanceof ApiportalReadError && (e.status === 403 || e.status === 404)) {
        this.keys = undefined;
        this.keysUnavailableBecause(
          e.status === 403 ? 'forbidden' : 'absent',
          e.status === 403
            ? `the bridge does not let this token list API keys, so entities carry no consumer counts; bind the apiportal-key-reader ClusterRole cluster-wide to the token's ServiceAccount to show them (${e.message})`
            : `the bridge has no key view (404), so entities carry no consumer counts; upgrade the bridge to show them (${e.message})`,
        );
        return {};
      }
      if (cached && !signal?.aborted) {
        if (e instanceof ApiportalReadError && e.retryAfterMs !== undefined) {
          this.notBefore = Date.now() + Math.min(e.retryAfterMs, MAX_RETRY_AFTER_MS);
        }
        this.logger.warn(
          `could not read approved keys, keeping the consumer counts read last: ${(e as Error).message}`,
        );
        return cached;
      }
      throw e;
    }
  }

  /**
   * Logs `message` when the reason consumer counts are unknown changes (`undefined`: they are known again): once
   * per reason, however many runs it lasts.
   */
  private keysUnavailableBecause(reason: 'forbidden' | 'absent' | 'partial' | undefined, message: string) {
    if (reason === this.keysUnavailable) return;
    if (reason) {
      this.logger.warn(message);
    } else if (this.keysUnavailable) {
      this.logger.info(message);
    }
    this.keysUnavailable = reason;
  }

  private logScope(scope: ProductListScope | undefined) {
    const description =
      !scope || scope.allNamespaces ? 'all' : scope.namespaces.length ? scope.namespaces.join(', ') : '(none)';
    if (description === this.loggedScope) return;
    if (description !== 'all') {
      this.logger.warn(
        `the token may list products only in these namespaces, so only their products appear in the catalog: ${description}; bind the apiportal-catalog-reader ClusterRole cluster-wide to list every namespace`,
      );
    } else if (this.loggedScope !== undefined) {
      this.logger.info('the token may list products in every namespace again');
    }
    this.loggedScope = description;
  }

  /**
   * The entities `products` (published, in the order of a full list) make, by entity reference: each product's
   * entity from the last run when its inputs (the product as read, its usage, its document) are the same, else
   * from the transformer. Whatever was read, the result is what transforming every product now would give (for a
   * transformer that depends only on its inputs): a delta mutation is the difference between it and what was
   * applied. If two products map to the same entity, the first is kept.
   */
  private async desiredEntities(
    products: Product[],
    definitions: Map<string, string>,
    usage: Map<string, ProductUsage> | undefined,
  ): Promise<Map<string, Entity>> {
    const entities = new Map<string, Entity>();
    const from = new Map<string, string>();
    const collisions: string[] = [];
    const current = new Set<string>();
    for (const product of products) {
      const id = productKey(product.namespace, product.name);
      current.add(id);
      const productUsage = usage ? (usage.get(id) ?? NO_USAGE) : undefined;
      const definition = definitions.get(uidOf(product));
      let transformed = this.transformed.get(id);
      if (
        !transformed ||
        transformed.product !== product ||
        !sameUsage(transformed.usage, productUsage) ||
        transformed.definition !== definition
      ) {
        const entity = await this.transformOne(product, definition, productUsage);
        transformed = {
          product,
          usage: productUsage,
          definition,
          entity: entity && withLocations(entity, productLocation(this.config.baseUrl, product.namespace, product.name)),
        };
        this.transformed.set(id, transformed);
      }
      // The same counts: compare by identity next time.
      transformed.usage = productUsage;
      if (!transformed.entity) continue;
      const ref = stringifyEntityRef(transformed.entity);
      const first = from.get(ref);
      if (first !== undefined) {
        collisions.push(`products ${first} and ${id} both map to the entity ${ref}; keeping the first`);
        continue;
      }
      from.set(ref, id);
      entities.set(ref, transformed.entity);
    }
    for (const id of this.transformed.keys()) {
      if (!current.has(id)) this.transformed.delete(id);
    }
    // Said when it starts, not on every run it lasts.
    const said = collisions.join('\n');
    if (said !== this.loggedCollisions) {
      for (const collision of collisions) this.logger.warn(collision);
      this.loggedCollisions = said;
    }
    return entities;
  }

  private async transformOne(
    product: Product,
    definition: string | undefined,
    usage: ProductUsage | undefined,
  ): Promise<Entity | undefined> {
    const context: ApiportalTransformContext = {
      providerId: this.config.id,
      cluster: this.config.cluster,
      clusterInName: this.clusterInName,
      baseUrl: this.config.baseUrl,
      owner: this.config.owner,
      defaultOwner: this.config.defaultOwner,
      system: this.config.system,
      allowedHosts: this.config.allowedHosts,
      lifecycle: this.config.lifecycle,
      definition,
      usage,
    };
    let entity: Entity | undefined;
    try {
      entity = await this.transformer(product, context);
    } catch (e) {
      throw new Error(
        `the entity transformer failed for product ${product.namespace}/${product.name}: ${(e as Error).message}`,
      );
    }
    if (!entity) {
      this.logger.debug(`the entity transformer left out product ${product.namespace}/${product.name}`);
    }
    return entity;
  }

  /**
   * OpenAPI documents of the products that have one, by product uid, from the cache when the product's uid and
   * lastSyncTime are unchanged. A document that cannot be read falls back to the last one seen for the product,
   * else to the stub; it is tried again on the next run.
   */
  private async fetchDefinitions(products: Product[], signal?: AbortSignal): Promise<Map<string, string>> {
    const definitions = new Map<string, string>();
    const toFetch: Product[] = [];
    for (const product of products) {
      if (!product.openapi?.available) continue;
      const cached = this.definitions.get(uidOf(product));
      const syncTime = product.openapi.lastSyncTime;
      if (cached && syncTime && cached.lastSyncTime === syncTime) {
        definitions.set(uidOf(product), cached.definition);
      } else {
        toFetch.push(product);
      }
    }

    const limit = pLimit(OPENAPI_CONCURRENCY);
    const fetchOne = async (product: Product) => {
      const previous = this.definitions.get(uidOf(product));
      try {
        const definition = await this.client.readOpenApi(product.namespace, product.name, { signal });
        if (definition !== undefined) {
          definitions.set(uidOf(product), definition);
          const syncTime = product.openapi?.lastSyncTime;
          if (syncTime) {
            this.definitions.set(uidOf(product), { lastSyncTime: syncTime, definition });
          }
          return;
        }
        this.logger.warn(
          `apiportal product ${product.namespace}/${product.name} says it has an OpenAPI document but the bridge has none (404); using ${
            previous ? 'the last one read' : 'a stub definition'
          }`,
        );
      } catch (e) {
        if (signal?.aborted) {
          // Nothing of this run will be applied: start no more requests.
          limit.clearQueue();
          throw e;
        }
        this.logger.warn(
          `could not read the OpenAPI document of apiportal product ${product.namespace}/${product.name}, using ${
            previous ? 'the last one read' : 'a stub definition'
          }: ${(e as Error).message}`,
        );
      }
      if (previous) definitions.set(uidOf(product), previous.definition);
    };
    await Promise.all(toFetch.map(product => limit(() => fetchOne(product))));
    return definitions;
  }
}

/** The entity with Backstage's location annotations, when the transformer did not set them. */
function withLocations(entity: Entity, location: string): Entity {
  const annotations = entity.metadata.annotations ?? {};
  if (annotations[ANNOTATION_LOCATION] && annotations[ANNOTATION_ORIGIN_LOCATION]) return entity;
  return {
    ...entity,
    metadata: {
      ...entity.metadata,
      annotations: {
        [ANNOTATION_LOCATION]: location,
        [ANNOTATION_ORIGIN_LOCATION]: location,
        ...annotations,
      },
    },
  };
}

/** Adds the Published ones of `items` to `products` (and drops the others from it); returns how many were not. */
function addPublished(products: Map<string, Product>, items: Product[]): number {
  let notPublished = 0;
  for (const item of items) {
    const id = productKey(item.namespace, item.name);
    if (item.publishStatus === 'Published') {
      products.set(id, item);
    } else {
      products.delete(id);
      notPublished++;
    }
  }
  return notPublished;
}

/** The order of the bridge's full list: by namespace, then name. */
function byNamespaceAndName(a: Product, b: Product): number {
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** What the document cache is keyed by: the product's uid (a recreated product is another product). */
function uidOf(product: Product): string {
  return product.uid ?? productKey(product.namespace, product.name);
}
