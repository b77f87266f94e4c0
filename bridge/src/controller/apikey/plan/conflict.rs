//! What `act` does when a Secret it means to create is already there, or a value it means to restore must be
//! found: decided here, as pure functions of what it then reads, so every branch is unit-tested rather than
//! improvised in the I/O. The rules: the enforcement copy is the source of truth for a key's value; a Secret the
//! bridge did not write for this very key is never trusted for a value; a value is restored only when its digest
//! is the one the bridge recorded.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of a key's value, as `status.issued.valueDigest` records it.
pub fn digest(value: &str) -> String {
    let hash: String = Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hash}")
}

/// What act read of an existing Secret of the name it meant to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    /// For an enforcement copy: the APIKey UID it names (`None` on copies older bridges wrote). For a consumer's
    /// copy: whether this APIKey owns it (`Some(uid)` of its owner, `None` when nothing owns it).
    pub owner_uid: Option<String>,
    pub value: Option<String>,
    pub generation: i64,
}

/// An enforcement copy of the name act meant to create already exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnforcementConflict {
    /// It is this key's, with a value: a retried or interrupted issue. Its value is the key's.
    Adopt(String),
    /// Left by an earlier APIKey of the same name, or empty: deleted (with its UID as precondition) and created
    /// again with a new value.
    Replace,
}

pub fn enforcement_conflict(existing: &Existing, key_uid: &str) -> EnforcementConflict {
    let same_key = existing.owner_uid.as_deref().is_none_or(|uid| uid == key_uid);
    match &existing.value {
        Some(value) if same_key && !value.is_empty() => EnforcementConflict::Adopt(value.clone()),
        _ => EnforcementConflict::Replace,
    }
}

/// The consumer's copy exists already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerConflict {
    /// It is this key's and holds this value: nothing to do.
    Keep,
    /// It is this key's with another value or generation (a rotation, a repair): patched to hold this one.
    Update,
    /// Someone else wrote it, with a value of their choosing: replaced, never trusted (the consumer is warned).
    Replace,
}

pub fn consumer_conflict(existing: &Existing, key_uid: &str, value: &str, generation: i64) -> ConsumerConflict {
    if existing.owner_uid.as_deref() != Some(key_uid) {
        return ConsumerConflict::Replace;
    }
    if existing.value.as_deref() == Some(value) && existing.generation == generation {
        ConsumerConflict::Keep
    } else {
        ConsumerConflict::Update
    }
}

/// Where a value the key already has is restored from, when its enforcement copy is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// The consumer's copy is the key's own and holds exactly the recorded value.
    FromConsumerCopy(String),
    /// Nothing holds it any more (or the recorded digest is unknown): a new value, and the consumer is told.
    Fresh,
}

pub fn restore(consumer_copy: Option<&Existing>, key_uid: &str, recorded_digest: Option<&str>) -> Restore {
    let Some(recorded) = recorded_digest else { return Restore::Fresh };
    match consumer_copy {
        Some(Existing { owner_uid: Some(owner), value: Some(value), .. })
            if owner == key_uid && digest(value) == recorded =>
        {
            Restore::FromConsumerCopy(value.clone())
        }
        _ => Restore::Fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(owner: Option<&str>, value: Option<&str>, generation: i64) -> Existing {
        Existing { owner_uid: owner.map(str::to_owned), value: value.map(str::to_owned), generation }
    }

    #[test]
    fn an_enforcement_copy_of_this_key_is_adopted_and_anything_else_replaced() {
        assert_eq!(
            enforcement_conflict(&existing(Some("k1"), Some("v"), 0), "k1"),
            EnforcementConflict::Adopt("v".into())
        );
        assert_eq!(
            enforcement_conflict(&existing(None, Some("v"), 0), "k1"),
            EnforcementConflict::Adopt("v".into()),
            "copies from before the bridge recorded the key's UID are the key's"
        );
        assert_eq!(enforcement_conflict(&existing(Some("k0"), Some("v"), 0), "k1"), EnforcementConflict::Replace);
        assert_eq!(enforcement_conflict(&existing(Some("k1"), None, 0), "k1"), EnforcementConflict::Replace);
        assert_eq!(enforcement_conflict(&existing(Some("k1"), Some(""), 0), "k1"), EnforcementConflict::Replace);
    }

    #[test]
    fn a_consumer_copy_is_kept_updated_or_replaced_by_who_owns_it() {
        assert_eq!(consumer_conflict(&existing(Some("k1"), Some("v"), 2), "k1", "v", 2), ConsumerConflict::Keep);
        assert_eq!(consumer_conflict(&existing(Some("k1"), Some("old"), 1), "k1", "v", 2), ConsumerConflict::Update);
        assert_eq!(consumer_conflict(&existing(Some("k1"), Some("v"), 1), "k1", "v", 2), ConsumerConflict::Update);
        assert_eq!(
            consumer_conflict(&existing(None, Some("v"), 2), "k1", "v", 2),
            ConsumerConflict::Replace,
            "a Secret nobody owns is not the key's, even holding the same value"
        );
        assert_eq!(consumer_conflict(&existing(Some("other"), Some("v"), 2), "k1", "v", 2), ConsumerConflict::Replace);
    }

    #[test]
    fn a_value_is_restored_only_from_the_keys_own_copy_with_the_recorded_digest() {
        let value = "the-value";
        let recorded = digest(value);
        let own = existing(Some("k1"), Some(value), 0);
        assert_eq!(restore(Some(&own), "k1", Some(&recorded)), Restore::FromConsumerCopy(value.into()));
        let tampered = existing(Some("k1"), Some("chosen-by-the-consumer"), 0);
        assert_eq!(restore(Some(&tampered), "k1", Some(&recorded)), Restore::Fresh);
        let foreign = existing(Some("someone-else"), Some(value), 0);
        assert_eq!(restore(Some(&foreign), "k1", Some(&recorded)), Restore::Fresh);
        assert_eq!(restore(None, "k1", Some(&recorded)), Restore::Fresh);
        assert_eq!(restore(Some(&own), "k1", None), Restore::Fresh, "no recorded digest, nothing to trust");
    }

    #[test]
    fn digests_are_sha256_in_hex() {
        assert_eq!(digest("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
