//! Who calls the view, and what they may see: bearer tokens checked with the API server's TokenReview (for this
//! bridge's audience only), rights checked with SubjectAccessReview against the same RBAC as kubectl.
//!
//! Built so that nobody can turn it against the API server or against other callers:
//! - answers are cached by a SHA-256 of the token (never the token), in a bounded LRU with a TTL;
//! - refusals in a separate, small, short-lived cache, so a flood of junk tokens cannot evict real callers;
//! - at most `max_in_flight` reviews at once (callers wait briefly, then get 503), one review per token however
//!   many requests carry it, and a per-client budget of unknown tokens (429 beyond it);
//! - at most `max_per_caller` of those slots for one caller's SubjectAccessReviews: a caller with many
//!   namespaces to check (or many requests at once) queues behind its own reviews, never everyone else's;
//! - the authorisation cache is keyed by everything the decision depends on: user, UID, groups and extra.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use futures::{StreamExt, stream};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec, UserInfo},
    authorization::v1::{NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use moka::future::Cache;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// Why a caller is not served.
#[derive(Debug, Clone)]
pub enum AuthError {
    Unauthenticated(String),
    /// Too many unknown tokens from this client.
    RateLimited,
    /// The API server could not be asked (down, or too many reviews in flight).
    Unavailable(String),
}

/// What a caller wants to do, as a SubjectAccessReview asks it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Access {
    pub verb: &'static str,
    /// An apiportal resource (`apiproducts`, `apikeys`), or empty for a non-resource URL.
    pub resource: &'static str,
    pub namespace: Option<String>,
    /// The object, or the URL for a non-resource request.
    pub name: Option<String>,
}

impl Access {
    pub fn url(path: &str) -> Self {
        Self { verb: "get", resource: "", namespace: None, name: Some(path.to_owned()) }
    }

    pub fn list(resource: &'static str, namespace: Option<&str>) -> Self {
        Self { verb: "list", resource, namespace: namespace.map(str::to_owned), name: None }
    }
}

/// The namespaces a caller may list something in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Namespaces {
    All,
    Some(Vec<String>),
}

pub struct Settings {
    /// The audiences tokens may be issued for (empty: any the API server accepts).
    pub audiences: Vec<String>,
    pub ttl: Duration,
    pub max_in_flight: usize,
    /// Of those, SubjectAccessReviews one caller may have in flight.
    pub max_per_caller: usize,
    /// Unknown tokens one client may present per minute.
    pub unknown_tokens_per_minute: u32,
}

type TokenDigest = [u8; 32];
type UserDigest = [u8; 32];

pub struct Authorizer {
    client: Client,
    audiences: Vec<String>,
    users: Cache<TokenDigest, Arc<UserInfo>>,
    refused: Cache<TokenDigest, ()>,
    decisions: Cache<(UserDigest, Access), bool>,
    in_flight: Semaphore,
    per_caller: PerCaller,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    metrics: Arc<Metrics>,
}

/// How long a caller waits for a free review slot before being told to come back.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(5);
const REFUSAL_TTL: Duration = Duration::from_secs(5);

