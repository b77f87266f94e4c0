//! `keys`, `key show` and `revoke`: a consumer's own requests and keys.

use apiportal_core::{APIKey, KeyPhase, decision, kube_ext::KubeErrorExt, secrets};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    runtime::wait::await_condition,
};

use super::{APIKEY_KIND, list_scoped, report, scope_text};
use crate::{
    cli::{DryRun, GlobalArgs, OutputFormat, RevokeArgs, RotateArgs},
    error::Error,
    output::{Describe, Shown, Table, age, cell, print_data, print_list, print_object, print_shown, tell},
    paste::{self, Command, Value},
    session::Session,
};

pub async fn list(session: &Session, global: &GlobalArgs) -> Result<(), Error> {
    let mut keys: Vec<APIKey> = list_scoped(session, global.selector.as_deref(), "apikeys").await?;
    keys.sort_by_key(|k| (k.namespace(), k.name_any()));
    print_list(
        global.output,
        global.no_headers,
        &keys,
        || table(&keys, session.all_namespaces, Timestamp::now()),
        |k| format!("{APIKEY_KIND}/{}", k.name_any()),
        &scope_text(session),
    )
}

/// The consumer's keys table; `all_namespaces` adds the NAMESPACE column.
pub fn table(keys: &[APIKey], all_namespaces: bool, now: Timestamp) -> Table {
    let all = all_namespaces;
    let mut headers = vec!["NAME", "PRODUCT", "PLAN", "PHASE", "AGE"];
    if all {
        headers.insert(0, "NAMESPACE");
    }
    let mut table = Table::new(headers).with_wide(vec!["USER", "REVIEWED BY", "EXPIRES", "KEY ISSUED"]);
    for k in keys {
        let status = k.status.clone().unwrap_or_default();
        let mut row = vec![
            k.name_any(),
            format!("{}/{}", k.product_namespace(), k.spec.api_product_ref.name),
            k.spec.plan_tier.clone(),
            k.phase().to_string(),
            age(k.metadata.creation_timestamp.as_ref(), now),
            k.spec.requested_by.user_id.clone(),
            cell(status.reviewed_by.as_deref()),
            expires(k),
            cell(status.issued.as_ref().map(|i| i.issued_at.0.to_string()).as_deref()),
        ];
        if all {
            row.insert(0, k.namespace().unwrap_or_default());
        }
        table.rows.push(row);
    }
    table
}

pub async fn get_key(session: &Session, ns: &str, name: &str) -> Result<APIKey, Error> {
    session.get_named("apikey", ns, name, &keys_command(ns).to_string()).await
}

pub async fn show(session: &Session, global: &GlobalArgs, name: &str, reveal: bool) -> Result<(), Error> {
    let (ns, name) = session.qualify(name)?;
    let key = get_key(session, &ns, &name).await?;
    if reveal {
        return reveal_key(session, &key).await;
    }
    if let Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) = global.output {
        return print_object(&key, format);
    }
    print_shown(&render(&key, Timestamp::now()));
    Ok(())
}

/// Prints the key, and only the key, so it can be piped. The key is read from the consumer's copy, whose name
/// is fixed, and only if this very APIKey owns it: nothing in the APIKey's status can point it elsewhere.
async fn reveal_key(session: &Session, key: &APIKey) -> Result<(), Error> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    if key.phase() != KeyPhase::Approved {
        return Err(Error::Conflict(format!(
            "apikey {ns}/{name} is {}: only an approved request has a key; follow it with {}",
            key.phase(),
            keys_command(&ns)
        )));
    }
    let secret_name = secrets::consumer_secret_name(&name);
    let secrets_api: Api<Secret> = Api::namespaced(session.client.clone(), &ns);
    let secret = secrets_api
        .get_opt(&secret_name)
        .await
        .map_err(|e| Error::from_kube(e, &session.server, &format!("read the key's Secret {ns}/{secret_name}")))?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "the key's Secret {ns}/{secret_name} does not exist yet; the bridge creates it right after approval (is it running? kubectl apiportal doctor)"
            ))
        })?;
    let owned = secret.owner_references().iter().any(|o| Some(&o.uid) == key.uid().as_ref() && o.kind == "APIKey");
    if !owned {
        return Err(Error::Conflict(format!(
            "Secret {ns}/{secret_name} was not issued for apikey {ns}/{name} (it is not owned by it), so it is not shown; the bridge replaces it with the real key shortly"
        )));
    }
    let value = secrets::consumer_value_or_legacy(&secret).ok_or_else(|| {
        Error::Other(format!(
            "Secret {ns}/{secret_name} holds no key; the bridge issues it shortly ({})",
            describe_command(&name, &ns)
        ))
    })?;
    print_data(&format!("{value}\n"));
    Ok(())
}

