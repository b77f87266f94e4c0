/*
 * A catalog connection for tests: records every mutation a provider applies, and keeps the entities they leave in
 * the catalog as Backstage applies them (a full mutation replaces the provider's entities; a delta removes, then
 * adds or replaces, by entity reference).
 */
import { stringifyEntityRef, type Entity } from '@backstage/catalog-model';
import type { DeferredEntity, EntityProviderConnection, EntityProviderMutation } from '@backstage/plugin-catalog-node';

/** Records the mutations, and keeps the entities they leave in the catalog as Backstage applies them. */
export class RecordingConnection implements EntityProviderConnection {
  mutations: EntityProviderMutation[] = [];
  /** The provider's entities in the catalog, by entity reference. */
  readonly catalog = new Map<string, DeferredEntity>();
  failNext = false;
  async applyMutation(mutation: EntityProviderMutation) {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('database is locked');
    }
    this.mutations.push(mutation);
    if (mutation.type === 'full') {
      this.catalog.clear();
      for (const e of mutation.entities) this.catalog.set(stringifyEntityRef(e.entity), e);
      return;
    }
    for (const r of mutation.removed) this.catalog.delete('entityRef' in r ? r.entityRef : stringifyEntityRef(r.entity));
    for (const e of mutation.added) this.catalog.set(stringifyEntityRef(e.entity), e);
  }
  async refresh() {}
  /** Mutation `index` (default: the last one), which must be a delta mutation. */
  delta(index = this.mutations.length - 1) {
    const mutation = this.mutations[index];
    if (mutation?.type !== 'delta') {
      throw new Error(`expected mutation ${index} to be a delta mutation, got ${JSON.stringify(mutation)}`);
    }
    return mutation;
  }
  /** The entities of mutation `index` (default: the last one), which must be a full mutation. */
  full(index = this.mutations.length - 1) {
    const mutation = this.mutations[index];
    if (mutation?.type !== 'full') {
      throw new Error(`expected mutation ${index} to be a full mutation, got ${JSON.stringify(mutation)}`);
    }
    return mutation.entities;
  }
  /** Names of the entities in the catalog, sorted. */
  names(): string[] {
    return [...this.catalog.values()].map(e => e.entity.metadata.name).sort();
  }
  /** The entity called `name` in the catalog. */
  entity(name: string): Entity {
    const found = [...this.catalog.values()].find(e => e.entity.metadata.name === name);
    if (!found) throw new Error(`no entity ${name} in the catalog; it has ${this.names().join(', ')}`);
    return found.entity;
  }
}
