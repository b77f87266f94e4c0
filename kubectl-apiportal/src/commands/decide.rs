//! `approve`, `reject`, `suspend`, `resume` and an approver's `revoke`: a decision is one merge patch of the
//! APIKey's status, written without reading the key (owners read its projection, see `review`). The admission policy
//! admits it only from the phase it moves away from, so of two reviewers racing exactly one wins and the other is
//! told what happened. On an approved key whose consumer asked to move to another tier, `approve` and `reject`
//! decide that plan change. Several keys (or `--all-pending --product`) are decided one by one, each its own
//! admitted write; the output says how each went.

use apiportal_core::{APIKey, APIProduct, KeyPhase, decision, kube_ext::KubeErrorExt, resources::apikey::PlanChange};
use jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::Value;

use super::{
    APIKEY_KIND,
    requests::can_approve,
    review::{Reader, Scope, Seen},
};
use crate::{
    cli::{DecideArgs, DryRun, ResumeArgs, SuspendArgs},
    error::Error,
    output::{say, tell},
    paste::Command,
    session::{Session, split_reference},
};

/// What an approver does to a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Approve,
    Reject,
    Revoke,
    Suspend,
    Resume,
}

impl Verdict {
    /// The phase the key moves to.
    fn phase(self) -> KeyPhase {
        match self {
            Self::Approve | Self::Resume => KeyPhase::Approved,
            Self::Reject => KeyPhase::Rejected,
            Self::Revoke => KeyPhase::Revoked,
            Self::Suspend => KeyPhase::Suspended,
        }
    }

    /// The phases it moves a key from (what the admission policy admits).
    fn decides_from(self) -> &'static [KeyPhase] {
        match self {
            Self::Approve | Self::Reject => &[KeyPhase::Pending],
            Self::Revoke => &[KeyPhase::Approved, KeyPhase::Suspended],
            Self::Suspend => &[KeyPhase::Approved],
            Self::Resume => &[KeyPhase::Suspended],
        }
    }

    fn past(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Revoke => "revoked",
            Self::Suspend => "suspended",
            Self::Resume => "resumed",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Revoke => "revoke",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
        }
    }
}

pub async fn approve(session: &Session, args: &DecideArgs) -> Result<(), Error> {
    decide_all(session, args, Verdict::Approve).await
}

pub async fn reject(session: &Session, args: &DecideArgs) -> Result<(), Error> {
    if args.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::Usage(
            "reject needs --reason: it says why the request is rejected, and the consumer reads it".into(),
        ));
    }
    decide_all(session, args, Verdict::Reject).await
}

/// An approver revokes one approved (or suspended) key.
pub async fn revoke(session: &Session, reference: &str, reason: &str, dry_run: DryRun) -> Result<(), Error> {
    if reason.trim().is_empty() {
        return Err(Error::Usage("--reason must say why the key is revoked: its consumer reads it".into()));
    }
    decide_single(session, reference, Verdict::Revoke, Some(reason), dry_run).await
}

pub async fn suspend(session: &Session, args: &SuspendArgs) -> Result<(), Error> {
    if args.reason.trim().is_empty() {
        return Err(Error::Usage("--reason must say why the key is suspended: its consumer reads it".into()));
    }
    decide_single(session, &args.key, Verdict::Suspend, Some(&args.reason), args.dry_run.dry_run).await
}

pub async fn resume(session: &Session, args: &ResumeArgs) -> Result<(), Error> {
    decide_single(session, &args.key, Verdict::Resume, args.reason.as_deref(), args.dry_run.dry_run).await
}

async fn decide_single(
    session: &Session,
    reference: &str,
    verdict: Verdict,
    reason: Option<&str>,
    dry_run: DryRun,
) -> Result<(), Error> {
    let user = session.username().await?;
    let reader = Reader::new(session);
    let line = decide_one(&reader, &user, reference, verdict, reason, dry_run).await?;
    say!("{line}");
    Ok(())
}

