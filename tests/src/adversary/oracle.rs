//! The oracle: what must hold, computed from the objects in the API server and from what the real gateway
//! (Authorino) answers, never from the bridge's code or status claims alone.
//!
//! - I1 (at every look, no delay allowed): a key value is accepted on a route only where that route's AuthConfig
//!   selects the key by its identity (its own product's route, or a route whose owner chose to select that
//!   product's keys): never because of a label anyone else chose.
//! - I2 (within the bound): a value whose key is not Approved, unexpired, its product existing (the one it was
//!   requested from) and able to take keys, is accepted nowhere; nor is a value its key no longer holds, once the
//!   grace of the rotation that replaced it has ended.
//! - I3 (within the bound): the value the consumer holds for an Approved, valid key of a product that can take keys
//!   and offers its tier is accepted on the product's route; and a request an automatic product can issue at once
//!   is approved (with its value).
//! - I4 (at the end, and every few steps): no value ever appears in the bridge's log, an Event, the view, a webhook
//!   body or an operation's outcome.
//! - I5 (within the bound): no user has more values accepted on a product's route than its `maxKeysPerUser`.
//!
//! Whether a product can take keys is judged here by Kuadrant's rules as documented (the gateway module's
//! attachment) and the design's (a selector naming the product, on identity labels only), written again here.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use apiportal_core::{APIKey, APIProduct, KeyPhase, labels, secrets};
use futures::{StreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams},
};
use serde_json::Value;

use super::World;
use crate::{
    Persona,
    gateway::{self, Gateway, GatewayRoutes},
    stage::{authpolicy_resource, httproute_resource},
};

/// The bound the design states from a change to the gateway's effect.
pub const STATED_BOUND: Duration = Duration::from_secs(10);
/// How long an eventual invariant may stay broken before the run fails: the stated bound with room for a loaded
/// machine (convergence times are measured and reported against the stated bound).
pub const DEFAULT_FAILURE_BOUND: Duration = Duration::from_secs(45);

/// A broken invariant, described without any key value.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// A key value the oracle has seen, and whose it is.
#[derive(Clone, Debug)]
struct Known {
    key_namespace: String,
    key_name: String,
    key_uid: String,
    product_namespace: String,
    product_name: String,
    /// A name for messages: `team/key value #n`.
    label: String,
}

/// A rotation the adversary asked for.
#[derive(Clone, Debug)]
struct Rotation {
    asked_at: Timestamp,
    grace: Duration,
}

#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub looks: usize,
    pub gateway_checks: usize,
    pub invariant_checks: usize,
    pub settles: usize,
    /// How long the world took to settle, for the settles that had to wait (a change still on its way to the
    /// gateway at the first look).
    pub settle_times: Vec<Duration>,
    /// The slowest settle, and what it waited for.
    pub slowest: Option<(Duration, String)>,
    /// Each time Authorino was replaced by a fresh one, and why: a value it still accepted past the bound though
    /// no Secret held it any more (its index outlived the Secret; the fresh one judges again), or a change it did
    /// not take up in time.
    pub stale_gateway: Vec<String>,
}

impl Stats {
    pub fn summary(&self) -> String {
        let mut times = self.settle_times.clone();
        times.sort();
        let pick = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        let over = times.iter().filter(|t| **t > STATED_BOUND).count();
        let slowest =
            self.slowest.as_ref().map(|(_, why)| format!("; the slowest waited for: {why}")).unwrap_or_default();
        let stale = match self.stale_gateway.len() {
            0 => String::new(),
            n => format!(
                "; Authorino was replaced by a fresh one {n} times, its own staleness, not the bridge's: {}",
                self.stale_gateway.join("; ")
            ),
        };
        format!(
            "{} looks, {} gateway checks, {} invariant checks; settled {} times, {} after waiting for a change to reach the gateway: p50 {:.1}s, p99 {:.1}s, max {:.1}s ({} over the stated {}s){slowest}{stale}",
            self.looks,
            self.gateway_checks,
            self.invariant_checks,
            self.settles,
            times.len(),
            pick(0.5).as_secs_f64(),
            pick(0.99).as_secs_f64(),
            times.last().copied().unwrap_or_default().as_secs_f64(),
            over,
            STATED_BOUND.as_secs()
        )
    }
}

