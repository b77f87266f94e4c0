//! `key change-plan`: a consumer asks to move an approved key to another tier its product offers, a status write
//! the admission policy admits from the key's consumers and approvers. The bridge applies it at once for an
//! automatic product, after an owner's approval for a manual one; the key keeps its value throughout.

use apiportal_core::{APIKey, KeyPhase, decision, kube_ext::KubeErrorExt, reason::ConditionType};
use jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams},
    runtime::wait::await_condition,
};

use super::{
    APIKEY_KIND,
    describe::get_product,
    keys::{describe_command, get_key},
    report,
};
use crate::{
    cli::{ChangePlanArgs, DryRun},
    error::Error,
    output::tell,
    paste::Command,
    session::Session,
};

pub async fn run(session: &Session, args: &ChangePlanArgs) -> Result<(), Error> {
    let (ns, name) = session.qualify(&args.name)?;
    let key = get_key(session, &ns, &name).await?;
    let tier = args.plan.as_str();
    if key.phase() != KeyPhase::Approved {
        let next = match key.phase() {
            KeyPhase::Pending => "while it is pending, revoke it and request the tier you want".to_owned(),
            KeyPhase::Suspended => "an approver resumes it first".to_owned(),
            _ => format!("request a new key for the tier you want ({})", describe_command(&name, &ns)),
        };
        return Err(Error::Conflict(format!(
            "apikey {ns}/{name} is {}: only an Approved key moves to another plan; {next}",
            key.phase()
        )));
    }
    let (product_ns, product_name) = (key.product_namespace(), key.spec.api_product_ref.name.clone());
    let product = get_product(session, &product_ns, &product_name).await?;
    product.offered_plan(tier).map_err(|m| {
        let describe = Command::apiportal("describe product").reference(&product_ns, &product_name);
        Error::Invalid(format!("{m} ({describe})"))
    })?;
    let dry_run = args.dry_run.dry_run;
    if key.plan_tier() == tier {
        report(APIKEY_KIND, &name, "unchanged", dry_run);
        tell!("{APIKEY_KIND}/{name} is on plan {tier} already");
        return Ok(());
    }
    let asked_at = match key.pending_plan_change().filter(|c| c.tier == tier) {
        Some(change) => {
            report(APIKEY_KIND, &name, "unchanged", dry_run);
            change.requested_at.0
        }
        None if dry_run == DryRun::Client => {
            report(APIKEY_KIND, &name, &format!("plan change to {tier} requested"), dry_run);
            return Ok(());
        }
        None => {
            let user = session.username().await?;
            let now = Timestamp::from_second(Timestamp::now().as_second()).expect("a valid time");
            let patch = decision::plan_change_patch(tier, &user, now);
            let mut params = PatchParams {
                field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()),
                ..Default::default()
            };
            params.dry_run = dry_run == DryRun::Server;
            let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
            api.patch_status(&name, &params, &Patch::Merge(&patch)).await.map_err(|e| {
                if e.is_refused_by_admission() {
                    Error::Forbidden(format!("cannot change the plan of apikey {ns}/{name}: {}", e.message()))
                } else {
                    session.explain(e, &format!("change the plan of apikey {ns}/{name}"))
                }
            })?;
            report(APIKEY_KIND, &name, &format!("plan change to {tier} requested"), dry_run);
            now
        }
    };
    match (args.wait, dry_run) {
        (Some(wait), DryRun::None) => wait_applied(session, &ns, &name, tier, asked_at, wait).await,
        _ => Ok(()),
    }
}

/// Waits until the move of key `ns/name` to `tier`, asked at `asked_at`, is applied or refused, and says which.
async fn wait_applied(
    session: &Session,
    ns: &str,
    name: &str,
    tier: &str,
    asked_at: Timestamp,
    wait: std::time::Duration,
) -> Result<(), Error> {
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), ns);
    let this_ask = |k: &APIKey| {
        k.status
            .as_ref()
            .and_then(|s| s.plan_change.clone())
            .filter(|c| c.tier == tier && c.requested_at.0.as_second() == asked_at.as_second())
    };
    let settled = |k: Option<&APIKey>| {
        k.is_none_or(|k| {
            k.phase() != KeyPhase::Approved
                || k.plan_tier() == tier
                || this_ask(k).is_none_or(|c| c.approved == Some(false))
        })
    };
    let outcome = tokio::time::timeout(wait, await_condition(api.clone(), name, settled)).await;
    let key = match outcome {
        Ok(Ok(Some(key))) => key,
        Ok(Ok(None)) => return Err(Error::NotFound(format!("apikey {ns}/{name} was deleted while its plan changed"))),
        Ok(Err(e)) => return Err(Error::Other(format!("cannot watch apikey {ns}/{name}: {e}"))),
        Err(_) => {
            let key = api.get(name).await.map_err(|e| session.explain(e, &format!("get apikey {ns}/{name}")))?;
            let condition = key
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == ConditionType::PlanChange.as_str()).cloned());
            let why = condition.map(|c| format!(": {}", c.message)).unwrap_or_default();
            return Err(Error::Other(format!(
                "apikey {ns}/{name}: the move to plan {tier} is not decided after {}{why}; follow it with {}",
                apiportal_core::duration::format(wait),
                describe_command(name, ns)
            )));
        }
    };
    if key.plan_tier() == tier {
        tell!("{APIKEY_KIND}/{name} moved to plan {tier}; the key keeps its value");
        return Ok(());
    }
    if key.phase() != KeyPhase::Approved {
        return Err(Error::Conflict(format!(
            "apikey {ns}/{name} is now {}: its plan no longer changes ({})",
            key.phase(),
            describe_command(name, ns)
        )));
    }
    match this_ask(&key) {
        Some(change) => {
            let why = change.reason.map(|r| format!(": {r}")).unwrap_or_default();
            Err(Error::Conflict(format!(
                "the move of apikey {ns}/{name} to plan {tier} was rejected by {}{why}",
                change.reviewed_by.unwrap_or_default()
            )))
        }
        None => Err(Error::Conflict(format!(
            "apikey {ns}/{name}: another plan change was asked for meanwhile ({})",
            describe_command(name, ns)
        ))),
    }
}
