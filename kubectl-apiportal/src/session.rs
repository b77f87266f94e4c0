//! The connection to the cluster as the user: kubeconfig, context, namespace and identity, the way kubectl
//! resolves them.

use k8s_openapi::api::{
    authentication::v1::SelfSubjectReview,
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
};
use kube::{
    Api, Client, Config,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::{cli::GlobalArgs, error::Error};

pub struct Session {
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    pub all_namespaces: bool,
    pub server: String,
}

impl Session {
    pub async fn connect(global: &GlobalArgs) -> Result<Self, Error> {
        let options = KubeConfigOptions { context: global.context.clone(), ..Default::default() };
        let mut config = match &global.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Config(format!("cannot read kubeconfig {}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| {
            Error::Config(format!(
                "{e}; pass --kubeconfig or set KUBECONFIG to a valid kubeconfig (kubectl config view)"
            ))
        })?;
        config.read_timeout = Some(global.request_timeout);
        config.connect_timeout = Some(global.request_timeout.min(std::time::Duration::from_secs(10)));
        let namespace = global.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| Error::Config(format!("cannot build a client: {e}")))?;
        Ok(Self { client, namespace, all_namespaces: global.all_namespaces, server })
    }

    /// The user's Kubernetes username, as the API server sees it.
    pub async fn username(&self) -> Result<String, Error> {
        let review = SelfSubjectReview::default();
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| self.explain(e, "ask the API server who you are"))?;
        answer.status.and_then(|s| s.user_info).and_then(|u| u.username).ok_or_else(|| {
            Error::Other("the API server did not say who you are (SelfSubjectReview answered no username)".into())
        })
    }

    /// The kube error as the user reads it (`Error::from_kube` against this session's server).
    pub fn explain(&self, err: kube::Error, doing: &str) -> Error {
        Error::from_kube(err, &self.server, doing)
    }

    /// Whether the API server serves apiportal's resources (discovery is open to every user).
    pub async fn crds_installed(&self) -> bool {
        let group_version = format!("{}/{}", apiportal_core::GROUP, apiportal_core::VERSION);
        self.client
            .list_api_group_resources(&group_version)
            .await
            .is_ok_and(|l| l.resources.iter().any(|r| r.name == "apiproducts"))
    }

    /// Whether the caller may `verb` apiportal's `resource` (`apikeys/status` names a subresource) in `namespace`
    /// (`""`: in every namespace), on `name`, as RBAC says.
    pub async fn may(&self, verb: &str, resource: &str, namespace: &str, name: Option<&str>) -> Result<bool, Error> {
        let (resource, subresource) = match resource.split_once('/') {
            Some((resource, sub)) => (resource, Some(sub.to_owned())),
            None => (resource, None),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(apiportal_core::GROUP.into()),
                    resource: Some(resource.into()),
                    subresource,
                    verb: Some(verb.into()),
                    namespace: Some(namespace.into()),
                    name: name.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| self.explain(e, "check your rights (SelfSubjectAccessReview)"))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// Gets `kind` `ns/name`; absent, the error says how to list what exists (`list_hint`).
    pub async fn get_named<K>(&self, kind: &str, ns: &str, name: &str, list_hint: &str) -> Result<K, Error>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        match api.get_opt(name).await {
            Ok(Some(object)) => Ok(object),
            Ok(None) => Err(Error::NotFound(format!(
                "{kind} {name:?} not found in namespace {ns:?}; list them with {list_hint}"
            ))),
            Err(e) => Err(self.explain(e, &format!("get {} {ns}/{name}", K::kind(&()).to_lowercase()))),
        }
    }

    /// `NAME` in the session namespace, or `NAMESPACE/NAME`.
    pub fn qualify(&self, reference: &str) -> Result<(String, String), Error> {
        split_reference(reference, &self.namespace)
    }
}

/// Splits `NAMESPACE/NAME`, or takes `NAME` in `default_namespace`.
pub fn split_reference(reference: &str, default_namespace: &str) -> Result<(String, String), Error> {
    match reference.split_once('/') {
        None if !reference.is_empty() => Ok((default_namespace.to_owned(), reference.to_owned())),
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(Error::Usage(format!("invalid reference {reference:?}: expected NAME or NAMESPACE/NAME"))),
    }
}
