import type { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

/** One apiportal bridge (one cluster). */
interface ApiportalBridgeConfig {
  /**
   * Base URL of the bridge's HTTP view, e.g. `https://apiportal-bridge.apiportal-system.svc`: the Service that `kubectl apiportal install` creates, on port 443. Use https
   * (the bridge's default) with `caFile`; plain http only for local use.
   */
  baseUrl: string;
  /**
   * Bearer token for the bridge, given inline: a token of a Kubernetes ServiceAccount bound to the
   * `apiportal-catalog-reader` ClusterRole. Prefer `tokenFile` with a projected, audience-bound token.
   * Exactly one of `token` and `tokenFile`.
   * @visibility secret
   */
  token?: string;
  /**
   * A file holding the bearer token, read for every request, so a rotated token (a projected ServiceAccount token
   * with audience `apiportal-bridge`) is used without a restart. Exactly one of `token` and `tokenFile`.
   */
  tokenFile?: string;
  /** A PEM file with the CA that signed the bridge's serving certificate (https only); reloaded when it changes. */
  caFile?: string;
  /**
   * The cluster's name, a DNS label: in the `apiportal.dev/cluster` annotation of every entity and, when more than
   * one bridge is configured, in entity names. Default: the provider's id (`default` in the single-bridge form).
   */
  cluster?: string;
  /** How often to read the bridge. Default: every 30 seconds, with a 3 minute timeout. */
  schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
  /**
   * Where a product's owner (`spec.owner`) comes from. By default only `namespaces`: the platform maps the
   * namespaces it hands out to owners, and nothing a product's owner writes decides who owns the entity.
   */
  owner?: {
    /**
     * The sources to try, in order; the first that gives a valid entity reference wins, else `defaultOwner`.
     * `namespace`: `namespaces` below. `contactTeam`: the product's `contact.team`. `annotation`: its
     * `backstage.io/owner` annotation. The last two are written by the product's owner, who can then name any
     * group: enable them only where every product owner may. Default: `[namespace]`.
     */
    from?: Array<'namespace' | 'contactTeam' | 'annotation'>;
    /** Product namespace to owner, an entity reference, e.g. `shop: group:default/toys-team`. */
    namespaces?: { [namespace: string]: string };
  };
  /**
   * Owner of products that no source in `owner` gives one, an entity reference; `{namespace}` in it stands for the
   * product's namespace, e.g. `group:default/{namespace}`. Default: `unknown`.
   */
  defaultOwner?: string;
  /**
   * Where a product's system (`spec.system`) comes from. By default only `namespaces`; a product no source gives
   * a system to has none.
   */
  system?: {
    /**
     * The sources to try, in order. `namespace`: `namespaces` below. `label`: the product's `system` label.
     * `annotation`: its `backstage.io/system` annotation. The last two are written by the product's owner.
     * Default: `[namespace]`.
     */
    from?: Array<'namespace' | 'label' | 'annotation'>;
    /** Product namespace to system, an entity reference, e.g. `shop: storefront`. */
    namespaces?: { [namespace: string]: string };
  };
  /**
   * Hosts that the entities' URLs (links, `backstage.io/source-location`, `view-url`, `edit-url`,
   * `techdocs-ref`, the OIDC token endpoint) may point to: host names, or `*.example.com` for every subdomain of
   * example.com. Default: any host. Either way only http(s) URLs without credentials are kept.
   */
  allowedHosts?: string[];
  /** Lifecycle of products without a `lifecycle` label. Default: `production`. */
  lifecycle?: string;
}

export interface Config {
  catalog?: {
    providers?: {
      /**
       * apiportal: keeps apiportal's published API products in the catalog as `kind: API` entities, read from
       * apiportal bridges. Either one bridge directly here (its provider id is `default`), or one bridge per id:
       * `apiportal: { <id>: { baseUrl, tokenFile, caFile, ... } }`.
       */
      apiportal?:
        | ApiportalBridgeConfig
        | {
            [id: string]: ApiportalBridgeConfig;
          };
    };
  };
}