pub struct Oracle {
    gateway: Gateway,
    /// The gateway's routes as of the last look.
    routes: GatewayRoutes,
    /// How many of the last look's pending violations are values accepted though no Secret holds them.
    unheld_accepted: usize,
    values: HashMap<String, Known>,
    rotations: HashMap<String, Vec<Rotation>>,
    pub stats: Stats,
    pub bound: Duration,
}

/// What the API server says now.
struct Snapshot {
    keys: Vec<APIKey>,
    products: Vec<APIProduct>,
    routes: Vec<Value>,
    policies: Vec<Value>,
    /// Consumer copies by (namespace, key name): (owner UID, value).
    consumer: HashMap<(String, String), (Option<String>, String)>,
    /// Enforcement copies of the world's keys: (key namespace, key name, key UID annotation, generation, value).
    enforcement: Vec<(String, String, Option<String>, i64, String)>,
    now: Timestamp,
}

fn id(object: &Value) -> (String, String) {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    (text("/metadata/namespace"), text("/metadata/name"))
}

fn condition_true(object: &Value, path: &str, type_: &str) -> bool {
    object
        .pointer(path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

/// The labels an enforcement copy of `known` may carry: its identity, nothing else.
fn identity(known: &Known) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::APIKEY.to_owned(), known.key_name.clone()),
        (labels::APIKEY_NAMESPACE.to_owned(), known.key_namespace.clone()),
        (labels::APIPRODUCT.to_owned(), known.product_name.clone()),
        (labels::APIPRODUCT_NAMESPACE.to_owned(), known.product_namespace.clone()),
        (labels::AUTHORINO_MANAGED_BY.to_owned(), labels::AUTHORINO_MANAGED_BY_VALUE.to_owned()),
        (labels::ENFORCEMENT.to_owned(), "true".to_owned()),
    ])
}

impl Snapshot {
    async fn take(world: &World) -> Self {
        let admin = world.cluster.client(Persona::Admin).await;
        let mut keys = Vec::new();
        let mut consumer = HashMap::new();
        for team in &world.teams {
            keys.extend(
                Api::<APIKey>::namespaced(admin.clone(), team).list(&ListParams::default()).await.expect("keys").items,
            );
            for s in Api::<Secret>::namespaced(admin.clone(), team)
                .list(&ListParams::default())
                .await
                .expect("secrets")
                .items
            {
                if let Some(value) = secrets::consumer_value(&s) {
                    let owner = s.owner_references().first().map(|o| o.uid.clone());
                    let key = s.labels().get(labels::APIKEY).cloned().unwrap_or_default();
                    consumer.insert((team.clone(), key), (owner, value));
                }
            }
        }
        let mut products = Vec::new();
        for shop in &world.shops {
            products.extend(
                Api::<APIProduct>::namespaced(admin.clone(), shop)
                    .list(&ListParams::default())
                    .await
                    .expect("products")
                    .items,
            );
        }
        let list = |ar: kube::api::ApiResource| {
            let api: Api<DynamicObject> = Api::all_with(admin.clone(), &ar);
            async move {
                api.list(&ListParams::default())
                    .await
                    .expect("list")
                    .items
                    .into_iter()
                    .map(|o| serde_json::to_value(o).expect("JSON"))
                    .collect::<Vec<Value>>()
            }
        };
        let (routes, policies) = (list(httproute_resource()).await, list(authpolicy_resource()).await);
        let mut enforcement = Vec::new();
        let copies = Api::<Secret>::namespaced(admin.clone(), crate::fixtures::ENFORCEMENT_NAMESPACE)
            .list(&ListParams::default().labels(labels::APIKEY))
            .await
            .expect("enforcement copies")
            .items;
        for s in copies {
            let (Some(ns), Some(name)) = (s.labels().get(labels::APIKEY_NAMESPACE), s.labels().get(labels::APIKEY))
            else {
                continue;
            };
            if !world.teams.contains(ns) {
                continue;
            }
            let Some(value) = secrets::key_value(&s) else { continue };
            let generation = secrets::generation_of(s.metadata.annotations.as_ref());
            enforcement.push((
                ns.clone(),
                name.clone(),
                s.annotations().get(labels::APIKEY_UID).cloned(),
                generation,
                value,
            ));
        }
        Self { keys, products, routes, policies, consumer, enforcement, now: Timestamp::now() }
    }

