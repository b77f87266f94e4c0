import { createHash } from 'node:crypto';
import type {
  LoggerService,
  SchedulerService,
  SchedulerServiceTaskRunner,
} from '@backstage/backend-plugin-api';
import { ANNOTATION_LOCATION, ANNOTATION_ORIGIN_LOCATION, type Entity } from '@backstage/catalog-model';
import type { Config } from '@backstage/config';
import type { EntityProvider, EntityProviderConnection } from '@backstage/plugin-catalog-node';
import pLimit from 'p-limit';
import { BridgeTls, FileToken, StaticToken, type TokenSource } from '../apiportal/credentials';
import { ApiportalReadError, BridgeClient, type FetchLike } from '../apiportal/read';
import { defaultViewSchema, type ViewSchema } from '../apiportal/schema';
import type { Product, ProductList } from '../apiportal/types';
import { NO_USAGE, productKey, usageByProduct, type ProductUsage } from '../apiportal/usage';
import {
  defaultApiportalEntityTransformer,
  productLocation,
} from '../transformers/defaultApiportalEntityTransformer';
import type { ApiportalEntityTransformer, ApiportalTransformContext } from '../transformers/types';
import { readProviderConfigs, type ApiportalEntityProviderConfig } from './ApiportalEntityProviderConfig';

