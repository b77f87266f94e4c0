//! `install`: apiportal's cluster-wide pieces, applied with server-side apply (field manager
//! `kubectl-apiportal`) so re-running install converges and never fights other managers silently.

use std::time::Duration;

use apiportal_core::{
    install::{InstallOptions, objects},
    kube_ext::KubeErrorExt,
    labels::PLUGIN_FIELD_MANAGER,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    runtime::{conditions, wait::await_condition},
};
use serde_json::Value;

use crate::{
    cli::{DryRun, GlobalArgs, InstallArgs, OutputFormat},
    error::Error,
    output::{print_data, say, serialize},
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
    if let Some(secret) = &args.tls_secret {
        options.tls_secret = secret.clone();
    }
    options
}

/// The view's certificate: a self-signed CA and a serving certificate for the bridge's Service, created once
/// (a later install keeps it) unless the platform named its own Secret. `ca.crt` is for the view's clients
/// (Backstage's `caFile`).
async fn ensure_tls_secret(session: &Session, args: &InstallArgs, dry_run: bool) -> Result<(), Error> {
    use k8s_openapi::api::core::v1::Secret;
    let name = args.tls_secret.as_deref().unwrap_or(apiportal_core::install::BRIDGE_TLS_SECRET);
    let secrets: Api<Secret> = Api::namespaced(session.client.clone(), apiportal_core::SYSTEM_NAMESPACE);
    let doing = format!("read secret {}/{name}", apiportal_core::SYSTEM_NAMESPACE);
    let existing = secrets.get_opt(name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    match (existing, &args.tls_secret) {
        (Some(_), _) => {
            say!("secret/{name} unchanged{}", if dry_run { " (server dry run)" } else { "" });
            Ok(())
        }
        (None, Some(_)) => Err(Error::NotFound(format!(
            "secret {}/{name} (--tls-secret) does not exist; create it (e.g. a cert-manager Certificate for {}) or leave --tls-secret out for a self-signed one",
            apiportal_core::SYSTEM_NAMESPACE,
            apiportal_core::install::bridge_dns_names().join(", ")
        ))),
        (None, None) => {
            let secret = self_signed_secret(name)?;
            let params = kube::api::PostParams { dry_run, ..Default::default() };
            match secrets.create(&params, &secret).await {
                Ok(_) => {}
                // A dry run creates no namespace, so nothing inside one this install would create can be checked.
                Err(e) if dry_run && apiportal_core::kube_ext::KubeErrorExt::is_not_found(&e) => {
                    say!("secret/{name} skipped (server dry run: its namespace does not exist yet)");
                    return Ok(());
                }
                Err(e) => {
                    let doing = format!("create secret {}/{name}", apiportal_core::SYSTEM_NAMESPACE);
                    return Err(Error::from_kube(e, &session.server, &doing));
                }
            }
            say!(
                "secret/{name} created (self-signed; clients trust its ca.crt){}",
                if dry_run { " (server dry run)" } else { "" }
            );
            Ok(())
        }
    }
}

fn self_signed_secret(name: &str) -> Result<k8s_openapi::api::core::v1::Secret, Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let failed = |e: rcgen::Error| Error::Other(format!("cannot generate the bridge's certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "apiportal-bridge CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
    let key = KeyPair::generate().map_err(failed)?;
    let mut leaf = CertificateParams::new(apiportal_core::install::bridge_dns_names()).map_err(failed)?;
    leaf.distinguished_name.push(DnType::CommonName, apiportal_core::install::BRIDGE_SERVICE);
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let cert = leaf.signed_by(&key, &issuer).map_err(failed)?;
    let data = |text: String| k8s_openapi::ByteString(text.into_bytes());
    Ok(k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(apiportal_core::SYSTEM_NAMESPACE.to_owned()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "apiportal".to_owned())].into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            [
                ("tls.crt".to_owned(), data(cert.pem())),
                ("tls.key".to_owned(), data(key.serialize_pem())),
                ("ca.crt".to_owned(), data(ca_cert.pem())),
            ]
            .into(),
        ),
        ..Default::default()
    })
}