    fn key(&self, known: &Known) -> Option<&APIKey> {
        self.keys.iter().find(|k| {
            k.namespace().as_deref() == Some(&known.key_namespace)
                && k.name_any() == known.key_name
                && k.uid().as_deref() == Some(&known.key_uid)
        })
    }

    fn product(&self, namespace: &str, name: &str) -> Option<&APIProduct> {
        self.products.iter().find(|p| p.namespace().as_deref() == Some(namespace) && p.name_any() == name)
    }

    /// Whether the product can take keys now, by the design's rules (see the module's documentation).
    fn issuable(&self, product: &APIProduct) -> bool {
        let ns = product.namespace().unwrap_or_default();
        let Some(route) = self.routes.iter().find(|r| id(r) == (ns.clone(), product.spec.target_ref.name.clone()))
        else {
            return false;
        };
        if !route["status"]["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| condition_true(p, "/conditions", "Accepted"))
        {
            return false;
        }
        let Some(policy) = gateway::effective_policy(route, &self.policies) else { return false };
        if !(condition_true(policy, "/status/conditions", "Accepted")
            && condition_true(policy, "/status/conditions", "Enforced"))
        {
            return false;
        }
        let allowed: BTreeSet<&str> = secrets::ENFORCEMENT_LABEL_KEYS.into_iter().collect();
        let rules: Vec<&Value> = [
            "/spec/rules/authentication",
            "/spec/overrides/rules/authentication",
            "/spec/defaults/rules/authentication",
        ]
        .iter()
        .filter_map(|p| policy.pointer(p).and_then(Value::as_object))
        .flat_map(|m| m.values())
        .filter_map(|r| r.get("apiKey"))
        .collect();
        !rules.is_empty()
            && rules.iter().all(|k| {
                let labels = k["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
                !k["allNamespaces"].as_bool().unwrap_or(false)
                    && k["selector"]["matchExpressions"].as_array().is_none_or(|e| e.is_empty())
                    && labels.get(labels::APIPRODUCT).and_then(Value::as_str) == Some(&product.name_any())
                    && labels.get(labels::APIPRODUCT_NAMESPACE).and_then(Value::as_str) == Some(&ns)
                    && labels.keys().all(|l| allowed.contains(l.as_str()))
                    && labels.get(labels::APIKEY).is_none()
                    && labels.get(labels::APIKEY_NAMESPACE).is_none()
                    && labels.get(labels::AUTHORINO_MANAGED_BY).is_none_or(|v| v == labels::AUTHORINO_MANAGED_BY_VALUE)
                    && labels.get(labels::ENFORCEMENT).is_none_or(|v| v == "true")
            })
    }

    /// Whether `key` may hold a value at the gateway now (I2's condition), and its product if so.
    fn valid<'a>(&'a self, key: &APIKey) -> Option<&'a APIProduct> {
        if key.phase() != KeyPhase::Approved || key.metadata.deletion_timestamp.is_some() {
            return None;
        }
        if key.spec.expires_at.as_ref().is_some_and(|e| e.0 <= self.now) {
            return None;
        }
        let product = self.product(&key.product_namespace(), &key.spec.api_product_ref.name)?;
        let requested_of = key.status.as_ref().and_then(|s| s.product_uid.clone());
        if requested_of.is_some_and(|uid| Some(uid) != product.uid()) {
            return None;
        }
        self.issuable(product).then_some(product)
    }
}

impl Oracle {
    pub async fn new(world: &World, bound: Duration) -> Self {
        Self {
            gateway: Gateway::of(world.cluster).await,
            routes: GatewayRoutes::default(),
            unheld_accepted: 0,
            values: HashMap::new(),
            rotations: HashMap::new(),
            stats: Stats::default(),
            bound,
        }
    }

    /// The adversary asked for a rotation of `team/key` with `grace`.
    pub fn note_rotation(&mut self, team: &str, key: &str, grace: Duration) {
        self.rotations.entry(format!("{team}/{key}")).or_default().push(Rotation { asked_at: Timestamp::now(), grace });
    }