/// The keys `args` names: NAMESPACE/NAME references, or every request for `--product` that waits for a decision
/// (new requests and plan changes).
async fn targets(session: &Session, args: &DecideArgs) -> Result<Vec<String>, Error> {
    if !args.all_pending {
        return Ok(args.keys.clone());
    }
    let product = args.product.as_deref().expect("clap requires --product with --all-pending");
    let (ns, name) = split_reference(product, &session.namespace)?;
    let scoped = Reader::within(session, Scope::Namespaces(vec![ns.clone()]));
    let mut pending: Vec<Seen> = scoped
        .list(None)
        .await?
        .iter()
        .map(Seen::of_projection)
        .filter(|r| r.spec.api_product_ref.name == name && r.awaits_decision())
        .collect();
    pending.sort_by_key(|r| {
        (r.spec.requested_at.0, r.spec.api_key_ref.namespace.clone(), r.spec.api_key_ref.name.clone())
    });
    Ok(pending.iter().map(|r| format!("{}/{}", r.spec.api_key_ref.namespace, r.spec.api_key_ref.name)).collect())
}

async fn decide_all(session: &Session, args: &DecideArgs, verdict: Verdict) -> Result<(), Error> {
    let targets = targets(session, args).await?;
    let reader = Reader::new(session);
    if targets.is_empty() {
        tell!(
            "No pending requests for {}: nothing to {}.",
            args.product.as_deref().unwrap_or_default(),
            verdict.verb()
        );
        return Ok(());
    }
    let user = session.username().await?;
    let mut failed = 0;
    for reference in &targets {
        match decide_one(&reader, &user, reference, verdict, args.reason.as_deref(), args.dry_run.dry_run).await {
            Ok(line) => say!("{line}"),
            Err(e) => {
                failed += 1;
                if targets.len() == 1 {
                    return Err(e);
                }
                tell!("error: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(Error::Partial(format!(
            "{failed} of {} decisions failed (see above); the others were made",
            targets.len()
        )));
    }
    Ok(())
}

/// The request as decided: `Approved by bob at ... (reason)`.
fn describe_decision(seen: &Seen) -> String {
    let spec = &seen.spec;
    let by = spec.reviewed_by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
    let at = spec.reviewed_at.as_ref().map(|t| format!(" at {}", t.0)).unwrap_or_default();
    let reason = spec.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
    format!("{}{by}{at}{reason}", spec.phase)
}

fn suffix(dry_run: DryRun) -> &'static str {
    match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    }
}

/// Why `verdict` does not apply to a request in its state, and what to do instead.
fn wrong_state(verdict: Verdict, ns: &str, name: &str, seen: &Seen) -> Error {
    let key = format!("apikey {ns}/{name}");
    let state = describe_decision(seen);
    let past = verdict.past();
    let reject = Command::apiportal("reject").reference(ns, name).raw("--reason '...'");
    let message = match (verdict, seen.spec.phase) {
        (Verdict::Resume, _) => format!("{key} is not suspended (it is {state}): only a Suspended key can be resumed"),
        (Verdict::Suspend | Verdict::Revoke, KeyPhase::Pending) => {
            format!("{key} is Pending: only an Approved key can be {past}; to refuse the request, reject it: {reject}")
        }
        (Verdict::Approve | Verdict::Reject, KeyPhase::Suspended) => format!(
            "{key} is already {state}: only a Pending request can be {past}; let the key work again with {}",
            Command::apiportal("resume").reference(ns, name)
        ),
        (Verdict::Approve | Verdict::Reject, _) => format!(
            "{key} is already {state}: only a Pending request can be {past}; a decision is final, the consumer may request again"
        ),
        (Verdict::Suspend, _) => format!("{key} is already {state}: only an Approved key can be suspended"),
        (Verdict::Revoke, _) => format!("{key} is already {state}: only an Approved or Suspended key can be revoked"),
    };
    Error::Conflict(message)
}

