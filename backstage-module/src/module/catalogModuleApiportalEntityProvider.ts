import { coreServices, createBackendModule, createExtensionPoint } from '@backstage/backend-plugin-api';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import { ApiportalEntityProvider } from '../providers/ApiportalEntityProvider';
import { CONFIG_PATH } from '../providers/ApiportalEntityProviderConfig';
import type { ApiportalEntityTransformer } from '../transformers/types';

/**
 * The interface of {@link apiportalEntityProviderTransformExtensionPoint}.
 *
 * @public
 */
export interface ApiportalEntityProviderTransformExtensionPoint {
  /**
   * Replaces the default product-to-entity mapping for every apiportal provider. May be called once. The
   * transformer gets the provider's id and cluster in its context; `defaultApiportalEntityTransformer` is exported
   * so that a custom transformer can start from its result.
   */
  setTransformer(transformer: ApiportalEntityTransformer): void;
}

/**
 * Extension point of the apiportal catalog module: set a custom transformer from another catalog module.
 *
 * @public
 */
export const apiportalEntityProviderTransformExtensionPoint =
  createExtensionPoint<ApiportalEntityProviderTransformExtensionPoint>({
    id: 'catalog.apiportalEntityProvider.transform',
  });

/**
 * Catalog module that keeps apiportal's published API products in the catalog as `kind: API` entities: one
 * entity provider per bridge configured under `catalog.providers.apiportal`, each on its own schedule.
 *
 * @public
 */
export const catalogModuleApiportalEntityProvider = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'apiportal-entity-provider',
  register(env) {
    let transformer: ApiportalEntityTransformer | undefined;
    env.registerExtensionPoint(apiportalEntityProviderTransformExtensionPoint, {
      setTransformer(t) {
        if (transformer) {
          throw new Error('The apiportal entity transformer may only be set once');
        }
        transformer = t;
      },
    });

    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        catalog: catalogProcessingExtensionPoint,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
        lifecycle: coreServices.lifecycle,
      },
      async init({ config, catalog, logger, scheduler, lifecycle }) {
        const providers = ApiportalEntityProvider.fromConfig(config, { logger, scheduler, transformer });
        if (providers.length === 0) {
          logger.warn(`${CONFIG_PATH} is not configured; no apiportal entity provider is started`);
          return;
        }
        for (const provider of providers) {
          catalog.addEntityProvider(provider);
        }
        logger.info(
          `apiportal entity providers: ${providers.map(p => p.getProviderName()).join(', ')}${
            transformer ? ' (with a custom transformer)' : ''
          }`,
        );
        lifecycle.addShutdownHook(async () => {
          await Promise.all(providers.map(p => p.close()));
        });
      },
    });
  },
});
