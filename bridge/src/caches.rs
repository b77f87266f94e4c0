//! The one watch cache the view and the controllers share: a reflector per resource kind, run on every replica.
//! Controllers subscribe to the reflectors instead of opening watches of their own.
//!
//! Objects are cached without what the bridge never reads (managedFields, kubectl's last-applied copy), and the
//! enforcement copies of keys and the projections of requests are watched as metadata only (an
//! `Api<PartialObjectMeta<_>>` asks the API server for `PartialObjectMetadata`: it never sends a Secret's data,
//! see the tests below), so the bridge holds no key value it does not need at that moment.
//!
//! Shared streams carry no deletions, so each reflector also reports them: a deleted route or policy triggers the
//! products that used it, a deleted product or enforcement copy the keys that depend on it, and a deleted key the
//! sweeper, which removes any copy left behind.
//!
//! Nothing destructive may be decided from a cache that has not listed everything once: `synced()` says when
//! every cache has, and reconciles wait for it. Each reflector runs as a supervised task (`supervise`): one that
//! stops makes the bridge unready rather than serve a cache that no longer changes.

use std::{
    fmt::Debug,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use apiportal_core::{
    APIKey, APIProduct, labels,
    resources::{
        apikeyrequest::APIKeyRequest,
        authpolicy::AuthPolicy,
        httproute::{HTTPRoute, PolicyTargetRef},
        planpolicy::PlanPolicy,
    },
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    core::PartialObjectMeta,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, ReflectHandle, Store},
        watcher::{self, Event, watcher},
    },
};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};

use crate::supervise::{Lifetime, Supervisor};

/// Events buffered per subscriber before a reflector waits for its slowest subscriber.
const BUFFER: usize = 8192;

/// The enforcement copies of keys, metadata only.
pub type SecretMeta = PartialObjectMeta<Secret>;
/// The projections of requests, metadata only.
pub type ProjectionMeta = PartialObjectMeta<APIKeyRequest>;

/// Readers of every cache, plus the subscriptions the controllers consume.
#[derive(Clone)]
pub struct Caches {
    pub products: Store<APIProduct>,
    pub keys: Store<APIKey>,
    pub routes: Store<HTTPRoute>,
    pub auth_policies: Store<AuthPolicy>,
    pub plan_policies: Store<PlanPolicy>,
    pub enforcement_secrets: Store<SecretMeta>,
    /// The projections of requests into products' namespaces, metadata only (a digest annotation says what each
    /// projects).
    pub projections: Store<ProjectionMeta>,
    ready: Arc<AtomicBool>,
    /// Woken on every change of products or keys (what the view serves).
    changes: Arc<Notify>,
}