/// The plural resource name of each kind install applies, from the types' own definitions.
fn plural(kind: &str) -> &'static str {
    use k8s_openapi::{
        Resource,
        api::{
            admissionregistration::v1::{
                MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding, ValidatingAdmissionPolicy,
                ValidatingAdmissionPolicyBinding,
            },
            apps::v1::Deployment,
            core::v1::{ConfigMap, Namespace, Service, ServiceAccount},
            rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
        },
        apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    };
    fn of<K: Resource>() -> (&'static str, &'static str) {
        (K::KIND, K::URL_PATH_SEGMENT)
    }
    [
        of::<CustomResourceDefinition>(),
        of::<ClusterRole>(),
        of::<ClusterRoleBinding>(),
        of::<Role>(),
        of::<RoleBinding>(),
        of::<ValidatingAdmissionPolicy>(),
        of::<ValidatingAdmissionPolicyBinding>(),
        of::<MutatingAdmissionPolicy>(),
        of::<MutatingAdmissionPolicyBinding>(),
        of::<Namespace>(),
        of::<ServiceAccount>(),
        of::<ConfigMap>(),
        of::<Deployment>(),
        of::<Service>(),
    ]
    .into_iter()
    .find(|(k, _)| *k == kind)
    .map(|(_, plural)| plural)
    .unwrap_or_else(|| unreachable!("install applies no {kind}"))
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
            print_data(&docs?.join("---\n"));
        }
        Some(OutputFormat::Json) => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            print_data(&serialize(&list, OutputFormat::Json)?);
        }
        _ => {
            for object in &objects {
                let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
                say!("{kind}/{} serverside-applied (dry run)", object["metadata"]["name"].as_str().unwrap_or_default());
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
        let before = match target.api.get_opt(&target.name).await {
            Ok(before) => before,
            // An API server older than Kubernetes 1.34 serves no MutatingAdmissionPolicy: the bridge then adds its
            // finalizer to each key itself, as it always did.
            Err(e)
                if e.is_not_found()
                    && object["kind"].as_str().is_some_and(|k| k.starts_with("MutatingAdmissionPolicy")) =>
            {
                say!(
                    "{} skipped (this API server serves no MutatingAdmissionPolicy; the bridge sets the finalizer itself)",
                    target.display
                );
                continue;
            }
            Err(e) => return Err(Error::from_kube(e, &session.server, &doing)),
        };
        let after = match target.api.patch(&target.name, &params, &Patch::Apply(&object)).await {
            Ok(after) => after,
            // A dry run creates no namespace, so objects inside one this install would create cannot be checked.
            Err(e) if dry_run && e.is_not_found() && e.message().starts_with("namespaces ") => {
                say!("{} skipped (server dry run: its namespace does not exist yet)", target.display);
                continue;
            }
            Err(e) => return Err(Error::from_kube(e, &session.server, &doing)),
        };
        let verb = match before {
            None => "created",
            Some(b) if b.metadata.resource_version == after.metadata.resource_version => "unchanged",
            Some(_) => "configured",
        };
        say!("{} {verb}{}", target.display, if dry_run { " (server dry run)" } else { "" });
        if object["kind"] == "CustomResourceDefinition" && !dry_run {
            wait_established(session, &target.name).await?;
        }
        if object["kind"] == "Namespace" && object["metadata"]["name"] == apiportal_core::SYSTEM_NAMESPACE {
            ensure_tls_secret(session, args, dry_run).await?;
        }
    }
    Ok(())
}

async fn wait_established(session: &Session, name: &str) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(session.client.clone());
    let established = await_condition(api, name, conditions::is_crd_established());
    match tokio::time::timeout(CRD_ESTABLISH_TIMEOUT, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Other(format!("cannot watch crd {name} become Established: {e}"))),
        Err(_) => Err(Error::Other(format!(
            "crd {name} is not Established after {}s; see kubectl describe crd {name}",
            CRD_ESTABLISH_TIMEOUT.as_secs()
        ))),
    }
}

/// How long a CRD may take to be served; the API server establishes one in about a second.
const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);
