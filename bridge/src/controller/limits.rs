//! `maxKeysPerUser`, exact under concurrent requests: decided in one serialised place. A key's place among its
//! requester's keys for the same product is its rank by when it got its value (then when it was requested, then
//! its name); the first `maxKeysPerUser` hold values at the gateway, the others do not. A key about to get its
//! first value reserves its place here, under one lock, while it is within the limit, so two reconciles of the
//! same user's requests cannot both pass on a cache that has not seen the other's value yet. The rank is computed
//! again on every reconcile, so a race nothing here saw (a failover, a manual approval) is still undone.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use apiportal_core::{APIKey, KeyPhase};
use kube::{ResourceExt, runtime::reflector::Store};

/// How long a reservation holds a place for a key whose value is being issued, until the cache shows the value.
const RESERVATION: Duration = Duration::from_secs(60);

type Holder = (String, String);

#[derive(Default)]
pub struct IssuanceSlots(Mutex<HashMap<(String, String), HashMap<Holder, Instant>>>);

fn holder(key: &APIKey) -> Holder {
    (key.namespace().unwrap_or_default(), key.name_any())
}

/// A key's rank: (when it got its value, or never; when it was requested; namespace; name).
fn rank(key: &APIKey) -> (Option<i64>, Option<i64>, Holder) {
    let issued = key.status.as_ref().and_then(|s| s.issued.as_ref()).map(|i| i.issued_at.0.as_second());
    // `None` sorts first: map "never" to the largest value instead.
    (Some(issued.unwrap_or(i64::MAX)), key.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()), holder(key))
}

/// Whether a key holds (or may hold again) a place: Approved or Suspended, not being deleted.
fn holds_place(key: &APIKey) -> bool {
    matches!(key.phase(), KeyPhase::Approved | KeyPhase::Suspended) && key.metadata.deletion_timestamp.is_none()
}

impl IssuanceSlots {
    /// How many other keys of `key`'s requester for its product hold a value ahead of it; reserves a place for
    /// `key` when it has no value yet and fewer than `max` are ahead.
    pub fn keys_ahead(&self, keys: &Store<APIKey>, key: &APIKey, max: usize) -> usize {
        let me = holder(key);
        let mine = rank(key);
        let issued = |k: &APIKey| k.status.as_ref().is_some_and(|s| s.issued.is_some());
        let group = (key.requester().to_owned(), key.product_id());
        let others: Vec<std::sync::Arc<APIKey>> = keys
            .state()
            .into_iter()
            .filter(|k| k.requester() == group.0 && k.product_id() == group.1 && holder(k) != me)
            .collect();
        let mut slots = self.0.lock().expect("not poisoned");
        let reserved = slots.entry(group).or_default();
        reserved.retain(|_, at| at.elapsed() < RESERVATION);
        // A reservation ends once the cache shows that key's value, or that it will never have one (a Pending key
        // keeps its reservation: it is being approved and issued right now).
        for k in &others {
            if issued(k) || k.phase().is_final() || k.metadata.deletion_timestamp.is_some() {
                reserved.remove(&holder(k));
            }
        }
        let ahead_issued = others.iter().filter(|k| holds_place(k) && issued(k) && rank(k) < mine).count();
        if issued(key) {
            reserved.remove(&me);
            return ahead_issued;
        }
        let ahead = ahead_issued + reserved.keys().filter(|h| **h != me).count();
        if ahead < max {
            reserved.insert(me, Instant::now());
        }
        ahead
    }

    /// Forgets a key's reservation (its reconcile did not issue it a value).
    pub fn release(&self, key: &APIKey) {
        let group = (key.requester().to_owned(), key.product_id());
        if let Some(reserved) = self.0.lock().expect("not poisoned").get_mut(&group) {
            reserved.remove(&holder(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher::Event};

    use super::*;

    fn key(name: &str, phase: &str, issued: bool) -> APIKey {
        let mut status = serde_json::json!({"phase": phase});
        if phase != "Pending" {
            status["reviewedBy"] = "b".into();
            status["reviewedAt"] = "2026-01-01T00:00:00Z".into();
        }
        if issued {
            status["issued"] = serde_json::json!({"generation": 0, "productUID": "p", "authPolicy": "s/p", "issuedAt": "2026-01-01T00:00:00Z"});
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": name, "namespace": "team", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"apiProductRef": {"name": "toys", "namespace": "shop"}, "planTier": "gold", "requestedBy": {"userId": "alice"}},
            "status": status,
        }))
        .unwrap()
    }

    fn store(keys: &[APIKey]) -> Store<APIKey> {
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Init);
        for k in keys {
            writer.apply_watcher_event(&Event::InitApply(k.clone()));
        }
        writer.apply_watcher_event(&Event::InitDone);
        reader
    }

    #[test]
    fn concurrent_requests_of_one_user_get_at_most_the_limit_of_places() {
        // Six requests reconciled at once, none issued yet as far as the cache knows.
        let keys: Vec<APIKey> = (0..6).map(|i| key(&format!("k{i}"), "Pending", false)).collect();
        let cache = store(&keys);
        let slots = IssuanceSlots::default();
        let within: usize = keys.iter().filter(|k| slots.keys_ahead(&cache, k, 2) < 2).count();
        assert_eq!(within, 2, "two places, held while those keys are issued");
    }

    #[test]
    fn issued_keys_rank_by_when_they_got_their_value() {
        let keys = [key("a", "Approved", true), key("b", "Approved", true), key("c", "Approved", false)];
        let cache = store(&keys);
        let slots = IssuanceSlots::default();
        assert_eq!(slots.keys_ahead(&cache, &keys[0], 1), 0);
        assert_eq!(slots.keys_ahead(&cache, &keys[1], 1), 1, "same time: the name orders them");
        assert_eq!(slots.keys_ahead(&cache, &keys[2], 1), 2, "a key without a value comes after every key with one");
    }

    #[test]
    fn a_released_reservation_frees_its_place() {
        let keys = [key("a", "Pending", false), key("b", "Pending", false)];
        let cache = store(&keys);
        let slots = IssuanceSlots::default();
        assert_eq!(slots.keys_ahead(&cache, &keys[0], 1), 0);
        assert_eq!(slots.keys_ahead(&cache, &keys[1], 1), 1);
        slots.release(&keys[0]);
        assert_eq!(slots.keys_ahead(&cache, &keys[1], 1), 0);
    }
}
