//! `approve` and `reject`: a decision is a write to the APIKey's status with a resourceVersion precondition,
//! so of two reviewers racing exactly one wins and the other is told what happened.

use apiportal_core::{APIKey, KeyPhase};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt, api::PostParams};

use super::{APIKEY_KIND, keys::get_key, report, requests::can_approve};
use crate::{
    cli::{DecideArgs, DryRun, RejectArgs},
    error::Error,
    session::Session,
};

pub async fn approve(session: &Session, args: &DecideArgs) -> Result<(), Error> {
    decide(session, &args.key, KeyPhase::Approved, args.reason.clone(), args.dry_run.dry_run).await
}

pub async fn reject(session: &Session, args: &RejectArgs) -> Result<(), Error> {
    if args.reason.trim().is_empty() {
        return Err(Error::Usage("--reason must say why the request is rejected; the consumer reads it".into()));
    }
    decide(session, &args.key, KeyPhase::Rejected, Some(args.reason.clone()), args.dry_run.dry_run).await
}

fn describe_decision(key: &APIKey) -> String {
    let status = key.status.clone().unwrap_or_default();
    let by = status.reviewed_by.map(|b| format!(" by {b}")).unwrap_or_default();
    let at = status.reviewed_at.map(|t| format!(" at {}", t.0)).unwrap_or_default();
    let reason = status.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    format!("{}{by}{at}{reason}", key.phase())
}

async fn decide(
    session: &Session,
    reference: &str,
    phase: KeyPhase,
    reason: Option<String>,
    dry_run: DryRun,
) -> Result<(), Error> {
    let (ns, name) = session.qualify(reference)?;
    let user = session.username().await?;
    let verb = if phase == KeyPhase::Approved { "approved" } else { "rejected" };
    let mut key = get_key(session, &ns, &name).await?;
    let (product_ns, product) = (key.product_namespace(), key.spec.api_product_ref.name.clone());
    let mut checked_rights = false;
    // A conflict means the key changed between reading and writing. The bridge refreshing its conditions is
    // harmless: read again and retry while the key is still Pending. Another reviewer's decision ends it.
    for _ in 0..5 {
        let current = key.phase();
        if current != KeyPhase::Pending {
            let same_decision =
                current == phase && key.status.as_ref().and_then(|s| s.reviewed_by.as_deref()) == Some(user.as_str());
            if same_decision {
                report(APIKEY_KIND, &name, "unchanged", dry_run);
                return Ok(());
            }
            let lost_race = if checked_rights { " (decided while you were deciding; nothing was changed)" } else { "" };
            return Err(Error::Conflict(format!(
                "apikey {ns}/{name} is already {}{lost_race}; a decision is final: the consumer may request again",
                describe_decision(&key)
            )));
        }
        if !checked_rights {
            if !can_approve(session, &product_ns, &product).await? {
                return Err(Error::Forbidden(format!(
                    "you ({user}) may not decide requests for apiproduct {product_ns}/{product}: that needs the approve verb on it, granted by the apiportal-owner role in namespace {product_ns}"
                )));
            }
            checked_rights = true;
        }
        if dry_run == DryRun::Client {
            report(APIKEY_KIND, &name, verb, dry_run);
            return Ok(());
        }
        let mut decided = key.clone();
        let status = decided.status.get_or_insert_with(Default::default);
        status.phase = Some(phase);
        status.reviewed_by = Some(user.clone());
        status.reviewed_at = Some(Time(Timestamp::now()));
        status.reason = reason.clone();
        let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
        let params = PostParams {
            dry_run: dry_run == DryRun::Server,
            field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()),
        };
        // `decided` carries the resourceVersion just read: the API server refuses the write if the key changed since.
        match api.replace_status(&name, &params, &decided).await {
            Ok(_) => {
                report(APIKEY_KIND, &name, verb, dry_run);
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 => key = get_key(session, &ns, &name).await?,
            Err(e) => {
                let doing = format!("{} apikey {ns}/{}", &verb[..verb.len() - 1], key.name_any());
                return Err(Error::from_kube(e, &session.server, &doing));
            }
        }
    }
    Err(Error::Conflict(format!(
        "apikey {ns}/{name} kept changing while you were deciding; nothing was changed, try again"
    )))
}
