import type { Config } from '@backstage/config';
import {
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  type SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { normalizeBaseUrl } from '../apiportal/read';
import { isValidClusterName } from '../transformers/entityName';
import {
  DEFAULT_OWNER_POLICY,
  DEFAULT_SYSTEM_POLICY,
  isEntityRef,
  NAMESPACE_PLACEHOLDER,
  OWNER_SOURCES,
  SYSTEM_SOURCES,
  type OwnerPolicy,
  type SourcePolicy,
  type SystemPolicy,
} from '../transformers/ownership';
import { isHostPattern } from '../transformers/urls';

/** Where the providers' config lives in app-config.yaml. */
export const CONFIG_PATH = 'catalog.providers.apiportal';
/** The id of the provider configured in the single-bridge form (`baseUrl` directly under `CONFIG_PATH`). */
export const DEFAULT_PROVIDER_ID = 'default';

/** Every 30 s, at most 3 minutes per run. */
export const DEFAULT_SCHEDULE: SchedulerServiceTaskScheduleDefinition = {
  frequency: { seconds: 30 },
  timeout: { minutes: 3 },
};
export const DEFAULT_OWNER = 'unknown';
export const DEFAULT_LIFECYCLE = 'production';

/** Keys that mark the single-bridge form: `catalog.providers.apiportal: { baseUrl, token | tokenFile, ... }`. */
const SINGLE_FORM_KEYS = ['baseUrl', 'token', 'tokenFile'];

/**
 * One provider's configuration (`catalog.providers.apiportal.<id>`), validated, with defaults filled in.
 *
 * @public
 */
export interface ApiportalEntityProviderConfig {
  /** The provider's id: its key under `catalog.providers.apiportal`, or `default` for the single-bridge form. */
  id: string;
  /** The cluster's name, in the `apiportal.dev/cluster` annotation and, with several providers, in entity names. */
  cluster: string;
  /** The bridge's base URL, without trailing slash. */
  baseUrl: string;
  /** A bearer token given in config. Exactly one of `token` and `tokenFile` is set. */
  token?: string;
  /** A file holding the bearer token, read for every request (a projected ServiceAccount token rotates). */
  tokenFile?: string;
  /** A PEM file with the CA that signed the bridge's certificate (https only). */
  caFile?: string;
  schedule: SchedulerServiceTaskScheduleDefinition;
  /** Where a product's owner comes from: by default only `namespaces`, the platform's mapping. */
  owner: OwnerPolicy;
  /** Owner of products that no source in `owner` gives one; `{namespace}` stands for the product's namespace. */
  defaultOwner: string;
  /** Where a product's system comes from: by default only `namespaces`, the platform's mapping. */
  system: SystemPolicy;
  /** Hosts the entities' URLs may point to, lowercase (`docs.example.com`, `*.example.com`); empty: any host. */
  allowedHosts: string[];
  /** Lifecycle of products without a `lifecycle` label. */
  lifecycle: string;
}

/**
 * Reads every provider under `catalog.providers.apiportal`: either one bridge configured directly there (id
 * `default`), or one bridge per key. Returns an empty list when the section is absent (the module is installed
 * but not configured); throws a descriptive error, naming the config key, when something is invalid.
 *
 * @public
 */
export function readProviderConfigs(rootConfig: Config): ApiportalEntityProviderConfig[] {
  const section = rootConfig.getOptional(CONFIG_PATH);
  if (section === undefined) return [];
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new Error(
      `${CONFIG_PATH} must be an object: either one bridge ({baseUrl, tokenFile, ...}) or one bridge per id ({<id>: {baseUrl, tokenFile, ...}})`,
    );
  }
  const providers = rootConfig.getConfig(CONFIG_PATH);
  let configs: ApiportalEntityProviderConfig[];
  if (SINGLE_FORM_KEYS.some(key => providers.has(key))) {
    configs = [readProviderConfig(DEFAULT_PROVIDER_ID, providers, CONFIG_PATH)];
  } else {
    configs = providers.keys().map(id => {
      const value = (section as Record<string, unknown>)[id];
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new Error(
          `${CONFIG_PATH}.${id} must be an object with baseUrl and token or tokenFile (one bridge per id), or put baseUrl directly under ${CONFIG_PATH} for a single bridge`,
        );
      }
      return readProviderConfig(id, providers.getConfig(id), `${CONFIG_PATH}.${id}`);
    });
  }

  const byCluster = new Map<string, string>();
  for (const config of configs) {
    const other = byCluster.get(config.cluster);
    if (other !== undefined) {
      throw new Error(
        `${CONFIG_PATH}.${other} and ${CONFIG_PATH}.${config.id} both name the cluster "${config.cluster}"; every bridge needs its own cluster name (set cluster: on one of them)`,
      );
    }
    byCluster.set(config.cluster, config.id);
  }
  return configs;
}

