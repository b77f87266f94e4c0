//! An adversary that never sleeps: owners, tenants, consumers, the platform and faults act in an order drawn from a
//! seed, on the real API server, the real bridge and the real Authorino, and after every step an oracle checks the
//! invariants of trust (see `oracle`) from the objects in the API server and from Authorino's answers, never from
//! the bridge's code.
//!
//! The operations are a pure function of the seed (they name objects by index, whether or not those exist, and an
//! operation that the API server refuses is part of the run), so `APIPORTAL_ADVERSARY_SEED=<seed>` replays a run,
//! and a failing run's log can be replayed shorter in a fresh world to shrink it.

pub mod oracle;
mod world;

use std::{fmt, time::Duration};

use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::Serialize;

pub use self::world::World;

/// The name of key `i` (every team's keys are named alike).
pub fn key_name_of(i: usize) -> String {
    world::key_name(i)
}

pub const SHOPS: usize = 2;
pub const TEAMS: usize = 2;
pub const PRODUCTS: usize = 2;
pub const ROUTES: usize = 2;
pub const POLICIES: usize = 2;
pub const KEYS: usize = 3;
/// `platinum` is never offered: requests for it test the refusals.
pub const TIERS: [&str; 3] = ["gold", "bronze", "platinum"];

/// Where a route or a policy lives: a product namespace, or a tenant's own namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Ns {
    Shop(usize),
    Tenant,
}

/// What an AuthPolicy selects keys by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Selector {
    /// Product-scoped, for product `product` of the policy's own namespace (what `expose` writes).
    Own(usize),
    /// A copy of the selector of another namespace's product.
    Copied(usize, usize),
    /// Product-scoped, and also a label the tenant chose (which keys never carry).
    OwnWithLabel(usize),
    /// A legacy selector, `{app: payments}`, as another team's old policy would have.
    Legacy,
    /// Selects every key (`{}`).
    Everything,
    /// Product-scoped through matchExpressions.
    Expressions(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    Approve,
    Reject,
    Revoke,
    Suspend,
    Resume,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    CreateProduct { shop: usize, product: usize, route: usize, automatic: bool, published: bool, max_keys: Option<i32> },
    SetApproval { shop: usize, product: usize, automatic: bool },
    Publish { shop: usize, product: usize, published: bool },
    DeleteProduct { shop: usize, product: usize },
    Decide { team: usize, key: usize, verdict: Verdict },
    CreateRoute { ns: Ns, route: usize },
    DeleteRoute { ns: Ns, route: usize },
    SetRouteAccepted { ns: Ns, route: usize, accepted: bool },
    ApplyPolicy { ns: Ns, policy: usize, route: usize, selector: Selector, all_namespaces: bool, enforced: bool },
    SetPolicyEnforced { ns: Ns, policy: usize, enforced: bool },
    DeletePolicy { ns: Ns, policy: usize },
    ApplyPlans { ns: Ns, route: usize, tiers: usize },
    Request { team: usize, key: usize, shop: usize, product: usize, tier: usize, expires_in: Option<u32> },
    Rotate { team: usize, key: usize, grace_seconds: u32 },
    ChangePlan { team: usize, key: usize, tier: usize },
    DeleteKey { team: usize, key: usize },
    KillBridge,
    StartReplica,
    RestartApiServer,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).expect("an op serialises"))
    }
}

/// How much of each kind of thing happens, by weight; faults are rare, and API server restarts rarer (each costs
/// seconds).
pub struct Mix {
    pub faults: bool,
    pub apiserver_restarts: bool,
}

/// The operations of a run, drawn from `seed`.
pub fn operations(seed: u64, count: usize, mix: &Mix) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops = Vec::with_capacity(count + 8);
    // Every run starts from a world where keys can be issued at all, so the interesting orderings happen later.
    for shop in 0..SHOPS {
        ops.push(Op::CreateRoute { ns: Ns::Shop(shop), route: 0 });
        ops.push(Op::ApplyPlans { ns: Ns::Shop(shop), route: 0, tiers: 2 });
        ops.push(Op::ApplyPolicy {
            ns: Ns::Shop(shop),
            policy: 0,
            route: 0,
            selector: Selector::Own(0),
            all_namespaces: false,
            enforced: true,
        });
        ops.push(Op::CreateProduct {
            shop,
            product: 0,
            route: 0,
            automatic: shop == 0,
            published: true,
            max_keys: None,
        });
    }
    let mut requested: Vec<(usize, usize)> = Vec::new();
    while ops.len() < count {
        // Now and then the platform puts the first products right again, so keys keep flowing between the
        // surprises (a world broken for good tests nothing more).
        if ops.len() % 15 == 14 {
            for shop in 0..SHOPS {
                ops.push(Op::SetRouteAccepted { ns: Ns::Shop(shop), route: 0, accepted: true });
                ops.push(Op::ApplyPolicy {
                    ns: Ns::Shop(shop),
                    policy: 0,
                    route: 0,
                    selector: Selector::Own(0),
                    all_namespaces: false,
                    enforced: true,
                });
            }
            continue;
        }
        let mut op = draw(&mut rng, mix);
        // Decisions and a consumer's own operations mostly name requests this run made (a pure function of the
        // operations so far, never of what happened: a replay draws the same).
        match &mut op {
            Op::Request { team, key, .. } => requested.push((*team, *key)),
            Op::Decide { team, key, .. }
            | Op::Rotate { team, key, .. }
            | Op::ChangePlan { team, key, .. }
            | Op::DeleteKey { team, key }
                if !requested.is_empty() && rng.random_bool(0.85) =>
            {
                (*team, *key) = requested[rng.random_range(0..requested.len())];
            }
            _ => {}
        }
        ops.push(op);
    }
    ops.truncate(count.max(ops.len().min(count)));
    ops
}

