import { makeKey } from '../testing/fakeBridge';
import { NO_USAGE, usageByProduct } from './usage';

describe('usageByProduct', () => {
  it('counts distinct consumers per product and per plan, from approved keys only', () => {
    const usage = usageByProduct([
      makeKey('shop/toys', 'gold', 'alice'),
      // A second approved key of the same user on the same plan: still one consumer.
      makeKey('shop/toys', 'gold', 'alice', { namespace: 'team-alice-2' }),
      makeKey('shop/toys', 'gold', 'bob'),
      // The same user on another plan: once per plan, once in the product's total.
      makeKey('shop/toys', 'bronze', 'bob'),
      makeKey('shop/toys', 'bronze', 'carol', { phase: 'Pending' }),
      makeKey('shop/toys', 'silver', 'dave', { phase: 'Revoked' }),
      makeKey('games/toys', 'bronze', 'alice'),
    ]);
    expect(Object.fromEntries(usage)).toStrictEqual({
      'shop/toys': { consumers: 2, consumersByPlan: { bronze: 1, gold: 2 }, consumersByApplication: {} },
      'games/toys': { consumers: 1, consumersByPlan: { bronze: 1 }, consumersByApplication: {} },
    });
  });

  it('a suspended key, or one in any phase but Approved, is no consumer', () => {
    const phases = ['Pending', 'Suspended', 'Rejected', 'Revoked', 'Expired'] as const;
    const usage = usageByProduct([
      makeKey('shop/toys', 'gold', 'alice', { application: 'web' }),
      ...phases.map(phase => makeKey('shop/toys', 'bronze', `user-${phase}`, { phase, application: 'batch' })),
      makeKey('shop/idle', 'gold', 'erin', { phase: 'Suspended', application: 'web' }),
    ]);
    expect(Object.fromEntries(usage)).toStrictEqual({
      'shop/toys': { consumers: 1, consumersByPlan: { gold: 1 }, consumersByApplication: { 'team-alice/web': 1 } },
    });
  });

  it('counts distinct consumers per application, an application being named per consumer namespace', () => {
    const usage = usageByProduct([
      makeKey('shop/toys', 'gold', 'alice', { application: 'web' }),
      // Two people's keys for one application of one namespace: two consumers of it.
      makeKey('shop/toys', 'bronze', 'bob', { namespace: 'team-alice', application: 'web' }),
      // The same user's second key for the application: still one.
      makeKey('shop/toys', 'bronze', 'alice', { application: 'web' }),
      // Another namespace's "web" is another application.
      makeKey('shop/toys', 'gold', 'carol', { application: 'web' }),
      // A key without an application counts in the total and its plan only.
      makeKey('shop/toys', 'gold', 'dave'),
    ]);
    expect(usage.get('shop/toys')).toStrictEqual({
      consumers: 4,
      consumersByPlan: { bronze: 2, gold: 3 },
      consumersByApplication: { 'team-alice/web': 2, 'team-carol/web': 1 },
    });
  });

  it('the same keys in another order give the same text', () => {
    const keys = [
      makeKey('a/b', 'gold', 'x', { application: 'zeta' }),
      makeKey('a/b', 'bronze', 'y', { application: 'alpha' }),
      makeKey('a/b', 'alpha', 'z'),
    ];
    const one = JSON.stringify(usageByProduct(keys).get('a/b'));
    const two = JSON.stringify(usageByProduct([...keys].reverse()).get('a/b'));
    expect(one).toBe(two);
    expect(one).toBe(
      '{"consumers":3,"consumersByPlan":{"alpha":1,"bronze":1,"gold":1},"consumersByApplication":{"team-x/zeta":1,"team-y/alpha":1}}',
    );
  });

  it('no keys, no usage; NO_USAGE is zero', () => {
    expect(usageByProduct([]).size).toBe(0);
    expect(NO_USAGE).toStrictEqual({ consumers: 0, consumersByPlan: {}, consumersByApplication: {} });
  });
});
