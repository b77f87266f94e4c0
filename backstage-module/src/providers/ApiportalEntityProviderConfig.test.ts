import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigReader } from '@backstage/config';
import { DEFAULT_SCHEDULE, readProviderConfig } from './ApiportalEntityProviderConfig';

/** What ConfigReader takes. */
type JsonObject = NonNullable<ConstructorParameters<typeof ConfigReader>[0]>;

const root = (apiportal: JsonObject) => new ConfigReader({ catalog: { providers: { apiportal } } });

describe('readProviderConfig', () => {
  test('fills in defaults', () => {
    assert.deepEqual(readProviderConfig(root({ baseUrl: 'http://bridge:8080/', token: 'abc' })), {
      baseUrl: 'http://bridge:8080',
      token: 'abc',
      schedule: DEFAULT_SCHEDULE,
      defaultOwner: 'unknown',
      lifecycle: 'production',
    });
    assert.deepEqual(DEFAULT_SCHEDULE, { frequency: { seconds: 30 }, timeout: { minutes: 3 } });
  });

  test('reads every option', () => {
    const config = readProviderConfig(
      root({
        baseUrl: 'https://apiportal.example.com/bridge',
        token: 'abc',
        schedule: { frequency: { minutes: 5 }, timeout: { seconds: 50 }, initialDelay: 'PT10S' },
        defaultOwner: 'group:default/platform',
        lifecycle: 'experimental',
      }),
    );
    assert.equal(config?.baseUrl, 'https://apiportal.example.com/bridge');
    assert.deepEqual(config?.schedule.frequency, { minutes: 5 });
    assert.deepEqual(config?.schedule.timeout, { seconds: 50 });
    assert.ok(config?.schedule.initialDelay);
    assert.equal(config?.defaultOwner, 'group:default/platform');
    assert.equal(config?.lifecycle, 'experimental');
  });

  test('undefined when the module is not configured', () => {
    assert.equal(readProviderConfig(new ConfigReader({})), undefined);
    assert.equal(readProviderConfig(new ConfigReader({ catalog: { providers: {} } })), undefined);
  });

  test('rejects what cannot work', () => {
    assert.throws(() => readProviderConfig(root({ token: 'abc' })), /baseUrl/);
    assert.throws(() => readProviderConfig(root({ baseUrl: 'bridge:8080', token: 'abc' })), /http or https/);
    assert.throws(() => readProviderConfig(root({ baseUrl: 'not a url', token: 'abc' })), /absolute http\(s\) URL/);
    assert.throws(() => readProviderConfig(root({ baseUrl: 'http://b/?x=1', token: 'abc' })), /query/);
    assert.throws(() => readProviderConfig(root({ baseUrl: 'http://b' })), /token/);
    assert.throws(() => readProviderConfig(root({ baseUrl: 'http://b', token: ' ' })), /token must not be empty/);
    assert.throws(
      () => readProviderConfig(root({ baseUrl: 'http://b', token: 't', schedule: { timeout: { minutes: 1 } } })),
      /frequency/,
    );
  });
});
