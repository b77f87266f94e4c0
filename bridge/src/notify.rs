//! Telling people what happened to a key, once per happening: a Kubernetes Event on the APIKey (what `kubectl
//! describe` shows) and one JSON audit line in the bridge's log (target `apiportal::audit`, for shipping to a
//! SIEM). The platform's webhook gets its CloudEvents from the key's outbox (`crate::webhook`). Never a key value.

use apiportal_core::APIKey;
use kube::{
    Resource, ResourceExt,
    runtime::events::{Event, EventType, Recorder},
};

use crate::{
    controller::apikey::plan::{Notice, NoticeKind},
    webhook::Webhook,
};

pub struct Notifier {
    pub recorder: Recorder,
    pub webhook: Option<Webhook>,
}

impl NoticeKind {
    /// The verb of the Event's `action`.
    fn action(self) -> &'static str {
        match self {
            Self::Requested => "Request",
            Self::Approved => "Approve",
            Self::Rejected => "Reject",
            Self::Revoked => "Revoke",
            Self::Rotated => "Rotate",
            Self::Expired => "Expire",
            Self::ExpiringSoon => "WarnExpiry",
            Self::Deleted => "Delete",
            Self::Suspended => "Suspend",
            Self::Resumed => "Resume",
            Self::PlanChanged => "ChangePlan",
            Self::PlanChangeRejected => "RejectPlanChange",
            Self::Repaired => "Repair",
        }
    }

    /// The CloudEvents `type` (none for repairs, which are the bridge's own business).
    pub fn cloud_event_type(self) -> Option<&'static str> {
        Some(match self {
            Self::Requested => "io.apiportal.apikey.requested",
            Self::Approved => "io.apiportal.apikey.approved",
            Self::Rejected => "io.apiportal.apikey.rejected",
            Self::Revoked => "io.apiportal.apikey.revoked",
            Self::Rotated => "io.apiportal.apikey.rotated",
            Self::Expired => "io.apiportal.apikey.expired",
            Self::ExpiringSoon => "io.apiportal.apikey.expiring-soon",
            Self::Deleted => "io.apiportal.apikey.deleted",
            Self::Suspended => "io.apiportal.apikey.suspended",
            Self::Resumed => "io.apiportal.apikey.resumed",
            Self::PlanChanged => "io.apiportal.apikey.plan-changed",
            Self::PlanChangeRejected => "io.apiportal.apikey.plan-change-rejected",
            Self::Repaired => return None,
        })
    }
}

impl Notifier {
    pub async fn notify(&self, key: &APIKey, notice: &Notice) {
        let kind = notice.kind.action();
        tracing::info!(
            target: "apiportal::audit",
            audit = true,
            action = notice.reason,
            apikey = %format!("{}/{}", key.namespace().unwrap_or_default(), key.name_any()),
            apikey_uid = key.uid().unwrap_or_default(),
            product = %key.product_id(),
            plan = %key.spec.plan_tier,
            requested_by = %key.requester(),
            by = %notice.by,
            note = %notice.note,
            "apikey {kind}"
        );
        let event = Event {
            type_: if notice.warning { EventType::Warning } else { EventType::Normal },
            reason: notice.reason.into(),
            note: Some(notice.note.clone()),
            action: kind.into(),
            secondary: None,
        };
        if !notice.event {
            return;
        }
        if let Err(e) = self.recorder.publish(&event, &key.object_ref(&())).await {
            tracing::warn!(error = %e, reason = notice.reason, "cannot publish event");
        }
    }
}