impl Authorizer {
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let per_minute = NonZeroU32::new(settings.unknown_tokens_per_minute.max(1)).expect("at least one");
        Self {
            client,
            audiences: settings.audiences,
            users: Cache::builder().max_capacity(10_000).time_to_live(settings.ttl).build(),
            refused: Cache::builder().max_capacity(10_000).time_to_live(REFUSAL_TTL.min(settings.ttl)).build(),
            decisions: Cache::builder().max_capacity(100_000).time_to_live(settings.ttl).build(),
            in_flight: Semaphore::new(settings.max_in_flight.max(1)),
            per_caller: PerCaller::new(settings.max_per_caller.clamp(1, settings.max_in_flight.max(1))),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            metrics,
        }
    }

    /// Forgets the rate-limit state of clients that have been quiet (bounded memory, whatever many addresses
    /// a caller uses).
    pub fn forget_idle_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Who presents `token`, from `client`.
    pub async fn authenticate(&self, token: &str, client: IpAddr) -> Result<Arc<UserInfo>, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Unauthenticated("missing bearer token".into()));
        }
        let digest: TokenDigest = Sha256::digest(token.as_bytes()).into();
        if let Some(user) = self.users.get(&digest).await {
            return Ok(user);
        }
        if self.refused.contains_key(&digest) {
            return Err(AuthError::Unauthenticated(self.refusal()));
        }
        // Every review the bridge sends on a caller's behalf comes out of that caller's budget.
        if self.limiter.check_key(&client).is_err() {
            self.metrics.rate_limited.inc();
            return Err(AuthError::RateLimited);
        }
        let result =
            self.users.try_get_with(digest, self.review(token)).await.map_err(|e: Arc<AuthError>| (*e).clone());
        if let Err(AuthError::Unauthenticated(_)) = &result {
            self.refused.insert(digest, ()).await;
        }
        result
    }

    fn refusal(&self) -> String {
        match self.audiences.as_slice() {
            [] => "the API server does not accept this token".to_owned(),
            [one] => format!("the API server does not accept this token for audience {one:?}"),
            many => format!("the API server does not accept this token for any of the audiences {many:?}"),
        }
    }

    async fn review(&self, token: &str) -> Result<Arc<UserInfo>, AuthError> {
        let _slot = tokio::time::timeout(WAIT_FOR_SLOT, self.in_flight.acquire())
            .await
            .map_err(|_| AuthError::Unavailable("too many callers are being authenticated; retry shortly".into()))?
            .expect("the semaphore is never closed");
        self.metrics.token_reviews.inc();
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("TokenReview failed: {e}")))?;
        let status = answer.status.unwrap_or_default();
        // The API server answers with the audiences the token is valid for among those asked: one of ours.
        let audience_ok = self.audiences.is_empty()
            || status.audiences.as_ref().is_some_and(|a| a.iter().any(|aud| self.audiences.contains(aud)));
        match (status.authenticated.unwrap_or(false) && audience_ok, status.user) {
            (true, Some(user)) => Ok(Arc::new(user)),
            _ => Err(AuthError::Unauthenticated(self.refusal())),
        }
    }

    /// Whether `user` may do `access`.
    pub async fn authorize(&self, user: &UserInfo, access: &Access) -> Result<bool, AuthError> {
        let caller = digest_user(user);
        let key = (caller, access.clone());
        if let Some(allowed) = self.decisions.get(&key).await {
            return Ok(allowed);
        }
        // The caller's own share first: while it waits for it, it holds none of the slots others need.
        let share = self.per_caller.share(caller);
        let slots = async {
            let own = share.acquire().await.expect("a share is never closed");
            let any = self.in_flight.acquire().await.expect("the semaphore is never closed");
            (own, any)
        };
        let _slots = tokio::time::timeout(WAIT_FOR_SLOT, slots).await.map_err(|_| {
            AuthError::Unavailable("too many reviews are in flight for you or for everyone; retry shortly".into())
        })?;
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: (!access.resource.is_empty()).then(|| ResourceAttributes {
                    group: Some(apiportal_core::GROUP.into()),
                    resource: Some(access.resource.into()),
                    verb: Some(access.verb.into()),
                    namespace: access.namespace.clone(),
                    name: access.name.clone(),
                    ..Default::default()
                }),
                non_resource_attributes: access
                    .resource
                    .is_empty()
                    .then(|| NonResourceAttributes { path: access.name.clone(), verb: Some(access.verb.into()) }),
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("SubjectAccessReview failed: {e}")))?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        self.decisions.insert(key, allowed).await;
        Ok(allowed)
    }

    /// The namespaces among `candidates` where `user` may list `resource`: all of them if they may list it
    /// cluster-wide, else each one checked (cached per user and namespace).
    pub async fn namespaces(
        &self,
        user: &UserInfo,
        resource: &'static str,
        candidates: &[String],
    ) -> Result<Namespaces, AuthError> {
        if self.authorize(user, &Access::list(resource, None)).await? {
            return Ok(Namespaces::All);
        }
        let checks: Vec<_> = candidates
            .iter()
            .map(|ns| {
                let (access, ns) = (Access::list(resource, Some(ns)), ns.clone());
                async move { Ok(self.authorize(user, &access).await?.then_some(ns)) }
            })
            .collect();
        let checks: Vec<Result<Option<String>, AuthError>> = stream::iter(checks).buffered(8).collect().await;
        let mut allowed = Vec::new();
        for check in checks {
            allowed.extend(check?);
        }
        Ok(Namespaces::Some(allowed))
    }
}