fn forbidden(user: &str, what: &str, seen: &Seen) -> Error {
    let (product_ns, product) = seen.product();
    Error::Forbidden(format!(
        "you ({user}) may not {what} requests for apiproduct {product_ns}/{product}: that needs the approve verb on it, granted by the apiportal-owner role in namespace {product_ns}"
    ))
}

/// Decides one key; the line to print on success.
async fn decide_one(
    reader: &Reader<'_>,
    user: &str,
    reference: &str,
    verdict: Verdict,
    reason: Option<&str>,
    dry_run: DryRun,
) -> Result<String, Error> {
    let session = reader.session();
    let (ns, name) = split_reference(reference, &session.namespace)?;
    if !reference.contains('/') && verdict == Verdict::Revoke {
        return Err(Error::Usage(format!(
            "an approver names the key as NAMESPACE/NAME (it lives in its consumer's namespace), e.g. team-alice/{name}; to drop your own request, run revoke without --reason"
        )));
    }
    let seen = reader.read(&ns, &name).await?;
    if matches!(verdict, Verdict::Approve | Verdict::Reject) && seen.spec.phase == KeyPhase::Approved {
        if let Some(change) = seen.pending_plan_change() {
            return decide_plan_change(reader, user, &ns, &name, &seen, change, verdict, reason, dry_run).await;
        }
        if let Some(line) = plan_change_unchanged(&seen, user, &name, verdict, dry_run) {
            return Ok(line);
        }
    }
    let current = seen.spec.phase;
    let by_me = seen.spec.reviewed_by.as_deref() == Some(user);
    if current == verdict.phase() && by_me {
        return Ok(format!("{APIKEY_KIND}/{name} unchanged{}", suffix(dry_run)));
    }
    if !verdict.decides_from().contains(&current) {
        return Err(wrong_state(verdict, &ns, &name, &seen));
    }
    let (product_ns, product) = seen.product();
    if !can_approve(session, product_ns, product).await? {
        return Err(forbidden(user, verdict.verb(), &seen));
    }
    if verdict == Verdict::Approve {
        // The bridge issues no key for a tier the product does not offer: say so before approving.
        offered(session, &seen, &seen.spec.plan_tier).await.map_err(|m| {
            Error::Invalid(format!(
                "cannot approve apikey {ns}/{name}: {m}; reject it instead, so its consumer can request a tier it offers"
            ))
        })?;
    }
    let done = format!("{APIKEY_KIND}/{name} {}{}", verdict.past(), suffix(dry_run));
    if dry_run == DryRun::Client {
        return Ok(done);
    }
    let patch = decision::decision_patch(verdict.phase(), user, Timestamp::now(), reason);
    match write(session, &ns, &name, &patch, dry_run).await {
        Ok(()) => Ok(done),
        Err(e) if e.is_refused_by_admission() => {
            // Someone decided first (the policy admits a decision only from the phase we saw): say what they did.
            match reader.read_changed(&ns, &name, &seen).await {
                Some(now) if now.spec.phase == verdict.phase() && now.spec.reviewed_by.as_deref() == Some(user) => {
                    Ok(format!("{APIKEY_KIND}/{name} unchanged{}", suffix(dry_run)))
                }
                Some(now) if now.spec.phase != current => Err(Error::Conflict(format!(
                    "apikey {ns}/{name} is already {} (decided while you were deciding; nothing was changed)",
                    describe_decision(&now)
                ))),
                _ => Err(Error::Forbidden(format!("cannot {} apikey {ns}/{name}: {}", verdict.verb(), e.message()))),
            }
        }
        Err(e) => Err(session.explain(e, &format!("{} apikey {ns}/{name}", verdict.verb()))),
    }
}

/// A rerun of the decision this user already made on the key's last plan change.
fn plan_change_unchanged(seen: &Seen, user: &str, name: &str, verdict: Verdict, dry_run: DryRun) -> Option<String> {
    let change = seen.spec.plan_change.as_ref()?;
    (change.approved == Some(verdict == Verdict::Approve) && change.reviewed_by.as_deref() == Some(user))
        .then(|| format!("{APIKEY_KIND}/{name} plan change to {} unchanged{}", change.tier, suffix(dry_run)))
}

