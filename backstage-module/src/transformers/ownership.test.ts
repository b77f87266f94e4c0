import { makeProduct } from '../testing/fakeBridge';
import { isEntityRef, ownerOf, systemOf, type OwnerPolicy, type SystemPolicy } from './ownership';

const team = { team: 'toys-team', email: null, slack: null, url: null };
const product = makeProduct({
  namespace: 'shop',
  name: 'toys',
  annotations: { 'backstage.io/owner': 'user:default/alice', 'backstage.io/system': 'payments' },
  labels: { system: 'storefront' },
  contact: team,
});
const mapped = { shop: 'group:default/shop-owners' };

describe('ownerOf', () => {
  it.each<[string, OwnerPolicy, string, string]>([
    ['the namespace mapping, by default', { from: ['namespace'], namespaces: mapped }, 'unknown', 'group:default/shop-owners'],
    ['the default owner for an unmapped namespace', { from: ['namespace'], namespaces: {} }, 'group:default/platform', 'group:default/platform'],
    ['a default owner derived from the namespace', { from: ['namespace'], namespaces: {} }, 'group:default/{namespace}-team', 'group:default/shop-team'],
    ['the contact team when enabled first', { from: ['contactTeam', 'namespace'], namespaces: mapped }, 'unknown', 'toys-team'],
    ['the annotation when enabled first', { from: ['annotation', 'contactTeam'], namespaces: mapped }, 'unknown', 'user:default/alice'],
    ['the namespace before enabled product fields listed after it', { from: ['namespace', 'annotation'], namespaces: mapped }, 'unknown', 'group:default/shop-owners'],
    ['unknown when even the default is blank', { from: ['namespace'], namespaces: {} }, ' ', 'unknown'],
  ])('%s', (_, policy, defaultOwner, expected) => {
    expect(ownerOf(product, policy, defaultOwner)).toBe(expected);
  });

  it('skips blank values and values that are no entity reference', () => {
    const odd = makeProduct({
      namespace: 'shop',
      name: 'toys',
      annotations: { 'backstage.io/owner': 'group:default/two words' },
      contact: { team: '  ', email: null, slack: null, url: null },
    });
    expect(ownerOf(odd, { from: ['annotation', 'contactTeam'], namespaces: {} }, 'platform')).toBe('platform');
  });
});

describe('systemOf', () => {
  it.each<[string, SystemPolicy, string | undefined]>([
    ['the namespace mapping, by default', { from: ['namespace'], namespaces: { shop: 'storefront' } }, 'storefront'],
    ['none for an unmapped namespace', { from: ['namespace'], namespaces: {} }, undefined],
    ['the label when enabled', { from: ['label'], namespaces: {} }, 'storefront'],
    ['the annotation when enabled first', { from: ['annotation', 'label'], namespaces: {} }, 'payments'],
  ])('%s', (_, policy, expected) => {
    expect(systemOf(product, policy)).toBe(expected);
  });
});

describe('isEntityRef', () => {
  it.each([
    ['toys-team', true],
    ['group:toys-team', true],
    ['group:default/toys-team', true],
    ['system:default/storefront', true],
    ['group:default/two words', false],
    ['a/b/c', false],
    ['group:', false],
    ['', false],
    ['javascript:alert(1)', false],
  ])('%j: %s', (ref, valid) => {
    expect(isEntityRef(ref, 'group')).toBe(valid);
  });
});
