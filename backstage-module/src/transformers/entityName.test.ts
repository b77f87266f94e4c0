import { makeValidator } from '@backstage/catalog-model';
import { entityName, isValidClusterName } from './entityName';

const validators = makeValidator();

describe('entityName', () => {
  it('namespace--name when it fits', () => {
    expect(entityName('shop', 'toys')).toBe('shop--toys');
    expect(entityName('shop', 'toys.v1')).toBe('shop--toys.v1');
  });

  it('cluster--namespace--name when a cluster is given', () => {
    expect(entityName('shop', 'toys', 'eu-west')).toBe('eu-west--shop--toys');
    expect(entityName('shop', 'toys', 'eu-west')).not.toBe(entityName('shop', 'toys', 'us-east'));
  });

  it('equal names in two namespaces never collide', () => {
    expect(entityName('shop', 'toys')).not.toBe(entityName('games', 'toys'));
  });

  it('a namespace or cluster with its own -- cannot make two products share a name', () => {
    const a = entityName('a--b', 'c');
    const b = entityName('a', 'b--c');
    expect(b).toBe('a--b--c');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^a--b--c_[0-9a-f]{10}$/);
    const c = entityName('b', 'c', 'x--a');
    expect(c).toMatch(/^x--a--b--c_[0-9a-f]{10}$/);
    expect(c).not.toBe(entityName('a--b', 'c', 'x'));
  });

  it('long names are truncated to 63 characters with a hash that keeps them apart', () => {
    const ns = 'team-with-a-rather-long-namespace-name';
    const one = entityName(ns, 'an-equally-long-product-name-number-one');
    const two = entityName(ns, 'an-equally-long-product-name-number-two');
    expect(one).toBe('team-with-a-rather-long-namespace-name--an-equally-l_c2454f0dbe');
    expect(two).toHaveLength(63);
    expect(one).not.toBe(two);
    expect(validators.isValidEntityName(one)).toBe(true);
    // 63 fits exactly.
    const exact = entityName('n'.repeat(30), 'p'.repeat(31));
    expect(exact).toBe(`${'n'.repeat(30)}--${'p'.repeat(31)}`);
    expect(entityName('n'.repeat(30), 'p'.repeat(32))).toMatch(/_[0-9a-f]{10}$/);
    // With a cluster the name gets longer sooner.
    expect(entityName('n'.repeat(20), 'p'.repeat(20), 'c'.repeat(19))).toBe(
      `${'c'.repeat(19)}--${'n'.repeat(20)}--${'p'.repeat(20)}`,
    );
    expect(entityName('n'.repeat(20), 'p'.repeat(20), 'c'.repeat(20))).toMatch(/^c{20}--n{20}--p{8}_[0-9a-f]{10}$/);
  });

  it('characters Backstage does not allow are replaced', () => {
    const invalid = [
      ['Shop', 'Toys API'],
      ['-x-', '..y..'],
      ['ü', 'ö'],
      ['', ''],
      ['a', 'b_c'],
    ]
      .map(([ns, name]) => ({ product: [ns, name], name: entityName(ns, name) }))
      .filter(mapped => !validators.isValidEntityName(mapped.name));
    expect(invalid).toStrictEqual([]);
    expect(entityName('Shop', 'Toys API')).toMatch(/^shop--toys-api_[0-9a-f]{10}$/);
    expect(entityName('ü', 'ö')).toMatch(/^apiportal_[0-9a-f]{10}$/);
  });

  it('many products in many clusters: every name valid and distinct, with and without clusters', () => {
    const clusters = ['eu', 'us', 'eu-west', 'a', 'x'.repeat(40)];
    const namespaces = ['a', 'a-', 'a--b', 'a-b', 'b', 'x'.repeat(63), 'shop', 'team-a--b'];
    const names = ['b', 'b--c', '-b', 'c', 'a.b', 'a--b--c', 'y'.repeat(253), 'y'.repeat(252) + 'z', 'toys'];
    for (const withClusters of [false, true]) {
      const seen = new Map<string, string>();
      const invalid: string[] = [];
      const collisions: string[] = [];
      for (const cluster of withClusters ? clusters : [undefined]) {
        for (const ns of namespaces) {
          for (const name of names) {
            const n = entityName(ns, name, cluster);
            const what = `${cluster ?? ''}/${ns}/${name}`;
            if (!validators.isValidEntityName(n)) invalid.push(`${what} -> ${n}`);
            const key = n.toLowerCase(); // the catalog compares names case-insensitively
            if (seen.get(key) !== undefined) collisions.push(`${what} and ${seen.get(key)} both map to ${n}`);
            seen.set(key, what);
          }
        }
      }
      expect(invalid).toStrictEqual([]);
      expect(collisions).toStrictEqual([]);
    }
  });

  it('cluster names are DNS labels', () => {
    expect(['eu', 'eu-west-1', 'a', 'x'.repeat(63)].filter(c => !isValidClusterName(c))).toStrictEqual([]);
    expect(['', 'EU', 'eu_west', '-eu', 'eu-', 'x'.repeat(64), 'eu.west'].filter(isValidClusterName)).toStrictEqual([]);
  });
});
