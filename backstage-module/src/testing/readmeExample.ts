/*
 * The product behind README.md's "What an entity looks like": bridge/API.md's example product, read from the
 * cluster `eu-west` of the README's two-cluster configuration. src/readme.test.ts checks that the README
 * shows exactly the entity the module makes of it.
 */
import type { Product } from '../apiportal/types';
import type { ApiportalTransformContext } from '../transformers/types';
import { makeProduct } from './fakeBridge';

export const README_PRODUCT: Product = makeProduct({
  namespace: 'shop',
  name: 'toys',
  uid: '0d6c5a9e-4f1b-4c1e-9a57-2b8e0f6d1c3a',
  generation: 2,
  createdAt: '2026-11-25T12:00:00Z',
  displayName: 'Toys API',
  description: 'Browse and order toys.',
  version: 'v1',
  tags: ['retail', 'toys'],
  labels: { lifecycle: 'production', system: 'storefront' },
  annotations: { 'backstage.io/owner': 'group:default/toys-team' },
  approvalMode: 'automatic',
  publishStatus: 'Published',
  route: { name: 'toys', hostnames: ['toys.example.com'] },
  documentation: {
    openAPISpecURL: 'https://toys.example.com/openapi.json',
    swaggerUI: null,
    docsURL: 'https://docs.example.com/toys',
    gitRepository: 'https://git.example.com/shop/toys',
    techdocsRef: null,
  },
  contact: { team: 'toys-team', email: 'toys@example.com', slack: null, url: null },
  plans: [
    { tier: 'gold', description: null, limits: { daily: 10000, monthly: 200000 } },
    { tier: 'bronze', description: null, limits: { daily: 100, custom: [{ limit: 5, window: '10s' }] } },
  ],
  authScheme: {
    authentication: {
      'api-key': {
        apiKey: { selector: { matchLabels: { app: 'toys' } } },
        credentials: { authorizationHeader: { prefix: 'APIKEY' } },
      },
    },
  },
  oidc: null,
  openapi: { available: true, lastSyncTime: '2026-11-25T12:00:05Z' },
});

export const README_CONTEXT: ApiportalTransformContext = {
  providerId: 'eu',
  cluster: 'eu-west',
  clusterInName: true,
  baseUrl: 'https://apiportal-bridge.apiportal-system.svc',
  owner: { from: ['namespace'], namespaces: { shop: 'group:default/toys-team' } },
  defaultOwner: 'group:default/platform',
  system: { from: ['namespace'], namespaces: { shop: 'storefront' } },
  allowedHosts: ['docs.example.com', 'toys.example.com', 'git.example.com'],
  lifecycle: 'production',
  definition: 'openapi: 3.0.3\ninfo: {title: Toys API, version: v1}\nservers: [{url: "https://toys.example.com"}]\npaths:\n  /toys: {get: {summary: List toys}}\n',
  usage: { consumers: 3, consumersByPlan: { bronze: 1, gold: 2 }, consumersByApplication: { 'team-alice/stock-sync': 2 } },
};