/** Reads one provider's section; `path` is its config path, for messages. */
function readProviderConfig(id: string, config: Config, path: string): ApiportalEntityProviderConfig {
  const baseUrl = readBaseUrl(config, path);

  const token = config.getOptionalString('token');
  const tokenFile = config.getOptionalString('tokenFile');
  if (token !== undefined && tokenFile !== undefined) {
    throw new Error(`${path}: set either token or tokenFile, not both`);
  }
  if (token === undefined && tokenFile === undefined) {
    throw new Error(
      `${path}: set tokenFile (a file with the ServiceAccount token, e.g. a projected token with audience apiportal-bridge) or token`,
    );
  }
  if (token !== undefined && token.trim() === '') {
    throw new Error(`${path}.token must not be empty`);
  }
  if (tokenFile !== undefined && tokenFile.trim() === '') {
    throw new Error(`${path}.tokenFile must not be empty`);
  }

  const caFile = config.getOptionalString('caFile')?.trim() || undefined;
  if (caFile && !baseUrl.startsWith('https:')) {
    throw new Error(`${path}.caFile is set but ${path}.baseUrl is not https: the CA only applies to https`);
  }

  const cluster = config.getOptionalString('cluster')?.trim() || id;
  if (!isValidClusterName(cluster)) {
    throw new Error(
      config.has('cluster')
        ? `${path}.cluster must be a DNS label (lowercase letters, digits and '-', at most 63 characters), got ${JSON.stringify(cluster)}`
        : `the cluster name of ${path} defaults to its id ${JSON.stringify(id)}, which is not a DNS label (lowercase letters, digits and '-', at most 63 characters); set ${path}.cluster`,
    );
  }

  const schedule = config.has('schedule')
    ? readSchedulerServiceTaskScheduleDefinitionFromConfig(config.getConfig('schedule'))
    : DEFAULT_SCHEDULE;

  const defaultOwner = config.getOptionalString('defaultOwner')?.trim() || DEFAULT_OWNER;
  if (!isEntityRef(defaultOwner.split(NAMESPACE_PLACEHOLDER).join('namespace'), 'group')) {
    throw new Error(
      `${path}.defaultOwner must be an entity reference such as group:default/platform (${NAMESPACE_PLACEHOLDER} stands for the product's namespace, as in group:default/${NAMESPACE_PLACEHOLDER}), got ${JSON.stringify(defaultOwner)}`,
    );
  }
  const owner = readSourcePolicy(config, path, 'owner', OWNER_SOURCES, DEFAULT_OWNER_POLICY, 'group:default/toys-team');
  const system = readSourcePolicy(config, path, 'system', SYSTEM_SOURCES, DEFAULT_SYSTEM_POLICY, 'storefront');
  const allowedHosts = readAllowedHosts(config, path);
  const lifecycle = config.getOptionalString('lifecycle')?.trim() || DEFAULT_LIFECYCLE;

  const result: ApiportalEntityProviderConfig = {
    id,
    cluster,
    baseUrl,
    schedule,
    owner,
    defaultOwner,
    system,
    allowedHosts,
    lifecycle,
  };
  if (token !== undefined) result.token = token.trim();
  if (tokenFile !== undefined) result.tokenFile = tokenFile.trim();
  if (caFile) result.caFile = caFile;
  return result;
}

