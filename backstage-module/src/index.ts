/**
 * A Backstage catalog backend module that turns apiportal's published API products, read from the apiportal
 * bridge, into `kind: API` entities.
 *
 * @packageDocumentation
 */
export { catalogModuleApiportalEntityProvider as default } from './module/catalogModuleApiportalEntityProvider';
export { ApiportalEntityProvider } from './providers/ApiportalEntityProvider';
export type { ApiportalEntityProviderOptions, RefreshResult } from './providers/ApiportalEntityProvider';
export { readProviderConfig } from './providers/ApiportalEntityProviderConfig';
export type { ApiportalEntityProviderConfig } from './providers/ApiportalEntityProviderConfig';
export { entityName, productToEntity } from './apiportal/transform';
export type * from './apiportal/types';