/// `describe key` / `key show`: the request, its key's state, how to call the API, and the whole history.
pub fn render(k: &APIKey, now: Timestamp) -> Shown {
    let mut out = Describe::default();
    let status = k.status.clone().unwrap_or_default();
    let ns = k.namespace().unwrap_or_default();
    let name = k.name_any();
    out.field("Name", &name);
    out.field("Namespace", &ns);
    out.field("Product", k.product_id());
    let limits = status.limits.as_ref().map(|l| format!(" ({})", l.summary())).unwrap_or_default();
    out.field("Plan", format!("{}{limits}", k.spec.plan_tier));
    out.field("Requested By", &k.spec.requested_by.user_id);
    if let Some(u) = &k.spec.use_case {
        out.field("Use Case", u);
    }
    out.field("Phase", k.phase());
    if let Some(by) = &status.reviewed_by {
        let at = status.reviewed_at.as_ref().map(|t| format!(" at {}", t.0)).unwrap_or_default();
        out.field("Reviewed By", format!("{by}{at}"));
    }
    if let Some(r) = &status.reason {
        out.field("Reason", r);
    }
    if let Some(e) = &k.spec.expires_at {
        out.field("Expires At", format!("{} ({})", e.0, until(e.0, now)));
    }
    out.field("Age", age(k.metadata.creation_timestamp.as_ref(), now));
    if let Some(issued) = &status.issued {
        let rotated = match issued.generation {
            0 => String::new(),
            1 => ", rotated once".to_owned(),
            n => format!(", rotated {n} times"),
        };
        out.field("Key Issued", format!("{}{rotated}", issued.issued_at.0));
        out.commands("Reveal", None, &[reveal_command(&name, &ns)]);
        let rule = status.auth_scheme.as_ref().and_then(|s| s.api_key_rule().map(|(_, r)| r));
        let call =
            paste::call_api(rule.and_then(|r| r.credentials.as_ref()), status.api_hostname.as_deref(), "API_KEY");
        out.commands("Call it", None, &[call]);
    }
    if let Some(previous) = &status.previous_key {
        out.field(
            "Previous Key",
            format!("still valid until {} ({})", previous.valid_until.0, until(previous.valid_until.0, now)),
        );
    }
    if !status.conditions.is_empty() {
        out.section("Conditions");
        let mut table = Table::new(vec!["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for c in &status.conditions {
            table.rows.push(vec![c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()]);
        }
        out.table(&table);
    }
    if !status.history.is_empty() {
        out.section("History");
        let mut table = Table::new(vec!["WHEN", "ACTION", "BY", "REASON"]);
        for e in &status.history {
            table.rows.push(vec![
                e.at.0.to_string(),
                e.action.as_str().to_owned(),
                e.by.clone(),
                e.reason.clone().unwrap_or_default(),
            ]);
        }
        out.table(&table);
    }
    out.finish()
}

/// `kubectl apiportal keys -n NAMESPACE`.
pub fn keys_command(namespace: &str) -> Command {
    Command::apiportal("keys").flag("-n", Value::namespace(namespace))
}

/// `kubectl apiportal describe key NAME -n NAMESPACE`.
pub fn describe_command(name: &str, namespace: &str) -> Command {
    Command::apiportal("describe key").arg(Value::name(name)).flag("-n", Value::namespace(namespace))
}

/// `kubectl apiportal key show NAME -n NAMESPACE --reveal`.
pub fn reveal_command(name: &str, namespace: &str) -> Command {
    Command::apiportal("key show").arg(Value::name(name)).flag("-n", Value::namespace(namespace)).raw("--reveal")
}

/// When a key stops working, for tables: `2026-12-01T00:00:00Z`, or `<never>`.
pub fn expires(k: &APIKey) -> String {
    k.spec.expires_at.as_ref().map(|t| t.0.to_string()).unwrap_or_else(|| "<never>".to_owned())
}

/// `in 3d4h` or `5m ago`, seen at `now`.
fn until(at: Timestamp, now: Timestamp) -> String {
    let left = at.duration_since(now);
    let text = |d: jiff::SignedDuration| {
        apiportal_core::duration::format(std::time::Duration::from_secs(d.as_secs().unsigned_abs()))
    };
    if left.is_negative() { format!("{} ago", text(left)) } else { format!("in {}", text(left)) }
}

/// `revoke`: with `--reason`, an approver revokes a consumer's key; without, a consumer deletes their own request.
pub async fn revoke(session: &Session, args: &RevokeArgs) -> Result<(), Error> {
    if let Some(reason) = &args.reason {
        return super::decide::revoke(session, &args.name, reason, args.dry_run.dry_run).await;
    }
    let (ns, name) = session.qualify(&args.name)?;
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
    let doing = format!("revoke apikey {ns}/{name}");
    let Some(key) = api.get_opt(&name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))? else {
        tell!("{APIKEY_KIND}/{name} not found in namespace {ns:?}: nothing to revoke");
        return Ok(());
    };
    if key.metadata.deletion_timestamp.is_some() {
        tell!("{APIKEY_KIND}/{name} is already being revoked: the bridge is removing its key; nothing to revoke");
        return Ok(());
    }
    if args.dry_run.dry_run == DryRun::Client {
        report(APIKEY_KIND, &name, "deleted", DryRun::Client);
        return Ok(());
    }
    // Deleting exactly the object we looked at: a recreated request of the same name is not revoked by accident.
    let params = DeleteParams {
        dry_run: args.dry_run.dry_run == DryRun::Server,
        preconditions: Some(Preconditions { uid: key.uid(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => report(APIKEY_KIND, &name, "deleted", args.dry_run.dry_run),
        Err(e) if e.is_not_found() => {
            tell!("{APIKEY_KIND}/{name} not found in namespace {ns:?}: nothing to revoke")
        }
        Err(e) => return Err(Error::from_kube(e, &session.server, &doing)),
    }
    Ok(())
}

/// `key rotate`: asks the bridge for a new value (a status write the admission policy admits from the key's
/// consumers and approvers); the old value keeps working for `--grace`.
pub async fn rotate(session: &Session, args: &RotateArgs) -> Result<(), Error> {
    let (ns, name) = session.qualify(&args.name)?;
    let key = get_key(session, &ns, &name).await?;
    let status = key.status.clone().unwrap_or_default();
    let Some(issued) = status.issued.as_ref().filter(|_| key.phase() == KeyPhase::Approved) else {
        return Err(Error::Conflict(format!(
            "apikey {ns}/{name} is {} and has no issued key to rotate: only an approved key whose value was issued rotates ({})",
            key.phase(),
            describe_command(&name, &ns)
        )));
    };
    let next = issued.generation + 1;
    let grace = apiportal_core::duration::format(args.grace);
    let dry_run = args.dry_run.dry_run;
    let already_asked = status.rotation_request.as_ref().is_some_and(|r| r.generation == next);
    if !already_asked {
        if dry_run == DryRun::Client {
            report(APIKEY_KIND, &name, "rotation requested", dry_run);
            return Ok(());
        }
        let user = session.username().await?;
        let patch = decision::rotation_patch(next, &user, jiff::Timestamp::now(), &grace);
        let mut params = PatchParams {
            field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()),
            ..Default::default()
        };
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
    }
    if dry_run != DryRun::None || args.wait.is_zero() {
        return Ok(());
    }
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
    let rotated =
        |k: Option<&APIKey>| k.and_then(|k| k.status.as_ref()?.issued.as_ref()).is_some_and(|i| i.generation >= next);
    let done = tokio::time::timeout(args.wait, await_condition(api, &name, rotated)).await;
    match done {
        Ok(Ok(Some(key))) => {
            let previous = key
                .status
                .and_then(|s| s.previous_key)
                .map(|p| format!("the previous value works until {}", p.valid_until.0));
            tell!(
                "{APIKEY_KIND}/{name} rotated: {}; reveal the new value with: {}",
                previous.unwrap_or_else(|| "the previous value stopped working".into()),
                reveal_command(&name, &ns)
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
