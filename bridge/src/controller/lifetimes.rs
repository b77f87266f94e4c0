//! The mirror of every product's `maxKeyLifetime` in one ConfigMap, the parameter of the
//! `apiportal-apikey-lifetime` admission policy (the API server cannot read a product while admitting an APIKey).
//!
//! The mirror is desired state: each entry says what its product's cap is now, from the synced product cache. A
//! product reconcile writes its own entry and corrects the others the mirror holds (a product deleted, its cap
//! removed or changed); the keeper (`keep`) prunes when a product is deleted and every `RESYNC`, reading the
//! ConfigMap afresh, so entries of products deleted while no bridge ran go too. Without pruning the ConfigMap
//! would only grow, towards the API server's 1 MiB limit on an object.
//!
//! What the ConfigMap holds is remembered between reconciles (read again after `REFRESH`, since another leader
//! may have written), under a lock held only to copy or replace that memory, never across a request.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use apiportal_core::{
    APIProduct,
    admission::{KEY_LIFETIMES, lifetime_entry, lifetime_entry_product},
    kube_ext::KubeResultExt,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::sync::Notify;

use super::Context;
use crate::caches::Caches;

/// How long what the ConfigMap was seen to hold is trusted.
const REFRESH: Duration = Duration::from_secs(60);
/// How often the keeper prunes, whatever happened.
pub const RESYNC: Duration = Duration::from_secs(300);

/// The ConfigMap's data: entry → seconds.
type Data = BTreeMap<String, String>;

/// The cap a product sets on its keys' lifetime, in seconds (the text the mirror holds). The API server admits
/// only the field grammar (`duration::FIELD_PATTERN`), read here with its parser.
pub fn cap(product: &APIProduct) -> Option<String> {
    let text = product.spec.max_key_lifetime.as_deref()?;
    apiportal_core::duration::parse_field(text).ok().map(|d| d.as_secs().to_string())
}

/// The writes that make `mirror` say what the products say: `own` (an entry and its product's cap), and, for
/// every other entry of the mirror whose product `now` answers for (`None`: not this bridge's to judge, e.g.
/// another namespace), that product's cap now. `None` in the result removes an entry (a JSON merge patch's null).
pub fn changes(
    mirror: &Data,
    own: Option<(&str, Option<String>)>,
    now: impl Fn(&str, &str) -> Option<Option<String>>,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let own_entry = own.as_ref().map(|(entry, _)| *entry);
    for (entry, value) in mirror {
        if Some(entry.as_str()) == own_entry {
            continue;
        }
        let Some(desired) = lifetime_entry_product(entry).and_then(|(ns, name)| now(ns, name)) else { continue };
        if desired.as_ref() != Some(value) {
            out.insert(entry.clone(), desired);
        }
    }
    if let Some((entry, desired)) = own
        && mirror.get(entry) != desired.as_ref()
    {
        out.insert(entry.to_owned(), desired);
    }
    out
}

pub struct KeyLifetimes {
    api: Api<ConfigMap>,
    caches: Caches,
    /// The only namespace whose products this bridge watches, if it watches one.
    scope: Option<String>,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// What the ConfigMap held, and when that was seen.
    data: Option<(Instant, Arc<Data>)>,
    /// Writes begun, and writes not finished: an answer is remembered only when no write overlapped the request
    /// that got it, so an older answer never replaces a newer one.
    writes: u64,
    in_flight: usize,
}

