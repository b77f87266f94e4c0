//! `request`: a consumer asks for a key to one plan tier of a published product.

use std::time::Duration;

use apiportal_core::{
    APIKey, APIKeySpec, KeyPhase,
    reason::ConditionType,
    resources::apikey::{ProductRef, Requester},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, api::PostParams, runtime::wait::await_condition};

use super::{APIKEY_KIND, describe::get_product, report};
use crate::{
    cli::{DryRun, GlobalArgs, OutputFormat, RequestArgs},
    error::Error,
    output::{print_object, tell},
    paste::{Command, Value},
    session::Session,
};

pub async fn run(session: &Session, global: &GlobalArgs, args: &RequestArgs) -> Result<(), Error> {
    let (product_ns, product_name) = session.qualify(&args.product)?;
    let product = get_product(session, &product_ns, &product_name).await?;
    if !product.is_published() {
        return Err(Error::Invalid(format!(
            "product {product_ns}/{product_name} is a Draft: only published products take requests; ask its owner to run {}",
            super::product::publish_command(&product_name, &product_ns)
        )));
    }
    product.offered_plan(&args.plan).map_err(|m| {
        let describe = Command::apiportal("describe product").reference(&product_ns, &product_name);
        Error::Invalid(format!("{m} ({describe})"))
    })?;
    // A product that caps key lifetime takes only requests that expire within it: ask for the longest allowed.
    let max_lifetime = match product.spec.max_key_lifetime.as_deref() {
        Some(text) => Some(
            apiportal_core::duration::parse(text)
                .map_err(|e| Error::Invalid(format!("product {product_ns}/{product_name}: maxKeyLifetime {e}")))?,
        ),
        None => None,
    };
    let expires_in = args.expires_in.or(max_lifetime);
    if let (Some(wanted), Some(max)) = (expires_in, max_lifetime)
        && wanted > max
    {
        return Err(Error::Invalid(format!(
            "product {product_ns}/{product_name} issues keys for at most {}: ask for --expires-in {} or less",
            apiportal_core::duration::format(max),
            apiportal_core::duration::format(max)
        )));
    }
    let user = session.username().await?;
    let name = match (&args.name, &args.application) {
        (Some(name), _) => name.clone(),
        (None, Some(application)) => format!("{application}-{product_name}-{}", args.plan),
        (None, None) => format!("{product_name}-{}", args.plan),
    }
    .to_lowercase();
    let spec = APIKeySpec {
        api_product_ref: ProductRef { name: product_name.clone(), namespace: Some(product_ns.clone()) },
        plan_tier: args.plan.clone(),
        use_case: args.use_case.clone(),
        requested_by: Requester { user_id: user, email: args.email.clone() },
        expires_at: match expires_in {
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
        application: args.application.clone(),
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
                "apikey {}/{name} already exists for {}/{} plan {:?}; choose another --name, or revoke it first with {}",
                session.namespace,
                current.product_namespace(),
                current.spec.api_product_ref.name,
                current.spec.plan_tier,
                Command::apiportal("revoke").arg(Value::name(&name)).flag("-n", Value::namespace(&session.namespace))
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

/// Waits until the request is decided, and for an approved key until its value is issued.
async fn wait_for_decision(session: &Session, api: &Api<APIKey>, name: &str, timeout: Duration) -> Result<(), Error> {
    let decided = |k: Option<&APIKey>| {
        k.is_none_or(|k| {
            k.phase().is_final()
                || k.phase() == KeyPhase::Suspended
                || k.status.as_ref().is_some_and(|s| s.issued.is_some())
        })
    };
    let outcome = tokio::time::timeout(timeout, await_condition(api.clone(), name, decided)).await;
    let key = match outcome {
        Ok(Ok(Some(key))) => key,
        Ok(Ok(None)) => {
            return Err(Error::NotFound(format!("{APIKEY_KIND}/{name} was deleted while waiting for a decision")));
        }
        Ok(Err(e)) => return Err(Error::Other(format!("cannot watch {APIKEY_KIND}/{name}: {e}"))),
        Err(_) => {
            let key = api.get(name).await.map_err(|e| session.explain(e, &format!("get apikey {name}")))?;
            return Err(Error::Other(still_waiting(&key, &session.namespace, timeout)));
        }
    };
    let status = key.status.clone().unwrap_or_default();
    match key.phase() {
        KeyPhase::Approved => {
            tell!(
                "{APIKEY_KIND}/{name} approved; reveal the key with: {}",
                super::keys::reveal_command(name, &session.namespace)
            );
            Ok(())
        }
        phase => {
            let reason = status.reason.map(|r| format!(": {r}")).unwrap_or_default();
            Err(Error::Conflict(format!(
                "{APIKEY_KIND}/{name} was {} by {}{reason}",
                phase.as_str().to_lowercase(),
                status.reviewed_by.unwrap_or_default()
            )))
        }
    }
}

/// Why a request is not decided, or an approved key has no value, after `waited`: in the words of its Ready
/// condition, which the bridge keeps (awaiting an owner, a product that cannot take keys now and why, ...).
fn still_waiting(key: &APIKey, namespace: &str, waited: Duration) -> String {
    let name = key.metadata.name.clone().unwrap_or_default();
    let waited = apiportal_core::duration::format(waited);
    let state = match key.phase() {
        KeyPhase::Approved => format!("is Approved, but no key is issued after {waited}"),
        phase => format!("is still {phase} after {waited}"),
    };
    let ready = key
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == ConditionType::Ready.as_str() && c.status != "True"));
    let why = match ready {
        Some(c) => format!(": {} ({})", c.message, c.reason),
        None => "; no bridge has looked at it yet (is it running? kubectl apiportal doctor)".to_owned(),
    };
    format!("{APIKEY_KIND}/{name} {state}{why}; follow it with {}", super::keys::describe_command(&name, namespace))
}
