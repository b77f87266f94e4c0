/**
 * A Backstage catalog backend module that turns apiportal's published API products, read from one or more
 * apiportal bridges (one per cluster), into `kind: API` entities.
 *
 * @packageDocumentation
 */
export { catalogModuleApiportalEntityProvider as default } from './module/catalogModuleApiportalEntityProvider';
export {
  apiportalEntityProviderTransformExtensionPoint,
  type ApiportalEntityProviderTransformExtensionPoint,
} from './module/catalogModuleApiportalEntityProvider';
export { ApiportalEntityProvider } from './providers/ApiportalEntityProvider';
export type { ApiportalEntityProviderOptions, RefreshResult } from './providers/ApiportalEntityProvider';
export { readProviderConfigs } from './providers/ApiportalEntityProviderConfig';
export type { ApiportalEntityProviderConfig } from './providers/ApiportalEntityProviderConfig';
export {
  defaultApiportalEntityTransformer,
  ANNOTATION_APPROVAL_MODE,
  ANNOTATION_AUTH_SCHEME,
  ANNOTATION_CLUSTER,
  ANNOTATION_CONSUMERS,
  ANNOTATION_CONSUMERS_BY_APPLICATION,
  ANNOTATION_CONSUMERS_BY_PLAN,
  ANNOTATION_KUADRANT_APIPRODUCT,
  ANNOTATION_KUADRANT_NAMESPACE,
  ANNOTATION_OIDC_TOKEN_ENDPOINT,
  ANNOTATION_PLANS,
  ANNOTATION_PRODUCT_NAME,
  ANNOTATION_PRODUCT_NAMESPACE,
  ANNOTATION_PRODUCT_UID,
} from './transformers/defaultApiportalEntityTransformer';
export { entityName } from './transformers/entityName';
export type { OwnerPolicy, OwnerSource, SourcePolicy, SystemPolicy, SystemSource } from './transformers/ownership';
export type { ApiportalEntityTransformer, ApiportalTransformContext } from './transformers/types';
export type { ProductUsage } from './apiportal/usage';
export type * from './apiportal/types';
