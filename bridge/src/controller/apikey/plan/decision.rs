//! The decisions the bridge itself makes on a key, in its own name: approving a request for an automatic product
//! (only when the key can be issued at once, so "Approved" always comes with a key), rejecting one beyond the
//! product's limits, revoking keys whose product is gone, and expiring keys at their time. The admission policy
//! holds the bridge to the same transitions as everyone: if an owner decided first, the bridge's write is refused
//! and nothing is lost.

use std::time::Duration;

use apiportal_core::{APIKey, APIKeyStatus, APIProduct, ApprovalMode, KeyPhase, reason::Reason};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::{Observed, ProductState};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject { reason: Reason, message: String },
    Revoke { message: String },
    Expire { message: String },
}

impl Decision {
    pub fn phase(&self) -> KeyPhase {
        match self {
            Self::Approve => KeyPhase::Approved,
            Self::Reject { .. } => KeyPhase::Rejected,
            Self::Revoke { .. } => KeyPhase::Revoked,
            Self::Expire { .. } => KeyPhase::Expired,
        }
    }

    fn reason_text(&self) -> String {
        match self {
            Self::Approve => "approved automatically: the product's approval mode is automatic".to_owned(),
            Self::Reject { message, .. } | Self::Revoke { message } | Self::Expire { message } => message.clone(),
        }
    }

    /// Writes the decision into `status`, as the bridge (`bridge_user`) deciding at `now`.
    pub fn apply(&self, status: &mut APIKeyStatus, bridge_user: &str, now: Timestamp) {
        status.phase = Some(self.phase());
        status.reviewed_by = Some(bridge_user.to_owned());
        status.reviewed_at = Some(Time(super::whole_seconds(now)));
        status.reason = Some(self.reason_text());
    }
}

/// Parses a product's duration field; a value the API server admitted always parses (the CRD's pattern and the
/// parser accept the same texts), and anything else fails closed as a cap of zero.
pub fn field_duration(text: &str) -> Duration {
    apiportal_core::duration::parse_field(text).unwrap_or(Duration::ZERO)
}

/// The product's lifetime cap this key breaks, as a message.
pub fn lifetime_refusal(key: &APIKey, product: &APIProduct, now: Timestamp) -> Option<String> {
    let max = product.spec.max_key_lifetime.as_deref()?;
    let cap = SignedDuration::try_from(field_duration(max)).unwrap_or(SignedDuration::MAX);
    let created = key.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let lifetime = key.spec.expires_at.as_ref().map(|e| e.0.duration_since(created));
    lifetime.is_none_or(|l| l > cap).then(|| {
        format!("{} issues keys for at most {max}: request one with --expires-in {max} or less", key.product_id())
    })
}

/// The product's per-user limit this key is beyond, as a message.
pub fn limit_refusal(o: &Observed, product: &APIProduct) -> Option<String> {
    let max = product.spec.max_keys_per_user?;
    (o.keys_ahead >= max as usize).then(|| {
        format!(
            "{} already holds {} key(s) for {}, which allows {max} per user: revoke one first",
            o.key.requester(),
            o.keys_ahead,
            o.key.product_id()
        )
    })
}

pub fn decide(o: &Observed) -> Option<Decision> {
    let key = o.key;
    let phase = key.phase();
    if let Some(expires) = &key.spec.expires_at
        && expires.0 <= o.now
        && matches!(phase, KeyPhase::Pending | KeyPhase::Approved | KeyPhase::Suspended)
    {
        return Some(Decision::Expire { message: format!("the key reached its expiresAt ({})", expires.0) });
    }
    match (phase, o.product) {
        (KeyPhase::Approved | KeyPhase::Suspended, ProductState::Gone) => Some(Decision::Revoke {
            message: format!("APIProduct {} was deleted; its keys no longer open anything", key.product_id()),
        }),
        (KeyPhase::Approved | KeyPhase::Suspended, ProductState::Found(product)) => {
            let status = key.status.as_ref();
            let stamped =
                status.and_then(|s| s.issued.as_ref().map(|i| i.product_uid.clone()).or(s.product_uid.clone()));
            stamped.filter(|uid| Some(uid) != product.uid().as_ref()).map(|_| Decision::Revoke {
                message: format!(
                    "APIProduct {} was deleted and created again since this key was requested: request a key from it again",
                    key.product_id()
                ),
            })
        }
        (KeyPhase::Pending, ProductState::Found(product)) => automatic(o, product),
        _ => None,
    }
}

/// A request for an automatic product: approved when its key can be issued now, rejected when it breaks the
/// product's limits, left Pending (with the reason) while the product cannot take keys.
fn automatic(o: &Observed, product: &APIProduct) -> Option<Decision> {
    if product.spec.approval_mode != ApprovalMode::Automatic
        || !product.is_published()
        || product.offered_plan(&o.key.spec.plan_tier).is_err()
    {
        return None;
    }
    if let Some(message) = lifetime_refusal(o.key, product, o.now) {
        return Some(Decision::Reject { reason: Reason::LifetimeTooLong, message });
    }
    if let Some(message) = limit_refusal(o, product) {
        return Some(Decision::Reject { reason: Reason::KeyLimitReached, message });
    }
    product.key_issuance().map(|_| Decision::Approve)
}
