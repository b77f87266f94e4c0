//! `routes` and `expose`: the HTTPRoutes the platform team lets owners build products on.

use apiportal_core::{APIProduct, issuance, labels, resources::httproute::HTTPRoute};
use kube::{
    Api, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use serde_json::json;

use super::{list_scoped, report, scope_text};
use crate::{
    cli::{DryRun, ExposeArgs, GlobalArgs, OutputFormat, RoutesArgs},
    error::Error,
    output::{Table, age, cell, print_list, print_object},
    paste::{Command, Value},
    session::Session,
};

/// How kubectl names an HTTPRoute in its output (`httproute.gateway.networking.k8s.io`).
fn httproute_kind() -> String {
    format!("{}.{}", HTTPRoute::kind(&()).to_lowercase(), HTTPRoute::group(&()))
}

fn is_exposed(route: &HTTPRoute) -> bool {
    route.labels().get(labels::EXPOSE).is_some_and(|v| v == "true")
}

pub async fn list(session: &Session, global: &GlobalArgs, args: &RoutesArgs) -> Result<(), Error> {
    let mut routes: Vec<HTTPRoute> = list_scoped(session, global.selector.as_deref(), "httproutes").await?;
    routes.retain(|r| args.all || is_exposed(r));
    routes.sort_by_key(|r| (r.namespace(), r.name_any()));
    // Which products wrap each route; owners may not be able to list products everywhere, so this is best effort.
    let products: Vec<APIProduct> = list_scoped(session, None, "apiproducts").await.unwrap_or_default();
    let all = session.all_namespaces;
    print_list(
        global.output,
        global.no_headers,
        &routes,
        || {
            let mut headers = vec!["NAME", "HOSTNAMES", "EXPOSED", "PRODUCTS", "AGE"];
            if all {
                headers.insert(0, "NAMESPACE");
            }
            let mut table = Table::new(headers).with_wide(vec!["ACCEPTED"]);
            for r in &routes {
                let wrapping: Vec<String> = products
                    .iter()
                    .filter(|p| p.namespace() == r.namespace() && p.spec.target_ref.name == r.name_any())
                    .map(|p| p.name_any())
                    .collect();
                let mut row = vec![
                    r.name_any(),
                    cell(Some(&r.spec.hostnames.join(","))),
                    is_exposed(r).to_string(),
                    cell(Some(&wrapping.join(","))),
                    age(r.metadata.creation_timestamp.as_ref(), jiff::Timestamp::now()),
                    r.is_accepted().to_string(),
                ];
                if all {
                    row.insert(0, r.namespace().unwrap_or_default());
                }
                table.rows.push(row);
            }
            table
        },
        |r| format!("{}/{}", httproute_kind(), r.name_any()),
        &format!(
            "{}{}",
            scope_text(session),
            if args.all { "" } else { " marked exposable (use --all for every route)" }
        ),
    )
}

pub async fn expose(session: &Session, global: &GlobalArgs, args: &ExposeArgs) -> Result<(), Error> {
    let (ns, name) = session.qualify(&args.route)?;
    let dry_run = args.dry_run.dry_run;
    let policy = args.product.as_deref().map(|p| issuance::product_auth_policy(&ns, &name, p, &args.key_prefix));
    if let (Some(policy), DryRun::Client, Some(format @ (OutputFormat::Json | OutputFormat::Yaml))) =
        (&policy, dry_run, global.output)
    {
        return print_object(policy, format);
    }
    let api: Api<HTTPRoute> = Api::namespaced(session.client.clone(), &ns);
    let doing = format!("expose httproute {ns}/{name}");
    let route =
        api.get_opt(&name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?.ok_or_else(|| {
            let routes = Command::apiportal("routes --all").flag("-n", Value::namespace(&ns));
            Error::NotFound(format!("httproute {name:?} not found in namespace {ns:?}; list routes with {routes}"))
        })?;
    let mut params = PatchParams { field_manager: Some(labels::PLUGIN_FIELD_MANAGER.into()), ..Default::default() };
    params.dry_run = dry_run == DryRun::Server;
    if is_exposed(&route) {
        report(&httproute_kind(), &name, "unchanged", dry_run);
    } else {
        if dry_run != DryRun::Client {
            let patch = json!({"metadata": {"labels": {labels::EXPOSE: "true"}}});
            api.patch(&name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::from_kube(e, &session.server, &doing))?;
        }
        report(&httproute_kind(), &name, "exposed", dry_run);
    }
    let Some(policy) = policy else { return Ok(()) };
    let policy_name = policy["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kuadrant.io", "v1", "AuthPolicy"), "authpolicies");
    let policies: Api<DynamicObject> = Api::namespaced_with(session.client.clone(), &ns, &resource);
    let doing = format!("apply authpolicy {ns}/{policy_name}");
    let before = policies.get_opt(&policy_name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    if dry_run != DryRun::Client {
        let apply = PatchParams { force: true, ..PatchParams::apply(labels::PLUGIN_FIELD_MANAGER) };
        let apply = PatchParams { dry_run: dry_run == DryRun::Server, ..apply };
        policies
            .patch(&policy_name, &apply, &Patch::Apply(&policy))
            .await
            .map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    }
    report("authpolicy.kuadrant.io", &policy_name, if before.is_some() { "configured" } else { "created" }, dry_run);
    Ok(())
}