    /// Learns the values in the snapshot (each value is its key's forever).
    fn learn(&mut self, snapshot: &Snapshot) {
        let mut found: Vec<(String, String, String, Option<String>)> = Vec::new();
        for ((ns, name), (owner, value)) in &snapshot.consumer {
            found.push((value.clone(), ns.clone(), name.clone(), owner.clone()));
        }
        for (ns, name, uid, _, value) in &snapshot.enforcement {
            found.push((value.clone(), ns.clone(), name.clone(), uid.clone()));
        }
        for (value, ns, name, uid) in found {
            if self.values.contains_key(&value) {
                continue;
            }
            let key = snapshot.keys.iter().find(|k| k.namespace().as_deref() == Some(&ns) && k.name_any() == name);
            let Some(key) = key.filter(|k| uid.is_none() || k.uid() == uid) else { continue };
            let n = self.values.values().filter(|k| k.key_namespace == ns && k.key_name == name).count() + 1;
            self.values.insert(
                value,
                Known {
                    key_namespace: ns.clone(),
                    key_name: name.clone(),
                    key_uid: key.uid().unwrap_or_default(),
                    product_namespace: key.product_namespace(),
                    product_name: key.spec.api_product_ref.name.clone(),
                    label: format!("{ns}/{name} value #{n}"),
                },
            );
        }
    }

    /// Whether value `value` of `known` is one its key holds now: the consumer's copy, or the previous value within
    /// the grace of the rotation that replaced it.
    fn held(&self, snapshot: &Snapshot, key: &APIKey, known: &Known, value: &str) -> bool {
        let current = snapshot
            .consumer
            .get(&(known.key_namespace.clone(), known.key_name.clone()))
            .is_some_and(|(owner, v)| v == value && owner.as_deref() == Some(&known.key_uid));
        if current {
            return true;
        }
        // A previous value: only within a grace the adversary asked for (the bridge may hold it to less).
        let status = key.status.clone().unwrap_or_default();
        let Some(previous) = status.previous_key else { return false };
        let asked =
            self.rotations.get(&format!("{}/{}", known.key_namespace, known.key_name)).cloned().unwrap_or_default();
        let latest_allowed = asked
            .iter()
            .map(|r| r.asked_at + jiff::SignedDuration::try_from(r.grace + self.bound).unwrap_or_default())
            .max();
        previous.valid_until.0 > snapshot.now && latest_allowed.is_some_and(|t| snapshot.now <= t)
    }

