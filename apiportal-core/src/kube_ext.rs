//! What a failed Kubernetes call means, decided once for the plugin and the bridge instead of comparing status
//! codes at every call site.

/// The meaning of a `kube::Error`.
pub trait KubeErrorExt {
    /// The HTTP status code, when the API server answered with a Status.
    fn code(&self) -> Option<u16>;
    fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
    /// A conflict: the object already exists, or changed since it was read.
    fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
    fn is_forbidden(&self) -> bool {
        self.code() == Some(403)
    }
    /// Refused by a ValidatingAdmissionPolicy (not by RBAC).
    fn is_refused_by_admission(&self) -> bool;
    /// The API server's message, or the error's text.
    fn message(&self) -> String;
}

impl KubeErrorExt for kube::Error {
    fn code(&self) -> Option<u16> {
        match self {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        }
    }

    fn is_refused_by_admission(&self) -> bool {
        // The API server words every admission policy denial this way ("... denied request: <message>").
        matches!(self, kube::Error::Api(s) if matches!(s.code, 403 | 422) && s.message.contains("ValidatingAdmissionPolicy"))
    }

    fn message(&self) -> String {
        match self {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        }
    }
}

/// Results of calls whose target may legitimately be gone already.
pub trait KubeResultExt<T> {
    /// `Ok(None)` when the object does not exist (404).
    fn ok_if_not_found(self) -> Result<Option<T>, kube::Error>;
    /// `Ok(None)` when the object does not exist, or a precondition (UID, resourceVersion) says it is not the one
    /// meant: a delete that has nothing left to do.
    fn ok_if_gone_or_changed(self) -> Result<Option<T>, kube::Error>;
}

impl<T> KubeResultExt<T> for Result<T, kube::Error> {
    fn ok_if_not_found(self) -> Result<Option<T>, kube::Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn ok_if_gone_or_changed(self) -> Result<Option<T>, kube::Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Deletes `name`: `Ok(false)` when it was already gone, so a retried cleanup is a no-op.
pub async fn delete_if_present<K>(
    api: &kube::Api<K>,
    name: &str,
    params: &kube::api::DeleteParams,
) -> Result<bool, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.delete(name, params).await.ok_if_not_found().map(|deleted| deleted.is_some())
}
