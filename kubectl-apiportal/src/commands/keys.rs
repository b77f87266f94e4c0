//! `keys`, `key show` and `revoke`: a consumer's own requests and keys.

use std::fmt::Write;

use apiportal_core::{APIKey, KeyPhase, labels, resources::authpolicy::Credentials};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Preconditions},
};

use super::{APIKEY_KIND, list_scoped, report, scope_text};
use crate::{
    cli::{DryRun, GlobalArgs, OutputFormat, RevokeArgs},
    error::Error,
    output::{Table, age, cell, print_list, print_object},
    session::Session,
};

pub async fn list(session: &Session, global: &GlobalArgs) -> Result<(), Error> {
    let mut keys: Vec<APIKey> = list_scoped(session, global.selector.as_deref(), "apikeys").await?;
    keys.sort_by_key(|k| (k.namespace(), k.name_any()));
    let all = session.all_namespaces;
    print_list(
        global.output,
        global.no_headers,
        &keys,
        || {
            let mut headers = vec!["NAME", "PRODUCT", "PLAN", "PHASE", "AGE"];
            if all {
                headers.insert(0, "NAMESPACE");
            }
            let mut table = Table::new(headers).with_wide(vec!["USER", "REVIEWED BY", "SECRET"]);
            for k in &keys {
                let status = k.status.clone().unwrap_or_default();
                let mut row = vec![
                    k.name_any(),
                    format!("{}/{}", k.product_namespace(), k.spec.api_product_ref.name),
                    k.spec.plan_tier.clone(),
                    k.phase().to_string(),
                    age(k.metadata.creation_timestamp.as_ref()),
                    k.spec.requested_by.user_id.clone(),
                    cell(status.reviewed_by.as_deref()),
                    cell(status.secret_ref.as_ref().map(|s| s.name.as_str())),
                ];
                if all {
                    row.insert(0, k.namespace().unwrap_or_default());
                }
                table.rows.push(row);
            }
            table
        },
        |k| format!("{APIKEY_KIND}/{}", k.name_any()),
        &scope_text(session),
    )
}

pub async fn get_key(session: &Session, ns: &str, name: &str) -> Result<APIKey, Error> {
    session.get_named("apikey", ns, name, &format!("kubectl apiportal keys -n {ns}")).await
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
    print!("{}", render(&key));
    Ok(())
}

/// Prints the key, and only the key, so it can be piped.
async fn reveal_key(session: &Session, key: &APIKey) -> Result<(), Error> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    if key.phase() != KeyPhase::Approved {
        return Err(Error::Conflict(format!(
            "apikey {ns}/{name} is {}: only an approved request has a key; follow it with kubectl apiportal keys -n {ns}",
            key.phase()
        )));
    }
    let secret_ref = key.status.as_ref().and_then(|s| s.secret_ref.clone());
    let (secret_name, data_key) = secret_ref
        .map(|r| (r.name, r.key))
        .unwrap_or_else(|| (labels::consumer_secret_name(&name), labels::SECRET_KEY.to_owned()));
    let secrets: Api<Secret> = Api::namespaced(session.client.clone(), &ns);
    let secret = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|e| Error::from_kube(e, &session.server, &format!("read the key's Secret {ns}/{secret_name}")))?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "the key's Secret {ns}/{secret_name} does not exist yet; the bridge creates it right after approval (is it running? kubectl apiportal doctor)"
            ))
        })?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&data_key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .ok_or_else(|| {
        Error::Other(format!("Secret {ns}/{secret_name} has no {data_key:?} entry; revoke and request the key again"))
    })?;
    println!("{value}");
    Ok(())
}

fn render(k: &APIKey) -> String {
    let mut out = String::new();
    let status = k.status.clone().unwrap_or_default();
    let ns = k.namespace().unwrap_or_default();
    let mut field = |label: &str, value: String| {
        let _ = writeln!(out, "{:<16}{value}", format!("{label}:"));
    };
    field("Name", k.name_any());
    field("Namespace", ns.clone());
    field("Product", format!("{}/{}", k.product_namespace(), k.spec.api_product_ref.name));
    let limits = status.limits.as_ref().map(|l| format!(" ({})", l.summary())).unwrap_or_default();
    field("Plan", format!("{}{limits}", k.spec.plan_tier));
    field("Requested By", k.spec.requested_by.user_id.clone());
    if let Some(u) = &k.spec.use_case {
        field("Use Case", u.clone());
    }
    field("Phase", k.phase().to_string());
    if let Some(by) = &status.reviewed_by {
        let at = status.reviewed_at.as_ref().map(|t| format!(" at {}", t.0)).unwrap_or_default();
        field("Reviewed By", format!("{by}{at}"));
    }
    if let Some(r) = &status.reason {
        field("Reason", r.clone());
    }
    if let Some(e) = &k.spec.expires_at {
        field("Expires At", e.0.to_string());
    }
    field("Age", age(k.metadata.creation_timestamp.as_ref()));
    if let Some(secret) = &status.secret_ref {
        field("Secret", format!("{} (key {})", secret.name, secret.key));
        field("Reveal", format!("kubectl apiportal key show {} -n {ns} --reveal", k.name_any()));
        let rule = status.auth_scheme.as_ref().and_then(|s| s.api_key_rule().map(|(_, r)| r.clone()));
        let host = status.api_hostname.clone().unwrap_or_else(|| "<api-hostname>".to_owned());
        let location = Credentials::describe(rule.as_ref().and_then(|r| r.credentials.as_ref()), "$API_KEY");
        field("Call it", location.curl(&format!("https://{host}/")));
    }
    if !status.conditions.is_empty() {
        let _ = writeln!(out, "\nConditions:");
        let mut table = Table::new(vec!["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for c in &status.conditions {
            table.rows.push(vec![c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()]);
        }
        for line in table.render(false, false).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

pub async fn revoke(session: &Session, args: &RevokeArgs) -> Result<(), Error> {
    let (ns, name) = session.qualify(&args.name)?;
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
    let doing = format!("revoke apikey {ns}/{name}");
    let Some(key) = api.get_opt(&name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))? else {
        eprintln!("{APIKEY_KIND}/{name} not found in namespace {ns:?}: nothing to revoke");
        return Ok(());
    };
    if key.metadata.deletion_timestamp.is_some() {
        eprintln!("{APIKEY_KIND}/{name} is already being revoked: the bridge is removing its key; nothing to revoke");
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
        Err(kube::Error::Api(s)) if s.code == 404 => {
            eprintln!("{APIKEY_KIND}/{name} not found in namespace {ns:?}: nothing to revoke")
        }
        Err(e) => return Err(Error::from_kube(e, &session.server, &doing)),
    }
    Ok(())
}
