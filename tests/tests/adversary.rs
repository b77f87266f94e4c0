//! The adversary (see `apiportal_tests::adversary`): a bounded run with a fresh seed in every `scripts/test`, on
//! its own cluster, bridge and Authorino. `tests/soak.sh` runs it as long as asked.
//!
//!   APIPORTAL_ADVERSARY_SEED=<seed>      replay a run
//!   APIPORTAL_ADVERSARY_STEPS=<n>        steps (default 60)
//!   APIPORTAL_ADVERSARY_DURATION=<30m>   run chunks of steps until then
//!   APIPORTAL_ADVERSARY_SHRINK=1         on a failure, replay shorter logs to find a smaller one
//!   APIPORTAL_ADVERSARY_VERBOSE=1        print every step as it happens

use std::time::{Duration, Instant};

use apiportal_tests::{
    Persona,
    adversary::{self, Mix, Op, Settings, World, oracle::Oracle},
    cluster, receive_posts,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, api::PostParams};
use serde_json::json;

const DEFAULT_STEPS: usize = 60;

/// What a run did, and where it broke.
struct Run {
    log: Vec<(usize, Op, String)>,
    failure: Option<(usize, adversary::oracle::Violation)>,
    stats: adversary::oracle::Stats,
    values: usize,
}

/// The bridge's arguments: its webhook points at a local receiver, so I4 reads what it posts.
async fn webhook_args() -> (Vec<String>, std::sync::Arc<std::sync::Mutex<Vec<apiportal_tests::Received>>>) {
    let c = cluster();
    c.ensure_installed();
    let (url, received) = receive_posts().await;
    let name = format!("adversary-webhook-{:06x}", rand::random::<u32>() & 0xffffff);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {"url": format!("{url}/hooks"), "signingKey": "adversary-signing-key"}
    }))
    .expect("a Secret");
    Api::<Secret>::namespaced(c.client(Persona::Admin).await, apiportal_core::SYSTEM_NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the webhook's Secret");
    let args = vec!["--webhook-secret".to_owned(), format!("{}/{name}", apiportal_core::SYSTEM_NAMESPACE)];
    (args, received)
}

async fn run(ops: &[Op], bound: Duration) -> Run {
    let (args, received) = webhook_args().await;
    let mut world = World::new(cluster(), args).await;
    let mut oracle = Oracle::new(&world, bound).await;
    let mut log = Vec::new();
    let mut failure = None;
    for (step, op) in ops.iter().enumerate() {
        if let Op::Rotate { team, key, grace_seconds } = op {
            oracle.note_rotation(
                &world.teams[*team],
                &adversary::key_name_of(*key),
                Duration::from_secs(*grace_seconds as u64),
            );
        }
        let outcome = world.apply(op).await;
        if std::env::var_os("APIPORTAL_ADVERSARY_VERBOSE").is_some() {
            println!("  {step:>4}  {op}  → {outcome}");
        }
        log.push((step, op.clone(), outcome));
        let checked = async {
            oracle.glance(&world).await?;
            oracle.settle(&world).await?;
            if step % 10 == 9 || step + 1 == ops.len() {
                let outcomes: String = log.iter().map(|(_, _, o)| o.as_str()).collect::<Vec<_>>().join("\n");
                let bodies: String = received
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                oracle
                    .no_value_leaked(
                        &world,
                        &[("the operations' outcomes", outcomes), ("the webhook's bodies", bodies)],
                    )
                    .await?;
            }
            Ok::<(), adversary::oracle::Violation>(())
        };
        if let Err(violation) = checked.await {
            for (i, bridge) in world.bridges.iter().enumerate() {
                let logs = bridge.logs();
                let tail: Vec<&str> = logs.lines().rev().take(60).collect();
                println!("adversary: the last lines of bridge {i}'s log:");
                for line in tail.into_iter().rev() {
                    println!("    {line}");
                }
            }
            failure = Some((step, violation));
            break;
        }
    }
    let stats = oracle.stats.clone();
    let values = oracle.values_seen();
    drop(world);
    Run { log, failure, stats, values }
}