/** After this long without applying a mutation, read everything without `If-None-Match` and apply once. */
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
  /** A full mutation was applied; `consumersKnown` is false when the bridge would not show keys to the token. */
  | { status: 'applied'; entities: number; skipped: number; consumersKnown: boolean }
  /** Nothing changed since the last mutation. */
  | { status: 'unchanged' }
  /** The bridge asked (429/503 with Retry-After) not to be called before `until`; nothing was read. */
  | { status: 'deferred'; until: Date }
  /** Something failed; nothing was applied, the catalog keeps its last good set. */
  | { status: 'failed'; error: Error };

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
 * entities, with one full mutation per change under its own provider name, `apiportal-provider:<id>`: another
 * provider's entities are never touched. When the bridge is down, slow or answers anything but the contract, it
 * logs a warning and applies nothing, so the catalog keeps the last good set.
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
  /** The last product list read, for 304s. */
  private products?: { etag?: string; signature: string; list: ProductList };
  /**
   * The last approved keys read, for 304s and for keeping usage through a transient key-view failure; `usage` is
   * undefined when the list covered only some namespaces.
   */
  private keys?: { etag?: string; signature: string; usage?: Map<string, ProductUsage> };
  /** Why consumer counts are unknown, while they are. */
  private keysUnavailable?: 'forbidden' | 'absent' | 'partial';
  /** What the last applied mutation was made from. */
  private appliedSignature?: string;
  private lastAppliedAt = 0;
  /** From a Retry-After: no request before this time. */
  private notBefore = 0;
  private loggedScope?: string;
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
   * Reads the bridge once and, when anything changed, applies the result as a full mutation. Concurrent calls
   * share one run. Failures are logged and returned, never thrown, so the scheduled task cannot take the backend
   * down. `signal` (the scheduled task's) cancels the run's requests; a cancelled run applies nothing.
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
    // Long after the last mutation, read and apply everything once more, in case the catalog changed behind this
    // replica's back (another replica ran the task meanwhile). Before the first mutation there is nothing to redo.
    const fullResync = this.lastAppliedAt > 0 && now - this.lastAppliedAt >= FULL_RESYNC_INTERVAL_MS;
    try {
      const products = await this.readProducts(fullResync, signal);
      const keys = await this.readUsage(fullResync, signal);

      const published = products.list.items.filter(p => p.publishStatus === 'Published');
      const skipped = products.list.items.length - published.length;
      if (skipped > 0) {
        this.logger.debug(`skipping ${skipped} apiportal product(s) that are not Published`);
      }
      const { definitions, signature: definitionsSignature } = await this.fetchDefinitions(published, signal);
      const signature = `${products.signature}|${keys.signature}|${definitionsSignature}`;
      if (!fullResync && signature === this.appliedSignature) {
        this.logger.debug('apiportal products, keys and documents unchanged; keeping the catalog as it is');
        return { status: 'unchanged' };
      }

      const entities = await this.transform(published, definitions, keys.usage);
      if (signal?.aborted) {
        throw new Error('the refresh was cancelled (task timeout or shutdown) before it could be applied');
      }
      await connection.applyMutation({
        type: 'full',
        entities: entities.map(entity => ({ entity, locationKey: this.getProviderName() })),
      });

      this.appliedSignature = signature;
      this.lastAppliedAt = Date.now();
      const uids = new Set(published.map(uidOf));
      for (const uid of this.definitions.keys()) {
        if (!uids.has(uid)) this.definitions.delete(uid);
      }
      this.logger.info(
        `applied ${entities.length} API entities from cluster ${this.config.cluster} (${this.config.baseUrl})${
          keys.usage ? '' : ', without consumers'
        }`,
      );
      return {
        status: 'applied',
        entities: entities.length,
        skipped: published.length - entities.length + skipped,
        consumersKnown: keys.usage !== undefined,
      };
    } catch (e) {
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

  /** The product list, from the bridge or (on 304) from the last read. */
  private async readProducts(
    fullResync: boolean,
    signal?: AbortSignal,
  ): Promise<{ signature: string; list: ProductList }> {
    const cached = this.products;
    const read = await this.client.readProducts({ etag: fullResync ? undefined : cached?.etag, signal });
    if (read.notModified) {
      if (!cached) throw new Error('the bridge answered 304 for a product list this provider never read');
      return cached;
    }
    const list = read.value;
    this.products = { etag: read.etag, signature: read.etag ?? digest(list), list };
    this.logScope(list);
    return this.products;
  }

  /**
   * Approved consumers per product. Unknown (`usage: undefined`, entities go out without consumer annotations, a
   * warning logged once) when the bridge answers 403 or 404 (the token may not list keys, or the bridge has no key
   * view) or lists keys of only some namespaces (counts would be too low). Any other failure keeps the last usage
   * read; with none read yet, the run fails (and the catalog keeps its entities).
   */
  private async readUsage(
    fullResync: boolean,
    signal?: AbortSignal,
  ): Promise<{ signature: string; usage?: Map<string, ProductUsage> }> {
    const cached = this.keys;
    try {
      const read = await this.client.readApprovedKeys({ etag: fullResync ? undefined : cached?.etag, signal });
      if (read.notModified) {
        if (!cached) throw new Error('the bridge answered 304 for a key list this provider never read');
        return cached;
      }
      const scope = read.value.scope;
      if (scope && !scope.allNamespaces) {
        this.keys = { etag: read.etag, signature: `keys-partial:${scope.namespaces.join(',')}` };
        this.keysUnavailableBecause(
          'partial',
          `the token may list API keys only in these namespaces, so consumer counts would be too low and entities carry none: ${
            scope.namespaces.join(', ') || '(none)'
          }; bind the apiportal-key-reader ClusterRole cluster-wide to the token's ServiceAccount to show them`,
        );
        return this.keys;
      }
      this.keysUnavailableBecause(undefined, 'the bridge shows every approved key again: entities carry their consumers');
      const usage = usageByProduct(read.value.items);
      this.keys = { etag: read.etag, signature: read.etag ?? digest([...usage.entries()]), usage };
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
        return { signature: `keys-unavailable:${e.status}` };
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

  private logScope(list: ProductList) {
    const scope = list.scope;
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

  private async transform(
    products: Product[],
    definitions: Map<string, string>,
    usage: Map<string, ProductUsage> | undefined,
  ): Promise<Entity[]> {
    const entities: Entity[] = [];
    const refs = new Map<string, string>();
    for (const product of products) {
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
        definition: definitions.get(uidOf(product)),
        usage: usage ? (usage.get(productKey(product.namespace, product.name)) ?? NO_USAGE) : undefined,
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
        continue;
      }
      const ref = `${entity.kind}:${entity.metadata.namespace ?? 'default'}/${entity.metadata.name}`.toLowerCase();
      const first = refs.get(ref);
      if (first !== undefined) {
        this.logger.warn(
          `products ${first} and ${product.namespace}/${product.name} both map to the entity ${ref}; keeping the first`,
        );
        continue;
      }
      refs.set(ref, `${product.namespace}/${product.name}`);
      entities.push(withLocations(entity, productLocation(this.config.baseUrl, product.namespace, product.name)));
    }
    return entities;
  }

  /**
   * OpenAPI documents of the products that have one, from the cache when the product's uid and lastSyncTime are
   * unchanged. A document that cannot be read falls back to the last one seen for the product, else to the stub;
   * it is tried again on the next run. The signature says which version of each document is used.
   */
  private async fetchDefinitions(
    products: Product[],
    signal?: AbortSignal,
  ): Promise<{ definitions: Map<string, string>; signature: string }> {
    const definitions = new Map<string, string>();
    const versions = new Map<string, string>();
    const toFetch: Product[] = [];
    for (const product of products) {
      if (!product.openapi?.available) continue;
      const cached = this.definitions.get(uidOf(product));
      const syncTime = product.openapi.lastSyncTime;
      if (cached && syncTime && cached.lastSyncTime === syncTime) {
        definitions.set(uidOf(product), cached.definition);
        versions.set(uidOf(product), syncTime);
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
          const syncTime = product.openapi?.lastSyncTime ?? '';
          versions.set(uidOf(product), syncTime || digest(definition));
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
      if (previous) {
        definitions.set(uidOf(product), previous.definition);
        versions.set(uidOf(product), `stale:${previous.lastSyncTime}`);
      } else {
        versions.set(uidOf(product), 'stub');
      }
    };
    await Promise.all(toFetch.map(product => limit(() => fetchOne(product))));
    const signature = digest([...versions.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { definitions, signature };
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

/** What the document cache is keyed by: the product's uid (a recreated product is another product). */
function uidOf(product: Product): string {
  return product.uid ?? productKey(product.namespace, product.name);
}

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}
