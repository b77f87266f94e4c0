//! What the view serves, built once per change of the caches (debounced) and shared by every request: each
//! product and key serialised once (and again only when its resourceVersion changes), the full catalog as JSON
//! and gzip with their ETags, the per-namespace indexes, and the recent history of the products (`changes`) that
//! answers what changed since a version. A request authorises, picks bytes, writes them; answers for a subset of
//! namespaces are assembled from the serialised items and kept (bounded) for the next caller who asks the same.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    ops::Range,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use apiportal_core::{APIKey, APIProduct, KeyPhase};
use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::{
    changes::{Change, Filter, Held, History, State, Version},
    model::{KeyView, ProductView, RemovedProduct, Scope},
};
use crate::caches::Caches;

/// Waits this long after a change for more, so a burst of changes builds one snapshot.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// Assembled answers kept per snapshot, by size.
const MEMO_BYTES: u64 = 64 * 1024 * 1024;

/// A body ready to send in either encoding, with the ETag of each.
pub struct Prepared {
    pub json: Bytes,
    pub gzip: Bytes,
    /// Strong ETag of the identity body; the gzip body's is the same with `-gzip` appended inside the quotes.
    pub etag: String,
}

impl Prepared {
    pub fn new(json: Vec<u8>) -> Self {
        let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
        encoder.write_all(&json).expect("writing to memory");
        let gzip = encoder.finish().expect("writing to memory");
        Self { etag: etag(&json), json: json.into(), gzip: gzip.into() }
    }

    pub fn size(&self) -> usize {
        self.json.len() + self.gzip.len()
    }
}

/// A strong ETag over the bytes.
pub fn etag(body: &[u8]) -> String {
    let hex: String = Sha256::digest(body).iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

pub struct ProductEntry {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub published: bool,
    pub json: Bytes,
    pub etag: String,
    /// `(uid, lastSyncTime)` of its OpenAPI document, when it has one.
    pub openapi: Option<(String, String)>,
}

pub struct KeyEntry {
    pub namespace: String,
    pub product: (String, String),
    pub phase: KeyPhase,
    pub application: Option<String>,
    pub json: Bytes,
}

/// Which items a list answer holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum ListKey {
    Products {
        drafts: bool,
        namespaces: Option<Vec<String>>,
    },
    Keys {
        namespaces: Option<Vec<String>>,
        product: Option<(String, String)>,
        phase: Option<KeyPhase>,
        application: Option<String>,
    },
}

pub struct Snapshot {
    pub products: Vec<ProductEntry>,
    product_ranges: BTreeMap<String, Range<usize>>,
    product_index: HashMap<(String, String), usize>,
    keys: Vec<KeyEntry>,
    key_ranges: BTreeMap<String, Range<usize>>,
    /// The published catalog, cluster-wide: Backstage's question, answered before anyone asks.
    published: Arc<Prepared>,
    memo: moka::sync::Cache<ListKey, Arc<Prepared>>,
    /// The products' state, and the recent steps that led to it.
    state: State,
    history: History,
}

fn ranges<T>(items: &[T], namespace: impl Fn(&T) -> &str) -> BTreeMap<String, Range<usize>> {
    let mut out: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        out.entry(namespace(item).to_owned()).and_modify(|r| r.end = i + 1).or_insert(i..i + 1);
    }
    out
}

/// `[item,...]` from items serialised once.
fn push_array<'a>(body: &mut Vec<u8>, items: impl Iterator<Item = &'a Bytes>) {
    body.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.push(b']');
}

/// `{"items":[...],"scope":{...}}` (and `"kind"` and `"version"` for products) from items serialised once.
fn list_body<'a>(items: impl Iterator<Item = &'a Bytes>, scope: &Scope, version: Option<Version>) -> Vec<u8> {
    let mut body =
        if version.is_some() { b"{\"kind\":\"ProductList\",\"items\":".to_vec() } else { b"{\"items\":".to_vec() };
    push_array(&mut body, items);
    body.extend_from_slice(b",\"scope\":");
    body.extend_from_slice(&serde_json::to_vec(scope).expect("a scope serialises"));
    if let Some(version) = version {
        body.extend_from_slice(format!(",\"version\":\"{version}\"").as_bytes());
    }
    body.push(b'}');
    body
}

