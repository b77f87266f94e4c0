import type { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  catalog?: {
    providers?: {
      /**
       * apiportal: keeps apiportal's published API products in the catalog as `kind: API` entities, read from
       * the apiportal bridge.
       */
      apiportal?: {
        /**
         * Base URL of the apiportal bridge's HTTP view, e.g.
         * `http://apiportal-bridge.apiportal-system.svc.cluster.local:8080`.
         */
        baseUrl: string;
        /**
         * Bearer token for the bridge: a token of a Kubernetes ServiceAccount bound to the
         * `apiportal-catalog-reader` ClusterRole.
         * @visibility secret
         */
        token: string;
        /**
         * How often to read the bridge. Default: every 30 seconds, with a 3 minute timeout.
         */
        schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
        /**
         * Owner of products that have neither a `backstage.io/owner` annotation nor a contact team.
         * Default: `unknown`.
         */
        defaultOwner?: string;
        /**
         * Lifecycle of products without a `lifecycle` label. Default: `production`.
         */
        lifecycle?: string;
      };
    };
  };
}
