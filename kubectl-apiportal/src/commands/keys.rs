//! `keys`, `key show`/`describe key` and `revoke`: a consumer's own requests and keys, alone or by application.

use apiportal_core::{APIKey, KeyPhase, kube_ext::KubeErrorExt, secrets};
use jiff::Timestamp;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Preconditions},
};

use super::{
    APIKEY_KIND, list_scoped, report,
    requests::decided,
    review::{Reader, Seen, plan_cell},
    scope_text,
};
use crate::{
    cli::{DryRun, GlobalArgs, KeysArgs, OutputFormat, RevokeArgs},
    error::Error,
    output::{Describe, Shown, Table, age, cell, print_data, print_list, print_object, print_shown, tell},
    paste::{self, Command, Value},
    session::Session,
};

pub async fn list(session: &Session, global: &GlobalArgs, args: &KeysArgs) -> Result<(), Error> {
    let mut keys: Vec<APIKey> = list_scoped(session, global.selector.as_deref(), "apikeys").await?;
    let mut scope = scope_text(session);
    if let Some(application) = &args.application {
        keys.retain(|k| k.spec.application.as_ref() == Some(application));
        scope.push_str(&format!(" for application {application:?}"));
    }
    keys.sort_by_key(|k| (k.namespace(), k.name_any()));
    print_list(
        global.output,
        global.no_headers,
        &keys,
        || table(&keys, session.all_namespaces, Timestamp::now()),
        |k| format!("{APIKEY_KIND}/{}", k.name_any()),
        &scope,
    )
}

/// The keys of `application` in the session's namespace, by name.
pub async fn application_keys(session: &Session, application: &str) -> Result<Vec<APIKey>, Error> {
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &session.namespace);
    let mut keys = api
        .list(&Default::default())
        .await
        .map_err(|e| session.explain(e, &format!("list apikeys in namespace {:?}", session.namespace)))?
        .items;
    keys.retain(|k| k.spec.application.as_deref() == Some(application));
    keys.sort_by_key(|k| k.name_any());
    Ok(keys)
}

