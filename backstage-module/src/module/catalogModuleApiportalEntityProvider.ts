import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import { ApiportalEntityProvider } from '../providers/ApiportalEntityProvider';
import { CONFIG_PATH } from '../providers/ApiportalEntityProviderConfig';

/**
 * Catalog module that keeps apiportal's published API products in the catalog as `kind: API` entities, read
 * from the apiportal bridge configured under `catalog.providers.apiportal`.
 *
 * @public
 */
export const catalogModuleApiportalEntityProvider = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'apiportal-entity-provider',
  register(env) {
    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        catalog: catalogProcessingExtensionPoint,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
      },
      async init({ config, catalog, logger, scheduler }) {
        const provider = ApiportalEntityProvider.fromConfig(config, { logger, scheduler });
        if (!provider) {
          logger.warn(`${CONFIG_PATH} is not configured; the apiportal entity provider is not started`);
          return;
        }
        catalog.addEntityProvider(provider);
      },
    });
  },
});
