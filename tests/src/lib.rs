//! The test harness: one real kube-apiserver (with etcd) per test binary, started by `cluster/cluster.sh`, and
//! helpers to act on it as each persona. The cluster stops by itself when the test binary exits (the script
//! watches this process), so a killed or panicking test run leaves nothing behind.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use k8s_openapi::api::{core::v1::Namespace, rbac::v1::RoleBinding};
use kube::{
    Api, Client, Config,
    api::{ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use rand::RngExt;

/// Who a test acts as. Each is a static-token user of the test cluster with the groups the platform team would
/// give them; see `cluster/cluster.sh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persona {
    /// `system:masters`: sets the stage, never the subject of a test.
    Admin,
    /// An apiportal admin (`apiportal-admin` cluster-wide), not a cluster admin.
    ApiportalAdmin,
    Owner,
    Owner2,
    Consumer,
    Consumer2,
    /// The bridge's ServiceAccount.
    Bridge,
    /// Backstage's ServiceAccount, reading the catalog through the bridge.
    Backstage,
    /// Authenticated, with no rights at all.
    Nobody,
}

impl Persona {
    /// The kubeconfig context of this persona.
    pub fn context(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::ApiportalAdmin => "apiportal-admin",
            Self::Owner => "owner",
            Self::Owner2 => "owner2",
            Self::Consumer => "consumer",
            Self::Consumer2 => "consumer2",
            Self::Bridge => "bridge",
            Self::Backstage => "backstage",
            Self::Nobody => "nobody",
        }
    }

    /// The username the API server knows this persona by.
    pub fn username(self) -> String {
        match self {
            Self::Admin => "harness-admin".into(),
            Self::ApiportalAdmin => "carol".into(),
            Self::Owner => "bob".into(),
            Self::Owner2 => "erin".into(),
            Self::Consumer => "alice".into(),
            Self::Consumer2 => "dan".into(),
            Self::Bridge => apiportal_core::bridge_username(),
            Self::Backstage => "system:serviceaccount:backstage:backstage".into(),
            Self::Nobody => "mallory".into(),
        }
    }

    fn token_var(self) -> String {
        format!("TOKEN_{}", self.context().to_uppercase().replace('-', "_"))
    }
}

/// A running test cluster.
pub struct Cluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub server: String,
    env: HashMap<String, String>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_path_buf()
}

/// Folder of the tools `cluster/build-tools.sh` built (kube-apiserver, kubectl, etcd, krew).
pub fn tools_bin() -> PathBuf {
    let cache = std::env::var_os("APIPORTAL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/apiportal"));
    cache.join("bin")
}

/// The test binary's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("cannot start the test cluster: {e}")))
}

impl Cluster {
    fn start() -> Result<Self, String> {
        let dir =
            std::env::temp_dir().join(format!("apiportal-test-{}-{}", std::process::id(), rand::rng().random::<u32>()));
        let script = repo_root().join("tests/cluster/cluster.sh");
        let status = Command::new(&script)
            .arg("up")
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} up failed ({status}); see its output above", script.display()));
        }
        let env_text =
            std::fs::read_to_string(dir.join("env")).map_err(|e| format!("cannot read the cluster's env file: {e}"))?;
        let env: HashMap<String, String> =
            env_text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Ok(Self { kubeconfig: dir.join("kubeconfig"), server: env["APISERVER"].clone(), dir, env })
    }

    /// The bearer token of a persona (for HTTP clients other than kube).
    pub fn token(&self, persona: Persona) -> &str {
        &self.env[&persona.token_var()]
    }

    /// The CA that signed the API server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// A kube client acting as `persona`.
    pub async fn client(&self, persona: Persona) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("the harness wrote a valid kubeconfig");
        let options = KubeConfigOptions { context: Some(persona.context().to_owned()), ..Default::default() };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options).await.expect("every persona has a context");
        Client::try_from(config).expect("a client for the test cluster")
    }

    /// The real kubectl, as `persona`.
    pub fn kubectl(&self, persona: Persona) -> Command {
        let mut cmd = Command::new(tools_bin().join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).arg("--context").arg(persona.context());
        cmd
    }

    /// A fresh namespace, unique to the calling test.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{:08x}", rand::rng().random::<u32>());
        let ns =
            Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
        let admin = self.client(Persona::Admin).await;
        Api::<Namespace>::all(admin).create(&PostParams::default(), &ns).await.expect("create test namespace");
        name
    }

    /// Binds one of apiportal's ClusterRoles to a persona inside a namespace, as a platform team would.
    pub async fn bind(&self, namespace: &str, cluster_role: &str, persona: Persona) {
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{cluster_role}-{}", persona.context()), "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": persona.username()}],
        }))
        .expect("a valid RoleBinding");
        let admin = self.client(Persona::Admin).await;
        Api::<RoleBinding>::namespaced(admin, namespace)
            .create(&PostParams::default(), &binding)
            .await
            .expect("create RoleBinding");
    }
}

/// The API server's message when a call failed with an API status, else the error's text.
pub fn api_error_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The HTTP status code of a failed API call (0 when it was not an API error).
pub fn api_error_code(err: &kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        _ => 0,
    }
}
