import type { Entity } from '@backstage/catalog-model';
import type { Product } from '../apiportal/types';
import type { ProductUsage } from '../apiportal/usage';
import type { OwnerPolicy, SystemPolicy } from './ownership';

/**
 * What a transformer knows besides the product: which provider (bridge, cluster) it comes from, the configured
 * defaults, the product's OpenAPI document and its approved consumers.
 *
 * @public
 */
export interface ApiportalTransformContext {
  /** The provider's id: its key under `catalog.providers.apiportal` (`default` for the single-bridge form). */
  providerId: string;
  /** The cluster's name: the provider's `cluster` setting, else its id. */
  cluster: string;
  /**
   * Whether entity names include the cluster: true exactly when more than one provider is configured, so that
   * the same `namespace/name` in two clusters gives two entities.
   */
  clusterInName: boolean;
  /** The bridge's base URL, without trailing slash. */
  baseUrl: string;
  /** Where a product's owner comes from (config `owner`): by default only the platform's namespace mapping. */
  owner: OwnerPolicy;
  /**
   * The configured owner of products that no source in `owner` gives one; `{namespace}` in it stands for the
   * product's namespace.
   */
  defaultOwner: string;
  /** Where a product's system comes from (config `system`): by default only the platform's namespace mapping. */
  system: SystemPolicy;
  /** Hosts the entity's URLs may point to (config `allowedHosts`); empty: any host. */
  allowedHosts: string[];
  /** The configured lifecycle for products without a `lifecycle` label. */
  lifecycle: string;
  /** The product's OpenAPI document as the bridge fetched it (JSON or YAML text), when there is one. */
  definition?: string;
  /**
   * The product's approved consumers; undefined when they are unknown (the bridge does not let the token read
   * keys). A product without approved keys has `{ consumers: 0, consumersByPlan: {}, consumersByApplication: {} }`.
   */
  usage?: ProductUsage;
}

/**
 * Maps one published product to a catalog entity, or to `undefined` to leave the product out of the catalog.
 * May be async. A transformer that throws fails the whole run, which then applies nothing (the catalog keeps its
 * last good set): leaving one product out silently would delete its entity.
 *
 * @public
 */
export type ApiportalEntityTransformer = (
  product: Product,
  context: ApiportalTransformContext,
) => Entity | undefined | Promise<Entity | undefined>;
