//! `uninstall`: removes what `install` applied, in reverse order. With `--delete-crds` every APIKey goes too,
//! and each holds a finalizer that the bridge releases only after removing the key's Secrets: the keys are
//! revoked first, while the bridge still runs, so no key stays valid at the gateway and no CRD hangs in
//! Terminating. Whatever the bridge does not finish in time (it is not running), the plugin cleans up itself.

use std::time::Duration;

use apiportal_core::{
    APIKey,
    install::objects,
    kube_ext::{KubeResultExt, delete_if_present},
    labels,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{conditions, wait::await_condition},
};
use serde_json::{Value, json};

use super::install::target;
use crate::{
    cli::{DryRun, UninstallArgs},
    error::Error,
    output::{say, tell},
    session::Session,
};

pub async fn uninstall(session: &Session, args: &UninstallArgs) -> Result<(), Error> {
    let dry_run = args.dry_run.dry_run;
    if args.delete_crds && session.crds_installed().await {
        revoke_every_key(session, args.timeout, dry_run).await?;
    }
    // Reverse order: the bridge goes before the rights it runs with. The enforcement namespace may be
    // Kuadrant's own, so it stays; the CRDs (and with them every product and key) go only when asked.
    let objects: Vec<Value> = objects(&Default::default())
        .into_iter()
        .rev()
        .filter(|o| args.delete_crds || o["kind"] != "CustomResourceDefinition")
        .filter(|o| o["kind"] != "Namespace" || o["metadata"]["name"] == apiportal_core::SYSTEM_NAMESPACE)
        .collect();
    for object in objects {
        let target = target(session, &object);
        let doing = format!("delete {}", target.display);
        let current =
            target.api.get_opt(&target.name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
        match current {
            None => say!("{} not found", target.display),
            // A namespace still removing its content from an earlier uninstall: a rerun has nothing to add.
            Some(o) if o.metadata.deletion_timestamp.is_some() => {
                say!("{} already being deleted", target.display)
            }
            Some(_) if dry_run == DryRun::Client => say!("{} deleted (dry run)", target.display),
            Some(_) => {
                let params = DeleteParams { dry_run: dry_run == DryRun::Server, ..Default::default() };
                let deleted = delete_if_present(&target.api, &target.name, &params)
                    .await
                    .map_err(|e| Error::from_kube(e, &session.server, &doing))?;
                let suffix = if dry_run == DryRun::Server { " (server dry run)" } else { "" };
                say!("{} {}{suffix}", target.display, if deleted { "deleted" } else { "not found" });
            }
        }
    }
    if !args.delete_crds {
        tell!(
            "kept the CRDs and every APIProduct and APIKey; a key deleted from now on waits for a bridge to remove its Secrets. Remove them all with kubectl apiportal uninstall --delete-crds"
        );
    }
    Ok(())
}

async fn list_keys(session: &Session) -> Result<Vec<APIKey>, Error> {
    Api::<APIKey>::all(session.client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|e| Error::from_kube(e, &session.server, "list apikeys in every namespace"))
}

async fn revoke_every_key(session: &Session, timeout: Duration, dry_run: DryRun) -> Result<(), Error> {
    let keys = list_keys(session).await?;
    if keys.is_empty() {
        return Ok(());
    }
    if dry_run != DryRun::None {
        let suffix = if dry_run == DryRun::Client { "dry run" } else { "server dry run" };
        say!("{} apikeys would be revoked, their Secrets removed ({suffix})", keys.len());
        return Ok(());
    }
    for key in &keys {
        let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
        let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
        delete_if_present(&api, &name, &DeleteParams::default())
            .await
            .map_err(|e| Error::from_kube(e, &session.server, &format!("revoke apikey {ns}/{name}")))?;
    }
    tell!(
        "revoking {} apikeys: waiting up to {}s for the bridge to remove their Secrets",
        keys.len(),
        timeout.as_secs()
    );
    let all_released = async {
        for key in &keys {
            let api: Api<APIKey> = Api::namespaced(session.client.clone(), &key.namespace().unwrap_or_default());
            let uid = key.uid().unwrap_or_default();
            // The watch ends with an error only if the API server goes away; what is left is handled below.
            let _ = await_condition(api, &key.name_any(), conditions::is_deleted(&uid)).await;
        }
    };
    let _ = tokio::time::timeout(timeout, all_released).await;
    let left = list_keys(session).await?;
    for key in &left {
        release(session, key).await?;
    }
    if !left.is_empty() {
        tell!(
            "the bridge did not release {} apikeys in time (is it running?); removed their Secrets and finalizers itself",
            left.len()
        );
    }
    say!("{} apikeys revoked", keys.len());
    Ok(())
}

/// The bridge's cleanup of one deleted key, done by the plugin: both copies of the key, then the finalizer.
async fn release(session: &Session, key: &APIKey) -> Result<(), Error> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let doing = format!("remove the Secrets of apikey {ns}/{name}");
    // Both copies carry the key's labels; the enforcement copy lives wherever the bridge was told to put it.
    let selector = format!("{}={name},{}={ns}", labels::APIKEY, labels::APIKEY_NAMESPACE);
    let copies = Api::<Secret>::all(session.client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    for copy in copies.items {
        let api: Api<Secret> = Api::namespaced(session.client.clone(), &copy.namespace().unwrap_or_default());
        delete_if_present(&api, &copy.name_any(), &DeleteParams::default())
            .await
            .map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    }
    let finalizers: Vec<&String> = key.finalizers().iter().filter(|f| *f != labels::APIKEY_FINALIZER).collect();
    // The resourceVersion makes the patch a precondition: a finalizer someone else added meanwhile is kept.
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": key.resource_version()}});
    Api::<APIKey>::namespaced(session.client.clone(), &ns)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .ok_if_not_found()
        .map(drop)
        .map_err(|e| Error::from_kube(e, &session.server, &format!("release apikey {ns}/{name}")))
}
