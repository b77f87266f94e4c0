import {
  coreServices,
  createServiceFactory,
  type SchedulerServiceTaskInvocationDefinition,
  type SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { catalogProcessingExtensionPoint, type EntityProvider } from '@backstage/plugin-catalog-node';
import { catalogModuleApiportalEntityProvider } from './catalogModuleApiportalEntityProvider';
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

it('the package exports the module as default', () => {
  expect(moduleFromIndex).toBe(catalogModuleApiportalEntityProvider);
});

it('registers the apiportal provider with the catalog, on the configured schedule', async () => {
  const providers: EntityProvider[] = [];
  const scheduler = recordingScheduler();
  const backend = await startTestBackend({
    extensionPoints: [[catalogProcessingExtensionPoint, { addEntityProvider: (...p: unknown[]) => providers.push(...(p.flat() as EntityProvider[])) }]],
    features: [
      catalogModuleApiportalEntityProvider,
      scheduler.factory,
      mockServices.rootConfig.factory({
        data: {
          catalog: {
            providers: {
              apiportal: {
                baseUrl: 'http://127.0.0.1:9',
                token: 't',
                schedule: { frequency: { minutes: 2 }, timeout: { minutes: 1 } },
              },
            },
          },
        },
      }),
    ],
  });
  try {
    expect(providers).toHaveLength(1);
    expect(providers[0].getProviderName()).toBe('apiportal');
    expect(scheduler.scheduled).toHaveLength(1);
    expect(scheduler.scheduled[0].schedule.frequency).toStrictEqual({ minutes: 2 });
    expect(scheduler.scheduled[0].schedule.timeout).toStrictEqual({ minutes: 1 });
  } finally {
    await backend.stop();
  }
});

it('uses every 30 s with a 3 minute timeout by default', async () => {
  const providers: EntityProvider[] = [];
  const scheduler = recordingScheduler();
  const backend = await startTestBackend({
    extensionPoints: [[catalogProcessingExtensionPoint, { addEntityProvider: (...p: unknown[]) => providers.push(...(p.flat() as EntityProvider[])) }]],
    features: [
      catalogModuleApiportalEntityProvider,
      scheduler.factory,
      mockServices.rootConfig.factory({
        data: { catalog: { providers: { apiportal: { baseUrl: 'http://127.0.0.1:9', token: 't' } } } },
      }),
    ],
  });
  try {
    expect(providers).toHaveLength(1);
    expect(scheduler.scheduled[0].schedule.frequency).toStrictEqual({ seconds: 30 });
    expect(scheduler.scheduled[0].schedule.timeout).toStrictEqual({ minutes: 3 });
  } finally {
    await backend.stop();
  }
});

it('without configuration it registers nothing and the backend still starts', async () => {
  const providers: EntityProvider[] = [];
  const backend = await startTestBackend({
    extensionPoints: [[catalogProcessingExtensionPoint, { addEntityProvider: (...p: unknown[]) => providers.push(...(p.flat() as EntityProvider[])) }]],
    features: [catalogModuleApiportalEntityProvider, mockServices.rootConfig.factory({ data: {} })],
  });
  try {
    expect(providers).toHaveLength(0);
  } finally {
    await backend.stop();
  }
});