/// Approves or rejects the move of an approved key to another tier.
#[allow(clippy::too_many_arguments)]
async fn decide_plan_change(
    reader: &Reader<'_>,
    user: &str,
    ns: &str,
    name: &str,
    seen: &Seen,
    change: &PlanChange,
    verdict: Verdict,
    reason: Option<&str>,
    dry_run: DryRun,
) -> Result<String, Error> {
    let session = reader.session();
    let (product_ns, product) = seen.product();
    if !can_approve(session, product_ns, product).await? {
        return Err(forbidden(user, &format!("{} plan changes of", verdict.verb()), seen));
    }
    let tier = &change.tier;
    if verdict == Verdict::Approve {
        offered(session, seen, tier).await.map_err(|m| {
            Error::Invalid(format!(
                "cannot approve the move of apikey {ns}/{name} to plan {tier}: {m}; reject it instead"
            ))
        })?;
    }
    let done = format!("{APIKEY_KIND}/{name} plan change to {tier} {}{}", verdict.past(), suffix(dry_run));
    if dry_run == DryRun::Client {
        return Ok(done);
    }
    let patch =
        decision::plan_change_decision_patch(change, verdict == Verdict::Approve, user, Timestamp::now(), reason);
    match write(session, ns, name, &patch, dry_run).await {
        Ok(()) => Ok(done),
        Err(e) if e.is_refused_by_admission() => {
            let now = reader.read_changed(ns, name, seen).await;
            let now_change = now.as_ref().and_then(|n| n.spec.plan_change.as_ref());
            match now_change {
                Some(c) if c.tier == change.tier && c.requested_at == change.requested_at && c.approved.is_some() => {
                    let by = c.reviewed_by.clone().unwrap_or_default();
                    if c.approved == Some(verdict == Verdict::Approve) && by == user {
                        return Ok(format!("{APIKEY_KIND}/{name} plan change to {tier} unchanged{}", suffix(dry_run)));
                    }
                    let outcome = if c.approved == Some(true) { "approved" } else { "rejected" };
                    Err(Error::Conflict(format!(
                        "the move of apikey {ns}/{name} to plan {tier} was already {outcome} by {by} (decided while you were deciding; nothing was changed)"
                    )))
                }
                Some(c) if c.tier != change.tier || c.requested_at != change.requested_at => {
                    Err(Error::Conflict(format!(
                        "the consumer of apikey {ns}/{name} changed their ask while you were deciding: it is now a move to plan {}; nothing was changed, review it again ({})",
                        c.tier,
                        Command::apiportal("requests --pending")
                    )))
                }
                _ => Err(Error::Forbidden(format!(
                    "cannot {} the plan change of apikey {ns}/{name}: {}",
                    verdict.verb(),
                    e.message()
                ))),
            }
        }
        Err(e) => Err(session.explain(e, &format!("{} the plan change of apikey {ns}/{name}", verdict.verb()))),
    }
}

/// Whether the request's product offers `tier` (an unreadable product is left to the bridge to judge).
async fn offered(session: &Session, seen: &Seen, tier: &str) -> Result<(), String> {
    let (product_ns, product) = seen.product();
    let products: Api<APIProduct> = Api::namespaced(session.client.clone(), product_ns);
    match products.get_opt(product).await {
        Ok(Some(p)) => p.offered_plan(tier).map(|_| ()),
        _ => Ok(()),
    }
}

/// One merge patch of key `ns/name`'s status, without reading it (the reviewer role may not).
async fn write(session: &Session, ns: &str, name: &str, patch: &Value, dry_run: DryRun) -> Result<(), kube::Error> {
    let mut params =
        PatchParams { field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()), ..Default::default() };
    params.dry_run = dry_run == DryRun::Server;
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), ns);
    api.patch_status(name, &params, &Patch::Merge(patch)).await.map(|_| ())
}
