import { ConfigReader } from '@backstage/config';
import { DEFAULT_SCHEDULE, readProviderConfig } from './ApiportalEntityProviderConfig';

/** What ConfigReader takes. */
type JsonObject = NonNullable<ConstructorParameters<typeof ConfigReader>[0]>;

const root = (apiportal: JsonObject) => new ConfigReader({ catalog: { providers: { apiportal } } });

describe('readProviderConfig', () => {
  it('fills in defaults', () => {
    expect(readProviderConfig(root({ baseUrl: 'http://bridge:8080/', token: 'abc' }))).toStrictEqual({
      baseUrl: 'http://bridge:8080',
      token: 'abc',
      schedule: DEFAULT_SCHEDULE,
      defaultOwner: 'unknown',
      lifecycle: 'production',
    });
    expect(DEFAULT_SCHEDULE).toStrictEqual({ frequency: { seconds: 30 }, timeout: { minutes: 3 } });
  });

  it('reads every option', () => {
    const config = readProviderConfig(
      root({
        baseUrl: 'https://apiportal.example.com/bridge',
        token: 'abc',
        schedule: { frequency: { minutes: 5 }, timeout: { seconds: 50 }, initialDelay: 'PT10S' },
        defaultOwner: 'group:default/platform',
        lifecycle: 'experimental',
      }),
    );
    expect(config?.baseUrl).toBe('https://apiportal.example.com/bridge');
    expect(config?.schedule.frequency).toStrictEqual({ minutes: 5 });
    expect(config?.schedule.timeout).toStrictEqual({ seconds: 50 });
    expect(config?.schedule.initialDelay).toBeTruthy();
    expect(config?.defaultOwner).toBe('group:default/platform');
    expect(config?.lifecycle).toBe('experimental');
  });

  it('undefined when the module is not configured', () => {
    expect(readProviderConfig(new ConfigReader({}))).toBeUndefined();
    expect(readProviderConfig(new ConfigReader({ catalog: { providers: {} } }))).toBeUndefined();
  });

  it('rejects what cannot work', () => {
    expect(() => readProviderConfig(root({ token: 'abc' }))).toThrow(/baseUrl/);
    expect(() => readProviderConfig(root({ baseUrl: 'bridge:8080', token: 'abc' }))).toThrow(/http or https/);
    expect(() => readProviderConfig(root({ baseUrl: 'not a url', token: 'abc' }))).toThrow(/absolute http\(s\) URL/);
    expect(() => readProviderConfig(root({ baseUrl: 'http://b/?x=1', token: 'abc' }))).toThrow(/query/);
    expect(() => readProviderConfig(root({ baseUrl: 'http://b' }))).toThrow(/token/);
    expect(() => readProviderConfig(root({ baseUrl: 'http://b', token: ' ' }))).toThrow(/token must not be empty/);
    expect(() =>
      readProviderConfig(root({ baseUrl: 'http://b', token: 't', schedule: { timeout: { minutes: 1 } } })),
    ).toThrow(/frequency/);
  });
});
