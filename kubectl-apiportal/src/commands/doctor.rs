//! `doctor`: what is missing for apiportal to work, each problem with the command that fixes it.

use apiportal_core::{
    APIKey, APIProduct, SYSTEM_NAMESPACE, admission,
    install::BRIDGE_DEPLOYMENT,
    resources::{authpolicy::AuthPolicy, conditions, httproute::HTTPRoute, planpolicy::PlanPolicy},
};
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingAdmissionPolicy, apps::v1::Deployment, coordination::v1::Lease,
};
use kube::{Api, Resource, ResourceExt};

use super::{list_scoped, scope_text};
use crate::{
    error::Error,
    output::say,
    paste::{Command, Value},
    session::Session,
};

use apiportal_core::LEASE_NAME as BRIDGE_LEASE;

/// The `apiVersion` and plural of `K`, from its `Resource` impl (the one place they are defined).
fn api_resource<K: Resource<DynamicType = ()>>() -> (String, String) {
    (K::api_version(&()).into_owned(), K::plural(&()).into_owned())
}

#[derive(Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str) {
        say!("[ok]      {what}");
    }
    fn problem(&mut self, what: &str, fix: &str) {
        self.problems += 1;
        say!("[problem] {what}");
        say!("          fix: {fix}");
    }
    fn note(&self, what: &str) {
        say!("[skipped] {what}");
    }
}

/// `namespace_flag` is `-n` as given: without it, rights are checked in the context's namespace.
pub async fn run(session: &Session, namespace_flag: Option<&str>) -> Result<(), Error> {
    let mut report = Report::default();
    match session.client.apiserver_version().await {
        Ok(v) => report.ok(&format!("API server {} reachable (version {})", session.server, v.git_version)),
        Err(e) => return Err(Error::from_kube(e, &session.server, "reach the API server")),
    }

    // Discovery is open to every authenticated user, so this works whatever the caller's role.
    let wanted = [
        (api_resource::<APIProduct>(), "kubectl apiportal install"),
        (api_resource::<APIKey>(), "kubectl apiportal install"),
        (
            api_resource::<HTTPRoute>(),
            "install Gateway API's CRDs (kubectl apply -f standard-install.yaml from the Gateway API release)",
        ),
        (api_resource::<AuthPolicy>(), "install Kuadrant (its operator ships the AuthPolicy CRD)"),
        (api_resource::<PlanPolicy>(), "install Kuadrant with its PlanPolicy extension"),
    ];
    for ((group_version, resource), fix) in wanted {
        let (group_version, resource) = (group_version.as_str(), resource.as_str());
        let found = session
            .client
            .list_api_group_resources(group_version)
            .await
            .is_ok_and(|list| list.resources.iter().any(|r| r.name == resource));
        if found {
            report.ok(&format!("CRD for {resource} ({group_version}) installed"));
        } else {
            report.problem(&format!("CRD for {resource} ({group_version}) is not installed"), fix);
        }
    }

    let policies: Api<ValidatingAdmissionPolicy> = Api::all(session.client.clone());
    match policies.get_opt(admission::POLICY_NAME).await {
        Ok(Some(_)) => report.ok("admission policy guarding decisions installed"),
        Ok(None) => report.problem(
            "admission policy guarding decisions is missing: anyone with status rights could approve",
            "kubectl apiportal install",
        ),
        Err(_) => report.note("admission policy: you may not read ValidatingAdmissionPolicies"),
    }

    let leases: Api<Lease> = Api::namespaced(session.client.clone(), SYSTEM_NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(session.client.clone(), SYSTEM_NAMESPACE);
    match (leases.get_opt(BRIDGE_LEASE).await, deployments.get_opt(BRIDGE_DEPLOYMENT).await) {
        (Ok(Some(lease)), _) if lease_is_fresh(&lease) => {
            let holder = lease.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            report.ok(&format!("bridge is running (leader {holder})"));
        }
        (_, Ok(Some(d))) if d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) > 0 => {
            report.ok("bridge Deployment has available replicas")
        }
        (Err(_), Err(_)) => report.note("bridge: you may not read its Lease or Deployment in apiportal-system"),
        _ => report.problem(
            "the bridge is not running: no replica holds its Lease, so no key is issued and no product is discovered",
            &format!("kubectl apiportal install, then kubectl -n {SYSTEM_NAMESPACE} get pods; logs: kubectl -n {SYSTEM_NAMESPACE} logs deploy/{BRIDGE_DEPLOYMENT}"),
        ),
    }

    match list_scoped::<APIProduct>(session, None, "apiproducts").await {
        Ok(products) => {
            for p in products {
                check_product(&mut report, &p);
            }
        }
        Err(e) => report.note(&format!("products{}: {e}", scope_text(session))),
    }

    let ns = session.namespace.clone();
    let mut any_right = false;
    let mut approver = false;
    for (verb, resource, role) in [
        ("list", "apiproducts", "apiportal-consumer or apiportal-catalog-reader"),
        ("create", "apikeys", "apiportal-consumer (RoleBinding in your namespace)"),
        ("approve", "apiproducts", "apiportal-owner (RoleBinding in the product namespace)"),
    ] {
        let allowed = session.may(verb, resource, &ns, None).await?;
        any_right |= allowed;
        approver |= allowed && verb == "approve";
        if allowed {
            report.ok(&format!("you may {verb} {resource} in namespace {ns}"));
        } else {
            say!("[info]    you may not {verb} {resource} in namespace {ns} (granted by {role})");
        }
    }
    if approver {
        // Owners read the requests for their products in their own namespace, and write decisions on the keys in
        // consumers' namespaces without reading them.
        let (read, decide) = (
            session.may("list", "apikeyrequests", &ns, None).await?,
            session.may("patch", "apikeys/status", "", None).await?,
        );
        if read {
            report.ok(&format!("you may read the requests for the products of namespace {ns}"));
        } else {
            report.problem(
                &format!("you may approve products in namespace {ns} but not read their requests (apikeyrequests)"),
                &format!("bind {} to you in namespace {ns} (it grants both)", apiportal_core::rbac::OWNER_ROLE),
            );
        }
        if decide {
            report.ok("you may write decisions on keys in consumers' namespaces");
        } else {
            report.problem(
                "you may approve products but not write decisions on the keys in consumers' namespaces (patch apikeys/status)",
                &format!(
                    "bind {} to you cluster-wide (a ClusterRoleBinding); it writes decisions and reads no key",
                    apiportal_core::rbac::REVIEWER_ROLE
                ),
            );
        }
    }
    if !any_right && namespace_flag.is_none() {
        // Roles are bound per namespace, and no user may list the bindings that name them.
        say!(
            "[info]    rights were checked in namespace {ns} (your context's); if your roles are bound elsewhere, run kubectl apiportal doctor -n NAMESPACE"
        );
    }

    if report.problems > 0 {
        return Err(Error::Other(format!("{} problem(s) found", report.problems)));
    }
    Ok(())
}

