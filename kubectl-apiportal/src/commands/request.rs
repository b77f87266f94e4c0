//! `request`: a consumer asks for a key to one plan tier of a published product.

use std::time::{Duration, Instant};

use apiportal_core::{
    APIKey, APIKeySpec, KeyPhase,
    resources::apikey::{ProductRef, Requester},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, api::PostParams};

use super::{APIKEY_KIND, describe::get_product, report};
use crate::{
    cli::{DryRun, GlobalArgs, OutputFormat, RequestArgs},
    error::Error,
    output::print_object,
    session::Session,
};

pub async fn run(session: &Session, global: &GlobalArgs, args: &RequestArgs) -> Result<(), Error> {
    let (product_ns, product_name) = session.qualify(&args.product)?;
    let product = get_product(session, &product_ns, &product_name).await?;
    if !product.is_published() {
        return Err(Error::Invalid(format!(
            "product {product_ns}/{product_name} is a Draft: only published products take requests; ask its owner to run kubectl apiportal product publish {product_name} -n {product_ns}"
        )));
    }
    if product.plan(&args.plan).is_none() {
        let tiers: Vec<&str> = product.plans().iter().map(|p| p.tier.as_str()).collect();
        let offered = if tiers.is_empty() {
            "it offers no plans yet (the bridge has not found a PlanPolicy for its route)".to_owned()
        } else {
            format!("it offers: {}", tiers.join(", "))
        };
        return Err(Error::Invalid(format!(
            "product {product_ns}/{product_name} has no plan tier {:?}; {offered} (kubectl apiportal describe product {product_ns}/{product_name})",
            args.plan
        )));
    }
    let user = session.username().await?;
    let name = args.name.clone().unwrap_or_else(|| format!("{product_name}-{}", args.plan)).to_lowercase();
    let spec = APIKeySpec {
        api_product_ref: ProductRef { name: product_name.clone(), namespace: Some(product_ns.clone()) },
        plan_tier: args.plan.clone(),
        use_case: args.use_case.clone(),
        requested_by: Requester { user_id: user, email: args.email.clone() },
        expires_at: match args.expires_in {
            Some(d) => Some(Time(
                jiff::Timestamp::now()
                    .checked_add(
                        jiff::SignedDuration::try_from(d)
                            .map_err(|_| Error::Usage("--expires-in is too long".into()))?,
                    )
                    .map_err(|_| Error::Usage("--expires-in is too long".into()))?,
            )),
            None => None,
        },
    };
    let mut key = APIKey::new(&name, spec.clone());
    key.metadata.namespace = Some(session.namespace.clone());
    let api: Api<APIKey> = Api::namespaced(session.client.clone(), &session.namespace);
    let doing = format!("create apikey {}/{name}", session.namespace);

    let existing = api.get_opt(&name).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
    let dry_run = args.dry_run.dry_run;
    match existing {
        // A rerun computes a new expiry instant; the request is the same if everything else is.
        Some(current)
            if APIKeySpec { expires_at: None, ..current.spec.clone() }
                == APIKeySpec { expires_at: None, ..spec.clone() } =>
        {
            report(APIKEY_KIND, &name, "unchanged", dry_run)
        }
        Some(current) => {
            return Err(Error::Conflict(format!(
                "apikey {}/{name} already exists for {}/{} plan {:?}; choose another --name, or revoke it first with kubectl apiportal revoke {name} -n {}",
                session.namespace,
                current.product_namespace(),
                current.spec.api_product_ref.name,
                current.spec.plan_tier,
                session.namespace
            )));
        }
        None if dry_run == DryRun::Client => {
            if let Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) = global.output {
                return print_object(&key, format);
            }
            report(APIKEY_KIND, &name, "created", dry_run);
        }
        None => {
            let params = PostParams {
                dry_run: dry_run == DryRun::Server,
                field_manager: Some(apiportal_core::labels::PLUGIN_FIELD_MANAGER.into()),
            };
            let created = api.create(&params, &key).await.map_err(|e| Error::from_kube(e, &session.server, &doing))?;
            if let Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) = global.output {
                print_object(&created, format)?;
            } else {
                report(APIKEY_KIND, &name, "created", dry_run);
            }
        }
    }
    if let (Some(timeout), DryRun::None) = (args.wait, dry_run) {
        wait_for_decision(session, &api, &name, timeout).await?;
    }
    Ok(())
}

/// Waits until the request leaves Pending, and for an approved key until its Secret is recorded.
async fn wait_for_decision(session: &Session, api: &Api<APIKey>, name: &str, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let key =
            api.get(name).await.map_err(|e| Error::from_kube(e, &session.server, &format!("get apikey {name}")))?;
        let status = key.status.clone().unwrap_or_default();
        match key.phase() {
            KeyPhase::Approved if status.secret_ref.is_some() => {
                eprintln!(
                    "{APIKEY_KIND}/{name} approved; reveal the key with: kubectl apiportal key show {name} --reveal -n {}",
                    session.namespace
                );
                return Ok(());
            }
            KeyPhase::Rejected => {
                let reason = status.reason.map(|r| format!(": {r}")).unwrap_or_default();
                return Err(Error::Conflict(format!(
                    "{APIKEY_KIND}/{name} was rejected by {}{reason}",
                    status.reviewed_by.unwrap_or_default()
                )));
            }
            KeyPhase::Expired => return Err(Error::Conflict(format!("{APIKEY_KIND}/{name} has expired"))),
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(Error::Other(format!(
                "{APIKEY_KIND}/{name} is still {} after {}s; its reviewers see it with kubectl apiportal requests --pending, check it later with kubectl apiportal keys",
                key.phase(),
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
