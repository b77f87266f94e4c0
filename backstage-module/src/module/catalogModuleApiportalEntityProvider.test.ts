import {
  coreServices,
  createBackendModule,
  createServiceFactory,
  type SchedulerServiceTaskInvocationDefinition,
  type SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import {
  catalogProcessingExtensionPoint,
  type EntityProvider,
  type EntityProviderConnection,
  type EntityProviderMutation,
} from '@backstage/plugin-catalog-node';
import { makeProduct, startFakeBridge } from '../testing/fakeBridge';
import { defaultApiportalEntityTransformer } from '../transformers/defaultApiportalEntityTransformer';
import type { ApiportalEntityTransformer } from '../transformers/types';
import {
  apiportalEntityProviderTransformExtensionPoint,
  catalogModuleApiportalEntityProvider,
} from './catalogModuleApiportalEntityProvider';
import moduleFromIndex from '../index';

/** A scheduler that records what it is asked to schedule and runs nothing. */
function recordingScheduler() {
  const scheduled: { schedule: SchedulerServiceTaskScheduleDefinition; task?: SchedulerServiceTaskInvocationDefinition }[] = [];
  const factory = createServiceFactory({
    service: coreServices.scheduler,
    deps: {},
    factory: () =>
      ({
        createScheduledTaskRunner(schedule: SchedulerServiceTaskScheduleDefinition) {
          const entry: (typeof scheduled)[number] = { schedule };
          scheduled.push(entry);
          return {
            async run(task: SchedulerServiceTaskInvocationDefinition) {
              entry.task = task;
            },
          };
        },
      }) as never,
  });
  return { scheduled, factory };
}

/** A catalog module that sets `transformer` through the extension point. */
const transformerModule = (moduleId: string, transformer: ApiportalEntityTransformer) =>
  createBackendModule({
    pluginId: 'catalog',
    moduleId,
    register(env) {
      env.registerInit({
        deps: { apiportal: apiportalEntityProviderTransformExtensionPoint },
        async init({ apiportal }) {
          apiportal.setTransformer(transformer);
        },
      });
    },
  });

async function start(apiportal: unknown, ...extra: Parameters<typeof startTestBackend>[0]['features'] & unknown[]) {
  const providers: EntityProvider[] = [];
  const scheduler = recordingScheduler();
  const backend = await startTestBackend({
    extensionPoints: [
      [
        catalogProcessingExtensionPoint,
        { addEntityProvider: (...p: unknown[]) => providers.push(...(p.flat() as EntityProvider[])) },
      ],
    ],
    features: [
      catalogModuleApiportalEntityProvider,
      scheduler.factory,
      mockServices.rootConfig.factory({ data: apiportal === undefined ? {} : { catalog: { providers: { apiportal } } } }),
      ...(extra ?? []),
    ],
  });
  return { providers, scheduled: scheduler.scheduled, backend };
}

it('the package exports the module as default', () => {
  expect(moduleFromIndex).toBe(catalogModuleApiportalEntityProvider);
});

it('registers one provider per configured bridge, each on its own schedule', async () => {
  const { providers, scheduled, backend } = await start({
    eu: { baseUrl: 'http://127.0.0.1:9', token: 't', schedule: { frequency: { minutes: 2 }, timeout: { minutes: 1 } } },
    us: { baseUrl: 'http://127.0.0.1:9', token: 't' },
  });
  try {
    expect(providers.map(p => p.getProviderName())).toStrictEqual(['apiportal-provider:eu', 'apiportal-provider:us']);
    expect(scheduled.map(s => [s.schedule.frequency, s.schedule.timeout])).toStrictEqual([
      [{ minutes: 2 }, { minutes: 1 }],
      [{ seconds: 30 }, { minutes: 3 }],
    ]);
  } finally {
    await backend.stop();
  }
});

it('the single-bridge configuration of earlier versions is the provider "default"', async () => {
  const { providers, scheduled, backend } = await start({ baseUrl: 'http://127.0.0.1:9', token: 't' });
  try {
    expect(providers.map(p => p.getProviderName())).toStrictEqual(['apiportal-provider:default']);
    expect(scheduled.map(s => [s.schedule.frequency, s.schedule.timeout])).toStrictEqual([
      [{ seconds: 30 }, { minutes: 3 }],
    ]);
  } finally {
    await backend.stop();
  }
});

it('a transformer set by another module through the extension point maps the entities', async () => {
  const bridge = await startFakeBridge({ products: [makeProduct({ namespace: 'shop', name: 'toys' })] });
  const { providers, backend } = await start(
    { baseUrl: bridge.url, token: bridge.token },
    transformerModule('apiportal-naming', (product, context) => {
      const entity = defaultApiportalEntityTransformer(product, context);
      entity.metadata.name = `${product.name}-in-${product.namespace}`;
      return entity;
    }),
  );
  try {
    const mutations: EntityProviderMutation[] = [];
    const connection: EntityProviderConnection = {
      applyMutation: async m => {
        mutations.push(m);
      },
      refresh: async () => {},
    };
    expect(providers).toHaveLength(1);
    await providers[0].connect(connection);
    const result = await (providers[0] as unknown as { refresh(): Promise<{ status: string }> }).refresh();
    expect(result.status).toBe('applied');
    expect(mutations.map(m => (m.type === 'full' ? m.entities.map(e => e.entity.metadata.name) : []))).toStrictEqual([
      ['toys-in-shop'],
    ]);
  } finally {
    await backend.stop();
    await bridge.close();
  }
});

it('a second transformer is refused', async () => {
  const identity: ApiportalEntityTransformer = (p, c) => defaultApiportalEntityTransformer(p, c);
  await expect(
    start({ baseUrl: 'http://127.0.0.1:9', token: 't' }, transformerModule('one', identity), transformerModule('two', identity)),
  ).rejects.toThrow(/The apiportal entity transformer may only be set once/);
});

it('invalid configuration stops the backend with the reason', async () => {
  await expect(start({ eu: { baseUrl: 'https://b', tokenFile: '/nonexistent/token' } })).rejects.toThrow(
    /apiportal provider "eu": cannot read tokenFile \/nonexistent\/token: no such file/,
  );
});

it('without configuration it registers nothing and the backend still starts', async () => {
  const { providers, backend } = await start(undefined);
  try {
    expect(providers).toHaveLength(0);
  } finally {
    await backend.stop();
  }
});