/// Subscriptions handed to the controllers, each consumed by exactly one of them.
pub struct Subscriptions {
    pub products_for_products: ReflectHandle<APIProduct>,
    pub products_for_keys: ReflectHandle<APIProduct>,
    pub keys: ReflectHandle<APIKey>,
    pub routes: ReflectHandle<HTTPRoute>,
    pub auth_policies: ReflectHandle<AuthPolicy>,
    pub plan_policies: ReflectHandle<PlanPolicy>,
    /// Keys to look at again because something they depend on went away or changed outside their own object:
    /// their product was deleted, or one of their enforcement copies changed or was deleted. (Shared streams
    /// carry no deletions.)
    pub key_triggers: mpsc::UnboundedReceiver<ObjectRef<APIKey>>,
    /// Products to look at again because a route or policy they depend on was deleted.
    pub product_triggers: mpsc::UnboundedReceiver<ObjectRef<APIProduct>>,
    /// Woken when an APIKey was deleted: the sweeper looks for copies left behind.
    pub key_deleted: Arc<Notify>,
    /// Woken when an APIProduct was deleted: its key lifetime entry goes (`controller::lifetimes::keep`).
    pub product_deleted: Arc<Notify>,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What the bridge never reads, dropped before an object enters a cache.
fn slim<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A product without its OpenAPI document (up to 500 KiB each): the view reads documents from the API server
/// when asked, and the product reconcile when it rewrites the status.
fn slim_product(product: &mut APIProduct) {
    slim(product);
    if let Some(openapi) = product.status.as_mut().and_then(|s| s.openapi.as_mut()) {
        openapi.raw = String::new();
    }
}

/// Starts one reflector and returns its reader and `subscribers` subscriptions; `on_event` sees each event after
/// the cache has applied it.
fn reflect<K>(
    supervisor: &Supervisor,
    client: &Client,
    namespace: Option<&str>,
    subscribers: usize,
    trim: fn(&mut K),
    on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> (Store<K>, Vec<ReflectHandle<K>>)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    let (reader, writer) = reflector::store_shared::<K>(BUFFER);
    let handles = (0..subscribers).map(|_| writer.subscribe().expect("a shared store has a dispatcher")).collect();
    let kind = K::kind(&()).into_owned();
    let stream = watcher(api::<K>(client, namespace), watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(trim)
        .reflect_shared(writer);
    supervisor.spawn(format!("watch {kind}"), Lifetime::UntilShutdown, drive(stream, kind, on_event));
    (reader, handles)
}

async fn drive<S, K>(stream: S, kind: String, mut on_event: impl FnMut(&Event<K>))
where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => on_event(&event),
            // The watcher retries with backoff; a missing CRD (Kuadrant not installed) or a refused list shows
            // up here, and the cache stays unsynced (or stale) rather than wrong.
            Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying"),
        }
    }
}

/// The enforcement copies in the enforcement namespace (every Secret labelled with an APIKey), through a metadata
/// watch: `Api<PartialObjectMeta<Secret>>` asks the API server for `PartialObjectMetadata` only, so their values
/// never leave it (see the test below).
fn reflect_enforcement_secrets(
    supervisor: &Supervisor,
    client: &Client,
    namespace: &str,
    triggers: mpsc::UnboundedSender<ObjectRef<APIKey>>,
) -> Store<SecretMeta> {
    let (reader, writer) = reflector::store::<SecretMeta>();
    let config = watcher::Config::default().labels(labels::APIKEY).any_semantic();
    let stream = watcher(Api::<SecretMeta>::namespaced(client.clone(), namespace), config)
        .default_backoff()
        .modify(slim)
        .reflect(writer);
    let notify = move |event: &Event<SecretMeta>| {
        if let Event::Apply(secret) | Event::Delete(secret) = event
            && let Some(key) = key_of_secret(secret)
        {
            let _ = triggers.send(key);
        }
    };
    supervisor.spawn("watch enforcement Secrets", Lifetime::UntilShutdown, drive(stream, "Secret".into(), notify));
    reader
}

/// The APIKey an enforcement copy (or a projection) belongs to, from its labels.
pub fn key_of_secret<K: Resource>(object: &K) -> Option<ObjectRef<APIKey>> {
    let labels = object.labels();
    Some(ObjectRef::new(labels.get(labels::APIKEY)?).within(labels.get(labels::APIKEY_NAMESPACE)?))
}

/// The projections of requests (metadata only), wherever they are.
fn reflect_projections(supervisor: &Supervisor, client: &Client, namespace: Option<&str>) -> Store<ProjectionMeta> {
    let (reader, writer) = reflector::store::<ProjectionMeta>();
    let stream = watcher(api::<ProjectionMeta>(client, namespace), watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(slim)
        .reflect(writer);
    supervisor.spawn("watch APIKeyRequest", Lifetime::UntilShutdown, drive(stream, "APIKeyRequest".into(), |_| {}));
    reader
}

/// The products on route `namespace/route`.
pub fn products_on_route(products: &Store<APIProduct>, ns: &str, route: &str) -> Vec<ObjectRef<APIProduct>> {
    products
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns) && p.spec.target_ref.name == route)
        .map(|p| ObjectRef::from(p.as_ref()))
        .collect()
}

