//! The versions of objects the bridge has itself written past. A reconcile triggered by one of its own writes
//! (or by a Secret it created) can read the object from a cache that has not yet seen the bridge's later
//! writes; planning from that stale copy would redo work already done (409s, read-backs, a status re-applied).
//! Like kube-controller-manager's "expectations", the reconcile skips a version it knows is superseded and
//! waits for the watch to deliver the newer one, which triggers it again.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use kube::{Resource, ResourceExt};

/// Superseded resourceVersions per object (namespace, name); bounded by the objects reconciled recently.
#[derive(Default)]
pub struct OwnWrites(Mutex<HashMap<(String, String), HashSet<String>>>);

fn id<K: Resource>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl OwnWrites {
    /// `before` was replaced by the bridge's own write of `after`.
    pub fn replaced<K: Resource>(&self, before: &K, after: &K) {
        if let Some(rv) = before.resource_version()
            && before.resource_version() != after.resource_version()
        {
            self.0.lock().expect("not poisoned").entry(id(before)).or_default().insert(rv);
        }
    }

    /// Whether `cached` is a version the bridge has already written past. A version that is not (the latest
    /// the bridge wrote, or anyone's newer one) ends the bookkeeping for the object.
    pub fn is_superseded<K: Resource>(&self, cached: &K) -> bool {
        let mut map = self.0.lock().expect("not poisoned");
        let key = id(cached);
        match (map.get(&key), cached.resource_version()) {
            (Some(versions), Some(rv)) if versions.contains(&rv) => true,
            _ => {
                map.remove(&key);
                false
            }
        }
    }

    /// Forgets an object (deleted).
    pub fn forget<K: Resource>(&self, object: &K) {
        self.0.lock().expect("not poisoned").remove(&id(object));
    }
}

/// Enforcement copies the bridge created moments ago, which the Secrets' cache (a watch of its own) may not show
/// yet: a key reconcile that finds one missing waits for the cache instead of restoring it. Anything older than
/// `CREATED_GRACE`, or deleted by the bridge since, counts as missing.
#[derive(Default)]
pub struct CreatedCopies(Mutex<HashMap<String, std::time::Instant>>);

const CREATED_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

impl CreatedCopies {
    pub fn created(&self, name: &str) {
        let mut map = self.0.lock().expect("not poisoned");
        map.retain(|_, at| at.elapsed() < CREATED_GRACE);
        map.insert(name.to_owned(), std::time::Instant::now());
    }

    pub fn deleted(&self, name: &str) {
        self.0.lock().expect("not poisoned").remove(name);
    }

    /// Of `names`, those created moments ago and still missing from the cache (`cached` says which are there).
    pub fn pending(&self, names: impl IntoIterator<Item = String>, cached: impl Fn(&str) -> bool) -> Vec<String> {
        let mut map = self.0.lock().expect("not poisoned");
        names
            .into_iter()
            .filter(|name| match map.get(name) {
                Some(at) if at.elapsed() < CREATED_GRACE && !cached(name) => true,
                Some(_) => {
                    map.remove(name);
                    false
                }
                None => false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use apiportal_core::APIKey;

    use super::*;

    fn key(rv: &str) -> APIKey {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k", "namespace": "team", "resourceVersion": rv},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold", "requestedBy": {"userId": "alice"}},
        }))
        .unwrap()
    }

    #[test]
    fn versions_written_past_are_skipped_until_the_latest_arrives() {
        let writes = OwnWrites::default();
        writes.replaced(&key("1"), &key("2"));
        writes.replaced(&key("2"), &key("3"));
        assert!(writes.is_superseded(&key("1")) && writes.is_superseded(&key("2")), "stale copies are skipped");
        assert!(!writes.is_superseded(&key("3")), "the bridge's latest write is reconciled");
        assert!(!writes.is_superseded(&key("2")), "and ends the bookkeeping: nothing is skipped forever");
    }

    #[test]
    fn someone_elses_newer_version_is_reconciled() {
        let writes = OwnWrites::default();
        writes.replaced(&key("1"), &key("2"));
        assert!(!writes.is_superseded(&key("9")));
    }
}

#[cfg(test)]
mod created_copies {
    use super::CreatedCopies;

    #[test]
    fn a_copy_just_created_is_awaited_until_the_cache_shows_it_or_the_bridge_deletes_it() {
        let copies = CreatedCopies::default();
        copies.created("a");
        assert_eq!(copies.pending(["a".to_owned(), "b".to_owned()], |_| false), ["a"]);
        assert!(copies.pending(["a".to_owned()], |_| true).is_empty(), "in the cache: nothing to wait for");
        assert!(copies.pending(["a".to_owned()], |_| false).is_empty(), "and forgotten once seen");
        copies.created("c");
        copies.deleted("c");
        assert!(copies.pending(["c".to_owned()], |_| false).is_empty());
    }
}
