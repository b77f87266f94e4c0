//! Who is asking, and may they see it: bearer tokens checked with the API server's TokenReview, rights checked
//! with SubjectAccessReview against the same RBAC as kubectl. Decisions are cached briefly.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec, UserInfo},
    authorization::v1::{NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use sha2::{Digest, Sha256};

/// The most entries each cache holds before it is cleared (bounds memory against token floods).
const MAX_ENTRIES: usize = 10_000;

type TokenDigest = [u8; 32];

pub struct Authorizer {
    client: Client,
    ttl: Duration,
    /// Keyed by the token's SHA-256, so a heap dump of the bridge holds no caller's credential.
    tokens: Mutex<HashMap<TokenDigest, (Instant, Option<UserInfo>)>>,
    decisions: Mutex<HashMap<(String, String), (Instant, bool)>>,
}

#[derive(Debug)]
pub enum AuthError {
    /// No usable token.
    Unauthenticated(String),
    /// The API server could not be asked.
    Unavailable(String),
}

/// What the caller wants to do, in RBAC terms: an apiportal resource, or (with `resource` empty) a
/// non-resource URL such as `/metrics` in `name`.
pub struct Access<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl<'a> Access<'a> {
    /// `get` on a non-resource URL, the way kube-rbac-proxy guards metrics.
    pub fn url(path: &'a str) -> Self {
        Self { verb: "get", resource: "", namespace: None, name: Some(path) }
    }
}

impl Authorizer {
    pub fn new(client: Client, ttl: Duration) -> Self {
        Self { client, ttl, tokens: Mutex::default(), decisions: Mutex::default() }
    }

    fn cached<K: std::hash::Hash + Eq, V: Clone>(&self, cache: &Mutex<HashMap<K, (Instant, V)>>, key: &K) -> Option<V> {
        let cache = cache.lock().unwrap();
        cache.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    fn remember<K: std::hash::Hash + Eq, V>(cache: &Mutex<HashMap<K, (Instant, V)>>, key: K, value: V) {
        let mut cache = cache.lock().unwrap();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), value));
    }

    pub async fn authenticate(&self, token: &str) -> Result<UserInfo, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Unauthenticated("missing bearer token".into()));
        }
        let key: TokenDigest = Sha256::digest(token.as_bytes()).into();
        let user = match self.cached(&self.tokens, &key) {
            Some(user) => user,
            None => {
                let review = TokenReview {
                    spec: TokenReviewSpec { token: token.to_owned(), ..Default::default() },
                    ..Default::default()
                };
                let answer = Api::<TokenReview>::all(self.client.clone())
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|e| AuthError::Unavailable(format!("TokenReview failed: {e}")))?;
                let status = answer.status.unwrap_or_default();
                let user = status.authenticated.unwrap_or(false).then(|| status.user.unwrap_or_default());
                Self::remember(&self.tokens, key, user.clone());
                user
            }
        };
        user.ok_or_else(|| AuthError::Unauthenticated("the API server does not accept this token".into()))
    }

    pub async fn authorize(&self, user: &UserInfo, access: &Access<'_>) -> Result<bool, AuthError> {
        let username = user.username.clone().unwrap_or_default();
        let key = (
            format!("{username}|{}", user.uid.clone().unwrap_or_default()),
            format!(
                "{}|{}|{}|{}",
                access.verb,
                access.resource,
                access.namespace.unwrap_or(""),
                access.name.unwrap_or("")
            ),
        );
        if let Some(allowed) = self.cached(&self.decisions, &key) {
            return Ok(allowed);
        }
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
                    namespace: access.namespace.map(str::to_owned),
                    name: access.name.map(str::to_owned),
                    ..Default::default()
                }),
                non_resource_attributes: access.resource.is_empty().then(|| NonResourceAttributes {
                    path: access.name.map(str::to_owned),
                    verb: Some(access.verb.into()),
                }),
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("SubjectAccessReview failed: {e}")))?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        Self::remember(&self.decisions, key, allowed);
        Ok(allowed)
    }
}
