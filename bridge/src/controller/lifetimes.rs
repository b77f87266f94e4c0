//! The mirror of every product's `maxKeyLifetime` in one ConfigMap, the parameter of the
//! `apiportal-apikey-lifetime` admission policy (the API server cannot read a product while admitting an APIKey).
//! Written by the leader from product reconciles; read back once a minute, since another leader may have written.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use apiportal_core::{
    admission::{KEY_LIFETIMES, lifetime_entry},
    kube_ext::KubeResultExt,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::sync::Mutex;

const REFRESH: Duration = Duration::from_secs(60);

pub struct KeyLifetimes {
    api: Api<ConfigMap>,
    known: Mutex<Option<(Instant, BTreeMap<String, String>)>>,
}

impl KeyLifetimes {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self { api: Api::namespaced(client, namespace), known: Mutex::new(None) }
    }

    /// Makes the mirror say `seconds` for product `namespace/name` (`None`: no cap).
    pub async fn ensure(&self, namespace: &str, name: &str, seconds: Option<u64>) -> Result<(), kube::Error> {
        let entry = lifetime_entry(namespace, name);
        let desired = seconds.map(|s| s.to_string());
        let mut known = self.known.lock().await;
        if known.as_ref().is_none_or(|(at, _)| at.elapsed() > REFRESH) {
            let data = self.api.get_opt(KEY_LIFETIMES).await?.and_then(|c| c.data).unwrap_or_default();
            *known = Some((Instant::now(), data));
        }
        let (_, data) = known.as_mut().expect("loaded above");
        if data.get(&entry) == desired.as_ref() {
            return Ok(());
        }
        let patch = json!({"data": {&entry: desired}});
        let written = match self
            .api
            .patch(KEY_LIFETIMES, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .ok_if_not_found()?
        {
            Some(written) => written,
            None => {
                let Some(value) = &desired else { return Ok(()) };
                let map: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": KEY_LIFETIMES, "labels": {"app.kubernetes.io/part-of": "apiportal"}},
                    "data": {&entry: value},
                }))
                .expect("a valid ConfigMap");
                self.api.create(&PostParams::default(), &map).await?
            }
        };
        *data = written.data.unwrap_or_default();
        Ok(())
    }
}
