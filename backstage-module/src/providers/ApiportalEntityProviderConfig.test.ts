import { ConfigReader } from '@backstage/config';
import { DEFAULT_OWNER_POLICY, DEFAULT_SYSTEM_POLICY } from '../transformers/ownership';
import { DEFAULT_SCHEDULE, readProviderConfigs } from './ApiportalEntityProviderConfig';

/** What ConfigReader takes. */
type JsonObject = NonNullable<ConstructorParameters<typeof ConfigReader>[0]>;

const root = (apiportal: JsonObject | string) => new ConfigReader({ catalog: { providers: { apiportal } } } as JsonObject);

describe('readProviderConfigs', () => {
  it('the single-bridge form is one provider with id default, defaults filled in', () => {
    expect(readProviderConfigs(root({ baseUrl: 'http://bridge:8080/', token: 'abc' }))).toStrictEqual([
      {
        id: 'default',
        cluster: 'default',
        baseUrl: 'http://bridge:8080',
        token: 'abc',
        schedule: DEFAULT_SCHEDULE,
        owner: DEFAULT_OWNER_POLICY,
        defaultOwner: 'unknown',
        system: DEFAULT_SYSTEM_POLICY,
        allowedHosts: [],
        lifecycle: 'production',
      },
    ]);
    expect(DEFAULT_SCHEDULE).toStrictEqual({ frequency: { seconds: 30 }, timeout: { minutes: 3 } });
  });

  it('one provider per id, each with its own settings; the cluster defaults to the id', () => {
    const configs = readProviderConfigs(
      root({
        eu: {
          baseUrl: 'https://bridge.eu.example.com',
          tokenFile: '/var/run/secrets/apiportal/eu/token',
          caFile: '/var/run/secrets/apiportal/eu/ca.crt',
          cluster: 'eu-west-1',
          schedule: { frequency: { minutes: 5 }, timeout: { seconds: 50 }, initialDelay: { seconds: 10 } },
          owner: { from: ['namespace', 'contactTeam'], namespaces: { shop: 'group:default/toys-team', games: 'games-team' } },
          defaultOwner: 'group:default/{namespace}',
          system: { namespaces: { shop: 'storefront' } },
          allowedHosts: ['docs.example.com', '*.Example.org'],
          lifecycle: 'experimental',
        },
        us: { baseUrl: 'https://bridge.us.example.com', token: 't' },
      }),
    );
    expect(configs).toStrictEqual([
      {
        id: 'eu',
        cluster: 'eu-west-1',
        baseUrl: 'https://bridge.eu.example.com',
        tokenFile: '/var/run/secrets/apiportal/eu/token',
        caFile: '/var/run/secrets/apiportal/eu/ca.crt',
        schedule: { frequency: { minutes: 5 }, timeout: { seconds: 50 }, initialDelay: { seconds: 10 }, scope: undefined },
        owner: { from: ['namespace', 'contactTeam'], namespaces: { shop: 'group:default/toys-team', games: 'games-team' } },
        defaultOwner: 'group:default/{namespace}',
        system: { from: ['namespace'], namespaces: { shop: 'storefront' } },
        allowedHosts: ['docs.example.com', '*.example.org'],
        lifecycle: 'experimental',
      },
      {
        id: 'us',
        cluster: 'us',
        baseUrl: 'https://bridge.us.example.com',
        token: 't',
        schedule: DEFAULT_SCHEDULE,
        owner: DEFAULT_OWNER_POLICY,
        defaultOwner: 'unknown',
        system: DEFAULT_SYSTEM_POLICY,
        allowedHosts: [],
        lifecycle: 'production',
      },
    ]);
  });

  it('empty when the module is not configured', () => {
    expect(readProviderConfigs(new ConfigReader({}))).toStrictEqual([]);
    expect(readProviderConfigs(new ConfigReader({ catalog: { providers: {} } }))).toStrictEqual([]);
  });

  it('rejects what cannot work, naming the key and the fix', () => {
    const cases: [JsonObject | string, string][] = [
      ['x', 'catalog.providers.apiportal must be an object: either one bridge ({baseUrl, tokenFile, ...}) or one bridge per id ({<id>: {baseUrl, tokenFile, ...}})'],
      [{ token: 'abc' }, 'catalog.providers.apiportal.baseUrl is required: the bridge\'s URL, e.g. https://apiportal-bridge.apiportal-system.svc (the Service kubectl apiportal install creates, port 443)'],
      [{ baseUrl: 'bridge:8080', token: 'abc' }, 'catalog.providers.apiportal.baseUrl must be an http or https URL, got "bridge:8080"'],
      [{ baseUrl: 'not a url', token: 'abc' }, 'catalog.providers.apiportal.baseUrl must be an absolute http(s) URL, got "not a url"'],
      [{ baseUrl: 'http://b/?x=1', token: 'abc' }, 'catalog.providers.apiportal.baseUrl must not have a query or fragment, got "http://b/?x=1"'],
      [{ baseUrl: 'http://b' }, 'catalog.providers.apiportal: set tokenFile (a file with the ServiceAccount token, e.g. a projected token with audience apiportal-bridge) or token'],
      [{ baseUrl: 'http://b', token: 't', tokenFile: '/t' }, 'catalog.providers.apiportal: set either token or tokenFile, not both'],
      [{ baseUrl: 'http://b', token: ' ' }, 'catalog.providers.apiportal.token must not be empty'],
      [{ baseUrl: 'http://b', token: 't', caFile: '/ca.crt' }, 'catalog.providers.apiportal.caFile is set but catalog.providers.apiportal.baseUrl is not https: the CA only applies to https'],
      [{ baseUrl: 'http://b', token: 't', cluster: 'EU West' }, 'catalog.providers.apiportal.cluster must be a DNS label (lowercase letters, digits and \'-\', at most 63 characters), got "EU West"'],
      [{ eu: 'https://b' }, 'catalog.providers.apiportal.eu must be an object with baseUrl and token or tokenFile (one bridge per id), or put baseUrl directly under catalog.providers.apiportal for a single bridge'],
      [{ eu: { token: 't' } }, "catalog.providers.apiportal.eu.baseUrl is required: the bridge's URL, e.g. https://apiportal-bridge.apiportal-system.svc (the Service kubectl apiportal install creates, port 443)"],
      [{ eu_west: { baseUrl: 'https://b', token: 't' } }, 'the cluster name of catalog.providers.apiportal.eu_west defaults to its id "eu_west", which is not a DNS label (lowercase letters, digits and \'-\', at most 63 characters); set catalog.providers.apiportal.eu_west.cluster'],
      [{ baseUrl: 'http://b', token: 't', owner: 'group:default/x' }, 'catalog.providers.apiportal.owner must be an object: {from: [namespace, contactTeam, annotation], namespaces: {<namespace>: group:default/toys-team}}'],
      [{ baseUrl: 'http://b', token: 't', owner: { namespace: { shop: 'x' } } }, 'catalog.providers.apiportal.owner has unknown key(s) namespace; it takes from and namespaces'],
      [{ baseUrl: 'http://b', token: 't', owner: { from: ['annotations'] } }, 'catalog.providers.apiportal.owner.from[0] must be one of namespace, contactTeam, annotation, got "annotations"'],
      [{ baseUrl: 'http://b', token: 't', owner: { from: [] } }, 'catalog.providers.apiportal.owner.from must name at least one of namespace, contactTeam, annotation'],
      [{ baseUrl: 'http://b', token: 't', owner: { namespaces: { shop: 'the toys team' } } }, 'catalog.providers.apiportal.owner.namespaces.shop must be an entity reference such as group:default/toys-team, got "the toys team"'],
      [{ baseUrl: 'http://b', token: 't', system: { from: ['contactTeam'] } }, 'catalog.providers.apiportal.system.from[0] must be one of namespace, label, annotation, got "contactTeam"'],
      [{ baseUrl: 'http://b', token: 't', system: { namespaces: ['shop'] } }, 'catalog.providers.apiportal.system.namespaces must map namespaces to entity references, e.g. {shop: storefront}'],
      [{ baseUrl: 'http://b', token: 't', defaultOwner: 'group:default/{namespace} team' }, "catalog.providers.apiportal.defaultOwner must be an entity reference such as group:default/platform ({namespace} stands for the product's namespace, as in group:default/{namespace}), got \"group:default/{namespace} team\""],
      [{ baseUrl: 'http://b', token: 't', allowedHosts: 'docs.example.com' }, "catalog.providers.apiportal.allowedHosts must be a list of host names, e.g. [docs.example.com, '*.example.com']"],
      [{ baseUrl: 'http://b', token: 't', allowedHosts: ['https://docs.example.com'] }, 'catalog.providers.apiportal.allowedHosts[0] must be a host name such as docs.example.com, or *.example.com for its subdomains, got "https://docs.example.com"'],
      [
        { eu: { baseUrl: 'https://a', token: 't', cluster: 'prod' }, us: { baseUrl: 'https://b', token: 't', cluster: 'prod' } },
        'catalog.providers.apiportal.eu and catalog.providers.apiportal.us both name the cluster "prod"; every bridge needs its own cluster name (set cluster: on one of them)',
      ],
    ];
    const wrong = cases.flatMap(([config, message]) => {
      try {
        readProviderConfigs(root(config));
        return [`${JSON.stringify(config)}: no error`];
      } catch (e) {
        return (e as Error).message === message ? [] : [`${JSON.stringify(config)}: ${(e as Error).message}`];
      }
    });
    expect(wrong).toStrictEqual([]);
    expect(() =>
      readProviderConfigs(root({ baseUrl: 'http://b', token: 't', schedule: { timeout: { minutes: 1 } } })),
    ).toThrow(/frequency/);
  });
});