pub fn scope(namespaces: &Option<Vec<String>>) -> Scope {
    match namespaces {
        None => Scope { all_namespaces: true, namespaces: Vec::new() },
        Some(ns) => Scope { all_namespaces: false, namespaces: ns.clone() },
    }
}

impl Snapshot {
    pub fn product(&self, namespace: &str, name: &str) -> Option<&ProductEntry> {
        self.product_index.get(&(namespace.to_owned(), name.to_owned())).map(|&i| &self.products[i])
    }

    /// Namespaces that have products (candidates for a caller's per-namespace rights).
    pub fn product_namespaces(&self) -> Vec<String> {
        self.product_ranges.keys().cloned().collect()
    }

    pub fn key_namespaces(&self) -> Vec<String> {
        self.key_ranges.keys().cloned().collect()
    }

    /// The answer for `key`, prepared once per snapshot.
    pub fn list(&self, key: ListKey) -> Arc<Prepared> {
        if let ListKey::Products { drafts: false, namespaces: None } = key {
            return self.published.clone();
        }
        self.memo.get_with(key.clone(), || Arc::new(self.assemble(&key)))
    }

    fn assemble(&self, key: &ListKey) -> Prepared {
        match key {
            ListKey::Products { drafts, namespaces } => {
                let items = self.in_namespaces(&self.products, &self.product_ranges, namespaces);
                let version = Version::new(self.state, Filter { drafts: *drafts, namespaces });
                let body = list_body(
                    items.filter(|p| *drafts || p.published).map(|p| &p.json),
                    &scope(namespaces),
                    Some(version),
                );
                Prepared::new(body)
            }
            ListKey::Keys { namespaces, product, phase, application } => {
                let items = self.in_namespaces(&self.keys, &self.key_ranges, namespaces);
                let body = list_body(
                    items
                        .filter(|k| product.as_ref().is_none_or(|p| &k.product == p))
                        .filter(|k| phase.is_none_or(|p| k.phase == p))
                        .filter(|k| application.is_none() || k.application == *application)
                        .map(|k| &k.json),
                    &scope(namespaces),
                    None,
                );
                Prepared::new(body)
            }
        }
    }

    /// What changed in the products list seen through `filter` since `since` (`ProductChanges`), or `None` when
    /// this snapshot cannot tell: `since` is of another filter, too old, or of a state this replica never built.
    pub fn changes(&self, since: Version, filter: Filter<'_>) -> Option<Vec<u8>> {
        if !since.is_for(filter) {
            return None;
        }
        let mut changed: Vec<((&str, &str), Option<&Held>)> = self.history.since(since.state())?.into_iter().collect();
        changed.sort_unstable_by_key(|(id, _)| *id);
        let mut items = Vec::new();
        let mut removed = Vec::new();
        for ((namespace, name), before) in changed {
            // Only what the caller's list held then or holds now: nothing else it may learn of.
            let before = before.filter(|b| filter.admits(namespace, b.published));
            let now = self.product(namespace, name).filter(|p| filter.admits(&p.namespace, p.published));
            match (before, now) {
                (Some(before), Some(now)) if before.etag == now.etag => {}
                (_, Some(now)) => items.push(&now.json),
                (Some(before), None) => removed.push(RemovedProduct {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    uid: before.uid.clone(),
                }),
                (None, None) => {}
            }
        }
        let version = Version::new(self.state, filter);
        let mut body =
            format!("{{\"kind\":\"ProductChanges\",\"since\":\"{since}\",\"version\":\"{version}\",\"items\":")
                .into_bytes();
        push_array(&mut body, items.into_iter());
        body.extend_from_slice(b",\"removed\":");
        body.extend_from_slice(&serde_json::to_vec(&removed).expect("removed products serialise"));
        body.extend_from_slice(b",\"scope\":");
        body.extend_from_slice(&serde_json::to_vec(&scope(filter.namespaces)).expect("a scope serialises"));
        body.push(b'}');
        Some(body)
    }

