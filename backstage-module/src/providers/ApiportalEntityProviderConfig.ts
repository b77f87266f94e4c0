import type { Config } from '@backstage/config';
import {
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  type SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { normalizeBaseUrl } from '../apiportal/read';

/** Where the provider's config lives in app-config.yaml. */
export const CONFIG_PATH = 'catalog.providers.apiportal';

/** Every 30 s, at most 3 minutes per run. */
export const DEFAULT_SCHEDULE: SchedulerServiceTaskScheduleDefinition = {
  frequency: { seconds: 30 },
  timeout: { minutes: 3 },
};
export const DEFAULT_OWNER = 'unknown';
export const DEFAULT_LIFECYCLE = 'production';

/** `catalog.providers.apiportal`, validated, with defaults filled in. */
export interface ApiportalEntityProviderConfig {
  /** The bridge's base URL, without trailing slash. */
  baseUrl: string;
  /** Bearer token for the bridge. */
  token: string;
  schedule: SchedulerServiceTaskScheduleDefinition;
  /** Owner of products with neither a `backstage.io/owner` annotation nor a contact team. */
  defaultOwner: string;
  /** Lifecycle of products without a `lifecycle` label. */
  lifecycle: string;
}

/**
 * Reads `catalog.providers.apiportal` from the root config. Returns undefined when the section is absent (the
 * module is installed but not configured); throws a descriptive error when it is present but invalid.
 */
export function readProviderConfig(rootConfig: Config): ApiportalEntityProviderConfig | undefined {
  const config = rootConfig.getOptionalConfig(CONFIG_PATH);
  if (!config) {
    return undefined;
  }
  return readApiportalConfig(config);
}

/** Reads the `catalog.providers.apiportal` section itself. */
export function readApiportalConfig(config: Config): ApiportalEntityProviderConfig {
  const baseUrl = config.getString('baseUrl').trim();
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new Error(`${CONFIG_PATH}.baseUrl must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`${CONFIG_PATH}.baseUrl must be an http or https URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (parsed.search || parsed.hash) {
    throw new Error(`${CONFIG_PATH}.baseUrl must not have a query or fragment, got ${JSON.stringify(baseUrl)}`);
  }

  const token = config.getString('token').trim();
  if (token === '') {
    throw new Error(`${CONFIG_PATH}.token must not be empty`);
  }

  const schedule = config.has('schedule')
    ? readSchedulerServiceTaskScheduleDefinitionFromConfig(config.getConfig('schedule'))
    : DEFAULT_SCHEDULE;

  const defaultOwner = config.getOptionalString('defaultOwner')?.trim() || DEFAULT_OWNER;
  const lifecycle = config.getOptionalString('lifecycle')?.trim() || DEFAULT_LIFECYCLE;

  return { baseUrl: normalizeBaseUrl(baseUrl), token, schedule, defaultOwner, lifecycle };
}