fn draw(rng: &mut StdRng, mix: &Mix) -> Op {
    // Most of the action is on each shop's first product and route, so keys live long enough for their
    // promises to be tested; the rest is where the surprises come from.
    let mostly_first = |rng: &mut StdRng, n: usize| if rng.random_bool(0.7) { 0 } else { rng.random_range(0..n) };
    let shop = rng.random_range(0..SHOPS);
    let team = rng.random_range(0..TEAMS);
    let key = rng.random_range(0..KEYS);
    let product = mostly_first(rng, PRODUCTS);
    let route = mostly_first(rng, ROUTES);
    let ns = if rng.random_bool(0.2) { Ns::Tenant } else { Ns::Shop(shop) };
    let roll = rng.random_range(0..100);
    match roll {
        0..=21 => Op::Request {
            team,
            key,
            shop,
            product,
            tier: [0, 0, 0, 1, 1, 2][rng.random_range(0..6)],
            expires_in: rng.random_bool(0.15).then(|| rng.random_range(8..40)),
        },
        22..=37 => Op::Decide {
            team,
            key,
            verdict: [
                Verdict::Approve,
                Verdict::Approve,
                Verdict::Approve,
                Verdict::Reject,
                Verdict::Revoke,
                Verdict::Suspend,
                Verdict::Resume,
            ][rng.random_range(0..7)],
        },
        38..=44 => Op::Rotate { team, key, grace_seconds: [0, 4, 12][rng.random_range(0..3)] },
        45..=47 => Op::ChangePlan { team, key, tier: rng.random_range(0..TIERS.len()) },
        48..=51 => Op::DeleteKey { team, key },
        52..=55 => Op::CreateProduct {
            shop,
            product,
            route,
            automatic: rng.random_bool(0.5),
            published: rng.random_bool(0.85),
            max_keys: [None, None, Some(1), Some(2)][rng.random_range(0..4)],
        },
        56..=57 => Op::SetApproval { shop, product, automatic: rng.random_bool(0.5) },
        58 => Op::Publish { shop, product, published: rng.random_bool(0.6) },
        59..=60 => Op::DeleteProduct { shop, product },
        61..=63 => Op::CreateRoute { ns, route },
        64 => Op::DeleteRoute { ns, route },
        65..=67 => Op::SetRouteAccepted { ns, route, accepted: rng.random_bool(0.75) },
        68..=79 => {
            let selector = match rng.random_range(0..12) {
                0..=5 => Selector::Own(product),
                6 => Selector::Copied(rng.random_range(0..SHOPS), product),
                7 | 8 => Selector::OwnWithLabel(product),
                9 => Selector::Legacy,
                10 => Selector::Everything,
                _ => Selector::Expressions(product),
            };
            Op::ApplyPolicy {
                ns,
                policy: mostly_first(rng, POLICIES),
                route,
                selector,
                all_namespaces: rng.random_bool(0.08),
                enforced: rng.random_bool(0.9),
            }
        }
        80..=83 => Op::SetPolicyEnforced { ns, policy: mostly_first(rng, POLICIES), enforced: rng.random_bool(0.7) },
        84 => Op::DeletePolicy { ns, policy: mostly_first(rng, POLICIES) },
        85..=87 => Op::ApplyPlans { ns, route, tiers: rng.random_range(1..3) },
        88..=91 if mix.faults => match rng.random_range(0..10) {
            0..=5 => Op::KillBridge,
            6..=8 => Op::StartReplica,
            _ if mix.apiserver_restarts => Op::RestartApiServer,
            _ => Op::StartReplica,
        },
        _ => Op::Decide { team, key, verdict: Verdict::Approve },
    }
}

/// The settings of a run, from the environment: `APIPORTAL_ADVERSARY_SEED` (else a fresh random seed),
/// `APIPORTAL_ADVERSARY_STEPS`, `APIPORTAL_ADVERSARY_DURATION` (e.g. `30m`: steps until then, in chunks),
/// `APIPORTAL_ADVERSARY_BOUND` (the seconds an eventual invariant may take before it counts as broken).
pub struct Settings {
    pub seed: u64,
    pub steps: usize,
    pub duration: Option<Duration>,
    pub bound: Duration,
}

impl Settings {
    pub fn from_env(default_steps: usize) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let seed = var("APIPORTAL_ADVERSARY_SEED")
            .map(|s| s.parse().unwrap_or_else(|_| panic!("APIPORTAL_ADVERSARY_SEED={s:?} is not a number")))
            .unwrap_or_else(|| rand::rng().random());
        let steps =
            var("APIPORTAL_ADVERSARY_STEPS").map(|s| s.parse().expect("a number of steps")).unwrap_or(default_steps);
        let duration = var("APIPORTAL_ADVERSARY_DURATION")
            .map(|d| apiportal_core::duration::parse(&d).expect("a duration such as 30m"));
        let bound = var("APIPORTAL_ADVERSARY_BOUND")
            .map(|b| Duration::from_secs(b.parse().expect("seconds")))
            .unwrap_or(oracle::DEFAULT_FAILURE_BOUND);
        Self { seed, steps, duration, bound }
    }
}
