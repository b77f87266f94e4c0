//! What the view serves, built once per change of the caches (debounced) and shared by every request: each
//! product and key serialised once (and again only when its resourceVersion changes), the full catalog as JSON
//! and gzip with their ETags, and the per-namespace indexes. A request authorises, picks bytes, writes them;
//! answers for a subset of namespaces are assembled from the serialised items and kept (bounded) for the next
//! caller who asks the same.

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

use super::model::{KeyView, ProductView, Scope};
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
    pub json: Bytes,
}

/// Which items a list answer holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum ListKey {
    Products { drafts: bool, namespaces: Option<Vec<String>> },
    Keys { namespaces: Option<Vec<String>>, product: Option<(String, String)>, phase: Option<KeyPhase> },
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
}

fn ranges<T>(items: &[T], namespace: impl Fn(&T) -> &str) -> BTreeMap<String, Range<usize>> {
    let mut out: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        out.entry(namespace(item).to_owned()).and_modify(|r| r.end = i + 1).or_insert(i..i + 1);
    }
    out
}

/// `{"items":[...],"scope":{...}}` from items serialised once.
fn list_body<'a>(items: impl Iterator<Item = &'a Bytes>, scope: &Scope) -> Vec<u8> {
    let mut body = b"{\"items\":[".to_vec();
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"],\"scope\":");
    body.extend_from_slice(&serde_json::to_vec(scope).expect("a scope serialises"));
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
                let body = list_body(items.filter(|p| *drafts || p.published).map(|p| &p.json), &scope(namespaces));
                Prepared::new(body)
            }
            ListKey::Keys { namespaces, product, phase } => {
                let items = self.in_namespaces(&self.keys, &self.key_ranges, namespaces);
                let body = list_body(
                    items
                        .filter(|k| product.as_ref().is_none_or(|p| &k.product == p))
                        .filter(|k| phase.is_none_or(|p| k.phase == p))
                        .map(|k| &k.json),
                    &scope(namespaces),
                );
                Prepared::new(body)
            }
        }
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

/// Builds snapshots, reusing each object's serialisation while its resourceVersion stays the same.
#[derive(Default)]
pub struct Builder {
    products: HashMap<(String, String), (Option<String>, Bytes, String)>,
    keys: HashMap<(String, String), (Option<String>, Bytes)>,
}

fn id<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl Builder {
    pub fn build(&mut self, products: &[Arc<APIProduct>], keys: &[Arc<APIKey>]) -> Snapshot {
        let mut products: Vec<&Arc<APIProduct>> = products.iter().collect();
        products.sort_by_key(|p| id(p.as_ref()));
        let mut seen = HashMap::with_capacity(products.len());
        let product_entries: Vec<ProductEntry> = products
            .iter()
            .map(|p| {
                let key = id(p.as_ref());
                let version = p.resource_version();
                let (json, tag) = match self.products.get(&key) {
                    Some((v, json, tag)) if *v == version && version.is_some() => (json.clone(), tag.clone()),
                    _ => {
                        let json: Bytes = serde_json::to_vec(&ProductView::new(p)).expect("a view serialises").into();
                        let tag = etag(&json);
                        (json, tag)
                    }
                };
                seen.insert(key.clone(), (version, json.clone(), tag.clone()));
                let openapi = p
                    .status
                    .as_ref()
                    .and_then(|s| s.openapi.as_ref())
                    .map(|o| (p.uid().unwrap_or_default(), o.last_sync_time.0.to_string()));
                ProductEntry { namespace: key.0, name: key.1, published: p.is_published(), json, etag: tag, openapi }
            })
            .collect();
        self.products = seen;

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
                    json,
                }
            })
            .collect();
        self.keys = seen;

        let published = Arc::new(Prepared::new(list_body(
            product_entries.iter().filter(|p| p.published).map(|p| &p.json),
            &scope(&None),
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
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
                "spec": {"displayName": name, "targetRef": {"name": "r"}, "publishStatus": if published { "Published" } else { "Draft" }}
            }))
            .unwrap(),
        )
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
