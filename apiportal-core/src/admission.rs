//! The ValidatingAdmissionPolicy that makes decisions on APIKeys Kubernetes-native, the way
//! CertificateSigningRequests are approved: a decision is a write to `apikeys/status`. Who may write what:
//! - creating an APIKey: `spec.requestedBy.userId` must be the creating user;
//! - a decision (`phase`, `reviewedBy`, `reviewedAt`, `reason`): only a user who may `approve` the referenced
//!   APIProduct, naming themself as reviewer, along the key's life: Pending to Approved or Rejected, Approved to
//!   Suspended (with a reason) or Revoked (with a reason), Suspended to Approved (resumed) or Revoked;
//! - a rotation request (`rotationRequest`): a user who may delete APIKeys in the key's namespace (its
//!   consumers) or approve its product, naming themself, for the next value of an issued, Approved key;
//! - a plan change (`planChange`): asked for by the same users, naming themself, for an Approved key and a tier
//!   other than the one in force; decided once by a user who may `approve` the product, naming themself;
//! - every other status field: the bridge only;
//! - no status write at all from anyone else, not even one that changes nothing (it would read the key).
//!
//! A second policy holds the status of APIProducts (and the request projections owners read) to the bridge: the
//! key controller trusts what the product's status says about where keys may be issued.
//!
//! The bridge's ServiceAccount is exempt from the rules about who, not from the phase transitions: whoever
//! writes second loses, whatever the order, so concurrent decisions can never both win.

use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation, Variable,
};
use kube::api::ObjectMeta;

use crate::{APIKeyStatus, GROUP, VERSION, bridge_username};

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