    /// One look at everything: the safety invariant I1 must hold (else `Err`); returns the eventual invariants that
    /// do not hold yet.
    async fn look(&mut self, world: &World) -> Result<Vec<Violation>, Violation> {
        self.stats.looks += 1;
        let snapshot = Snapshot::take(world).await;
        self.learn(&snapshot);
        let routes: GatewayRoutes = match self.gateway.try_sync(60).await {
            Ok(routes) => routes,
            // Authorino fell behind the API server (seen after API server restarts on a loaded machine): a fresh
            // one reads everything again. Counted and reported; it judges from then on.
            Err(why) => {
                self.stats.stale_gateway.push(why);
                self.gateway.restart_authorino(&GatewayRoutes::default()).await;
                let routes = self.gateway.sync().await;
                self.gateway.await_hosts(&routes).await;
                routes
            }
        };
        self.routes = routes.clone();
        self.unheld_accepted = 0;
        let hosts: Vec<(String, String, String)> = routes
            .0
            .iter()
            .flat_map(|r| r.hosts.iter().map(move |h| (h.clone(), r.namespace.clone(), r.name.clone())))
            .collect();
        // Every value, on every host.
        let probes: Vec<(String, (String, String, String))> =
            self.values.keys().flat_map(|v| hosts.iter().map(move |h| (v.clone(), h.clone()))).collect();
        let gateway = &self.gateway;
        let routes_ref = &routes;
        let answers: Vec<(String, (String, String, String), u16)> = stream::iter(probes)
            .map(|(value, host)| async move {
                let code = gateway.check(routes_ref, &host.0, &value).await;
                (value, host, code)
            })
            .buffer_unordered(32)
            .collect()
            .await;
        self.stats.gateway_checks += answers.len();
        let mut accepted: HashMap<&str, Vec<&(String, String, String)>> = HashMap::new();
        for (value, host, code) in &answers {
            if *code == 200 {
                accepted.entry(value.as_str()).or_default().push(host);
            }
        }
        // I1: acceptance only where the route's AuthConfig selects the key's identity.
        for (value, where_accepted) in &accepted {
            let known = &self.values[*value];
            for (host, ns, name) in where_accepted {
                self.stats.invariant_checks += 1;
                let route = routes.route(ns, name).expect("a route the gateway serves");
                if !route.selects(&identity(known)) {
                    return Err(Violation {
                        invariant: "I1",
                        detail: format!(
                            "{} is accepted on {host} (route {ns}/{name}, AuthPolicy {}), whose selector does not select the key's identity",
                            known.label, route.policy
                        ),
                    });
                }
            }
        }
        let mut pending = Vec::new();
        // I2 and I3, value by value.
        for (value, known) in &self.values {
            self.stats.invariant_checks += 1;
            let key = snapshot.key(known);
            let product = key.and_then(|k| snapshot.valid(k));
            let held = key.is_some_and(|k| self.held(&snapshot, k, known, value));
            let where_accepted = accepted.get(value.as_str()).cloned().unwrap_or_default();
            if (product.is_none() || !held) && !where_accepted.is_empty() {
                let why = match (key, product) {
                    (None, _) => "its APIKey is gone".to_owned(),
                    (Some(k), None) => format!("its key is {} or its product cannot take keys", k.phase()),
                    _ => "its key no longer holds it".to_owned(),
                };
                let copies = snapshot.enforcement.iter().filter(|(.., v)| v == value).count();
                self.unheld_accepted += usize::from(copies == 0);
                pending.push(Violation {
                    invariant: "I2",
                    detail: format!(
                        "{} ({why}) is accepted on {} ({copies} enforcement copies of it exist)",
                        known.label, where_accepted[0].0
                    ),
                });
            }
        }
        for key in &snapshot.keys {
            let Some(product) = snapshot.valid(key) else { continue };
            self.stats.invariant_checks += 1;
            if product.spec.max_keys_per_user.is_some() || product.offered_plan(key.plan_tier()).is_err() {
                continue;
            }
            let own_hosts: Vec<&String> = routes
                .route(&product.namespace().unwrap_or_default(), &product.spec.target_ref.name)
                .map(|r| r.hosts.iter().collect())
                .unwrap_or_default();
            let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
            let holding =
                snapshot.consumer.get(&(ns.clone(), name.clone())).filter(|(o, _)| o.as_ref() == key.uid().as_ref());
            match holding {
                None => pending.push(Violation {
                    invariant: "I3",
                    detail: format!("{ns}/{name} is Approved and valid, and its consumer holds no value"),
                }),
                Some((_, value)) => {
                    let ok =
                        accepted.get(value.as_str()).is_some_and(|hs| hs.iter().any(|(h, ..)| own_hosts.contains(&h)));
                    if !ok {
                        let label =
                            self.values.get(value).map(|k| k.label.clone()).unwrap_or_else(|| format!("{ns}/{name}"));
                        pending.push(Violation {
                            invariant: "I3",
                            detail: format!("{label}, Approved and valid, is not accepted on its product's route"),
                        });
                    }
                }
            }
        }
        // I3, the automatic half: a request an automatic product can issue now does not wait.
        for key in
            snapshot.keys.iter().filter(|k| k.phase() == KeyPhase::Pending && k.metadata.deletion_timestamp.is_none())
        {
            let Some(product) = snapshot.product(&key.product_namespace(), &key.spec.api_product_ref.name) else {
                continue;
            };
            let can = product.spec.approval_mode == apiportal_core::ApprovalMode::Automatic
                && product.is_published()
                && product.offered_plan(&key.spec.plan_tier).is_ok()
                && product.spec.max_keys_per_user.is_none()
                && product.spec.max_key_lifetime.is_none()
                && key.spec.expires_at.as_ref().is_none_or(|e| e.0 > snapshot.now)
                && snapshot.issuable(product);
            self.stats.invariant_checks += 1;
            if can {
                pending.push(Violation {
                    invariant: "I3",
                    detail: format!(
                        "{}/{} waits Pending although its automatic product can issue it",
                        key.namespace().unwrap_or_default(),
                        key.name_any()
                    ),
                });
            }
        }
        // I5: values accepted on a product's route, per user, within its limit.
        for product in &snapshot.products {
            let Some(max) = product.spec.max_keys_per_user else { continue };
            let own: Vec<&String> = routes
                .route(&product.namespace().unwrap_or_default(), &product.spec.target_ref.name)
                .map(|r| r.hosts.iter().collect())
                .unwrap_or_default();
            let mut per_user: HashMap<String, BTreeSet<String>> = HashMap::new();
            for (value, hosts_accepting) in &accepted {
                let known = &self.values[*value];
                if known.product_namespace != product.namespace().unwrap_or_default()
                    || known.product_name != product.name_any()
                {
                    continue;
                }
                if !hosts_accepting.iter().any(|(h, ..)| own.contains(&h)) {
                    continue;
                }
                let Some(key) = snapshot.key(known) else { continue };
                // A key's current and previous value are one key.
                per_user
                    .entry(key.requester().to_owned())
                    .or_default()
                    .insert(format!("{}/{}", known.key_namespace, known.key_name));
            }
            for (user, keys) in per_user {
                self.stats.invariant_checks += 1;
                if keys.len() > max as usize {
                    pending.push(Violation {
                        invariant: "I5",
                        detail: format!(
                            "{user} holds {} keys accepted on {}/{}, which allows {max}",
                            keys.len(),
                            product.namespace().unwrap_or_default(),
                            product.name_any()
                        ),
                    });
                }
            }
        }
        Ok(pending)
    }

