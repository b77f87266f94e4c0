//! Keeping each request's read-only projection (`APIKeyRequest`) in its product's namespace in step with the
//! APIKey, for owners who read requests there with rights in their own namespace alone. Written with server-side
//! apply only when what it says changed (the cache holds each projection's digest, never its content); removed
//! with the key (and by the sweeper when a key went without the bridge seeing it).

use apiportal_core::{
    APIKey, labels,
    resources::apikeyrequest::{APIKeyRequest, APIKeyRequestSpec, projection_name},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

use crate::{Result, controller::Context};

/// Makes the projection of `key` say what the key says now.
pub async fn project(ctx: &Context, key: &APIKey) -> Result<()> {
    let (product_ns, name) =
        (key.product_namespace(), projection_name(&key.namespace().unwrap_or_default(), &key.name_any()));
    let spec = APIKeyRequestSpec::of(key);
    let digest = spec.digest();
    let cached = ctx.caches.projection(&product_ns, &name);
    if cached.as_ref().and_then(|p| p.annotations().get(labels::PROJECTION_DIGEST)) == Some(&digest) {
        return Ok(());
    }
    let object = json!({
        "apiVersion": apiportal_core::API_VERSION, "kind": "APIKeyRequest",
        "metadata": {"name": name, "namespace": product_ns,
                     "labels": {labels::APIKEY: key.name_any(), labels::APIKEY_NAMESPACE: key.namespace().unwrap_or_default()},
                     "annotations": {labels::PROJECTION_DIGEST: digest}},
        "spec": spec,
    });
    let api: Api<APIKeyRequest> = Api::namespaced(ctx.client.clone(), &product_ns);
    let params = PatchParams::apply(labels::BRIDGE_FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&object)).await {
        Ok(_) => Ok(()),
        // The product's namespace is gone: nobody is left to read the projection.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the projection of `key`.
pub async fn unproject(ctx: &Context, key: &APIKey) -> Result<()> {
    let (product_ns, name) =
        (key.product_namespace(), projection_name(&key.namespace().unwrap_or_default(), &key.name_any()));
    let api: Api<APIKeyRequest> = Api::namespaced(ctx.client.clone(), &product_ns);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
