//! `key rotate`: asks the bridge for a new value (a status write the admission policy admits from the key's
//! consumers and approvers); the old value keeps working for `--grace`. With `--application`, every key of that
//! application in the namespace: all rotations are asked for first, then each is awaited and reported.

use apiportal_core::{APIKey, KeyPhase, decision, kube_ext::KubeErrorExt};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::wait::await_condition,
};

use super::{
    APIKEY_KIND,
    keys::{application_keys, describe_command, get_key, reveal_command},
    report,
};
use crate::{
    cli::{DryRun, RotateArgs},
    error::Error,
    output::tell,
    session::Session,
};

pub async fn rotate(session: &Session, args: &RotateArgs) -> Result<(), Error> {
    let Some(application) = &args.application else {
        let reference = args.name.as_deref().expect("clap requires NAME or --application");
        let (ns, name) = session.qualify(reference)?;
        let key = get_key(session, &ns, &name).await?;
        let Some(next) = ask(session, &key, args).await? else {
            return Err(not_rotatable(&key));
        };
        return wait_rotated(session, &ns, &name, next, args).await;
    };
    let keys = application_keys(session, application).await?;
    if keys.is_empty() {
        tell!("No keys of application {application:?} in namespace {:?}: nothing to rotate.", session.namespace);
        return Ok(());
    }
    let mut failed = 0;
    let mut asked = Vec::new();
    for key in &keys {
        match ask(session, key, args).await {
            Ok(Some(next)) => asked.push((key.name_any(), next)),
            Ok(None) => tell!("{APIKEY_KIND}/{} skipped: {}", key.name_any(), not_rotatable(key)),
            Err(e) => {
                failed += 1;
                tell!("error: {e}");
            }
        }
    }
    for (name, next) in &asked {
        if let Err(e) = wait_rotated(session, &session.namespace, name, *next, args).await {
            failed += 1;
            tell!("error: {e}");
        }
    }
    if failed > 0 {
        return Err(Error::Partial(format!(
            "{failed} of {} keys of application {application:?} were not rotated (see above)",
            keys.len()
        )));
    }
    Ok(())
}

fn not_rotatable(key: &APIKey) -> Error {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    Error::Conflict(format!(
        "apikey {ns}/{name} is {} and has no issued key to rotate: only an approved key whose value was issued rotates ({})",
        key.phase(),
        describe_command(&name, &ns)
    ))
}

/// Asks for the key's next value, unless that was asked already; the value asked for, or `None` when the key has
/// no issued value to rotate.
async fn ask(session: &Session, key: &APIKey, args: &RotateArgs) -> Result<Option<i64>, Error> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let status = key.status.clone().unwrap_or_default();
    let Some(issued) = status.issued.as_ref().filter(|_| key.phase() == KeyPhase::Approved) else {
        return Ok(None);
    };
    let next = issued.generation + 1;
    let dry_run = args.dry_run.dry_run;
    if status.rotation_request.as_ref().is_some_and(|r| r.generation == next) {
        return Ok(Some(next));
    }
    if dry_run == DryRun::Client {
        report(APIKEY_KIND, &name, "rotation requested", dry_run);
        return Ok(Some(next));
    }
    let user = session.username().await?;
    let grace = apiportal_core::duration::format(args.grace);
    let patch = decision::rotation_patch(next, &user, jiff::Timestamp::now(), &grace);
    let mut params =
        PatchParams { field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()), ..Default::default() };
    params.dry_run = dry_run == DryRun::Server;
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
    api.patch_status(&name, &params, &Patch::Merge(&patch)).await.map_err(|e| {
        if e.is_refused_by_admission() {
            Error::Forbidden(format!("cannot rotate apikey {ns}/{name}: {}", e.message()))
        } else {
            Error::from_kube(e, &session.server, &format!("rotate apikey {ns}/{name}"))
        }
    })?;
    report(APIKEY_KIND, &name, "rotation requested", dry_run);
    Ok(Some(next))
}

/// Waits (up to `--wait`) until the bridge issued value `next` of key `ns/name`, and says so.
async fn wait_rotated(session: &Session, ns: &str, name: &str, next: i64, args: &RotateArgs) -> Result<(), Error> {
    if args.dry_run.dry_run != DryRun::None || args.wait.is_zero() {
        return Ok(());
    }
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), ns);
    let rotated =
        |k: Option<&APIKey>| k.and_then(|k| k.status.as_ref()?.issued.as_ref()).is_some_and(|i| i.generation >= next);
    let done = tokio::time::timeout(args.wait, await_condition(api, name, rotated)).await;
    match done {
        Ok(Ok(Some(key))) => {
            let previous = key
                .status
                .and_then(|s| s.previous_key)
                .map(|p| format!("the previous value works until {}", p.valid_until.0));
            tell!(
                "{APIKEY_KIND}/{name} rotated: {}; reveal the new value with: {}",
                previous.unwrap_or_else(|| "the previous value stopped working".into()),
                reveal_command(name, ns)
            );
            Ok(())
        }
        Ok(Ok(None)) => Err(Error::NotFound(format!("apikey {ns}/{name} was deleted while it was being rotated"))),
        Ok(Err(e)) => Err(Error::Other(format!("cannot watch apikey {ns}/{name}: {e}"))),
        Err(_) => Err(Error::Other(format!(
            "apikey {ns}/{name}: the bridge has not rotated the key after {}; it will (is it running? kubectl apiportal doctor)",
            apiportal_core::duration::format(args.wait)
        ))),
    }
}
