import type {
  LoggerService,
  SchedulerService,
  SchedulerServiceTaskRunner,
} from '@backstage/backend-plugin-api';
import type { Config } from '@backstage/config';
import type { ApiEntityV1alpha1 } from '@backstage/catalog-model';
import type { EntityProvider, EntityProviderConnection } from '@backstage/plugin-catalog-node';
import { readOpenApi, readProducts, type BridgeClientOptions } from '../apiportal/read';
import { locationKey, productToEntity } from '../apiportal/transform';
import type { Product } from '../apiportal/types';
import { readProviderConfig, type ApiportalEntityProviderConfig } from './ApiportalEntityProviderConfig';

/** After this long without applying a mutation, ask for the list without `If-None-Match` once. */
export const FULL_RESYNC_INTERVAL_MS = 10 * 60 * 1000;
/** OpenAPI documents fetched at the same time. */
const OPENAPI_CONCURRENCY = 4;

/** What one refresh did; `refresh()` never throws for bridge or catalog failures, it reports them here. */
export type RefreshResult =
  | { status: 'applied'; entities: number; skipped: number }
  | { status: 'unchanged' }
  | { status: 'failed'; error: Error };

export interface ApiportalEntityProviderOptions {
  logger: LoggerService;
  /** Runs `refresh()` on a schedule once connected. Without it, call `refresh()` yourself. */
  taskRunner?: SchedulerServiceTaskRunner;
  /** Per-request timeout towards the bridge, default 10 s. */
  timeoutMs?: number;
  /** For tests: the `fetch` to use. */
  fetch?: typeof fetch;
}

/**
 * Reads apiportal's published API products from the bridge and keeps them in the catalog as `kind: API`
 * entities, with one full mutation per change. When the bridge is down, slow or answers anything but the
 * contract, it logs a warning and applies nothing, so the catalog keeps the last good set.
 */
export class ApiportalEntityProvider implements EntityProvider {
  private readonly config: ApiportalEntityProviderConfig;
  private readonly logger: LoggerService;
  private readonly taskRunner?: SchedulerServiceTaskRunner;
  private readonly client: BridgeClientOptions;
  private connection?: EntityProviderConnection;
  /** ETag of the last list applied completely (all OpenAPI documents fetched). */
  private lastEtag?: string;
  private lastAppliedAt = 0;
  /** OpenAPI documents by product uid, valid while the product's `openapi.lastSyncTime` is unchanged. */
  private readonly definitions = new Map<string, { lastSyncTime: string; definition: string }>();
  private running?: Promise<RefreshResult>;

  /**
   * Builds the provider from `catalog.providers.apiportal`, scheduled with `config.schedule` through
   * `scheduler` (or with the given `schedule`). Returns undefined when the section is absent.
   */
  static fromConfig(
    rootConfig: Config,
    deps: {
      logger: LoggerService;
      scheduler?: SchedulerService;
      schedule?: SchedulerServiceTaskRunner;
      timeoutMs?: number;
    },
  ): ApiportalEntityProvider | undefined {
    const config = readProviderConfig(rootConfig);
    if (!config) {
      return undefined;
    }
    const taskRunner = deps.schedule ?? deps.scheduler?.createScheduledTaskRunner(config.schedule);
    if (!taskRunner) {
      throw new Error('ApiportalEntityProvider needs either a scheduler or a schedule');
    }
    return new ApiportalEntityProvider(config, { logger: deps.logger, taskRunner, timeoutMs: deps.timeoutMs });
  }

  constructor(config: ApiportalEntityProviderConfig, options: ApiportalEntityProviderOptions) {
    this.config = config;
    this.logger = options.logger.child({ target: this.getProviderName(), bridge: config.baseUrl });
    this.taskRunner = options.taskRunner;
    this.client = {
      baseUrl: config.baseUrl,
      token: config.token,
      timeoutMs: options.timeoutMs,
      fetch: options.fetch,
    };
  }