impl KeyLifetimes {
    /// The mirror in the ConfigMap of `namespace`, kept from `caches` (which watch every namespace, or `scope`).
    pub fn new(client: Client, namespace: &str, caches: Caches, scope: Option<&str>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            caches,
            scope: scope.map(str::to_owned),
            known: Mutex::default(),
        }
    }

    /// Makes the mirror say `product`'s cap, and correct for every other product it names.
    pub async fn ensure(&self, product: &APIProduct) -> Result<(), kube::Error> {
        let entry = lifetime_entry(&product.namespace().unwrap_or_default(), &product.name_any());
        let data = match self.remembered() {
            Some(data) => data,
            None => self.read().await?,
        };
        self.write(&data, Some((&entry, cap(product)))).await
    }

    /// Removes the entries of products that are gone or have no cap, from what the ConfigMap holds now.
    pub async fn prune(&self) -> Result<(), kube::Error> {
        let data = self.read().await?;
        self.write(&data, None).await
    }

    /// What the cache says of product `namespace/name`'s cap; `None` when that is not this bridge's to say.
    fn cap_now(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        if !self.caches.synced() || self.scope.as_deref().is_some_and(|s| s != namespace) {
            return None;
        }
        Some(self.caches.product(namespace, name).and_then(|p| cap(&p)))
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the ConfigMap was last seen to hold, while fresh.
    fn remembered(&self) -> Option<Arc<Data>> {
        let known = self.known();
        known.data.as_ref().filter(|(at, _)| at.elapsed() < REFRESH).map(|(_, data)| data.clone())
    }

    /// Reads the ConfigMap (empty if it does not exist), and remembers it unless a write overlapped the read.
    async fn read(&self) -> Result<Arc<Data>, kube::Error> {
        let (epoch, clean) = {
            let known = self.known();
            (known.writes, known.in_flight == 0)
        };
        let data = Arc::new(self.api.get_opt(KEY_LIFETIMES).await?.and_then(|c| c.data).unwrap_or_default());
        let mut known = self.known();
        if clean && known.writes == epoch {
            known.data = Some((Instant::now(), data.clone()));
        }
        Ok(data)
    }

    /// Writes what `data` lacks (see `changes`); remembers the answer unless another write overlapped this one,
    /// and forgets what it remembered otherwise.
    async fn write(&self, data: &Data, own: Option<(&str, Option<String>)>) -> Result<(), kube::Error> {
        let changes = changes(data, own, |ns, name| self.cap_now(ns, name));
        if changes.is_empty() {
            return Ok(());
        }
        let epoch = {
            let mut known = self.known();
            known.writes += 1;
            known.in_flight += 1;
            known.writes
        };
        let written = self.patch_or_create(changes).await;
        let mut known = self.known();
        known.in_flight -= 1;
        known.data = match &written {
            Ok(map) if known.writes == epoch && known.in_flight == 0 => {
                Some((Instant::now(), Arc::new(map.data.clone().unwrap_or_default())))
            }
            _ => None,
        };
        written.map(|_| ())
    }

    async fn patch_or_create(&self, changes: BTreeMap<String, Option<String>>) -> Result<ConfigMap, kube::Error> {
        let patch = json!({"data": changes});
        if let Some(written) =
            self.api.patch(KEY_LIFETIMES, &PatchParams::default(), &Patch::Merge(&patch)).await.ok_if_not_found()?
        {
            return Ok(written);
        }
        // Install creates the ConfigMap; recreate it, with only what it should hold.
        let entries: Data = changes.into_iter().filter_map(|(entry, value)| Some((entry, value?))).collect();
        let map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": KEY_LIFETIMES, "labels": {"app.kubernetes.io/part-of": "apiportal"}},
            "data": entries,
        }))
        .expect("a valid ConfigMap");
        self.api.create(&PostParams::default(), &map).await
    }
}