/// A rule matching `operations` on `resources` of apiportal's own group and version.
fn rule(operations: &[&str], resources: &[&str]) -> NamedRuleWithOperations {
    NamedRuleWithOperations {
        api_groups: Some(vec![GROUP.to_owned()]),
        api_versions: Some(vec![VERSION.to_owned()]),
        operations: Some(operations.iter().map(|o| (*o).to_owned()).collect()),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
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

/// `status.<field>` is present on `object` (the new object) or `oldObject`. Every access is guarded with has():
/// on a key's first status write `oldObject.status` may be absent, and an erroring expression denies with a
/// confusing message.
fn present(object: &str, field: &str) -> String {
    format!("(has({object}.status) && has({object}.status.{field}))")
}

/// `status.<field>` is the same before and after the write (both absent, or equal).
fn unchanged(field: &str) -> String {
    let (new, old) = (present("object", field), present("oldObject", field));
    format!("({new} == {old} && (!{new} || object.status.{field} == oldObject.status.{field}))")
}

pub fn policy() -> ValidatingAdmissionPolicy {
    let bridge = bridge_username();
    let variables = vec![
        variable("isBridge", &format!("request.userInfo.username == '{bridge}'")),
        variable(
            "isStatus",
            "request.operation == 'UPDATE' && has(request.subResource) && request.subResource == 'status'",
        ),
        variable("userStatusWrite", "variables.isStatus && !variables.isBridge"),
        variable(
            "productNamespace",
            "has(object.spec.apiProductRef.namespace) ? object.spec.apiProductRef.namespace : object.metadata.namespace",
        ),
        variable("productName", "object.spec.apiProductRef.name"),
        variable(
            "oldPhase",
            &format!("variables.isStatus && {} ? oldObject.status.phase : 'Pending'", present("oldObject", "phase")),
        ),
        variable("newPhase", &format!("{} ? object.status.phase : 'Pending'", present("object", "phase"))),
        variable("phaseChanged", "variables.isStatus && variables.oldPhase != variables.newPhase"),
        variable(
            "mayApprove",
            "authorizer.group('devportal.kuadrant.io').resource('apiproducts').namespace(variables.productNamespace).name(variables.productName).check('approve').allowed()",
        ),
        variable("rotationRequested", &format!("variables.isStatus && !{}", unchanged("rotationRequest"))),
        variable(
            "mayConsume",
            "authorizer.group('devportal.kuadrant.io').resource('apikeys').namespace(object.metadata.namespace).check('delete').allowed()",
        ),
        variable("planChangeWritten", &format!("variables.isStatus && !{}", unchanged("planChange"))),
        variable(
            "planChangeAsked",
            &format!(
                "variables.planChangeWritten && {} && (!{} || {})",
                present("object", "planChange"),
                present("oldObject", "planChange"),
                ["tier", "requestedBy", "requestedAt"]
                    .map(|f| format!("object.status.planChange.{f} != oldObject.status.planChange.{f}"))
                    .join(" || ")
            ),
        ),
        variable(
            "tierInForce",
            &format!("{} ? object.status.planTier : object.spec.planTier", present("object", "planTier")),
        ),
    ];
    let who = "'user \"' + request.userInfo.username + '\"'";
    let key = "'APIKey ' + object.metadata.namespace + '/' + object.metadata.name";
    let mut validations = vec![
        validation(
            "request.operation != 'CREATE' || variables.isBridge || object.spec.requestedBy.userId == request.userInfo.username",
            "'spec.requestedBy.userId must be the requesting user \"' + request.userInfo.username + '\", not \"' + object.spec.requestedBy.userId + '\"'",
        ),
        validation(
            "!variables.phaseChanged || (variables.oldPhase == 'Pending' && variables.newPhase in ['Approved', 'Rejected']) || (variables.oldPhase == 'Approved' && variables.newPhase in ['Suspended', 'Revoked']) || (variables.oldPhase == 'Suspended' && variables.newPhase in ['Approved', 'Revoked']) || (variables.isBridge && variables.oldPhase in ['Pending', 'Approved', 'Suspended'] && variables.newPhase == 'Expired')",
            &format!(
                "{key} + ' is ' + variables.oldPhase + ': a decision moves a Pending key to Approved or Rejected, an Approved key to Suspended or Revoked, a Suspended key to Approved (resumed) or Revoked; a ' + variables.oldPhase + ' key stays so (the consumer may request again)'"
            ),
        ),
        validation(
            "!variables.phaseChanged || !(variables.newPhase in ['Revoked', 'Suspended']) || (has(object.status.reason) && size(object.status.reason) > 0)",
            &format!("'moving ' + {key} + ' to ' + variables.newPhase + ' needs a reason: the consumer reads it'"),
        ),
        validation(
            "!variables.userStatusWrite || !variables.phaseChanged || (has(object.status.reviewedBy) && object.status.reviewedBy == request.userInfo.username && has(object.status.reviewedAt))",
            "'status.reviewedBy must be the deciding user \"' + request.userInfo.username + '\", with status.reviewedAt'",
        ),
        validation(
            "!variables.userStatusWrite || !variables.phaseChanged || variables.mayApprove",
            &format!(
                "{who} + ' may not decide requests for APIProduct ' + variables.productNamespace + '/' + variables.productName + ': that needs the approve verb on it (the apiportal-owner role in namespace ' + variables.productNamespace + ')'"
            ),
        ),
        validation(
            &format!(
                "!variables.userStatusWrite || variables.phaseChanged || ({} && {} && {})",
                unchanged("reviewedBy"),
                unchanged("reviewedAt"),
                unchanged("reason")
            ),
            "'status.reviewedBy, reviewedAt and reason change only with a decision (a change of status.phase)'",
        ),
        validation(
            &format!(
                "!variables.userStatusWrite || !variables.rotationRequested || (variables.newPhase == 'Approved' && !variables.phaseChanged && {} && {} && object.status.rotationRequest.generation == object.status.issued.generation + 1)",
                present("object", "rotationRequest"),
                present("object", "issued")
            ),
            &format!(
                "'a rotation of ' + {key} + ' asks for the next value (status.rotationRequest.generation = status.issued.generation + 1) of an Approved key whose value was issued, and the previous rotation must be done'"
            ),
        ),
        validation(
            "!variables.userStatusWrite || !variables.rotationRequested || object.status.rotationRequest.requestedBy == request.userInfo.username",
            "'status.rotationRequest.requestedBy must be the requesting user \"' + request.userInfo.username + '\"'",
        ),
        validation(
            "!variables.userStatusWrite || !variables.rotationRequested || variables.mayApprove || variables.mayConsume",
            &format!(
                "{who} + ' may not rotate ' + {key} + ': that needs the rights of its consumers (apiportal-consumer in namespace ' + object.metadata.namespace + ') or of its approvers'"
            ),
        ),
        validation(
            &format!(
                "!variables.userStatusWrite || !variables.planChangeWritten || {}",
                present("object", "planChange")
            ),
            "'status.planChange is cleared only by the apiportal bridge'",
        ),
        validation(
            "!variables.userStatusWrite || !variables.planChangeAsked || (variables.newPhase == 'Approved' && !variables.phaseChanged && object.status.planChange.requestedBy == request.userInfo.username && !has(object.status.planChange.approved) && !has(object.status.planChange.reviewedBy) && !has(object.status.planChange.reviewedAt) && object.status.planChange.tier != variables.tierInForce)",
            &format!(
                "'a plan change of ' + {key} + ' asks, as the requesting user \"' + request.userInfo.username + '\" (status.planChange.requestedBy), for a tier other than the one in force (' + variables.tierInForce + ') of an Approved key, without deciding it'"
            ),
        ),
        validation(
            "!variables.userStatusWrite || !variables.planChangeAsked || variables.mayApprove || variables.mayConsume",
            &format!(
                "{who} + ' may not change the plan of ' + {key} + ': that needs the rights of its consumers (apiportal-consumer in namespace ' + object.metadata.namespace + ') or of its approvers'"
            ),
        ),
        validation(
            "!variables.userStatusWrite || !variables.planChangeWritten || variables.planChangeAsked || (variables.mayApprove && !has(oldObject.status.planChange.approved) && has(object.status.planChange.approved) && has(object.status.planChange.reviewedBy) && object.status.planChange.reviewedBy == request.userInfo.username && has(object.status.planChange.reviewedAt))",
            &format!(
                "'a decision on the plan change of ' + {key} + ' is made once, by a user who may approve APIProduct ' + variables.productNamespace + '/' + variables.productName + ', naming themself in status.planChange.reviewedBy, with approved and reviewedAt'"
            ),
        ),
    ];
    validations.extend(APIKeyStatus::BRIDGE_FIELDS.iter().map(|field| {
        validation(
            &format!("!variables.userStatusWrite || {}", unchanged(field)),
            &format!("'status.{field} is written only by the apiportal bridge (' + request.userInfo.username + ' may write the decision fields ' + '{}' + ')'", APIKeyStatus::DECISION_FIELDS.join(", ")),
        )
    }));
    // Last, so a more precise refusal above is the one reported. The API server answers every admitted write with
    // the object: a write that changes nothing would let anyone with `patch` on apikeys/status (every owner, through
    // the reviewer role) read any APIKey.
    validations.push(validation(
        "!variables.userStatusWrite || variables.mayApprove || variables.mayConsume",
        &format!(
            "{who} + ' may not write the status of ' + {key} + ': only its consumers (apiportal-consumer in namespace ' + object.metadata.namespace + ') and the approvers of APIProduct ' + variables.productNamespace + '/' + variables.productName + ' may'"
        ),
    ));
    ValidatingAdmissionPolicy {
        metadata: meta(POLICY_NAME),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".to_owned()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![rule(&["CREATE", "UPDATE"], &["apikeys", "apikeys/status"])]),
                ..Default::default()
            }),
            // The bridge's own status writes that move no phase are not evaluated at all: every rule they could
            // break is about who decides (the bridge's phase changes are still judged, like everyone's).
            match_conditions: Some(vec![k8s_openapi::api::admissionregistration::v1::MatchCondition {
                name: "not-a-bridge-status-write-without-a-decision".to_owned(),
                expression: format!(
                    "!(request.userInfo.username == '{bridge}' && has(request.subResource) && request.subResource == 'status' && (has(object.status) && has(object.status.phase) ? object.status.phase : 'Pending') == (has(oldObject.status) && has(oldObject.status.phase) ? oldObject.status.phase : 'Pending'))"
                ),
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

/// The policy that holds key requests to their product's `maxKeyLifetime`. The API server cannot read the product
/// while admitting an APIKey, so the bridge mirrors every product's cap into one ConfigMap (`KEY_LIFETIMES`, in the
/// bridge's namespace), which the binding hands the policy as its parameter. It fails closed: without the
/// ConfigMap (which `install` creates, empty, and the bridge keeps) no APIKey is admitted, since a cap could not
/// be checked; the bridge refuses to issue keys beyond the cap in any case.
pub const LIFETIME_POLICY_NAME: &str = "apiportal-apikey-lifetime";
/// The ConfigMap of caps: `<product namespace>.<product name>` → seconds.
pub const KEY_LIFETIMES: &str = "apiportal-key-lifetimes";

/// The ConfigMap key of a product's cap (a namespace has no dots, so the first one splits it again).
pub fn lifetime_entry(product_namespace: &str, product: &str) -> String {
    format!("{product_namespace}.{product}")
}

/// The product (namespace, name) a ConfigMap key of `lifetime_entry` names.
pub fn lifetime_entry_product(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('.').filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
}

pub fn lifetime_policy() -> ValidatingAdmissionPolicy {
    ValidatingAdmissionPolicy {
        metadata: meta(LIFETIME_POLICY_NAME),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".to_owned()),
            param_kind: Some(k8s_openapi::api::admissionregistration::v1::ParamKind {
                api_version: Some("v1".to_owned()),
                kind: Some("ConfigMap".to_owned()),
            }),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![rule(&["CREATE"], &["apikeys"])]),
                ..Default::default()
            }),
            variables: Some(vec![
                variable(
                    "product",
                    "(has(object.spec.apiProductRef.namespace) ? object.spec.apiProductRef.namespace : object.metadata.namespace) + '.' + object.spec.apiProductRef.name",
                ),
                variable("capped", "params != null && has(params.data) && variables.product in params.data"),
            ]),
            validations: Some(vec![Validation {
                // creationTimestamp is set before admission: the key may live at most the cap from its creation.
                expression: "!variables.capped || (has(object.spec.expiresAt) && timestamp(object.spec.expiresAt) - timestamp(object.metadata.creationTimestamp) <= duration(params.data[variables.product] + 's'))".to_owned(),
                message_expression: Some("'APIProduct ' + variables.product.replace('.', '/', 1) + ' issues keys for at most ' + params.data[variables.product] + ' seconds: set spec.expiresAt at most that long after now (kubectl apiportal request --expires-in)'".to_owned()),
                reason: Some("Invalid".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The binding, reading the caps from the ConfigMap in `namespace`: the namespace the bridge runs (and writes
/// the ConfigMap) in.
pub fn lifetime_binding(namespace: &str) -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: meta(LIFETIME_POLICY_NAME),
        spec: ValidatingAdmissionPolicyBindingSpec {
            policy_name: LIFETIME_POLICY_NAME.to_owned(),
            validation_actions: vec!["Deny".to_owned()],
            param_ref: Some(k8s_openapi::api::admissionregistration::v1::ParamRef {
                name: Some(KEY_LIFETIMES.to_owned()),
                namespace: Some(namespace.to_owned()),
                parameter_not_found_action: Some("Deny".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// The policy that keeps the status of APIProducts and the request projections (`APIKeyRequest`) the bridge's alone:
/// the key controller trusts a product's status (where its keys may be issued, the tiers it offers), and owners
/// read the projections to decide. Anyone else, even with wildcard rights in a namespace, is refused.
pub const BRIDGE_OWNED_POLICY_NAME: &str = "apiportal-bridge-owned";

pub fn bridge_owned_policy() -> ValidatingAdmissionPolicy {
    let bridge = bridge_username();
    ValidatingAdmissionPolicy {
        metadata: meta(BRIDGE_OWNED_POLICY_NAME),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".to_owned()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![
                    rule(&["UPDATE"], &["apiproducts/status"]),
                    rule(&["CREATE", "UPDATE", "DELETE"], &["apikeyrequests", "apikeyrequests/status"]),
                ]),
                ..Default::default()
            }),
            // The bridge's own writes are not evaluated at all: they need no judging, and the API server saves
            // the evaluation on every one of them.
            match_conditions: Some(vec![k8s_openapi::api::admissionregistration::v1::MatchCondition {
                name: "not-the-bridge".to_owned(),
                expression: format!("request.userInfo.username != '{bridge}'"),
            }]),
            validations: Some(vec![
                validation(
                    "request.resource.resource != 'apiproducts' || (has(object.status) == has(oldObject.status) && (!has(object.status) || object.status == oldObject.status))",
                    "'the status of APIProduct ' + oldObject.metadata.namespace + '/' + oldObject.metadata.name + ' is written only by the apiportal bridge: it says where the product\\'s keys may be issued'",
                ),
                validation(
                    "request.resource.resource != 'apikeyrequests'",
                    "'APIKeyRequests are the apiportal bridge\\'s read-only projections of APIKeys: decide on the APIKey itself (kubectl apiportal approve NAMESPACE/NAME)'",
                ),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn bridge_owned_binding() -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: meta(BRIDGE_OWNED_POLICY_NAME),
        spec: ValidatingAdmissionPolicyBindingSpec {
            policy_name: BRIDGE_OWNED_POLICY_NAME.to_owned(),
            validation_actions: vec!["Deny".to_owned()],
            ..Default::default()
        },
    }
}

/// The policy that gives every APIKey the bridge's finalizer as it is created, so the bridge never spends a write
/// on it (a MutatingAdmissionPolicy, served by Kubernetes 1.34 and later; on an older API server the bridge adds
/// the finalizer itself before issuing a key, as it always did).
pub const FINALIZER_POLICY_NAME: &str = "apiportal-apikey-finalizer";

pub fn finalizer_policy() -> k8s_openapi::api::admissionregistration::v1::MutatingAdmissionPolicy {
    use k8s_openapi::api::admissionregistration::v1::{
        ApplyConfiguration, MutatingAdmissionPolicy, MutatingAdmissionPolicySpec, Mutation,
    };
    MutatingAdmissionPolicy {
        metadata: meta(FINALIZER_POLICY_NAME),
        spec: Some(MutatingAdmissionPolicySpec {
            failure_policy: Some("Fail".to_owned()),
            reinvocation_policy: Some("Never".to_owned()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![rule(&["CREATE"], &["apikeys"])]),
                ..Default::default()
            }),
            mutations: Some(vec![Mutation {
                patch_type: "ApplyConfiguration".to_owned(),
                // Finalizers merge as a set: the bridge's is added beside any others.
                apply_configuration: Some(ApplyConfiguration {
                    expression: Some(format!(
                        "Object{{metadata: Object.metadata{{finalizers: ['{}']}}}}",
                        crate::labels::APIKEY_FINALIZER
                    )),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

pub fn finalizer_binding() -> k8s_openapi::api::admissionregistration::v1::MutatingAdmissionPolicyBinding {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingAdmissionPolicyBinding, MutatingAdmissionPolicyBindingSpec,
    };
    MutatingAdmissionPolicyBinding {
        metadata: meta(FINALIZER_POLICY_NAME),
        spec: Some(MutatingAdmissionPolicyBindingSpec {
            policy_name: Some(FINALIZER_POLICY_NAME.to_owned()),
            ..Default::default()
        }),
    }
}