fn print_log(log: &[(usize, Op, String)]) {
    for (step, op, outcome) in log {
        println!("  {step:>4}  {op}  → {outcome}");
    }
}

/// Replays shorter logs (whole chunks left out, then single steps) in fresh worlds while the same invariant
/// breaks, within `budget`; returns the shortest failing log found.
async fn shrink(mut ops: Vec<Op>, invariant: &'static str, bound: Duration, budget: Duration) -> Vec<Op> {
    let start = Instant::now();
    let mut chunk = ops.len() / 2;
    while chunk >= 1 && start.elapsed() < budget {
        let mut i = 0;
        while i + chunk <= ops.len() && start.elapsed() < budget {
            let candidate: Vec<Op> = ops[..i].iter().chain(&ops[i + chunk..]).cloned().collect();
            let replay = run(&candidate, bound).await;
            match replay.failure {
                Some((step, v)) if v.invariant == invariant => {
                    println!("adversary: still fails ({invariant}) with {} steps", step + 1);
                    ops = candidate[..=step].to_vec();
                }
                _ => i += chunk,
            }
        }
        chunk /= 2;
    }
    ops
}

#[tokio::test]
async fn the_adversary_breaks_no_promise() {
    let settings = Settings::from_env(DEFAULT_STEPS);
    let deadline = settings.duration.map(|d| Instant::now() + d);
    let mix = Mix { faults: true, apiserver_restarts: deadline.is_some() };
    let started = Instant::now();
    let (mut steps, mut chunk) = (0, 0u64);
    let mut totals = adversary::oracle::Stats::default();
    loop {
        let seed = settings.seed.wrapping_add(chunk);
        // Straight to the process's stderr, past the test harness's capture: every run's seed is in the CI log,
        // passing or not.
        let line = format!(
            "adversary: seed {seed}, {} steps; replay with APIPORTAL_ADVERSARY_SEED={seed} APIPORTAL_ADVERSARY_STEPS={}\n",
            settings.steps, settings.steps
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        let ops = adversary::operations(seed, settings.steps, &mix);
        let run = run(&ops, settings.bound).await;
        steps += run.log.len();
        totals.looks += run.stats.looks;
        totals.gateway_checks += run.stats.gateway_checks;
        totals.invariant_checks += run.stats.invariant_checks;
        totals.settles += run.stats.settles;
        totals.settle_times.extend(run.stats.settle_times.iter().copied());
        totals.stale_gateway.extend(run.stats.stale_gateway.iter().cloned());
        println!(
            "adversary: seed {seed}: {} steps, {} key values seen; {}",
            run.log.len(),
            run.values,
            run.stats.summary()
        );
        if let Some((step, violation)) = run.failure {
            println!("adversary: seed {seed} broke {violation} at step {step}; the log:");
            print_log(&run.log);
            if std::env::var_os("APIPORTAL_ADVERSARY_SHRINK").is_some() {
                let shorter =
                    shrink(ops[..=step].to_vec(), violation.invariant, settings.bound, Duration::from_secs(1200)).await;
                println!(
                    "adversary: the shortest log found that breaks {} ({} steps):",
                    violation.invariant,
                    shorter.len()
                );
                for (i, op) in shorter.iter().enumerate() {
                    println!("  {i:>4}  {op}");
                }
            }
            panic!(
                "seed {seed} broke {violation} at step {step} (replay: APIPORTAL_ADVERSARY_SEED={seed} APIPORTAL_ADVERSARY_STEPS={})",
                step + 1
            );
        }
        chunk += 1;
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "adversary: done: {steps} steps in {minutes:.1} min ({:.1} steps/min); {}",
        steps as f64 / minutes.max(1e-9),
        totals.summary()
    );
}
