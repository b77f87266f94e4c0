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
      'shop/toys': { consumers: 2, consumersByPlan: { bronze: 1, gold: 2 } },
      'games/toys': { consumers: 1, consumersByPlan: { bronze: 1 } },
    });
  });

  it('the same keys in another order give the same text', () => {
    const keys = [makeKey('a/b', 'gold', 'x'), makeKey('a/b', 'bronze', 'y'), makeKey('a/b', 'alpha', 'z')];
    const one = JSON.stringify(usageByProduct(keys).get('a/b'));
    const two = JSON.stringify(usageByProduct([...keys].reverse()).get('a/b'));
    expect(one).toBe(two);
    expect(one).toBe('{"consumers":3,"consumersByPlan":{"alpha":1,"bronze":1,"gold":1}}');
  });

  it('no keys, no usage; NO_USAGE is zero', () => {
    expect(usageByProduct([]).size).toBe(0);
    expect(NO_USAGE).toStrictEqual({ consumers: 0, consumersByPlan: {} });
  });
});
