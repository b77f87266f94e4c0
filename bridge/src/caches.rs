//! The one watch cache the view and the controllers share: a reflector per resource kind, run on every replica.
//! Controllers subscribe to the reflectors instead of opening watches of their own.

use std::{
    fmt::Debug,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use apiportal_core::{
    APIKey, APIProduct,
    resources::{authpolicy::AuthPolicy, httproute::HTTPRoute, planpolicy::PlanPolicy},
};
use futures::{Stream, StreamExt};
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ReflectHandle, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;

/// Events buffered per subscriber before a reflector waits for its slowest subscriber.
const BUFFER: usize = 8192;

/// Readers of every cache, plus the subscriptions the controllers consume.
#[derive(Clone)]
pub struct Caches {
    pub products: Store<APIProduct>,
    pub keys: Store<APIKey>,
    pub routes: Store<HTTPRoute>,
    pub auth_policies: Store<AuthPolicy>,
    pub plan_policies: Store<PlanPolicy>,
    ready: Arc<AtomicBool>,
}

/// Subscriptions handed to the controllers, each consumed by exactly one of them.
pub struct Subscriptions {
    pub products_for_products: ReflectHandle<APIProduct>,
    pub products_for_keys: ReflectHandle<APIProduct>,
    pub keys: ReflectHandle<APIKey>,
    pub routes: ReflectHandle<HTTPRoute>,
    pub auth_policies: ReflectHandle<AuthPolicy>,
    pub plan_policies: ReflectHandle<PlanPolicy>,
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

/// Starts one reflector and returns its reader and `subscribers` subscriptions.
fn reflect<K>(client: &Client, namespace: Option<&str>, subscribers: usize) -> (Store<K>, Vec<ReflectHandle<K>>)
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
        .reflect_shared(writer);
    tokio::spawn(drive(stream, kind));
    (reader, handles)
}

async fn drive<S, T>(stream: S, kind: String)
where
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            // The watcher retries with backoff; a missing CRD (Kuadrant not installed) shows up here.
            tracing::warn!(kind, error = %e, "watch failed; retrying");
        }
    }
}

impl Caches {
    /// Starts every reflector (cluster-wide, or in one namespace).
    pub fn start(client: &Client, namespace: Option<&str>) -> (Self, Subscriptions) {
        let (products, mut product_subs) = reflect::<APIProduct>(client, namespace, 2);
        let (keys, mut key_subs) = reflect::<APIKey>(client, namespace, 1);
        let (routes, mut route_subs) = reflect::<HTTPRoute>(client, namespace, 1);
        let (auth_policies, mut auth_subs) = reflect::<AuthPolicy>(client, namespace, 1);
        let (plan_policies, mut plan_subs) = reflect::<PlanPolicy>(client, namespace, 1);
        let subscriptions = Subscriptions {
            products_for_keys: product_subs.pop().unwrap(),
            products_for_products: product_subs.pop().unwrap(),
            keys: key_subs.pop().unwrap(),
            routes: route_subs.pop().unwrap(),
            auth_policies: auth_subs.pop().unwrap(),
            plan_policies: plan_subs.pop().unwrap(),
        };
        let ready = Arc::new(AtomicBool::new(false));
        let (p, k, flag) = (products.clone(), keys.clone(), ready.clone());
        tokio::spawn(async move {
            // kube-runtime's readiness signal wakes only the last task that awaited it (the controllers also
            // await it), so poll it with a short timeout: each poll registers this task again.
            loop {
                let both = async { p.wait_until_ready().await.is_ok() && k.wait_until_ready().await.is_ok() };
                match tokio::time::timeout(std::time::Duration::from_millis(200), both).await {
                    Ok(true) => break,
                    Ok(false) => return,
                    Err(_) => continue,
                }
            }
            flag.store(true, Ordering::Release);
            tracing::info!("watch caches synced");
        });
        (Self { products, keys, routes, auth_policies, plan_policies, ready }, subscriptions)
    }

    /// True once the caches the view serves from have their first full list.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn product(&self, namespace: &str, name: &str) -> Option<Arc<APIProduct>> {
        self.products.get(&reflector::ObjectRef::new(name).within(namespace))
    }

    pub fn route(&self, namespace: &str, name: &str) -> Option<Arc<HTTPRoute>> {
        self.routes.get(&reflector::ObjectRef::new(name).within(namespace))
    }
}