  getProviderName(): string {
    return 'apiportal';
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

  /**
   * Reads the bridge once and, when the list changed, applies it as a full mutation. Concurrent calls share one
   * run. Failures are logged and returned, never thrown, so the scheduled task cannot take the backend down.
   * `signal` (the scheduled task's) cancels the run's requests; a cancelled run applies nothing.
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
    const client: BridgeClientOptions = { ...this.client, signal };
    if (!connection) {
      const error = new Error('ApiportalEntityProvider is not connected to the catalog yet');
      this.logger.warn(error.message);
      return { status: 'failed', error };
    }
    try {
      const revalidate = this.lastEtag && Date.now() - this.lastAppliedAt < FULL_RESYNC_INTERVAL_MS;
      const list = await readProducts(client, { etag: revalidate ? this.lastEtag : undefined });
      if (list.notModified) {
        this.logger.debug('apiportal products unchanged (304), keeping the catalog as it is');
        return { status: 'unchanged' };
      }

      const published = list.products.filter(p => p.publishStatus === 'Published');
      const skipped = list.products.length - published.length;
      if (skipped > 0) {
        this.logger.debug(`skipping ${skipped} apiportal product(s) that are not Published`);
      }

      const { definitions, complete } = await this.fetchDefinitions(client, published);
      if (signal?.aborted) {
        throw new Error('the refresh was cancelled (task timeout or shutdown) before it could be applied');
      }
      const entities = published.map(product =>
        productToEntity(product, this.config, definitions.get(product.uid)),
      );

      await connection.applyMutation({
        type: 'full',
        entities: entities.map((entity: ApiEntityV1alpha1) => ({
          entity,
          locationKey: locationKey(this.config.baseUrl),
        })),
      });

      // Only an ETag whose every OpenAPI document was fetched may short-cut the next run; otherwise the next
      // run reads the list again and retries the missing documents.
      this.lastEtag = complete ? list.etag : undefined;
      this.lastAppliedAt = Date.now();
      const uids = new Set(published.map(p => p.uid));
      for (const uid of this.definitions.keys()) {
        if (!uids.has(uid)) this.definitions.delete(uid);
      }
      this.logger.info(`applied ${entities.length} API entities from the apiportal bridge`);
      return { status: 'applied', entities: entities.length, skipped };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.logger.warn(
        `apiportal catalog refresh failed, the catalog keeps its last good set of API entities: ${error.message}`,
      );
      return { status: 'failed', error };
    }
  }

  /**
   * OpenAPI documents of the products that have one, from the cache when the product's uid and lastSyncTime are
   * unchanged. A document that cannot be read falls back to the last one seen for the product, else to the stub.
   */
  private async fetchDefinitions(
    client: BridgeClientOptions,
    products: Product[],
  ): Promise<{ definitions: Map<string, string>; complete: boolean }> {
    const definitions = new Map<string, string>();
    let complete = true;
    const toFetch: Product[] = [];
    for (const product of products) {
      if (!product.openapi?.available) continue;
      const cached = this.definitions.get(product.uid);
      const syncTime = product.openapi.lastSyncTime;
      if (cached && syncTime && cached.lastSyncTime === syncTime) {
        definitions.set(product.uid, cached.definition);
      } else {
        toFetch.push(product);
      }
    }

    let next = 0;
    const worker = async () => {
      while (next < toFetch.length) {
        const product = toFetch[next++];
        try {
          const definition = await readOpenApi(client, product.namespace, product.name);
          if (definition === undefined) {
            this.logger.warn(
              `apiportal product ${product.namespace}/${product.name} says it has an OpenAPI document but the bridge has none (404); using a stub definition`,
            );
            complete = false;
            continue;
          }
          definitions.set(product.uid, definition);
          if (product.openapi?.lastSyncTime) {
            this.definitions.set(product.uid, { lastSyncTime: product.openapi.lastSyncTime, definition });
          }
        } catch (e) {
          complete = false;
          const previous = this.definitions.get(product.uid);
          if (previous) definitions.set(product.uid, previous.definition);
          this.logger.warn(
            `could not read the OpenAPI document of apiportal product ${product.namespace}/${product.name}, using ${
              previous ? 'the last one read' : 'a stub definition'
            }: ${(e as Error).message}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(OPENAPI_CONCURRENCY, toFetch.length) }, worker));
    return { definitions, complete };
  }
}