/// The consumer's keys table; `all_namespaces` adds the NAMESPACE column.
pub fn table(keys: &[APIKey], all_namespaces: bool, now: Timestamp) -> Table {
    let all = all_namespaces;
    let mut headers = vec!["NAME", "PRODUCT", "PLAN", "PHASE", "AGE"];
    if all {
        headers.insert(0, "NAMESPACE");
    }
    let mut table = Table::new(headers).with_wide(vec![
        "USER",
        "APPLICATION",
        "REVIEWED BY",
        "DECIDED",
        "REASON",
        "EXPIRES",
        "KEY ISSUED",
    ]);
    for k in keys {
        let status = k.status.clone().unwrap_or_default();
        let mut row = vec![
            k.name_any(),
            format!("{}/{}", k.product_namespace(), k.spec.api_product_ref.name),
            plan_cell(k.plan_tier(), k.pending_plan_change().filter(|_| k.phase() == KeyPhase::Approved)),
            k.phase().to_string(),
            age(k.metadata.creation_timestamp.as_ref(), now),
            k.spec.requested_by.user_id.clone(),
            cell(k.spec.application.as_deref()),
            cell(status.reviewed_by.as_deref()),
            decided(status.reviewed_at.as_ref(), now),
            cell(status.reason.as_deref()),
            expires(k.spec.expires_at.as_ref()),
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
    let key = match get_key(session, &ns, &name).await {
        Ok(key) => key,
        // An owner reads the request where the bridge projects it for them, never the APIKey.
        Err(Error::Forbidden(why)) if !reveal => {
            if matches!(global.output, Some(OutputFormat::Json | OutputFormat::Yaml)) {
                return Err(Error::Forbidden(why));
            }
            let seen = Reader::new(session).read(&ns, &name).await?;
            print_shown(&render_request(&seen, Timestamp::now()));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
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
    match key.phase() {
        KeyPhase::Approved => {}
        // The value is kept while suspended, and works again once resumed.
        KeyPhase::Suspended => tell!(
            "note: apikey {ns}/{name} is suspended: the gateway refuses this key until an approver resumes it ({})",
            describe_command(&name, &ns)
        ),
        phase => {
            return Err(Error::Conflict(format!(
                "apikey {ns}/{name} is {phase}: only an approved request has a key; follow it with {}",
                keys_command(&ns)
            )));
        }
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
    let limits = status.limits.as_ref().map(|l| format!(" ({})", l.summary())).unwrap_or_default();
    request_fields(&mut out, &Seen::of_key(k), &limits, now);
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

/// `describe key` for a reviewer who reads the request's projection, not the APIKey: the request and its decisions.
pub fn render_request(seen: &Seen, now: Timestamp) -> Shown {
    let mut out = Describe::default();
    request_fields(&mut out, seen, "", now);
    out.finish()
}

/// The request's own fields, as its consumer and its reviewers read them.
fn request_fields(out: &mut Describe, seen: &Seen, limits: &str, now: Timestamp) {
    let spec = &seen.spec;
    out.field("Name", &spec.api_key_ref.name);
    out.field("Namespace", &spec.api_key_ref.namespace);
    out.field("Product", seen.product_id());
    if let Some(application) = &spec.application {
        out.field("Application", application);
    }
    let in_force = seen.tier_in_force();
    let moved = if in_force == spec.plan_tier { String::new() } else { format!(", moved from {}", spec.plan_tier) };
    out.field("Plan", format!("{in_force}{limits}{moved}"));
    if let Some(change) = spec.plan_change.as_ref().filter(|_| !spec.phase.is_final()) {
        let asked = format!("to {}, asked by {} at {}", change.tier, change.requested_by, change.requested_at.0);
        let by = change.reviewed_by.as_deref().unwrap_or_default();
        let why = change.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
        let outcome = match change.approved {
            None if seen.pending_plan_change().is_some() => format!("waiting for an owner of {}", seen.product_id()),
            None => "not applied".to_owned(),
            Some(true) => format!("approved by {by}{why}"),
            Some(false) => format!("rejected by {by}{why}"),
        };
        out.field("Plan Change", format!("{asked}: {outcome}"));
    }
    out.field("Requested By", &spec.requested_by.user_id);
    if let Some(u) = &spec.use_case {
        out.field("Use Case", u);
    }
    match (spec.phase, &spec.reviewed_at) {
        (KeyPhase::Suspended, Some(at)) => {
            out.field("Phase", format!("Suspended since {} ({})", at.0, until(at.0, now)))
        }
        (phase, _) => out.field("Phase", phase),
    }
    if let Some(by) = &spec.reviewed_by {
        let at = spec.reviewed_at.as_ref().map(|t| format!(" at {}", t.0)).unwrap_or_default();
        out.field("Reviewed By", format!("{by}{at}"));
    }
    if let Some(r) = &spec.reason {
        out.field("Reason", r);
    }
    if let Some(e) = &spec.expires_at {
        out.field("Expires At", format!("{} ({})", e.0, until(e.0, now)));
    }
    out.field("Age", age(Some(&spec.requested_at), now));
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
pub fn expires(expires_at: Option<&Time>) -> String {
    expires_at.map(|t| t.0.to_string()).unwrap_or_else(|| "<never>".to_owned())
}

/// `in 3d4h` or `5m ago`, seen at `now`.
fn until(at: Timestamp, now: Timestamp) -> String {
    let left = at.duration_since(now);
    let text = |d: jiff::SignedDuration| {
        apiportal_core::duration::format(std::time::Duration::from_secs(d.as_secs().unsigned_abs()))
    };
    if left.is_negative() { format!("{} ago", text(left)) } else { format!("in {}", text(left)) }
}

/// `revoke`: with `--reason`, an approver revokes a consumer's key; without, a consumer deletes their own request,
/// or with `--application` every one of the application's.
pub async fn revoke(session: &Session, args: &RevokeArgs) -> Result<(), Error> {
    let dry_run = args.dry_run.dry_run;
    let Some(reference) = &args.name else {
        let application = args.application.as_deref().expect("clap requires NAME or --application");
        let keys = application_keys(session, application).await?;
        if keys.is_empty() {
            tell!("No keys of application {application:?} in namespace {:?}: nothing to revoke.", session.namespace);
        }
        let mut failed = 0;
        for key in &keys {
            if let Err(e) = delete_own(session, &session.namespace, &key.name_any(), dry_run).await {
                failed += 1;
                tell!("error: {e}");
            }
        }
        if failed > 0 {
            return Err(Error::Partial(format!("{failed} of {} keys were not revoked (see above)", keys.len())));
        }
        return Ok(());
    };
    if let Some(reason) = &args.reason {
        return super::decide::revoke(session, reference, reason, dry_run).await;
    }
    let (ns, name) = session.qualify(reference)?;
    delete_own(session, &ns, &name, dry_run).await
}

/// A consumer deletes their own request `ns/name`, and with it the key; nothing to do if it is gone.
async fn delete_own(session: &Session, ns: &str, name: &str, dry_run: DryRun) -> Result<(), Error> {
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), ns);
    let doing = format!("revoke apikey {ns}/{name}");
    let Some(key) = api.get_opt(name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))? else {
        tell!("{APIKEY_KIND}/{name} not found in namespace {ns:?}: nothing to revoke");
        return Ok(());
    };
    if key.metadata.deletion_timestamp.is_some() {
        tell!("{APIKEY_KIND}/{name} is already being revoked: the bridge is removing its key; nothing to revoke");
        return Ok(());
    }
    if dry_run == DryRun::Client {
        report(APIKEY_KIND, name, "deleted", DryRun::Client);
        return Ok(());
    }
    // Deleting exactly the object we looked at: a recreated request of the same name is not revoked by accident.
    let params = DeleteParams {
        dry_run: dry_run == DryRun::Server,
        preconditions: Some(Preconditions { uid: key.uid(), resource_version: None }),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => report(APIKEY_KIND, name, "deleted", dry_run),
        Err(e) if e.is_not_found() => {
            tell!("{APIKEY_KIND}/{name} not found in namespace {ns:?}: nothing to revoke")
        }
        Err(e) => return Err(Error::from_kube(e, &session.server, &doing)),
    }
    Ok(())
}
