//! Where reviewers read requests: the bridge's read-only projections of APIKeys (`APIKeyRequest`) in each product's
//! namespace. Owners hold rights there alone (the cluster-wide reviewer role writes decisions on APIKeys but reads
//! none), so the plugin never lists APIKeys in consumers' namespaces for them. Someone who may read the APIKey
//! itself (its consumer, an admin) gets it fresh instead.

use std::{cell::Cell, collections::BTreeSet, time::Duration};

use apiportal_core::{
    APIKey, APIProduct, KeyPhase,
    kube_ext::KubeErrorExt,
    labels,
    resources::{
        apikey::PlanChange,
        apikeyrequest::{APIKeyRequest, APIKeyRequestSpec, projection_name},
    },
};
use kube::{Api, ResourceExt, api::ListParams};
use tokio::sync::OnceCell;

use super::keys::keys_command;
use crate::{error::Error, paste::Command, session::Session};

/// A request as its reviewers see it: the projection's words, whichever way it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub product_namespace: String,
    pub spec: APIKeyRequestSpec,
}

impl Seen {
    pub fn of_key(key: &APIKey) -> Self {
        Self { product_namespace: key.product_namespace(), spec: APIKeyRequestSpec::of(key) }
    }

    pub fn of_projection(request: &APIKeyRequest) -> Self {
        Self { product_namespace: request.namespace().unwrap_or_default(), spec: request.spec.clone() }
    }

    pub fn product(&self) -> (&str, &str) {
        (&self.product_namespace, &self.spec.api_product_ref.name)
    }

    pub fn product_id(&self) -> String {
        format!("{}/{}", self.product_namespace, self.spec.api_product_ref.name)
    }

    /// The tier in force (the one asked for, until the key is approved).
    pub fn tier_in_force(&self) -> &str {
        self.spec.plan_tier_in_force.as_deref().unwrap_or(&self.spec.plan_tier)
    }

    /// A move to another tier, asked for on an approved key and not decided yet.
    pub fn pending_plan_change(&self) -> Option<&PlanChange> {
        self.spec
            .plan_change
            .as_ref()
            .filter(|c| self.spec.phase == KeyPhase::Approved && c.is_pending() && c.tier != self.tier_in_force())
    }

    /// Waits for a reviewer: a new request, or a plan change.
    pub fn awaits_decision(&self) -> bool {
        self.spec.phase == KeyPhase::Pending || self.pending_plan_change().is_some()
    }

    /// What reviewers decided, to tell whether someone decided since it was read.
    fn decisions(&self) -> impl PartialEq + '_ {
        (self.spec.phase, &self.spec.reviewed_by, &self.spec.reviewed_at, &self.spec.reason, &self.spec.plan_change)
    }
}

/// The PLAN cell of a request or key: the tier in force, or `gold→bronze` while a move waits for a decision.
pub fn plan_cell(in_force: &str, pending: Option<&PlanChange>) -> String {
    match pending {
        Some(change) => format!("{in_force}→{}", change.tier),
        None => in_force.to_owned(),
    }
}

/// Where the caller reads projections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (the caller may list projections cluster-wide: an admin).
    Everywhere,
    Namespaces(Vec<String>),
}

/// How long a reviewer whose decision was refused waits for the projection to show the decision that won.
const SETTLE: Duration = Duration::from_secs(5);

/// Reads requests for one command: the scope is found once, and whether the caller may read APIKeys is learnt
/// from the first refusal.
pub struct Reader<'a> {
    session: &'a Session,
    scope: OnceCell<Scope>,
    keys_readable: Cell<bool>,
}

impl<'a> Reader<'a> {
    pub fn new(session: &'a Session) -> Self {
        Self { session, scope: OnceCell::new(), keys_readable: Cell::new(true) }
    }

    /// A reader of the projections in `scope` alone.
    pub fn within(session: &'a Session, scope: Scope) -> Self {
        Self { session, scope: OnceCell::new_with(Some(scope)), keys_readable: Cell::new(true) }
    }

