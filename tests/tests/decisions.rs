//! Two reviewers deciding the same request at the same moment: exactly one decision wins, the other reviewer
//! is told what happened, and nothing is lost or mixed.

use apiportal_core::{APIKey, KeyPhase, rbac};
use apiportal_tests::{
    Persona, cluster,
    fixtures::{apikey, wait_projected},
    shared_bridge,
    stage::Stage,
};
use kube::{Api, api::PostParams};

#[tokio::test]
async fn racing_approve_and_reject_one_wins_the_loser_is_told() {
    let c = cluster();
    // The bridge projects each request where its owners read it; deciding is a write to the APIKey alone.
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    c.bind(&stage.shop, rbac::OWNER_ROLE, Persona::Owner2).await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &stage.team);
    let admin_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);

    const ROUNDS: usize = 12;
    let mut approvals_won = 0;
    for round in 0..ROUNDS {
        let name = format!("race-{round}");
        let key = apikey(&name, &stage.shop, "toys", "gold", "alice");
        keys.create(&PostParams::default(), &key).await.unwrap();
        wait_projected(c, &stage.shop, &stage.team, &name).await;
        let reference = format!("{}/{name}", stage.team);
        // Two plugin processes at once: the race is between them at the API server.
        let (approve_args, reject_args) =
            (["approve", &reference, "--reason", "fine"], ["reject", &reference, "--reason", "not fine"]);
        let (approve, reject) =
            tokio::join!(c.apiportal(Persona::Owner, &approve_args), c.apiportal(Persona::Owner2, &reject_args));
        assert!(
            approve.success() != reject.success(),
            "round {round}: exactly one decision wins: {approve:?} {reject:?}"
        );
        let (loser, outcome) =
            if approve.success() { (&reject, "Approved by bob") } else { (&approve, "Rejected by erin") };
        assert!(
            loser.stderr.contains(&format!("apikey {reference} is already {outcome}")),
            "round {round}: the losing reviewer is told the outcome ({outcome}): {}",
            loser.stderr
        );
        let stored = admin_keys.get(&name).await.unwrap();
        let status = stored.status.clone().unwrap();
        if approve.success() {
            approvals_won += 1;
            assert_eq!(
                (stored.phase(), status.reviewed_by.as_deref(), status.reason.as_deref()),
                (KeyPhase::Approved, Some("bob"), Some("fine"))
            );
        } else {
            assert_eq!(
                (stored.phase(), status.reviewed_by.as_deref(), status.reason.as_deref()),
                (KeyPhase::Rejected, Some("erin"), Some("not fine"))
            );
        }
    }
    eprintln!("racing decisions: approve won {approvals_won} of {ROUNDS} rounds, reject {}", ROUNDS - approvals_won);
}
