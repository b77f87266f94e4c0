//! What the key reconcile sees: the key, its product, its enforcement copies and its place among its requester's
//! keys, from the synced caches. The one read it makes beyond them: a product missing from the cache is confirmed
//! gone with a live read before any plan may act on its absence.

use std::sync::Arc;

use apiportal_core::{APIKey, APIProduct, KeyPhase, labels, secrets};
use kube::{Api, ResourceExt};

use super::plan::{EnforcementCopy, ProductState};
use crate::{Result, controller::Context};

/// The product as the cache has it, or as a live read finds it when the cache does not. `None` only when the
/// product is absent from the cache and its absence cannot matter (the key holds no value).
pub async fn product(ctx: &Context, key: &APIKey) -> Result<Option<Arc<APIProduct>>> {
    let (ns, name) = (key.product_namespace(), key.spec.api_product_ref.name.clone());
    if let Some(p) = ctx.caches.product(&ns, &name) {
        return Ok(Some(p));
    }
    if !matches!(key.phase(), KeyPhase::Approved | KeyPhase::Suspended) {
        return Ok(None);
    }
    // Revoking keys is destructive: a product missing from the cache (a lagging watch, a re-list) is confirmed
    // gone by the API server itself first.
    let live = Api::<APIProduct>::namespaced(ctx.client.clone(), &ns).get_opt(&name).await?;
    if live.is_some() {
        tracing::info!(product = %format!("{ns}/{name}"), "product missing from the cache exists: not revoking");
    }
    Ok(live.map(Arc::new))
}

pub fn product_state(product: Option<&APIProduct>) -> ProductState<'_> {
    match product {
        Some(p) => ProductState::Found(p),
        None => ProductState::Gone,
    }
}

/// The enforcement copies of the key the cache holds: the generations its status names, the one a rotation asks
/// for, and the one before the current. (Anything else labelled as this key's is a stray the sweeper removes.)
pub fn copies(ctx: &Context, key: &APIKey) -> Vec<EnforcementCopy> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let status = key.status.clone().unwrap_or_default();
    let current = status.issued.as_ref().map(|i| i.generation).unwrap_or(0);
    let mut generations = vec![current, current + 1];
    generations.extend(status.previous_key.as_ref().map(|p| p.generation));
    if current > 0 {
        generations.push(current - 1);
    }
    generations.sort_unstable();
    generations.dedup();
    generations
        .into_iter()
        .filter_map(|g| {
            ctx.caches.enforcement_secret(
                &ctx.settings.enforcement_namespace,
                &secrets::enforcement_secret_name(&ns, &name, g),
            )
        })
        .filter(|s| {
            s.labels().get(labels::APIKEY) == Some(&name) && s.labels().get(labels::APIKEY_NAMESPACE) == Some(&ns)
        })
        .map(|s| EnforcementCopy {
            name: s.name_any(),
            uid: s.uid().unwrap_or_default(),
            generation: secrets::generation_of(s.metadata.annotations.as_ref()),
            apikey_uid: s.annotations().get(labels::APIKEY_UID).cloned(),
            labels: s.labels().clone(),
            annotations: s.annotations().clone(),
        })
        .collect()
}

/// How many of the requester's other keys for the product hold a value ahead of this one (0 when the product
/// sets no `maxKeysPerUser`).
pub fn keys_ahead(ctx: &Context, key: &APIKey, product: Option<&APIProduct>) -> usize {
    let Some(max) = product.and_then(|p| p.spec.max_keys_per_user) else { return 0 };
    if key.phase().is_final() || key.metadata.deletion_timestamp.is_some() {
        return 0;
    }
    ctx.slots.keys_ahead(&ctx.caches.keys, key, max as usize)
}

/// The enforcement copies of the key the bridge created moments ago and the cache does not show yet.
pub fn just_created(ctx: &Context, key: &APIKey) -> Vec<String> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let current = key.status.as_ref().and_then(|s| s.issued.as_ref()).map(|i| i.generation).unwrap_or(0);
    let names = [current, current + 1].map(|g| secrets::enforcement_secret_name(&ns, &name, g));
    ctx.created_copies
        .pending(names, |n| ctx.caches.enforcement_secret(&ctx.settings.enforcement_namespace, n).is_some())
}