/// Each caller's share of the review slots: a semaphore per caller, alive while anyone holds or awaits it (so a
/// caller's every review counts against the same share), forgotten when no one does.
struct PerCaller {
    permits: usize,
    shares: Mutex<HashMap<UserDigest, Weak<Semaphore>>>,
}

impl PerCaller {
    fn new(permits: usize) -> Self {
        Self { permits, shares: Mutex::default() }
    }

    fn share(&self, caller: UserDigest) -> Arc<Semaphore> {
        let mut shares = self.shares.lock().expect("never poisoned: nothing panics while holding it");
        if let Some(share) = shares.get(&caller).and_then(Weak::upgrade) {
            return share;
        }
        // Bounded by the callers with reviews in flight: forgotten shares are swept as the map grows.
        if shares.len() >= 1024 && shares.len().is_power_of_two() {
            shares.retain(|_, share| share.strong_count() > 0);
        }
        let share = Arc::new(Semaphore::new(self.permits));
        shares.insert(caller, Arc::downgrade(&share));
        share
    }
}

/// Everything about a user an authorisation decision depends on.
fn digest_user(user: &UserInfo) -> UserDigest {
    let mut hasher = Sha256::new();
    let mut field = |s: &str| {
        hasher.update((s.len() as u64).to_le_bytes());
        hasher.update(s.as_bytes());
    };
    field(user.username.as_deref().unwrap_or_default());
    field(user.uid.as_deref().unwrap_or_default());
    for g in user.groups.iter().flatten() {
        field(g);
    }
    field("|extra");
    for (k, values) in user.extra.iter().flatten() {
        field(k);
        for v in values {
            field(v);
        }
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: Some(name.into()),
            groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn one_callers_reviews_share_a_bounded_share_and_others_get_their_own() {
        let shares = PerCaller::new(2);
        let (flooder, backstage) = (digest_user(&user("flooder", &[])), digest_user(&user("backstage", &[])));
        let first = shares.share(flooder);
        let _held = (first.clone().try_acquire_owned().unwrap(), first.clone().try_acquire_owned().unwrap());
        assert!(shares.share(flooder).try_acquire().is_err(), "a third review of the same caller waits");
        assert!(shares.share(backstage).try_acquire().is_ok(), "another caller has its own share");
        drop((_held, first));
        assert_eq!(shares.share(flooder).available_permits(), 2, "a share nobody holds is forgotten");
    }

    #[test]
    fn decisions_are_cached_per_everything_that_decides_them() {
        assert_eq!(digest_user(&user("alice", &["a"])), digest_user(&user("alice", &["a"])));
        assert_ne!(digest_user(&user("alice", &["a"])), digest_user(&user("alice", &["a", "admins"])));
        assert_ne!(
            digest_user(&user("alice", &["ab"])),
            digest_user(&user("alic", &["eab"])),
            "fields cannot run together"
        );
        let mut with_extra = user("alice", &["a"]);
        with_extra.extra = Some([("scopes".to_owned(), vec!["read".to_owned()])].into());
        assert_ne!(digest_user(&user("alice", &["a"])), digest_user(&with_extra));
    }
}