    fn in_namespaces<'a, T>(
        &'a self,
        items: &'a [T],
        ranges: &'a BTreeMap<String, Range<usize>>,
        namespaces: &'a Option<Vec<String>>,
    ) -> Box<dyn Iterator<Item = &'a T> + 'a> {
        match namespaces {
            None => Box::new(items.iter()),
            Some(ns) => Box::new(ns.iter().filter_map(|n| ranges.get(n)).flat_map(move |r| items[r.clone()].iter())),
        }
    }
}

/// A product as the last build serialised it.
struct CachedProduct {
    resource_version: Option<String>,
    json: Bytes,
    held: Held,
}

/// Builds snapshots, reusing each object's serialisation while its resourceVersion stays the same, and records
/// which products changed from one snapshot to the next.
#[derive(Default)]
pub struct Builder {
    products: HashMap<(String, String), CachedProduct>,
    keys: HashMap<(String, String), (Option<String>, Bytes)>,
    history: History,
}

fn id<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl Builder {
    pub fn build(&mut self, products: &[Arc<APIProduct>], keys: &[Arc<APIKey>]) -> Snapshot {
        let mut products: Vec<&Arc<APIProduct>> = products.iter().collect();
        products.sort_by_key(|p| id(p.as_ref()));
        let mut seen = HashMap::with_capacity(products.len());
        let mut changes = Vec::new();
        let product_entries: Vec<ProductEntry> = products
            .iter()
            .map(|p| {
                let key = id(p.as_ref());
                let version = p.resource_version();
                let previous = self.products.remove(&key);
                let json = match &previous {
                    Some(cached) if cached.resource_version == version && version.is_some() => cached.json.clone(),
                    _ => serde_json::to_vec(&ProductView::new(p)).expect("a view serialises").into(),
                };
                let held = match previous {
                    Some(cached) if cached.json == json => cached.held,
                    previous => {
                        let held = Held { uid: p.uid(), published: p.is_published(), etag: etag(&json) };
                        changes.push(Change {
                            namespace: key.0.clone(),
                            name: key.1.clone(),
                            before: previous.map(|cached| cached.held),
                        });
                        held
                    }
                };
                seen.insert(
                    key.clone(),
                    CachedProduct { resource_version: version, json: json.clone(), held: held.clone() },
                );
                let openapi = p
                    .status
                    .as_ref()
                    .and_then(|s| s.openapi.as_ref())
                    .map(|o| (p.uid().unwrap_or_default(), o.last_sync_time.0.to_string()));
                ProductEntry {
                    namespace: key.0,
                    name: key.1,
                    uid: held.uid,
                    published: held.published,
                    json,
                    etag: held.etag,
                    openapi,
                }
            })
            .collect();
        // What is left of the last build's products is gone.
        changes.extend(self.products.drain().map(|((namespace, name), cached)| Change {
            namespace,
            name,
            before: Some(cached.held),
        }));
        self.products = seen;
        let state = State::of(product_entries.iter().map(|p| (p.namespace.as_str(), p.name.as_str(), p.etag.as_str())));
        if self.history.current() != Some(state) {
            self.history = self.history.then(state, changes);
        }

        let mut keys: Vec<&Arc<APIKey>> = keys.iter().collect();
        keys.sort_by_key(|k| id(k.as_ref()));
        let mut seen = HashMap::with_capacity(keys.len());
        let key_entries: Vec<KeyEntry> = keys
            .iter()
            .map(|k| {
                let key = id(k.as_ref());
                let version = k.resource_version();
                let json = match self.keys.get(&key) {
                    Some((v, json)) if *v == version && version.is_some() => json.clone(),
                    _ => serde_json::to_vec(&KeyView::new(k)).expect("a view serialises").into(),
                };
                seen.insert(key.clone(), (version, json.clone()));
                KeyEntry {
                    namespace: key.0,
                    product: (k.product_namespace(), k.spec.api_product_ref.name.clone()),
                    phase: k.phase(),
                    application: k.spec.application.clone(),
                    json,
                }
            })
            .collect();
        self.keys = seen;

        let everywhere = None;
        let published = Arc::new(Prepared::new(list_body(
            product_entries.iter().filter(|p| p.published).map(|p| &p.json),
            &scope(&everywhere),
            Some(Version::new(state, Filter { drafts: false, namespaces: &everywhere })),
        )));
        Snapshot {
            product_ranges: ranges(&product_entries, |p| &p.namespace),
            product_index: product_entries
                .iter()
                .enumerate()
                .map(|(i, p)| ((p.namespace.clone(), p.name.clone()), i))
                .collect(),
            products: product_entries,
            key_ranges: ranges(&key_entries, |k| &k.namespace),
            keys: key_entries,
            published,
            memo: moka::sync::Cache::builder()
                .weigher(|_, v: &Arc<Prepared>| v.size().min(u32::MAX as usize) as u32)
                .max_capacity(MEMO_BYTES)
                .build(),
            state,
            history: self.history.clone(),
        }
    }
}

