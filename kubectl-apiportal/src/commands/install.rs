//! `install`: apiportal's cluster-wide pieces, applied with server-side apply (field manager
//! `kubectl-apiportal`) so re-running install converges and never fights other managers silently.

use std::time::{Duration, Instant};

use apiportal_core::{
    install::{InstallOptions, objects},
    labels::PLUGIN_FIELD_MANAGER,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use serde_json::Value;

use crate::{
    cli::{DryRun, GlobalArgs, InstallArgs, OutputFormat},
    error::Error,
    output::serialize,
    session::Session,
};

fn options(args: &InstallArgs) -> InstallOptions {
    let mut options = InstallOptions {
        enforcement_namespace: args.enforcement_namespace.clone(),
        replicas: args.replicas,
        ..Default::default()
    };
    if let Some(image) = &args.image {
        options.image = image.clone();
    }
    options
}

/// The plural resource name of each kind install applies.
fn plural(kind: &str) -> &'static str {
    match kind {
        "CustomResourceDefinition" => "customresourcedefinitions",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ValidatingAdmissionPolicy" => "validatingadmissionpolicies",
        "ValidatingAdmissionPolicyBinding" => "validatingadmissionpolicybindings",
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "Deployment" => "deployments",
        "Service" => "services",
        other => unreachable!("install applies no {other}"),
    }
}

pub(super) struct Target {
    pub api: Api<DynamicObject>,
    /// `kind.group/name`, as kubectl prints it.
    pub display: String,
    pub name: String,
}

pub(super) fn target(session: &Session, object: &Value) -> Target {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural(kind));
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let api = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(session.client.clone(), ns, &resource),
        None => Api::all_with(session.client.clone(), &resource),
    };
    let kind_group = if group.is_empty() { kind.to_lowercase() } else { format!("{}.{group}", kind.to_lowercase()) };
    Target { api, display: format!("{kind_group}/{name}"), name }
}

/// `install --dry-run=client`: print the manifests, or what would be applied.
pub fn print_manifests(global: &GlobalArgs, args: &InstallArgs) -> Result<(), Error> {
    let objects = objects(&options(args));
    match global.output {
        Some(OutputFormat::Yaml) => {
            let docs: Result<Vec<String>, Error> = objects.iter().map(|o| serialize(o, OutputFormat::Yaml)).collect();
            print!("{}", docs?.join("---\n"));
        }
        Some(OutputFormat::Json) => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            print!("{}", serialize(&list, OutputFormat::Json)?);
        }
        _ => {
            for object in &objects {
                let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
                println!(
                    "{kind}/{} serverside-applied (dry run)",
                    object["metadata"]["name"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

pub async fn install(session: &Session, _global: &GlobalArgs, args: &InstallArgs) -> Result<(), Error> {
    let dry_run = args.dry_run.dry_run == DryRun::Server;
    let mut params = PatchParams::apply(PLUGIN_FIELD_MANAGER).force();
    params.dry_run = dry_run;
    for object in objects(&options(args)) {
        let target = target(session, &object);
        let doing = format!("apply {}", target.display);
        let before =
            target.api.get_opt(&target.name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
        let after = match target.api.patch(&target.name, &params, &Patch::Apply(&object)).await {
            Ok(after) => after,
            // A dry run creates no namespace, so objects inside one this install would create cannot be checked.
            Err(kube::Error::Api(s)) if dry_run && s.code == 404 && s.message.starts_with("namespaces ") => {
                println!("{} skipped (server dry run: its namespace does not exist yet)", target.display);
                continue;
            }
            Err(e) => return Err(Error::from_kube(e, &session.server, &doing)),
        };
        let verb = match before {
            None => "created",
            Some(b) if b.metadata.resource_version == after.metadata.resource_version => "unchanged",
            Some(_) => "configured",
        };
        println!("{} {verb}{}", target.display, if dry_run { " (server dry run)" } else { "" });
        if object["kind"] == "CustomResourceDefinition" && !dry_run {
            wait_established(session, &target.name).await?;
        }
    }
    Ok(())
}

async fn wait_established(session: &Session, name: &str) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(session.client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let crd = api.get(name).await.map_err(|e| Error::from_kube(e, &session.server, &format!("get crd {name}")))?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"));
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "crd {name} is not Established after 60s; see kubectl describe crd {name}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
