//! `product create|publish|unpublish`: an owner's products.

use apiportal_core::{
    APIProduct, APIProductSpec, ApprovalMode, PublishStatus,
    labels::PLUGIN_FIELD_MANAGER,
    resources::{
        apiproduct::{Contact, Documentation, RouteTargetRef},
        httproute::HTTPRoute,
    },
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{APIPRODUCT_KIND, describe::get_product, report};
use crate::{
    cli::{Approval, DryRun, GlobalArgs, OutputFormat, ProductCreateArgs},
    error::Error,
    output::print_object,
    paste::{Command, Value},
    session::Session,
};

pub async fn create(session: &Session, global: &GlobalArgs, args: &ProductCreateArgs) -> Result<(), Error> {
    let ns = session.namespace.clone();
    let routes: Api<HTTPRoute> = Api::namespaced(session.client.clone(), &ns);
    let route = routes
        .get_opt(&args.route)
        .await
        .map_err(|e| Error::from_kube(e, &session.server, &format!("get httproute {ns}/{}", args.route)))?;
    if route.is_none() {
        return Err(Error::NotFound(format!(
            "httproute {:?} not found in namespace {ns:?}: a product wraps an existing route in its own namespace; list exposable routes with {}",
            args.route,
            Command::apiportal("routes").flag("-n", Value::namespace(&ns))
        )));
    }
    let documentation = (args.openapi_url.is_some() || args.docs_url.is_some()).then(|| Documentation {
        openapi_spec_url: args.openapi_url.clone(),
        docs_url: args.docs_url.clone(),
        ..Default::default()
    });
    let contact = (args.team.is_some() || args.email.is_some()).then(|| Contact {
        team: args.team.clone(),
        email: args.email.clone(),
        ..Default::default()
    });
    let spec = APIProductSpec {
        display_name: args.display_name.clone().unwrap_or_else(|| args.name.clone()),
        description: args.description.clone(),
        version: args.api_version.clone(),
        tags: args.tags.clone(),
        target_ref: RouteTargetRef::http_route(&args.route),
        approval_mode: match args.approval {
            Approval::Automatic => ApprovalMode::Automatic,
            Approval::Manual => ApprovalMode::Manual,
        },
        publish_status: if args.publish { PublishStatus::Published } else { PublishStatus::Draft },
        documentation,
        contact,
        max_keys_per_user: args.max_keys_per_user,
        max_key_lifetime: args.max_key_lifetime.clone(),
        max_rotation_grace: None,
    };
    let mut product = APIProduct::new(&args.name, spec.clone());
    product.metadata.namespace = Some(ns.clone());
    let products: Api<APIProduct> = Api::namespaced(session.client.clone(), &ns);
    let doing = format!("create apiproduct {ns}/{}", args.name);
    let dry_run = args.dry_run.dry_run;
    match products.get_opt(&args.name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))? {
        Some(current) if current.spec == spec => {
            report(APIPRODUCT_KIND, &args.name, "unchanged", dry_run);
            return Ok(());
        }
        Some(_) => {
            return Err(Error::Conflict(format!(
                "apiproduct {ns}/{} already exists with other settings; change it with {}, or publish it with {}",
                args.name,
                Command::new("kubectl edit apiproduct").arg(Value::name(&args.name)).flag("-n", Value::namespace(&ns)),
                publish_command(&args.name, &ns)
            )));
        }
        None => {}
    }
    if dry_run == DryRun::Client {
        if let Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) = global.output {
            return print_object(&product, format);
        }
        report(APIPRODUCT_KIND, &args.name, "created", dry_run);
        return Ok(());
    }
    let params = PostParams { dry_run: dry_run == DryRun::Server, field_manager: Some(PLUGIN_FIELD_MANAGER.into()) };
    let created = products.create(&params, &product).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    match global.output {
        Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) => print_object(&created, format),
        _ => {
            report(APIPRODUCT_KIND, &args.name, "created", dry_run);
            Ok(())
        }
    }
}

/// `kubectl apiportal product publish NAME -n NAMESPACE`.
pub fn publish_command(name: &str, namespace: &str) -> Command {
    Command::apiportal("product publish").arg(Value::name(name)).flag("-n", Value::namespace(namespace))
}

pub async fn set_published(session: &Session, reference: &str, published: bool, dry_run: DryRun) -> Result<(), Error> {
    let (ns, name) = session.qualify(reference)?;
    let product = get_product(session, &ns, &name).await?;
    let wanted = if published { PublishStatus::Published } else { PublishStatus::Draft };
    let verb = if published { "published" } else { "unpublished" };
    if product.spec.publish_status == wanted {
        report(APIPRODUCT_KIND, &name, "unchanged", dry_run);
        return Ok(());
    }
    if dry_run != DryRun::Client {
        let api: Api<APIProduct> = Api::namespaced(session.client.clone(), &ns);
        let mut params = PatchParams { field_manager: Some(PLUGIN_FIELD_MANAGER.into()), ..Default::default() };
        params.dry_run = dry_run == DryRun::Server;
        // Only publishStatus is written: a declarative toggle, so no precondition (the bridge's status writes would
        // otherwise make it fail for no reason a user could see).
        let patch = json!({"spec": {"publishStatus": wanted}});
        api.patch(&name, &params, &Patch::Merge(&patch)).await.map_err(|e| {
            Error::from_kube(
                e,
                &session.server,
                &format!("{} apiproduct {ns}/{name}", if published { "publish" } else { "unpublish" }),
            )
        })?;
    }
    report(APIPRODUCT_KIND, &name, verb, dry_run);
    Ok(())
}