    pub fn session(&self) -> &'a Session {
        self.session
    }

    /// Where the caller reads projections: everywhere when they may list them cluster-wide; else the namespaces of
    /// the products they may read (the catalog, cluster-wide for catalog readers; else the session's namespace) in
    /// which they may list projections.
    pub async fn scope(&self) -> Result<&Scope, Error> {
        self.scope
            .get_or_try_init(|| async {
                let session = self.session;
                if session.may("list", "apikeyrequests", "", None).await? {
                    return Ok(Scope::Everywhere);
                }
                let products = Api::<APIProduct>::all(session.client.clone());
                let namespaces: BTreeSet<String> = match products.list_metadata(&ListParams::default()).await {
                    Ok(list) => list.items.iter().filter_map(|p| p.namespace()).collect(),
                    Err(e) if e.is_forbidden() => BTreeSet::from([session.namespace.clone()]),
                    Err(e) => return Err(session.explain(e, "list apiproducts in any namespace")),
                };
                let mut readable = Vec::new();
                for ns in namespaces {
                    if session.may("list", "apikeyrequests", &ns, None).await? {
                        readable.push(ns);
                    }
                }
                Ok(Scope::Namespaces(readable))
            })
            .await
    }

    /// Every projection in scope (`selector` on their labels).
    pub async fn list(&self, selector: Option<&str>) -> Result<Vec<APIKeyRequest>, Error> {
        let mut params = ListParams::default();
        if let Some(selector) = selector {
            params = params.labels(selector);
        }
        let client = self.session.client.clone();
        match self.scope().await? {
            Scope::Everywhere => Api::<APIKeyRequest>::all(client)
                .list(&params)
                .await
                .map(|l| l.items)
                .map_err(|e| self.session.explain(e, "list apikeyrequests in any namespace")),
            Scope::Namespaces(namespaces) => {
                let mut all = Vec::new();
                for ns in namespaces {
                    let list = Api::<APIKeyRequest>::namespaced(client.clone(), ns)
                        .list(&params)
                        .await
                        .map_err(|e| self.session.explain(e, &format!("list apikeyrequests in namespace {ns:?}")))?;
                    all.extend(list.items);
                }
                Ok(all)
            }
        }
    }

    /// The projection of key `key_ns/key` in scope, if there is one.
    pub async fn find(&self, key_ns: &str, key: &str) -> Result<Option<APIKeyRequest>, Error> {
        let projects = |r: &APIKeyRequest| r.spec.api_key_ref.namespace == key_ns && r.spec.api_key_ref.name == key;
        match self.scope().await? {
            Scope::Everywhere => {
                let selector = format!("{}={key},{}={key_ns}", labels::APIKEY, labels::APIKEY_NAMESPACE);
                Ok(self.list(Some(&selector)).await?.into_iter().find(projects))
            }
            Scope::Namespaces(namespaces) => {
                let name = projection_name(key_ns, key);
                for ns in namespaces {
                    let api = Api::<APIKeyRequest>::namespaced(self.session.client.clone(), ns);
                    let found = api
                        .get_opt(&name)
                        .await
                        .map_err(|e| self.session.explain(e, &format!("get apikeyrequest {ns}/{name}")))?;
                    if let Some(request) = found.filter(projects) {
                        return Ok(Some(request));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Request `ns/name`: the APIKey where the caller may read it, else its projection.
    pub async fn read(&self, ns: &str, name: &str) -> Result<Seen, Error> {
        if self.keys_readable.get() {
            match Api::<APIKey>::namespaced(self.session.client.clone(), ns).get_opt(name).await {
                Ok(Some(key)) => return Ok(Seen::of_key(&key)),
                Ok(None) => {
                    return Err(Error::NotFound(format!(
                        "apikey {name:?} not found in namespace {ns:?}; list them with {}",
                        keys_command(ns)
                    )));
                }
                Err(e) if e.is_forbidden() => self.keys_readable.set(false),
                Err(e) => return Err(self.session.explain(e, &format!("get apikey {ns}/{name}"))),
            }
        }
        match self.find(ns, name).await? {
            Some(request) => Ok(Seen::of_projection(&request)),
            None => Err(Error::NotFound(format!(
                "no request {ns}/{name} among the requests for products you may approve; list them with {}",
                Command::apiportal("requests --pending")
            ))),
        }
    }

    /// Request `ns/name` once it shows a decision other than `before`'s (a decision someone made while the caller
    /// was deciding; the bridge projects it a moment later); the last one read if none shows within `SETTLE`.
    pub async fn read_changed(&self, ns: &str, name: &str, before: &Seen) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let now = self.read(ns, name).await.ok();
            let changed = now.as_ref().is_some_and(|now| now.decisions() != before.decisions());
            if changed || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