/// Prunes the mirror on the leader, once the caches have synced: when a product is deleted, and every `RESYNC`.
pub async fn keep(ctx: Arc<Context>, product_deleted: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = product_deleted.notified() => {},
            _ = tokio::time::sleep(RESYNC) => {},
        }
        if !ctx.is_leader() || !ctx.caches.synced() {
            continue;
        }
        if let Err(e) = ctx.lifetimes.prune().await {
            tracing::warn!(error = %e, "pruning the key lifetime mirror failed; trying again at the next change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(entries: &[(&str, &str)]) -> Data {
        entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn product(max_key_lifetime: Option<&str>) -> APIProduct {
        serde_json::from_value(json!({
            "apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct",
            "metadata": {"name": "toys", "namespace": "shop"},
            "spec": {"displayName": "Toys", "targetRef": {"name": "toys"}, "maxKeyLifetime": max_key_lifetime}
        }))
        .unwrap()
    }

    #[test]
    fn a_cap_is_read_in_the_grammar_the_api_server_admits() {
        assert_eq!(cap(&product(Some("1h"))).as_deref(), Some("3600"));
        assert_eq!(cap(&product(Some("90d"))).as_deref(), Some("7776000"));
        assert_eq!(cap(&product(None)), None);
        // Not admitted by the schema (a bare number, a week): never read as some other length.
        assert_eq!(cap(&product(Some("3600"))), None);
        assert_eq!(cap(&product(Some("1w"))), None);
    }

    #[test]
    fn entries_name_their_product() {
        let entry = lifetime_entry("shop", "toys.v2");
        assert_eq!(lifetime_entry_product(&entry), Some(("shop", "toys.v2")));
        assert_eq!(lifetime_entry_product("nodot"), None);
        assert_eq!(lifetime_entry_product(".x"), None);
    }

    #[test]
    fn the_products_own_entry_is_written_removed_or_left_alone() {
        let unknown = |_: &str, _: &str| None;
        let m = mirror(&[("shop.toys", "3600")]);
        assert!(changes(&m, Some(("shop.toys", Some("3600".into()))), unknown).is_empty());
        assert_eq!(
            changes(&m, Some(("shop.toys", Some("60".into()))), unknown),
            BTreeMap::from([("shop.toys".to_owned(), Some("60".to_owned()))])
        );
        assert_eq!(changes(&m, Some(("shop.toys", None)), unknown), BTreeMap::from([("shop.toys".to_owned(), None)]));
        assert!(changes(&Data::new(), Some(("shop.toys", None)), unknown).is_empty(), "nothing to remove");
    }

    #[test]
    fn entries_of_products_gone_or_uncapped_are_pruned_and_changed_caps_corrected() {
        let m = mirror(&[
            ("shop.gone", "3600"),
            ("shop.uncapped", "3600"),
            ("shop.changed", "3600"),
            ("shop.same", "60"),
            ("other.elsewhere", "60"),
            ("junk", "1"),
        ]);
        // What the synced cache says; `other` is not this bridge's namespace, so its entries are not its to judge.
        let now = |ns: &str, name: &str| match (ns, name) {
            ("other", _) => None,
            ("shop", "uncapped") => Some(None),
            ("shop", "changed") => Some(Some("7200".to_owned())),
            ("shop", "same") => Some(Some("60".to_owned())),
            _ => Some(None),
        };
        assert_eq!(
            changes(&m, Some(("shop.new", Some("30".into()))), now),
            BTreeMap::from([
                ("shop.changed".to_owned(), Some("7200".to_owned())),
                ("shop.gone".to_owned(), None),
                ("shop.new".to_owned(), Some("30".to_owned())),
                ("shop.uncapped".to_owned(), None),
            ])
        );
        assert_eq!(changes(&m, None, now).len(), 3, "pruning alone: the same, without the new entry");
    }

    /// A stand-in API server holding the lifetime ConfigMap: it applies merge patches, and answers the patch that
    /// writes `held` only once released (after applying it). Every other request (the caches' lists) waits
    /// forever, so the caches never sync and the mirror judges no entry but the product's own.
    #[derive(Default)]
    struct ConfigMapServer {
        data: std::sync::Mutex<Data>,
        gets: std::sync::atomic::AtomicUsize,
        patches: std::sync::atomic::AtomicUsize,
        held: std::sync::Mutex<Option<String>>,
        release: tokio::sync::Notify,
    }

    impl ConfigMapServer {
        fn client(self: &Arc<Self>) -> Client {
            use axum::http;
            use http_body_util::BodyExt;
            use std::sync::atomic::Ordering;
            let server = self.clone();
            let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
                let server = server.clone();
                async move {
                    if !request.uri().path().ends_with(&format!("/configmaps/{KEY_LIFETIMES}")) {
                        std::future::pending::<()>().await;
                    }
                    let mut hold = false;
                    if request.method() == http::Method::PATCH {
                        server.patches.fetch_add(1, Ordering::SeqCst);
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let patch: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let mut data = server.data.lock().unwrap();
                        for (entry, value) in patch["data"].as_object().unwrap() {
                            match value.as_str() {
                                Some(v) => data.insert(entry.clone(), v.to_owned()),
                                None => data.remove(entry),
                            };
                            hold |= server.held.lock().unwrap().as_ref() == Some(entry);
                        }
                    } else {
                        server.gets.fetch_add(1, Ordering::SeqCst);
                    }
                    let answer = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": KEY_LIFETIMES, "namespace": "apiportal-system"},
                        "data": *server.data.lock().unwrap()});
                    if hold {
                        server.release.notified().await;
                    }
                    let body = kube::client::Body::from(serde_json::to_vec(&answer).unwrap());
                    Ok::<_, std::convert::Infallible>(http::Response::new(body))
                }
            });
            Client::new(service, "default")
        }
    }

    fn named(name: &str, max_key_lifetime: &str) -> APIProduct {
        let mut p = product(Some(max_key_lifetime));
        p.metadata.name = Some(name.to_owned());
        p
    }

    /// One product's slow write holds up no other product's, and its answer, older than the other's by the time it
    /// comes, is not taken for what the ConfigMap holds: the next reconcile reads again rather than write again.
    #[tokio::test]
    async fn a_slow_write_holds_up_no_other_and_its_late_answer_is_not_remembered() {
        use std::sync::atomic::Ordering;
        let server = Arc::new(ConfigMapServer::default());
        let client = server.client();
        let supervisor = crate::supervise::Supervisor::new(Arc::new(crate::metrics::Metrics::default()));
        let (caches, _subscriptions) = Caches::start(&supervisor, &client, None, "kuadrant-system");
        let lifetimes = Arc::new(KeyLifetimes::new(client, "apiportal-system", caches, None));
        *server.held.lock().unwrap() = Some("shop.slow".to_owned());

        let slow = tokio::spawn({
            let lifetimes = lifetimes.clone();
            async move { lifetimes.ensure(&named("slow", "1h")).await }
        });
        // The slow product's write is applied, and its answer held.
        while !server.data.lock().unwrap().contains_key("shop.slow") {
            tokio::task::yield_now().await;
        }
        tokio::time::timeout(std::time::Duration::from_secs(60), lifetimes.ensure(&named("quick", "2h")))
            .await
            .expect("another product's write does not wait for the slow one (a hang here is a lock held across I/O)")
            .unwrap();
        server.release.notify_one();
        slow.await.unwrap().unwrap();
        assert_eq!(*server.data.lock().unwrap(), mirror(&[("shop.quick", "7200"), ("shop.slow", "3600")]));

        let (gets, patches) = (server.gets.load(Ordering::SeqCst), server.patches.load(Ordering::SeqCst));
        lifetimes.ensure(&named("quick", "2h")).await.unwrap();
        assert_eq!(
            (server.gets.load(Ordering::SeqCst), server.patches.load(Ordering::SeqCst)),
            (gets + 1, patches),
            "after overlapping writes the mirror reads the ConfigMap again, and finds nothing to write"
        );
        lifetimes.ensure(&named("slow", "1h")).await.unwrap();
        assert_eq!(
            (server.gets.load(Ordering::SeqCst), server.patches.load(Ordering::SeqCst)),
            (gets + 1, patches),
            "what it read is remembered"
        );
    }
}