fn check_product(report: &mut Report, p: &APIProduct) {
    let id = format!("product {}/{}", p.namespace().unwrap_or_default(), p.name_any());
    let ns = p.namespace().unwrap_or_default();
    let route = &p.spec.target_ref.name;
    if p.status.is_none() {
        report.problem(
            &format!("{id} has no status yet: the bridge has not reconciled it"),
            "check that the bridge is running (above)",
        );
        return;
    }
    let checks = [
        (
            "Ready",
            format!(
                "check httproute {ns}/{route} exists and a Gateway accepted it: {}",
                Command::new("kubectl describe httproute").arg(Value::name(route)).flag("-n", Value::namespace(&ns))
            ),
        ),
        (
            "PlanPolicyDiscovered",
            format!(
                "create a PlanPolicy targeting httproute {ns}/{route} (or its Gateway) with the tiers consumers may request"
            ),
        ),
        (
            "AuthPolicyDiscovered",
            format!(
                "create an AuthPolicy targeting httproute {ns}/{route} (or its Gateway) with an apiKey or jwt authentication rule"
            ),
        ),
    ];
    let keys_fix = format!(
        "make the AuthPolicy of httproute {ns}/{route} select keys by labels naming this product: {}: {}, {}: {ns} ({} prints one)",
        apiportal_core::labels::APIPRODUCT,
        p.name_any(),
        apiportal_core::labels::APIPRODUCT_NAMESPACE,
        Command::apiportal("expose")
            .arg(Value::name(route))
            .flag("-n", Value::namespace(&ns))
            .flag("--product", Value::name(&p.name_any()))
    );
    let jwt_only =
        conditions::find(p.conditions(), "KeysIssuable").is_some_and(|c| c.reason == "NoAPIKeyAuthentication");
    let checks = checks.into_iter().chain((!jwt_only).then_some(("KeysIssuable", keys_fix)));
    for (type_, fix) in checks {
        match conditions::find(p.conditions(), type_) {
            Some(c) if c.status == "True" => report.ok(&format!("{id}: {type_}")),
            Some(c) => report.problem(&format!("{id}: {type_} is {} ({}: {})", c.status, c.reason, c.message), &fix),
            None => report.problem(&format!("{id}: {type_} not reported yet"), &fix),
        }
    }
}

fn lease_is_fresh(lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else { return false };
    let (Some(renewed), Some(duration)) = (&spec.renew_time, spec.lease_duration_seconds) else { return false };
    jiff::Timestamp::now().as_second() - renewed.0.as_second() <= i64::from(duration) * 2
}