/// Products a policy in `policy_ns` targeting `target` affects: on its route, or on any route attached to its
/// Gateway.
pub fn products_targeted(
    products: &Store<APIProduct>,
    routes: &Store<HTTPRoute>,
    policy_ns: &str,
    target: &PolicyTargetRef,
) -> Vec<ObjectRef<APIProduct>> {
    match target.kind.as_str() {
        "HTTPRoute" => products_on_route(products, policy_ns, &target.name),
        "Gateway" => routes
            .state()
            .iter()
            .filter(|r| {
                let ns = r.namespace().unwrap_or_default();
                r.parent_gateways(&ns).iter().any(|(gw_ns, gw)| gw_ns == policy_ns && gw == &target.name)
            })
            .flat_map(|r| products_on_route(products, &r.namespace().unwrap_or_default(), &r.name_any()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The requests for a product.
pub fn keys_of(keys: &Store<APIKey>, product_namespace: &str, product_name: &str) -> Vec<ObjectRef<APIKey>> {
    keys.state()
        .iter()
        .filter(|k| k.spec.api_product_ref.name == product_name && k.product_namespace() == product_namespace)
        .map(|k| ObjectRef::from(k.as_ref()))
        .collect()
}

/// Triggers the products a policy stopped applying to: all of them when it is deleted, those of its former target
/// when its target changes (the shared stream carries the new object only, whose target names other products).
fn policy_left<P: kube::ResourceExt + 'static>(
    products: &Store<APIProduct>,
    routes: &Store<HTTPRoute>,
    triggers: &mpsc::UnboundedSender<ObjectRef<APIProduct>>,
    target: fn(&P) -> PolicyTargetRef,
) -> impl FnMut(&Event<P>) + Send + 'static {
    let (products, routes, triggers) = (products.clone(), routes.clone(), triggers.clone());
    let mut targets: std::collections::HashMap<(String, String), PolicyTargetRef> = Default::default();
    // Policies seen since a re-list began: one deleted while the watch was broken sends no Delete, only its absence.
    let mut relisted: Option<std::collections::HashSet<(String, String)>> = None;
    move |event: &Event<P>| {
        let (policy, deleted) = match event {
            Event::Apply(p) | Event::InitApply(p) => (p, false),
            Event::Delete(p) => (p, true),
            Event::Init => {
                relisted = Some(Default::default());
                return;
            }
            Event::InitDone => {
                let seen = relisted.take().unwrap_or_default();
                let gone: Vec<(String, String)> = targets.keys().filter(|id| !seen.contains(*id)).cloned().collect();
                for id in gone {
                    let old = targets.remove(&id).expect("a known policy");
                    for p in products_targeted(&products, &routes, &id.0, &old) {
                        let _ = triggers.send(p);
                    }
                }
                return;
            }
        };
        if let (Some(seen), Event::InitApply(p)) = (relisted.as_mut(), event) {
            seen.insert((p.namespace().unwrap_or_default(), p.name_any()));
        }
        let ns = policy.namespace().unwrap_or_default();
        let id = (ns.clone(), policy.name_any());
        let now = target(policy);
        let before = if deleted { targets.remove(&id) } else { targets.insert(id, now.clone()) };
        let left = match before {
            Some(old) if deleted || old != now => Some(old),
            None if deleted => Some(now),
            _ => None,
        };
        for p in left.into_iter().flat_map(|old| products_targeted(&products, &routes, &ns, &old)) {
            let _ = triggers.send(p);
        }
    }
}

impl Caches {
    /// Starts every reflector (cluster-wide, or in one namespace), and the enforcement copies' in
    /// `enforcement_namespace`, each a task of `supervisor`.
    pub fn start(
        supervisor: &Supervisor,
        client: &Client,
        namespace: Option<&str>,
        enforcement_namespace: &str,
    ) -> (Self, Subscriptions) {
        let (triggers_tx, key_triggers) = mpsc::unbounded_channel();
        let (product_tx, product_triggers) = mpsc::unbounded_channel();
        let changes = Arc::new(Notify::new());
        let key_deleted = Arc::new(Notify::new());
        let on_key = {
            let (changes, key_deleted) = (changes.clone(), key_deleted.clone());
            move |event: &Event<APIKey>| {
                changes.notify_one();
                if let Event::Delete(_) = event {
                    key_deleted.notify_one();
                }
            }
        };
        let (keys, mut key_subs) = reflect::<APIKey>(supervisor, client, namespace, 1, slim, on_key);
        let product_deleted = Arc::new(Notify::new());
        let on_product = {
            let (keys, triggers, changes) = (keys.clone(), triggers_tx.clone(), changes.clone());
            let product_deleted = product_deleted.clone();
            move |event: &Event<APIProduct>| {
                changes.notify_one();
                if let Event::Delete(product) = event {
                    product_deleted.notify_one();
                    for key in keys_of(&keys, &product.namespace().unwrap_or_default(), &product.name_any()) {
                        let _ = triggers.send(key);
                    }
                }
            }
        };
        let (products, mut product_subs) =
            reflect::<APIProduct>(supervisor, client, namespace, 2, slim_product, on_product);
        let on_route = {
            let (products, triggers) = (products.clone(), product_tx.clone());
            move |event: &Event<HTTPRoute>| {
                if let Event::Delete(route) = event {
                    for p in products_on_route(&products, &route.namespace().unwrap_or_default(), &route.name_any()) {
                        let _ = triggers.send(p);
                    }
                }
            }
        };
        let (routes, mut route_subs) = reflect::<HTTPRoute>(supervisor, client, namespace, 1, slim, on_route);
        let on_auth = policy_left(&products, &routes, &product_tx, |p: &AuthPolicy| p.spec.target_ref.clone());
        let (auth_policies, mut auth_subs) = reflect::<AuthPolicy>(supervisor, client, namespace, 1, slim, on_auth);
        let on_plan = policy_left(&products, &routes, &product_tx, |p: &PlanPolicy| p.spec.target_ref.clone());
        let (plan_policies, mut plan_subs) = reflect::<PlanPolicy>(supervisor, client, namespace, 1, slim, on_plan);
        let enforcement_secrets = reflect_enforcement_secrets(supervisor, client, enforcement_namespace, triggers_tx);
        let projections = reflect_projections(supervisor, client, namespace);
        let subscriptions = Subscriptions {
            products_for_keys: product_subs.pop().unwrap(),
            products_for_products: product_subs.pop().unwrap(),
            keys: key_subs.pop().unwrap(),
            routes: route_subs.pop().unwrap(),
            auth_policies: auth_subs.pop().unwrap(),
            plan_policies: plan_subs.pop().unwrap(),
            key_triggers,
            product_triggers,
            key_deleted,
            product_deleted,
        };
        let caches = Self {
            products,
            keys,
            routes,
            auth_policies,
            plan_policies,
            enforcement_secrets,
            projections,
            ready: Arc::default(),
            changes,
        };
        supervisor.spawn("first sync of the watch caches", Lifetime::ToCompletion, caches.clone().mark_synced());
        (caches, subscriptions)
    }

    /// Waits for every cache's first full list, then flips `synced()`.
    async fn mark_synced(self) -> Result<(), &'static str> {
        // kube-runtime's readiness signal wakes only the last task that awaited it (the controllers also await
        // it), so poll it with a short timeout: each poll registers this task again.
        loop {
            let all = async {
                self.products.wait_until_ready().await.is_ok()
                    && self.keys.wait_until_ready().await.is_ok()
                    && self.routes.wait_until_ready().await.is_ok()
                    && self.auth_policies.wait_until_ready().await.is_ok()
                    && self.plan_policies.wait_until_ready().await.is_ok()
                    && self.projections.wait_until_ready().await.is_ok()
                    && self.enforcement_secrets.wait_until_ready().await.is_ok()
            };
            match tokio::time::timeout(std::time::Duration::from_millis(200), all).await {
                Ok(true) => break,
                Ok(false) => return Err("a watch cache stopped before its first full list"),
                Err(_) => continue,
            }
        }
        self.ready.store(true, Ordering::Release);
        self.changes.notify_one();
        tracing::info!("watch caches synced");
        Ok(())
    }

    /// Returns once products or keys changed since the last call (changes in between are one wake-up).
    pub async fn changed(&self) {
        self.changes.notified().await
    }

    /// True once every cache has its first full list. Until then an object missing from a cache proves nothing.
    pub fn synced(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn product(&self, namespace: &str, name: &str) -> Option<Arc<APIProduct>> {
        self.products.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn route(&self, namespace: &str, name: &str) -> Option<Arc<HTTPRoute>> {
        self.routes.get(&ObjectRef::new(name).within(namespace))
    }

    /// Caches that hold nothing and never fill, for unit tests of what reads them (`testing::context`).
    #[cfg(test)]
    pub fn empty() -> Self {
        Self {
            products: reflector::store().0,
            keys: reflector::store().0,
            routes: reflector::store().0,
            auth_policies: reflector::store().0,
            plan_policies: reflector::store().0,
            enforcement_secrets: reflector::store().0,
            projections: reflector::store().0,
            ready: Arc::default(),
            changes: Arc::default(),
        }
    }

    /// The projection of a request, by namespace and name.
    pub fn projection(&self, namespace: &str, name: &str) -> Option<Arc<ProjectionMeta>> {
        self.projections.get(&ObjectRef::new(name).within(namespace))
    }

    /// An enforcement copy by name.
    pub fn enforcement_secret(&self, namespace: &str, name: &str) -> Option<Arc<SecretMeta>> {
        self.enforcement_secrets.get(&ObjectRef::new(name).within(namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Asked, fake_api_server};

    async fn first_list<K: Clone + Resource<DynamicType = ()>>(store: &Store<K>) {
        tokio::time::timeout(std::time::Duration::from_secs(60), store.wait_until_ready())
            .await
            .expect("the reflector lists (a hang here is a bug, not a slow machine)")
            .expect("the reflector runs");
    }

    /// Waits for the reflector's watch (it follows the list), then checks every request asked for metadata only.
    async fn assert_metadata_only(asked: &Asked, path: &str) {
        let watching = || asked.lock().unwrap().iter().any(|(uri, _)| uri.contains("watch=true"));
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while !watching() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the reflector watches after its list");
        let asked = asked.lock().unwrap().clone();
        for (uri, accept) in asked {
            assert!(uri.starts_with(&format!("{path}?")), "{uri}");
            assert!(
                accept.contains("as=PartialObjectMetadataList") || accept.contains("as=PartialObjectMetadata;"),
                "{uri} asks for whole objects (Accept: {accept:?}): the API server would send every key value"
            );
        }
    }

    #[tokio::test]
    async fn enforcement_copies_are_listed_and_watched_as_metadata_only() {
        let (client, asked) = fake_api_server();
        let supervisor = Supervisor::new(Arc::new(crate::metrics::Metrics::default()));
        let (triggers, _) = mpsc::unbounded_channel();
        let store = reflect_enforcement_secrets(&supervisor, &client, "kuadrant-system", triggers);
        first_list(&store).await;
        assert_metadata_only(&asked, "/api/v1/namespaces/kuadrant-system/secrets").await;
        assert_eq!(supervisor.check(), Ok(()));
    }

    #[tokio::test]
    async fn projections_are_listed_and_watched_as_metadata_only() {
        let (client, asked) = fake_api_server();
        let supervisor = Supervisor::new(Arc::new(crate::metrics::Metrics::default()));
        let store = reflect_projections(&supervisor, &client, Some("shop"));
        first_list(&store).await;
        assert_metadata_only(&asked, "/apis/devportal.kuadrant.io/v1alpha1/namespaces/shop/apikeyrequests").await;
    }
}
