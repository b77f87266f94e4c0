//! The product list's versions and what changed between them, so that a client holding the list at one version
//! asks for the difference only (`GET /api/v1/products?since=VERSION`, bridge/API.md), not the whole list.
//!
//! - A version names the products' content (a digest of every product's serialised view, Drafts included) and
//!   the caller's filter (a digest of its scope and `all`). The same products under the same scope have the same
//!   version on every replica and after a restart; a version from another scope is never answered with a
//!   difference, which would leave the client holding products it may no longer list.
//! - Each snapshot records which products changed since the previous one and how each was before. The recent
//!   steps are kept, bounded by their number and by their changes; a version no kept step is at (too old, or a
//!   state this replica never built) is unknown, and the client reads the whole list.
//! - The difference is computed per caller from those steps and the current snapshot: a product is in it only if
//!   the caller's filter admits it now (`items`) or admitted it at `since` (`removed`), so nobody learns through a
//!   difference the name of a product they could not list.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::Arc,
};

use sha2::{Digest, Sha256};

/// Versions kept: a client that polls less often than this many snapshots with product changes reads the whole
/// list again.
const MAX_STEPS: usize = 1024;
/// Product changes kept across those versions.
const MAX_CHANGES: usize = 10_000;

/// A digest of every product's serialised view: two snapshots with the same products have the same state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct State([u8; 16]);

impl State {
    /// From every product's `(namespace, name, etag)`, in the snapshot's order.
    pub fn of<'a>(products: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        let mut hasher = Sha256::new();
        for (namespace, name, etag) in products {
            for part in [namespace, "/", name, " ", etag, "\n"] {
                hasher.update(part.as_bytes());
            }
        }
        Self(hasher.finalize()[..16].try_into().expect("16 bytes of 32"))
    }
}

/// Which products a list holds: Drafts too or not, in every namespace (`None`) or in these.
#[derive(Clone, Copy)]
pub struct Filter<'a> {
    pub drafts: bool,
    pub namespaces: &'a Option<Vec<String>>,
}

impl Filter<'_> {
    pub fn admits(&self, namespace: &str, published: bool) -> bool {
        (self.drafts || published) && self.namespaces.as_ref().is_none_or(|ns| ns.iter().any(|n| n == namespace))
    }

    fn digest(&self) -> [u8; 8] {
        let mut hasher = Sha256::new();
        hasher.update(if self.drafts { "drafts" } else { "published" });
        match self.namespaces {
            None => hasher.update("\nall namespaces"),
            Some(namespaces) => {
                let mut sorted: Vec<&String> = namespaces.iter().collect();
                sorted.sort();
                sorted.dedup();
                for ns in sorted {
                    hasher.update("\n");
                    hasher.update(ns.as_bytes());
                }
            }
        }
        hasher.finalize()[..8].try_into().expect("8 bytes of 32")
    }
}

/// A list's version: the products' state seen through a filter, written `STATE.FILTER` in hex.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Version {
    state: State,
    filter: [u8; 8],
}

impl Version {
    pub fn new(state: State, filter: Filter<'_>) -> Self {
        Self { state, filter: filter.digest() }
    }

    /// A version as a client sends it back; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "invalid since {text:?}: send back exactly the version a products list or change answer carried (32 hex digits, a dot, 16 hex digits)"
            )
        };
        let (state, filter) = text.split_once('.').ok_or_else(invalid)?;
        Ok(Self { state: State(hex_bytes(state).ok_or_else(invalid)?), filter: hex_bytes(filter).ok_or_else(invalid)? })
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether this version is of a list seen through `filter`.
    pub fn is_for(&self, filter: Filter<'_>) -> bool {
        self.filter == filter.digest()
    }
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.state.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(".")?;
        for b in self.filter {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A product as a snapshot held it: what decides whether a list showed it, and what it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub uid: Option<String>,
    pub published: bool,
    pub etag: String,
}

/// A product that changed in a step, and how it was before the step (`None`: it did not exist).
#[derive(Clone, Debug)]
pub struct Change {
    pub namespace: String,
    pub name: String,
    pub before: Option<Held>,
}

/// The changes that led to `state`.
struct Step {
    state: State,
    changes: Vec<Change>,
}

/// The recent steps, oldest first. Immutable: each snapshot holds the history as of its build, and the next build
/// extends a copy (of `Arc`s).
#[derive(Clone, Default)]
pub struct History {
    steps: VecDeque<Arc<Step>>,
    /// Changes held by the steps (the oldest holds none).
    changes: usize,
}

impl History {
    /// The state of the newest step.
    pub fn current(&self) -> Option<State> {
        self.steps.back().map(|s| s.state)
    }