    /// Looks again and again until every eventual invariant holds, or the bound passes (a violation). I1 is
    /// checked at every look and fails at once. Returns how long it took.
    pub async fn settle(&mut self, world: &World) -> Result<Duration, Violation> {
        let mut start = Instant::now();
        let mut judged_afresh = false;
        let mut first_wait: Option<String> = None;
        loop {
            let pending = self.look(world).await?;
            if pending.is_empty() {
                self.stats.settles += 1;
                if let Some(why) = first_wait {
                    let took = start.elapsed();
                    self.stats.settle_times.push(took);
                    if self.stats.slowest.as_ref().is_none_or(|(t, _)| took > *t) {
                        self.stats.slowest = Some((took, why));
                    }
                }
                return Ok(start.elapsed());
            }
            first_wait.get_or_insert_with(|| pending[0].to_string());
            if start.elapsed() > self.bound {
                // Every value still accepted is held by no Secret at all: nothing the bridge could still remove.
                // Authorino rebuilds an AuthConfig's key index from its Secret cache on every AuthConfig event
                // (all of them after an API server restart) while a Secret's deletion revokes it only from the
                // index in place at that moment, so a deletion between the two is lost until the AuthConfig
                // changes again. A fresh Authorino judges once more, within the bound again; a value it accepts
                // too is a violation.
                if !judged_afresh && self.unheld_accepted == pending.len() {
                    judged_afresh = true;
                    self.stats.stale_gateway.push(format!("{} though no Secret holds it", pending[0]));
                    let routes = self.routes.clone();
                    self.gateway.restart_authorino(&routes).await;
                    start = Instant::now();
                    continue;
                }
                return Err(pending.into_iter().next().expect("a pending violation"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// One look at I1 only, between steps (the eventual invariants are judged when the world settles).
    pub async fn glance(&mut self, world: &World) -> Result<(), Violation> {
        self.look(world).await.map(|_| ())
    }

    /// I4: no value the oracle has seen appears in what the bridge logged, the Events of the world, the view's
    /// answers, the webhook's bodies or the operations' outcomes.
    pub async fn no_value_leaked(&mut self, world: &World, elsewhere: &[(&str, String)]) -> Result<(), Violation> {
        let admin = world.cluster.client(Persona::Admin).await;
        let mut haystacks: Vec<(String, String)> =
            elsewhere.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect();
        for (i, bridge) in world.bridges.iter().enumerate() {
            haystacks.push((format!("bridge {i}'s log"), bridge.logs()));
            let token = world.cluster.token(Persona::Admin).to_owned();
            for path in ["/api/v1/keys", "/api/v1/products?all=true"] {
                let answer = bridge.get_as(path, &token).await;
                haystacks.push((format!("the view's {path}"), answer.text()));
            }
        }
        for ns in world.namespaces() {
            let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin.clone(), &ns)
                .list(&ListParams::default())
                .await
                .expect("events");
            let text = serde_json::to_string(&events.items).expect("JSON");
            haystacks.push((format!("the Events of {ns}"), text));
        }
        for (value, known) in &self.values {
            for (where_, text) in &haystacks {
                self.stats.invariant_checks += 1;
                if text.contains(value.as_str()) {
                    return Err(Violation { invariant: "I4", detail: format!("{} appears in {where_}", known.label) });
                }
            }
        }
        Ok(())
    }

    pub fn values_seen(&self) -> usize {
        self.values.len()
    }
}
