//! `kubectl apiportal uninstall --delete-crds` on a cluster with issued keys and no bridge left to release
//! them: every key is revoked (both of its Secrets gone, so none stays valid at the gateway), the CRDs really
//! go (none hangs in Terminating on a finalizer), and a rerun changes nothing. Its own cluster: it removes
//! the CRDs other tests would use.

use apiportal_tests::{Bridge, Persona, cluster, eventually, stage::Stage};
use k8s_openapi::{
    api::core::v1::Secret, apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{Api, api::ListParams};

#[tokio::test]
async fn uninstall_with_the_crds_revokes_every_key_even_without_a_bridge() {
    let c = cluster();
    let stage = Stage::new(c).await;
    let mut bridge = Bridge::start(c, &[]).await;
    stage.published_product(c, "toys", "automatic").await;
    for plan in ["gold", "bronze"] {
        let product = format!("{}/toys", stage.shop);
        let out = c
            .apiportal(Persona::Consumer, &["-n", &stage.team, "request", &product, "--plan", plan, "--wait=60s"])
            .await;
        assert!(out.success(), "{}", out.stderr);
    }
    let admin = c.client(Persona::Admin).await;
    let secrets: Api<Secret> = Api::all(admin.clone());
    let of_team = ListParams::default().labels(&format!("devportal.kuadrant.io/apikey-namespace={}", stage.team));
    assert_eq!(secrets.list(&of_team).await.unwrap().items.len(), 4, "two keys, each in two Secrets");
    // No bridge from here on: the keys' finalizers stay unless the plugin releases them.
    bridge.kill9();

    let out = c.apiportal(Persona::Admin, &["uninstall", "--delete-crds", "--timeout=2s"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("2 apikeys revoked"), "{}", out.stdout);
    assert!(out.stderr.contains("removed their Secrets and finalizers itself"), "{}", out.stderr);
    assert!(secrets.list(&of_team).await.unwrap().items.is_empty(), "no copy of any key is left");

    let crds: Api<CustomResourceDefinition> = Api::all(admin);
    eventually(60, "the CRDs to be gone", || async {
        let left = crds.list(&Default::default()).await.ok()?.items;
        (!left.iter().any(|crd| crd.spec.group == "devportal.kuadrant.io")).then_some(())
    })
    .await;

    let out = c.apiportal(Persona::Admin, &["uninstall", "--delete-crds"]).await;
    assert!(out.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(!lines.is_empty(), "uninstall reports every object it looked for");
    assert!(
        lines.iter().all(|l| l.ends_with(" not found") || l.ends_with(" already being deleted")),
        "a second uninstall finds nothing to do:\n{}",
        out.stdout
    );
}
