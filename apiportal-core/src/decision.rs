//! The writes people make to an APIKey's status, defined once for the plugin, the bridge and the tests: a
//! decision (`phase`, `reviewedBy`, `reviewedAt`, `reason`), a rotation request, a plan change and its decision. Each is one JSON merge patch
//! of the status subresource without a resourceVersion: the admission policy admits a decision only from the
//! phase it moves away from, so of two racing decisions exactly one is admitted, with no read-modify-write loop.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use crate::{KeyPhase, resources::apikey::PlanChange};

/// The patch that records `phase`, decided by `reviewer` at `at`.
pub fn decision_patch(phase: KeyPhase, reviewer: &str, at: Timestamp, reason: Option<&str>) -> Value {
    // `Time` writes whole seconds, as Kubernetes does: what is written compares equal to what is read back.
    json!({"status": {"phase": phase, "reviewedBy": reviewer, "reviewedAt": Time(at), "reason": reason}})
}

/// The patch that asks for value `generation` of a key (one more than the current), the previous value staying
/// valid for `grace` (jiff duration text such as `24h`).
pub fn rotation_patch(generation: i64, requested_by: &str, at: Timestamp, grace: &str) -> Value {
    json!({"status": {"rotationRequest": {"generation": generation, "requestedBy": requested_by, "requestedAt": Time(at), "grace": grace}}})
}

/// The patch that asks to move a key to `tier`, as `requested_by` at `at`. It is a new ask: whatever was decided on
/// an earlier one is cleared (`null` removes a field in a merge patch).
pub fn plan_change_patch(tier: &str, requested_by: &str, at: Timestamp) -> Value {
    json!({"status": {"planChange": {"tier": tier, "requestedBy": requested_by, "requestedAt": Time(at),
        "approved": null, "reviewedBy": null, "reviewedAt": null, "reason": null}}})
}

/// The patch that decides the plan change `asked` (as the reviewer saw it): approved or not, by `reviewer` at `at`.
/// It repeats the ask, so the decision cannot land on another ask written meanwhile: the admission policy refuses a
/// reviewer's write that changes what was asked.
pub fn plan_change_decision_patch(
    asked: &PlanChange,
    approved: bool,
    reviewer: &str,
    at: Timestamp,
    reason: Option<&str>,
) -> Value {
    json!({"status": {"planChange": {"tier": asked.tier, "requestedBy": asked.requested_by,
        "requestedAt": asked.requested_at, "approved": approved, "reviewedBy": reviewer, "reviewedAt": Time(at),
        "reason": reason}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_patch_sets_exactly_the_decision_fields() {
        let at: Timestamp = "2026-11-26T12:00:00.123Z".parse().unwrap();
        let patch = decision_patch(KeyPhase::Revoked, "bob", at, Some("leaked"));
        assert_eq!(
            patch,
            json!({"status": {"phase": "Revoked", "reviewedBy": "bob", "reviewedAt": "2026-11-26T12:00:00Z", "reason": "leaked"}})
        );
        let fields: Vec<&String> = patch["status"].as_object().unwrap().keys().collect();
        let mut expected: Vec<&str> = crate::APIKeyStatus::DECISION_FIELDS.to_vec();
        expected.sort();
        assert_eq!(fields, expected, "the patch writes the decision fields, nothing else");
    }

    #[test]
    fn a_plan_change_decision_repeats_the_ask_and_a_new_ask_clears_the_last_decision() {
        let at: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let ask = plan_change_patch("bronze", "alice", at);
        assert_eq!(ask["status"]["planChange"]["approved"], Value::Null);
        assert!(ask["status"]["planChange"].as_object().unwrap().contains_key("reviewedBy"), "cleared, not left");
        let asked: PlanChange = serde_json::from_value(ask["status"]["planChange"].clone()).unwrap();
        let decided = plan_change_decision_patch(&asked, true, "bob", at, None);
        assert_eq!(
            decided["status"]["planChange"],
            json!({"tier": "bronze", "requestedBy": "alice", "requestedAt": "2026-11-26T12:00:00Z", "approved": true,
                   "reviewedBy": "bob", "reviewedAt": "2026-11-26T12:00:00Z", "reason": null})
        );
    }
}