/// The current snapshot, `None` until the caches have synced.
#[derive(Default)]
pub struct Current(RwLock<Option<Arc<Snapshot>>>);

impl Current {
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.0.read().expect("never poisoned").clone()
    }
}

/// Rebuilds the snapshot whenever the caches change (debounced), once they have synced.
pub async fn keep_current(caches: Caches, current: Arc<Current>) {
    let builder = Arc::new(Mutex::new(Builder::default()));
    loop {
        if caches.synced() {
            let (products, keys) = (caches.products.state(), caches.keys.state());
            let builder = builder.clone();
            let snapshot =
                tokio::task::spawn_blocking(move || builder.lock().expect("never poisoned").build(&products, &keys))
                    .await
                    .expect("building a snapshot does not panic");
            *current.0.write().expect("never poisoned") = Some(Arc::new(snapshot));
        }
        caches.changed().await;
        tokio::time::sleep(DEBOUNCE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(ns: &str, name: &str, published: bool) -> Arc<APIProduct> {
        product_at(ns, name, published, 1, "uid")
    }

    /// A product at `generation` (its description and resourceVersion follow it) with `uid`.
    fn product_at(ns: &str, name: &str, published: bool, generation: u32, uid: &str) -> Arc<APIProduct> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": generation.to_string(), "uid": format!("{uid}-{ns}-{name}")},
                "spec": {"displayName": name, "targetRef": {"name": "r"}, "description": format!("generation {generation}"),
                         "publishStatus": if published { "Published" } else { "Draft" }}
            }))
            .unwrap(),
        )
    }

    fn key(ns: &str, name: &str, phase: &str, application: Option<&str>) -> Arc<APIKey> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
                "spec": {"apiProductRef": {"name": "toys", "namespace": "shop"}, "planTier": "gold",
                         "requestedBy": {"userId": name}, "application": application},
                "status": {"phase": phase, "reviewedBy": "owner", "reviewedAt": "2026-12-01T00:00:00Z"}
            }))
            .unwrap(),
        )
    }

    fn json(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    /// The list at `list`'s version with `changes` applied, as a client applies them: by namespace and name.
    fn apply(list: &serde_json::Value, changes: &serde_json::Value) -> Vec<serde_json::Value> {
        let id =
            |p: &serde_json::Value| format!("{}/{}", p["namespace"].as_str().unwrap(), p["name"].as_str().unwrap());
        let mut held: BTreeMap<String, serde_json::Value> =
            list["items"].as_array().unwrap().iter().map(|p| (id(p), p.clone())).collect();
        for removed in changes["removed"].as_array().unwrap() {
            assert!(held.remove(&id(removed)).is_some(), "removed {removed} was not in the list at since");
        }
        for item in changes["items"].as_array().unwrap() {
            held.insert(id(item), item.clone());
        }
        held.into_values().collect()
    }

    /// A caller who may list products in one namespace holds its list at a version; meanwhile products of a
    /// namespace it may not list are deleted, unpublished and created, and a Draft of its own namespace (which
    /// its list never showed) is deleted. The changes it is told name none of them: no namespace, name or uid
    /// of a product it could not list, in `items` or in `removed`.
    #[test]
    fn a_caller_never_learns_through_changes_of_a_product_it_could_not_list() {
        let mut builder = Builder::default();
        let before = [
            product_at("mine", "a", true, 1, "u1"),
            product_at("mine", "hidden-draft", false, 1, "u1"),
            product_at("theirs", "secret-deleted", true, 1, "u1"),
            product_at("theirs", "secret-unpublished", true, 1, "u1"),
        ];
        let mine = Some(vec!["mine".to_owned()]);
        let filter = Filter { drafts: false, namespaces: &mine };
        let first = builder.build(&before, &[]);
        let list = json(&first.list(ListKey::Products { drafts: false, namespaces: mine.clone() }).json);
        let since = Version::parse(list["version"].as_str().unwrap()).unwrap();
        let after = [
            product_at("mine", "a", true, 2, "u1"),
            product_at("theirs", "secret-created", true, 1, "u1"),
            product_at("theirs", "secret-unpublished", false, 2, "u1"),
        ];
        let now = builder.build(&after, &[]);
        let changes = json(&now.changes(since, filter).expect("a version of this bridge's, for this scope"));
        let text = changes.to_string();
        for secret in ["theirs", "secret", "hidden-draft"] {
            assert!(!text.contains(secret), "the changes name {secret:?}: {text}");
        }
        assert_eq!(names(&serde_json::to_vec(&changes).unwrap()), ["mine/a"]);
        assert_eq!(changes["removed"], serde_json::json!([]));
        assert_eq!(changes["since"], since.to_string());
        assert_eq!(
            apply(&list, &changes),
            json(&now.list(ListKey::Products { drafts: false, namespaces: mine.clone() }).json)["items"]
                .as_array()
                .unwrap()
                .clone()
        );
    }

    fn names(body: &[u8]) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| format!("{}/{}", i["namespace"].as_str().unwrap(), i["name"].as_str().unwrap()))
            .collect()
    }

    /// Over generated histories (products created, changed, published, unpublished, deleted and recreated under a
    /// new uid, in three namespaces), for every version a client may hold and every filter: the changes since
    /// it, applied to the list at it, give the list now, exactly; its version is the list's now; a version of
    /// another filter or one never built is refused.
    #[test]
    fn changes_since_any_kept_version_rebuild_the_list_exactly() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            // splitmix64: deterministic, so a failure is reproduced by running the test again.
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        };
        let filters: Vec<(bool, Option<Vec<String>>)> = vec![
            (false, None),
            (true, None),
            (false, Some(vec!["a".into()])),
            (true, Some(vec!["a".into(), "c".into()])),
        ];
        for _history in 0..20 {
            let mut builder = Builder::default();
            // (namespace, name) -> (published, generation, uid)
            let mut cluster: BTreeMap<(String, String), (bool, u32, u32)> = BTreeMap::new();
            let mut lists: Vec<Vec<serde_json::Value>> = Vec::new();
            for _step in 0..30 {
                for _change in 0..=next(3) {
                    let id = (["a", "b", "c"][next(3) as usize].to_owned(), format!("p{}", next(5)));
                    let uid = next(1000) as u32;
                    match (cluster.get(&id).copied(), next(5)) {
                        (None, _) => {
                            cluster.insert(id, (next(2) == 0, 1, uid));
                        }
                        (Some((published, generation, uid)), 0 | 1) => {
                            cluster.insert(id, (published, generation + 1, uid));
                        }
                        (Some((published, generation, uid)), 2) => {
                            cluster.insert(id, (!published, generation + 1, uid));
                        }
                        (Some(_), 3) => {
                            cluster.remove(&id);
                        }
                        (Some((published, _, _)), _) => {
                            cluster.insert(id, (published, 1, uid + 1000));
                        }
                    }
                }
                let products: Vec<Arc<APIProduct>> = cluster
                    .iter()
                    .map(|((ns, name), (published, generation, uid))| {
                        product_at(ns, name, *published, *generation, &uid.to_string())
                    })
                    .collect();
                let snapshot = builder.build(&products, &[]);
                let now: Vec<serde_json::Value> = filters
                    .iter()
                    .map(|(drafts, namespaces)| {
                        json(&snapshot.list(ListKey::Products { drafts: *drafts, namespaces: namespaces.clone() }).json)
                    })
                    .collect();
                for held in &lists {
                    for (f, (drafts, namespaces)) in filters.iter().enumerate() {
                        let filter = Filter { drafts: *drafts, namespaces };
                        let since = Version::parse(held[f]["version"].as_str().unwrap()).unwrap();
                        let changes = json(&snapshot.changes(since, filter).expect("a kept version"));
                        assert_eq!(changes["version"], now[f]["version"]);
                        assert_eq!(changes["scope"], now[f]["scope"]);
                        assert_eq!(&apply(&held[f], &changes), now[f]["items"].as_array().unwrap(), "filter {f}");
                        let other = Version::parse(held[(f + 1) % filters.len()]["version"].as_str().unwrap()).unwrap();
                        assert!(snapshot.changes(other, filter).is_none(), "a version of another filter is refused");
                    }
                }
                lists.push(now);
            }
            let unknown =
                Version::new(State::of(std::iter::once(("x", "y", "z"))), Filter { drafts: false, namespaces: &None });
            assert!(builder.build(&[], &[]).changes(unknown, Filter { drafts: false, namespaces: &None }).is_none());
        }
    }

    /// The view writes list and change bodies by concatenating bytes; they are exactly what the contract's types
    /// serialise to (the types the schema is generated from).
    #[test]
    fn the_bodies_written_by_hand_are_what_the_types_serialise() {
        use crate::view::model::{ProductChanges, ProductChangesKind, ProductList, ProductListKind};
        let (old, kept) = (product_at("a", "old", true, 1, "u"), product_at("a", "kept", true, 1, "u"));
        let mut builder = Builder::default();
        let first = builder.build(&[old.clone(), kept.clone()], &[]);
        let list = json(&first.list(ListKey::Products { drafts: false, namespaces: None }).json);
        let version = list["version"].as_str().unwrap().to_owned();
        let expected = ProductList {
            kind: ProductListKind::ProductList,
            items: vec![ProductView::new(&kept), ProductView::new(&old)],
            scope: scope(&None),
            version: version.clone(),
        };
        assert_eq!(list, serde_json::to_value(expected).unwrap());

        let new = product_at("a", "new", true, 1, "u");
        let now = builder.build(&[kept.clone(), new.clone()], &[]);
        let changes =
            json(&now.changes(Version::parse(&version).unwrap(), Filter { drafts: false, namespaces: &None }).unwrap());
        let expected = ProductChanges {
            kind: ProductChangesKind::ProductChanges,
            since: version,
            version: json(&now.list(ListKey::Products { drafts: false, namespaces: None }).json)["version"]
                .as_str()
                .unwrap()
                .to_owned(),
            items: vec![ProductView::new(&new)],
            removed: vec![RemovedProduct { namespace: "a".into(), name: "old".into(), uid: Some("u-a-old".into()) }],
            scope: scope(&None),
        };
        assert_eq!(changes, serde_json::to_value(expected).unwrap());
    }

    #[test]
    fn a_snapshot_with_the_same_products_has_the_same_version_and_changes_nothing() {
        let products = [product("a", "x", true), product("b", "y", false)];
        let first = Builder::default().build(&products, &[]);
        let mut builder = Builder::default();
        builder.build(&products, &[]);
        // Keys changing make new snapshots, not new versions of the products list.
        let again = builder.build(&products, &[key("team", "k", "Approved", None)]);
        let key_all = || ListKey::Products { drafts: false, namespaces: None };
        assert_eq!(json(&again.list(key_all()).json)["version"], json(&first.list(key_all()).json)["version"]);
        let since = Version::parse(json(&first.list(key_all()).json)["version"].as_str().unwrap()).unwrap();
        let changes = json(&again.changes(since, Filter { drafts: false, namespaces: &None }).unwrap());
        assert_eq!(
            (changes["items"].clone(), changes["removed"].clone()),
            (serde_json::json!([]), serde_json::json!([]))
        );
    }

    /// Consumer counts read `?phase=Approved`: a Suspended key (or any other phase) is not in it. Keys are also
    /// listed per application.
    #[test]
    fn approved_keys_leave_out_suspended_ones_and_keys_list_per_application() {
        let keys = [
            key("team", "approved-web", "Approved", Some("web")),
            key("team", "approved-none", "Approved", None),
            key("team", "suspended-web", "Suspended", Some("web")),
            key("team", "pending-batch", "Pending", Some("batch")),
        ];
        let snapshot = Builder::default().build(&[], &keys);
        let list = |phase: Option<KeyPhase>, application: Option<&str>| {
            let key =
                ListKey::Keys { namespaces: None, product: None, phase, application: application.map(str::to_owned) };
            let body = json(&snapshot.list(key).json);
            body["items"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(list(Some(KeyPhase::Approved), None), ["approved-none", "approved-web"]);
        assert_eq!(list(None, Some("web")), ["approved-web", "suspended-web"]);
        assert_eq!(list(Some(KeyPhase::Approved), Some("web")), ["approved-web"]);
        assert_eq!(list(Some(KeyPhase::Suspended), None), ["suspended-web"]);
    }

    #[test]
    fn lists_are_sorted_filtered_and_say_their_scope() {
        let products =
            [product("b", "x", true), product("a", "y", true), product("a", "d", false), product("c", "z", true)];
        let snapshot = Builder::default().build(&products, &[]);
        let all = snapshot.list(ListKey::Products { drafts: false, namespaces: None });
        assert_eq!(names(&all.json), ["a/y", "b/x", "c/z"]);
        let v: serde_json::Value = serde_json::from_slice(&all.json).unwrap();
        assert_eq!(v["scope"], serde_json::json!({"allNamespaces": true, "namespaces": []}));
        let some = snapshot.list(ListKey::Products { drafts: true, namespaces: Some(vec!["a".into(), "c".into()]) });
        assert_eq!(names(&some.json), ["a/d", "a/y", "c/z"]);
        let v: serde_json::Value = serde_json::from_slice(&some.json).unwrap();
        assert_eq!(v["scope"], serde_json::json!({"allNamespaces": false, "namespaces": ["a", "c"]}));
        let none = snapshot.list(ListKey::Products { drafts: false, namespaces: Some(vec!["nothing-here".into()]) });
        assert!(names(&none.json).is_empty());
    }

    #[test]
    fn the_gzip_body_is_the_json_body_and_etags_follow_the_bytes() {
        let snapshot = Builder::default().build(&[product("a", "y", true)], &[]);
        let all = snapshot.list(ListKey::Products { drafts: false, namespaces: None });
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&all.gzip[..]), &mut decoded).unwrap();
        assert_eq!(decoded, all.json);
        let again = Builder::default().build(&[product("a", "y", true)], &[]);
        assert_eq!(
            again.list(ListKey::Products { drafts: false, namespaces: None }).etag,
            all.etag,
            "same content, same tag"
        );
        let changed = Builder::default().build(&[product("a", "y", true), product("a", "z", true)], &[]);
        assert_ne!(changed.list(ListKey::Products { drafts: false, namespaces: None }).etag, all.etag);
    }
}
