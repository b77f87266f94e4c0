/*
 * The bridge's HTTP view (bridge/API.md of the apiportal repository) under the names the module uses. The types
 * themselves are generated from the view's JSON Schema (bridge/api/view.schema.json, itself generated from the
 * bridge's Rust types) into view.generated.ts, so they cannot drift from the contract: a test fails when they are
 * not what the schema gives. Every response is validated against that schema before it is used (schema.ts), and
 * its strings are cleaned of control characters (text.ts); fields the schema does not know are ignored.
 */
export type {
  ApprovalMode,
  AuthenticationRule,
  AuthScheme,
  ContactView as ProductContact,
  CustomLimit,
  DiscoveredPlan as Plan,
  DocumentationView as ProductDocumentation,
  Error as ErrorBody,
  HistoryEntry,
  IoK8SApimachineryPkgApisMetaV1Condition as Condition,
  Key,
  KeyList,
  KeyPhase,
  OidcView as Oidc,
  OpenApiView as OpenApiState,
  PlanLimits,
  Product,
  ProductChanges,
  ProductList,
  PublishStatus,
  RemovedProduct,
  RouteView as ProductRoute,
  Scope as ProductListScope,
} from './view.generated';
