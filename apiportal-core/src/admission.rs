//! The ValidatingAdmissionPolicy that makes decisions on APIKeys Kubernetes-native, the way
//! CertificateSigningRequests are approved: a decision is a write to `apikeys/status`, admitted only when the
//! writer may `approve` the referenced APIProduct, names themself as `reviewedBy`, and moves the key out of
//! Pending. The same policy makes `spec.requestedBy.userId` the creating user. The bridge's ServiceAccount is
//! the one exempt writer (automatic approvals, expiry, conditions).

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation,
    Variable,
};
use kube::api::ObjectMeta;

use crate::{GROUP, VERSION, bridge_username};

pub const POLICY_NAME: &str = "apiportal-apikey-decisions";

fn variable(name: &str, expression: &str) -> Variable {
    Variable { name: name.to_owned(), expression: expression.to_owned() }
}

fn validation(expression: &str, message_expression: &str) -> Validation {
    Validation {
        expression: expression.to_owned(),
        message_expression: Some(message_expression.to_owned()),
        reason: Some("Forbidden".to_owned()),
        ..Default::default()
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some([("app.kubernetes.io/part-of".to_owned(), "apiportal".to_owned())].into()),
        ..Default::default()
    }
}

pub fn policy() -> ValidatingAdmissionPolicy {
    // Every field access on status is guarded with has(): on a key's first decision oldObject.status may be
    // absent, and an erroring expression would deny with a confusing message.
    let variables = vec![
        variable(
            "productNamespace",
            "has(object.spec.apiProductRef.namespace) ? object.spec.apiProductRef.namespace : object.metadata.namespace",
        ),
        variable("productName", "object.spec.apiProductRef.name"),
        variable("isDecision", "has(request.subResource) && request.subResource == 'status'"),
        variable(
            "oldPhase",
            "request.operation == 'UPDATE' && has(oldObject.status) && has(oldObject.status.phase) ? oldObject.status.phase : 'Pending'",
        ),
        variable("newPhase", "has(object.status) && has(object.status.phase) ? object.status.phase : 'Pending'"),
    ];
    let validations = vec![
        validation(
            "request.operation != 'CREATE' || object.spec.requestedBy.userId == request.userInfo.username",
            "'spec.requestedBy.userId must be the requesting user \"' + request.userInfo.username + '\", not \"' + object.spec.requestedBy.userId + '\"'",
        ),
        validation(
            "!variables.isDecision || (variables.oldPhase == 'Pending' && variables.newPhase in ['Approved', 'Rejected'])",
            "'APIKey ' + object.metadata.namespace + '/' + object.metadata.name + ' is ' + variables.oldPhase + ': a decision can only move a Pending key to Approved or Rejected'",
        ),
        validation(
            "!variables.isDecision || (has(object.status.reviewedBy) && object.status.reviewedBy == request.userInfo.username)",
            "'status.reviewedBy must be the deciding user \"' + request.userInfo.username + '\"'",
        ),
        validation(
            "!variables.isDecision || authorizer.group('devportal.kuadrant.io').resource('apiproducts').namespace(variables.productNamespace).name(variables.productName).check('approve').allowed()",
            "'user \"' + request.userInfo.username + '\" may not decide requests for APIProduct ' + variables.productNamespace + '/' + variables.productName + ': that needs the approve verb on it (the apiportal-owner role in namespace ' + variables.productNamespace + ')'",
        ),
    ];
    ValidatingAdmissionPolicy {
        metadata: meta(POLICY_NAME),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".to_owned()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: Some(vec![GROUP.to_owned()]),
                    api_versions: Some(vec![VERSION.to_owned()]),
                    operations: Some(vec!["CREATE".to_owned(), "UPDATE".to_owned()]),
                    resources: Some(vec!["apikeys".to_owned(), "apikeys/status".to_owned()]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            match_conditions: Some(vec![MatchCondition {
                name: "not-the-bridge".to_owned(),
                expression: format!("request.userInfo.username != '{}'", bridge_username()),
            }]),
            variables: Some(variables),
            validations: Some(validations),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn binding() -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: meta(POLICY_NAME),
        spec: ValidatingAdmissionPolicyBindingSpec {
            policy_name: POLICY_NAME.to_owned(),
            validation_actions: vec!["Deny".to_owned()],
            ..Default::default()
        },
    }
}
