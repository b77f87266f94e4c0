//! The writes people make to an APIKey's status, defined once for the plugin, the bridge and the tests: a
//! decision (`phase`, `reviewedBy`, `reviewedAt`, `reason`) and a rotation request. Each is one JSON merge patch
//! of the status subresource without a resourceVersion: the admission policy admits a decision only from the
//! phase it moves away from, so of two racing decisions exactly one is admitted, with no read-modify-write loop.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use crate::KeyPhase;

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
}
