//! `approve`, `reject` and an approver's `revoke`: a decision is one merge patch of the APIKey's status. The
//! admission policy admits it only from the phase it moves away from (Pending, or Approved for a revocation),
//! so of two reviewers racing exactly one wins and the other is told what happened. Several keys (or
//! `--all-pending --product`) are decided one by one, each its own admitted write; the output says how each went.

use apiportal_core::{
    APIKey, APIProduct, KeyPhase, decision,
    kube_ext::{KubeErrorExt, KubeResultExt},
};
use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};

use super::{APIKEY_KIND, keys::get_key, requests::can_approve};
use crate::{
    cli::{DecideArgs, DryRun},
    error::Error,
    output::{say, tell},
    session::{Session, split_reference},
};

/// What an approver does to a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Approve,
    Reject,
    Revoke,
}

impl Verdict {
    fn phase(self) -> KeyPhase {
        match self {
            Self::Approve => KeyPhase::Approved,
            Self::Reject => KeyPhase::Rejected,
            Self::Revoke => KeyPhase::Revoked,
        }
    }

    fn decides_from(self) -> KeyPhase {
        if self == Self::Revoke { KeyPhase::Approved } else { KeyPhase::Pending }
    }

    fn past(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Revoke => "revoked",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Revoke => "revoke",
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

/// An approver revokes one approved key.
pub async fn revoke(session: &Session, reference: &str, reason: &str, dry_run: DryRun) -> Result<(), Error> {
    if reason.trim().is_empty() {
        return Err(Error::Usage("--reason must say why the key is revoked: its consumer reads it".into()));
    }
    let user = session.username().await?;
    decide_one(session, &user, reference, Verdict::Revoke, Some(reason), dry_run).await.map(|line| say!("{line}"))
}

/// The keys `args` names: NAMESPACE/NAME references, or every pending request for `--product`.
async fn targets(session: &Session, args: &DecideArgs) -> Result<Vec<String>, Error> {
    if !args.all_pending {
        return Ok(args.keys.clone());
    }
    let product = args.product.as_deref().expect("clap requires --product with --all-pending");
    let (ns, name) = split_reference(product, &session.namespace)?;
    let keys = Api::<APIKey>::all(session.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::from_kube(e, &session.server, "list apikeys in any namespace"))?
        .items;
    let mut pending: Vec<APIKey> = keys
        .into_iter()
        .filter(|k| {
            k.phase() == KeyPhase::Pending && k.product_namespace() == ns && k.spec.api_product_ref.name == name
        })
        .collect();
    pending.sort_by_key(|k| (k.metadata.creation_timestamp.as_ref().map(|t| t.0), k.namespace(), k.name_any()));
    Ok(pending.iter().map(|k| format!("{}/{}", k.namespace().unwrap_or_default(), k.name_any())).collect())
}

async fn decide_all(session: &Session, args: &DecideArgs, verdict: Verdict) -> Result<(), Error> {
    let targets = targets(session, args).await?;
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
        match decide_one(session, &user, reference, verdict, args.reason.as_deref(), args.dry_run.dry_run).await {
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

/// The key as decided: `approved by bob at ... (reason)`.
fn describe_decision(key: &APIKey) -> String {
    let status = key.status.clone().unwrap_or_default();
    let by = status.reviewed_by.map(|b| format!(" by {b}")).unwrap_or_default();
    let at = status.reviewed_at.map(|t| format!(" at {}", t.0)).unwrap_or_default();
    let reason = status.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    format!("{}{by}{at}{reason}", key.phase())
}

/// Decides one key; the line to print on success.
async fn decide_one(
    session: &Session,
    user: &str,
    reference: &str,
    verdict: Verdict,
    reason: Option<&str>,
    dry_run: DryRun,
) -> Result<String, Error> {
    let (ns, name) = split_reference(reference, &session.namespace)?;
    if !reference.contains('/') && verdict == Verdict::Revoke {
        return Err(Error::Usage(format!(
            "an approver names the key as NAMESPACE/NAME (it lives in its consumer's namespace), e.g. team-alice/{name}; to drop your own request, run revoke without --reason"
        )));
    }
    let key = get_key(session, &ns, &name).await?;
    let suffix = match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    };
    let current = key.phase();
    let by_me = key.status.as_ref().and_then(|s| s.reviewed_by.as_deref()) == Some(user);
    if current == verdict.phase() && by_me {
        return Ok(format!("{APIKEY_KIND}/{name} unchanged{suffix}"));
    }
    if current != verdict.decides_from() {
        return Err(Error::Conflict(format!(
            "apikey {ns}/{name} is already {}: only a {} key can be {}; a decision is final, the consumer may request again",
            describe_decision(&key),
            verdict.decides_from(),
            verdict.past()
        )));
    }
    let (product_ns, product) = (key.product_namespace(), key.spec.api_product_ref.name.clone());
    if !can_approve(session, &product_ns, &product).await? {
        return Err(Error::Forbidden(format!(
            "you ({user}) may not {} requests for apiproduct {product_ns}/{product}: that needs the approve verb on it, granted by the apiportal-owner role in namespace {product_ns}",
            verdict.verb()
        )));
    }
    if verdict == Verdict::Approve {
        // The bridge issues no key for a tier the product does not offer: say so before approving.
        let products: Api<APIProduct> = Api::namespaced(session.client.clone(), &product_ns);
        if let Some(p) = products
            .get_opt(&product)
            .await
            .map_err(|e| Error::from_kube(e, &session.server, &format!("get apiproduct {product_ns}/{product}")))?
        {
            p.offered_plan(&key.spec.plan_tier).map_err(|m| Error::Invalid(format!("cannot approve apikey {ns}/{name}: {m}; reject it instead, so its consumer can request a tier it offers")))?;
        }
    }
    if dry_run == DryRun::Client {
        return Ok(format!("{APIKEY_KIND}/{name} {}{suffix}", verdict.past()));
    }
    let patch = decision::decision_patch(verdict.phase(), user, Timestamp::now(), reason);
    let mut params =
        PatchParams { field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()), ..Default::default() };
    params.dry_run = dry_run == DryRun::Server;
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &ns);
    match api.patch_status(&name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(format!("{APIKEY_KIND}/{name} {}{suffix}", verdict.past())),
        Err(e) if e.is_refused_by_admission() => {
            // Someone decided first (the policy admits a decision only from the phase we saw): say what they did.
            match api.get_opt(&name).await.ok_if_not_found().ok().flatten().flatten() {
                Some(now) if now.phase() != current => Err(Error::Conflict(format!(
                    "apikey {ns}/{name} is already {} (decided while you were deciding; nothing was changed)",
                    describe_decision(&now)
                ))),
                _ => Err(Error::Forbidden(format!("cannot {} apikey {ns}/{name}: {}", verdict.verb(), e.message()))),
            }
        }
        Err(e) => Err(Error::from_kube(e, &session.server, &format!("{} apikey {ns}/{name}", verdict.verb()))),
    }
}