/**
 * `owner` or `system`: `{from: [source, ...], namespaces: {<namespace>: <entity ref>}}`, both optional, nothing
 * else. `example` is an entity reference for messages.
 */
function readSourcePolicy<Source extends string>(
  config: Config,
  path: string,
  key: 'owner' | 'system',
  sources: readonly Source[],
  defaults: SourcePolicy<Source>,
  example: string,
): SourcePolicy<Source> {
  const value = config.getOptional(key);
  if (value === undefined) return defaults;
  const where = `${path}.${key}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where} must be an object: {from: [${sources.join(', ')}], namespaces: {<namespace>: ${example}}}`);
  }
  const unknown = Object.keys(value).filter(k => k !== 'from' && k !== 'namespaces');
  if (unknown.length) {
    throw new Error(`${where} has unknown key(s) ${unknown.join(', ')}; it takes from and namespaces`);
  }
  const section = config.getConfig(key);

  let from = defaults.from;
  const fromValue = section.getOptional('from');
  if (fromValue !== undefined) {
    const list = Array.isArray(fromValue) ? fromValue : [fromValue];
    from = list.map((source, i) => {
      if (typeof source !== 'string' || !(sources as readonly string[]).includes(source)) {
        throw new Error(
          `${where}.from[${i}] must be one of ${sources.join(', ')}, got ${JSON.stringify(source)}`,
        );
      }
      return source as Source;
    });
    if (from.length === 0) {
      throw new Error(`${where}.from must name at least one of ${sources.join(', ')}`);
    }
  }

  const namespaces: Record<string, string> = {};
  const namespacesValue = section.getOptional('namespaces');
  if (namespacesValue !== undefined) {
    if (typeof namespacesValue !== 'object' || namespacesValue === null || Array.isArray(namespacesValue)) {
      throw new Error(`${where}.namespaces must map namespaces to entity references, e.g. {shop: ${example}}`);
    }
    for (const [namespace, ref] of Object.entries(namespacesValue)) {
      if (typeof ref !== 'string' || !isEntityRef(ref.trim(), key === 'owner' ? 'group' : 'system')) {
        throw new Error(
          `${where}.namespaces.${namespace} must be an entity reference such as ${example}, got ${JSON.stringify(ref)}`,
        );
      }
      namespaces[namespace] = ref.trim();
    }
  }
  return { from, namespaces };
}

/** `allowedHosts`: host names or `*.` wildcards, lowercased. */
function readAllowedHosts(config: Config, path: string): string[] {
  const value = config.getOptional('allowedHosts');
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new Error(`${path}.allowedHosts must be a list of host names, e.g. [docs.example.com, '*.example.com']`);
  }
  return value.map((host, i) => {
    if (typeof host !== 'string' || !isHostPattern(host.trim())) {
      throw new Error(
        `${path}.allowedHosts[${i}] must be a host name such as docs.example.com, or *.example.com for its subdomains, got ${JSON.stringify(host)}`,
      );
    }
    return host.trim().toLowerCase();
  });
}

function readBaseUrl(config: Config, path: string): string {
  if (!config.has('baseUrl')) {
    throw new Error(`${path}.baseUrl is required: the bridge's URL, e.g. https://apiportal-bridge.apiportal-system.svc (the Service kubectl apiportal install creates, port 443)`);
  }
  const baseUrl = config.getString('baseUrl').trim();
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new Error(`${path}.baseUrl must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`${path}.baseUrl must be an http or https URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (parsed.search || parsed.hash) {
    throw new Error(`${path}.baseUrl must not have a query or fragment, got ${JSON.stringify(baseUrl)}`);
  }
  return normalizeBaseUrl(baseUrl);
}
