/*
 * URLs an entity carries come from the product's owner: its documentation, repository, contact page, annotations,
 * and the OIDC token endpoint of its AuthPolicy's issuer. Backstage shows them as links and its plugins follow
 * them (TechDocs reads `backstage.io/techdocs-ref`, the catalog `backstage.io/source-location`), so only absolute
 * http(s) URLs pass, without credentials, and only to the platform's `allowedHosts` when it configured some.
 */

/**
 * Whether `pattern` is a host name (`docs.example.com`) or a wildcard for its subdomains (`*.example.com`), as
 * `allowedHosts` takes them.
 */
export function isHostPattern(pattern: string): boolean {
  return /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(pattern);
}

/** Whether `hostname` is allowed: any host when `allowedHosts` is empty, else one it names or a subdomain of a `*.` one. */
export function isAllowedHost(hostname: string, allowedHosts: readonly string[]): boolean {
  if (allowedHosts.length === 0) return true;
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return allowedHosts.some(pattern =>
    pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern,
  );
}

/**
 * `value` in its canonical form when it is an absolute http(s) URL without user name or password on an allowed
 * host; else undefined (`javascript:`, `data:`, `file:`, relative paths, `https://trusted@evil/`, other hosts).
 */
export function safeUrl(value: string | null | undefined, allowedHosts: readonly string[]): string | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  return isAllowedHost(url.hostname, allowedHosts) ? url.href : undefined;
}

/**
 * A Backstage location reference to a safe URL (`url:https://...`), from `url:<URL>` or a bare URL; undefined for
 * anything else, `dir:` and `file:` references included: for these entities, whose location is the bridge, a
 * relative `dir:` would be resolved against the bridge's URL, and nothing of the backend's own files is the
 * product's to point at.
 */
export function urlReference(value: string | null | undefined, allowedHosts: readonly string[]): string | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  const url = safeUrl(text.startsWith('url:') ? text.slice('url:'.length) : text, allowedHosts);
  return url ? `url:${url}` : undefined;
}