    /// This history and one more step: `changes` led to `state`. The oldest steps go beyond the bounds.
    pub fn then(&self, state: State, changes: Vec<Change>) -> Self {
        let mut next = self.clone();
        next.changes += changes.len();
        next.steps.push_back(Arc::new(Step { state, changes }));
        loop {
            // The oldest step's own changes are never read again (they led to it): keep its state only.
            if let Some(oldest) = next.steps.front_mut().filter(|s| !s.changes.is_empty()) {
                next.changes -= oldest.changes.len();
                *oldest = Arc::new(Step { state: oldest.state, changes: Vec::new() });
            }
            if next.steps.len() <= MAX_STEPS && next.changes <= MAX_CHANGES {
                return next;
            }
            next.steps.pop_front();
        }
    }

    /// Every product that changed after the newest step at `state`, with how it was at `state`; `None` when no
    /// kept step is at `state`.
    pub fn since(&self, state: State) -> Option<HashMap<(&str, &str), Option<&Held>>> {
        let at = self.steps.iter().rposition(|s| s.state == state)?;
        let mut first: HashMap<(&str, &str), Option<&Held>> = HashMap::new();
        for step in self.steps.iter().skip(at + 1) {
            for change in &step.changes {
                first.entry((change.namespace.as_str(), change.name.as_str())).or_insert(change.before.as_ref());
            }
        }
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u8) -> State {
        State([n; 16])
    }

    fn change(name: &str) -> Change {
        Change { namespace: "ns".into(), name: name.into(), before: None }
    }

    #[test]
    fn a_version_reads_back_as_written_and_anything_else_is_refused_with_the_fix() {
        let namespaces = Some(vec!["b".to_owned(), "a".to_owned()]);
        let version = Version::new(state(7), Filter { drafts: false, namespaces: &namespaces });
        let text = version.to_string();
        assert_eq!(Version::parse(&text), Ok(version));
        for bad in ["", "x", &text[1..], &text.to_uppercase(), &format!("{text}0"), &text.replace('.', "-")] {
            let err = Version::parse(bad).unwrap_err();
            assert!(err.contains("send back exactly the version"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_version_belongs_to_one_filter() {
        let (some, other, all) = (Some(vec!["a".to_owned(), "b".to_owned()]), Some(vec!["a".to_owned()]), None);
        let version = Version::new(state(1), Filter { drafts: false, namespaces: &some });
        let reordered = Some(vec!["b".to_owned(), "a".to_owned()]);
        assert!(version.is_for(Filter { drafts: false, namespaces: &reordered }), "the order of namespaces is not");
        assert!(!version.is_for(Filter { drafts: false, namespaces: &other }));
        assert!(!version.is_for(Filter { drafts: false, namespaces: &all }));
        assert!(!version.is_for(Filter { drafts: true, namespaces: &some }));
    }

    #[test]
    fn changes_since_a_state_collapse_to_how_each_product_was_then() {
        let held = |etag: &str| Held { uid: Some("u".into()), published: true, etag: etag.into() };
        let history = History::default()
            .then(state(1), vec![])
            .then(state(2), vec![Change { before: Some(held("a1")), ..change("a") }])
            .then(state(3), vec![Change { before: Some(held("a2")), ..change("a") }, change("b")]);
        let since_1 = history.since(state(1)).unwrap();
        assert_eq!(since_1.len(), 2);
        assert_eq!(since_1[&("ns", "a")], Some(&held("a1")), "as it was at state 1, not at 2");
        assert_eq!(since_1[&("ns", "b")], None);
        assert!(history.since(state(3)).unwrap().is_empty(), "nothing changed since the current state");
        assert!(history.since(state(9)).is_none(), "a state never built is unknown");
        // A state reached twice: the newest step at it counts.
        let back = history.then(state(1), vec![change("c")]).then(state(4), vec![change("d")]);
        assert_eq!(back.since(state(1)).unwrap().keys().collect::<Vec<_>>(), [&("ns", "d")]);
    }

    #[test]
    fn old_steps_go_beyond_the_bounds() {
        let mut history = History::default().then(state(0), vec![]);
        for i in 1..=MAX_STEPS + 5 {
            history = history
                .then(State([(i % 251) as u8, (i / 251) as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), vec![]);
        }
        assert_eq!(history.steps.len(), MAX_STEPS);
        assert!(history.since(state(0)).is_none(), "the first state is forgotten");
        let big = History::default()
            .then(state(1), vec![])
            .then(state(2), vec![change("x")])
            .then(state(3), (0..MAX_CHANGES).map(|i| change(&format!("p{i}"))).collect());
        assert!(big.since(state(1)).is_none(), "past MAX_CHANGES the oldest state goes");
        assert_eq!(big.since(state(2)).unwrap().len(), MAX_CHANGES);
        assert_eq!(big.current(), Some(state(3)));
    }
}
