//! The webhook's outbox, in the key's own status: each notice that has a CloudEvent type is recorded there by
//! the same status write that records what happened, and removed once the webhook has it (`crate::webhook`).
//! So a notification survives a restart of the bridge (delivered at least once), and a flood of one tenant's
//! notices only fills that tenant's keys' outboxes.

use apiportal_core::{APIKeyStatus, resources::apikey::OutboxEntry};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};

use super::{Notice, Observed, whole_seconds};

/// Records `notices` for the webhook; returns how many older entries had to be dropped to stay within the bound.
pub fn enqueue(o: &Observed, status: &mut APIKeyStatus, notices: &[Notice]) -> usize {
    if !o.settings.webhook {
        return 0;
    }
    let key_uid = o.key.metadata.uid.clone().unwrap_or_default();
    let at = Time(whole_seconds(o.now));
    for notice in notices {
        let Some(type_) = notice.kind.cloud_event_type() else { continue };
        let digest = Sha256::digest(format!("{key_uid}\0{type_}\0{}\0{}", at.0, notice.note).as_bytes());
        let id: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        if status.outbox.iter().any(|e| e.id == id) {
            continue;
        }
        status.outbox.push(OutboxEntry {
            id,
            r#type: type_.to_owned(),
            at: at.clone(),
            by: notice.by.clone(),
            reason: notice.reason.to_owned(),
            message: notice.note.clone(),
        });
    }
    let excess = status.outbox.len().saturating_sub(APIKeyStatus::OUTBOX_LIMIT);
    status.outbox.drain(..excess);
    excess
}
