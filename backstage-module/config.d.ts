import type { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

/** One apiportal bridge (one cluster). */
interface ApiportalBridgeConfig {
  /**
   * Base URL of the bridge's HTTP view, e.g. `https://apiportal-bridge.apiportal-system.svc:8443`. Use https
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
   * Owner of products that have neither a `backstage.io/owner` annotation nor a contact team. Default: `unknown`.
   */
  defaultOwner?: string;
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
