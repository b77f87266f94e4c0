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

pub mod adversary;
pub mod fixtures;
pub mod gateway;
pub mod stage;

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
    installed: OnceLock<()>,
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

static BARE: OnceLock<Cluster> = OnceLock::new();
static OTHER: OnceLock<Cluster> = OnceLock::new();

/// A second cluster with apiportal, for tests that span clusters (Backstage reading two bridges).
pub fn other_cluster() -> &'static Cluster {
    OTHER.get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("cannot start the second test cluster: {e}")))
}

/// A cluster where apiportal is not installed: the Gateway API and Kuadrant CRDs only.
pub fn bare_cluster() -> &'static Cluster {
    BARE.get_or_init(|| {
        // SAFETY: set before the cluster script is spawned and never changed after; only this test binary
        // reads it, through the child's environment.
        unsafe { std::env::set_var("APIPORTAL_BARE_CLUSTER", "1") };
        Cluster::start().unwrap_or_else(|e| panic!("cannot start the test cluster: {e}"))
    })
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
        let cluster = Self {
            kubeconfig: dir.join("kubeconfig"),
            server: env["APISERVER"].clone(),
            dir,
            env,
            installed: OnceLock::new(),
        };
        cluster.wait_for_oidc()?;
        Ok(cluster)
    }

    /// Waits until kube-apiserver accepts the test issuer's tokens: its JWT authenticator fetches the issuer's
    /// keys in the background after start, and refuses every token until it has them.
    fn wait_for_oidc(&self) -> Result<(), String> {
        let token = self.oidc_token("harness-probe", &[], BRIDGE_AUDIENCE);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let out = run({
                let mut cmd = Command::new(tools_bin().join("kubectl"));
                cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(["--context", "nobody", "--token", &token]);
                cmd.args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
                cmd
            });
            if out.stdout == "oidc:harness-probe" {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver did not accept the test OIDC issuer's tokens in 60s: {}",
                    out.stderr
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Stops kube-apiserver for `down_seconds` (etcd keeps the data) and starts it again on the same port.
    pub fn restart_apiserver(&self, down_seconds: u32) {
        let out = run({
            let mut cmd = Command::new(repo_root().join("tests/cluster/cluster.sh"));
            cmd.arg("restart-apiserver").arg(&self.dir).arg(down_seconds.to_string());
            cmd
        });
        assert!(out.success(), "restarting kube-apiserver failed: {}", out.stderr);
    }

    /// The bearer token of a persona (for HTTP clients other than kube).
    pub fn token(&self, persona: Persona) -> &str {
        &self.env[&persona.token_var()]
    }

    /// The CA that signed the API server's certificate (and the bridges' and the OIDC issuer's).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// A token of ServiceAccount `namespace/name` for `audience` (TokenRequest), as a projected volume gives a Pod.
    pub async fn service_account_token(&self, namespace: &str, name: &str, audience: &str) -> String {
        use k8s_openapi::api::{authentication::v1::TokenRequest, core::v1::ServiceAccount};
        let request: TokenRequest =
            serde_json::from_value(serde_json::json!({"spec": {"audiences": [audience], "expirationSeconds": 3600}}))
                .expect("a TokenRequest");
        let api: Api<ServiceAccount> = Api::namespaced(self.client(Persona::Admin).await, namespace);
        let answer = api.create_token_request(name, &PostParams::default(), &request).await.expect("a token");
        answer.status.and_then(|s| s.token).expect("a token")
    }

    /// Like `service_account_token`, bound to Secret `namespace/secret` (created here): deleting that Secret
    /// invalidates the token at once, as a rotated-out token should be.
    pub async fn bound_service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audience: &str,
        secret: &str,
    ) -> String {
        use k8s_openapi::api::{
            authentication::v1::TokenRequest,
            core::v1::{Secret, ServiceAccount},
        };
        let admin = self.client(Persona::Admin).await;
        let anchor: Secret =
            serde_json::from_value(serde_json::json!({"metadata": {"name": secret}})).expect("a Secret");
        let created = Api::<Secret>::namespaced(admin.clone(), namespace)
            .create(&PostParams::default(), &anchor)
            .await
            .expect("the anchor Secret");
        let request: TokenRequest =
            serde_json::from_value(serde_json::json!({"spec": {"audiences": [audience], "expirationSeconds": 3600,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": secret, "uid": created.metadata.uid}}}))
            .expect("a TokenRequest");
        let answer = Api::<ServiceAccount>::namespaced(admin, namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .expect("a token");
        answer.status.and_then(|s| s.token).expect("a token")
    }

    /// Backstage's ServiceAccount token for the bridge (audience `apiportal-bridge`).
    pub async fn backstage_token(&self) -> String {
        self.service_account_token("backstage", "backstage", BRIDGE_AUDIENCE).await
    }

    /// A token of a Prometheus allowed to read `/metrics`, for the bridge: one per cluster, as a real
    /// Prometheus keeps its token (a new token each scrape would be a new caller to authenticate each time).
    pub async fn prometheus_token(&self) -> String {
        static TOKENS: OnceLock<std::sync::Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
        let tokens = TOKENS.get_or_init(Default::default);
        if let Some(token) = tokens.lock().unwrap().get(&self.dir) {
            return token.clone();
        }
        let token = self.service_account_token("monitoring", "prometheus", BRIDGE_AUDIENCE).await;
        tokens.lock().unwrap().insert(self.dir.clone(), token.clone());
        token
    }

    /// A sign-in token of user `oidc:<sub>` in `groups`, from the test OIDC issuer the API server trusts, for
    /// `audience`: how a Backstage user's token reaches the bridge.
    pub fn oidc_token(&self, sub: &str, groups: &[&str], audience: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = serde_json::json!({"iss": self.env["OIDC_ISSUER"], "sub": sub, "aud": audience, "groups": groups,
            "iat": now, "nbf": now, "exp": now + 3600});
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(&self.env["OIDC_KEY"]).expect("the issuer key"))
                .expect("an RSA key");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.env["OIDC_KID"].clone());
        jsonwebtoken::encode(&header, &claims, &key).expect("a signed token")
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
        self.bind_user(namespace, cluster_role, &persona.username()).await
    }

    /// Binds a ClusterRole to user `username` inside a namespace.
    pub async fn bind_user(&self, namespace: &str, cluster_role: &str, username: &str) {
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{cluster_role}-{}", username.replace(':', "-"))},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": username}],
        }))
        .expect("a valid RoleBinding");
        let admin = self.client(Persona::Admin).await;
        Api::<RoleBinding>::namespaced(admin, namespace)
            .create(&PostParams::default(), &binding)
            .await
            .expect("create RoleBinding");
    }
}

/// A binary this workspace built (`cargo build --workspace --bins`), next to the running test binary.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let dir = exe.parent().and_then(Path::parent).expect("test binaries live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// The output of a finished command, with stdout and stderr as text.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Runs a command to completion, asynchronously.
pub async fn run_async(mut command: tokio::process::Command) -> Output {
    let out = command.output().await.unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command to completion, blocking (for set-up outside any test's runtime).
pub fn run(mut command: Command) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Cluster {
    /// The real `kubectl-apiportal` binary, as `persona`.
    pub fn plugin(&self, persona: Persona) -> Command {
        let mut cmd = Command::new(workspace_bin("kubectl-apiportal"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).arg("--context").arg(persona.context());
        cmd
    }

    /// Runs the plugin as `persona` with `args`, without blocking the test's runtime (the servers a test runs
    /// for the bridge to call, and other plugin runs, go on meanwhile).
    pub async fn apiportal(&self, persona: Persona, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::from(self.plugin(persona));
        cmd.args(args);
        run_async(cmd).await
    }

    /// Runs `script` in bash as a user at a terminal would: `kubectl` (with this plugin on PATH) talks to this
    /// cluster as `persona`, in `namespace`, through a kubeconfig of their own. For commands the plugin prints
    /// for users to paste.
    pub async fn shell(&self, persona: Persona, namespace: &str, script: &str, env: &[(&str, &str)]) -> Output {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::copy(&self.kubeconfig, &kubeconfig).expect("copy the kubeconfig");
        for args in [vec!["use-context", persona.context()], vec!["set-context", "--current", "--namespace", namespace]]
        {
            let mut cmd = tokio::process::Command::new(tools_bin().join("kubectl"));
            cmd.arg("--kubeconfig").arg(&kubeconfig).arg("config").args(&args);
            let out = run_async(cmd).await;
            assert!(out.success(), "kubectl config {args:?}: {}", out.stderr);
        }
        let plugin_dir = workspace_bin("kubectl-apiportal").parent().expect("a folder").to_path_buf();
        let path = std::env::join_paths(
            [plugin_dir, tools_bin()]
                .into_iter()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .expect("a PATH");
        let mut cmd = tokio::process::Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c", script])
            .env("KUBECONFIG", &kubeconfig)
            .env("PATH", path)
            .envs(env.iter().copied());
        run_async(cmd).await
    }

    /// `kubectl apiportal install` as the cluster admin, once per cluster. Blocking: it runs once, while the
    /// first test that needs it sets up, before anything else of that test runs.
    pub fn ensure_installed(&self) {
        self.installed.get_or_init(|| {
            let mut cmd = self.plugin(Persona::Admin);
            cmd.args(["install", "--image", "apiportal-bridge:test"]);
            let out = run(cmd);
            assert!(out.success(), "install failed: {}", out.stderr);
        });
    }
}

/// The audience the bridge asks callers' ServiceAccount tokens to be issued for, by default.
pub const BRIDGE_AUDIENCE: &str = apiportal_core::DEFAULT_TOKEN_AUDIENCE;
/// The API server's own audience: users' OIDC tokens pass a TokenReview only for it (Kubernetes' JWT
/// authenticators are not audience-aware), so a bridge serving users' own tokens accepts it too.
pub const API_SERVER_AUDIENCE: &str = "https://kubernetes.default.svc";

/// A bridge process run by a test, stopped when dropped (and in any case when the test binary exits).
pub struct Bridge {
    /// `https://127.0.0.1:PORT` (`http://` with `--insecure-http`).
    pub url: String,
    pub log: PathBuf,
    /// The files the bridge serves its certificate from (a test may replace them).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca_file: PathBuf,
    wrapper: std::process::Child,
    killed: bool,
}

/// An HTTP answer of the bridge, as a client gets it (the body is not decompressed).
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP client that trusts the harness's CA and sends only the headers it is given (no retries, no
/// decompression: what goes over the wire is what the test sees).
#[derive(Clone)]
pub struct HttpClient {
    base: String,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Empty<bytes::Bytes>,
    >,
}

pub fn http_client(base: &str, ca_file: &Path) -> HttpClient {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_file).expect("the harness CA");
    for p in pem::parse_many(&pem).expect("PEM") {
        roots.add(rustls::pki_types::CertificateDer::from(p.into_contents())).expect("a CA certificate");
    }
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    HttpClient { base: base.to_owned(), client }
}

/// GETs `path` from `client`'s base URL with exactly `headers`.
pub async fn http_get(client: &HttpClient, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    try_http_get(client, path, headers).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// GETs `path`; an error when no HTTP answer came (refused, TLS not trusted, timed out after 60 s).
pub async fn try_http_get(client: &HttpClient, path: &str, headers: &[(&str, &str)]) -> Result<HttpAnswer, String> {
    use http_body_util::BodyExt;
    let mut request = http::Request::get(format!("{}{path}", client.base));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(http_body_util::Empty::new()).expect("a request");
    let response = tokio::time::timeout(std::time::Duration::from_secs(60), client.client.request(request))
        .await
        .map_err(|_| "no answer within 60s".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| format!("reading the body: {e}"))?.to_bytes().to_vec();
    Ok(HttpAnswer { status: parts.status.as_u16(), headers: parts.headers, body })
}

impl Bridge {
    /// Starts the real bridge binary as its ServiceAccount on a free port, serving TLS with a certificate the
    /// harness's CA signed, and waits until it is ready.
    pub async fn start(cluster: &Cluster, extra: &[&str]) -> Self {
        let bridge = Self::start_unready(cluster, extra);
        bridge.wait_ready().await;
        bridge
    }

    /// Starts the bridge without waiting for its caches to sync (they may not, e.g. while its rights are cut).
    pub fn start_unready(cluster: &Cluster, extra: &[&str]) -> Self {
        cluster.ensure_installed();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = cluster.dir.join(format!("bridge-{port}.log"));
        let (cert_file, key_file) =
            (cluster.dir.join(format!("bridge-{port}.crt")), cluster.dir.join(format!("bridge-{port}.key")));
        std::fs::copy(cluster.dir.join("pki/serving.crt"), &cert_file).expect("copy the serving certificate");
        std::fs::copy(cluster.dir.join("pki/serving.key"), &key_file).expect("copy the serving key");
        let insecure = extra.contains(&"--insecure-http");
        let mut command = Command::new(repo_root().join("tests/cluster/run-owned.sh"));
        command
            .arg(std::process::id().to_string())
            .arg(&log)
            .arg(workspace_bin("apiportal-bridge"))
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--context")
            .arg("bridge")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg("--lease-duration=4");
        if !insecure {
            command.arg("--tls-cert-file").arg(&cert_file).arg("--tls-key-file").arg(&key_file);
        }
        let wrapper = command.args(extra).spawn().expect("start the bridge");
        let url = format!("{}://127.0.0.1:{port}", if insecure { "http" } else { "https" });
        Self { ca_file: cluster.ca_file(), url, log, cert_file, key_file, wrapper, killed: false }
    }

    /// GETs `path` from the bridge with exactly `headers`, on a new connection (a bridge outlives the runtime of
    /// the test that started it, and pooled connections would not).
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
        http_get(&self.http(), path, headers).await
    }

    /// A client for this bridge that keeps its connections, for many requests from one test.
    pub fn http(&self) -> HttpClient {
        http_client(&self.url, &self.ca_file)
    }

    /// GETs `path` with `token` as the bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> HttpAnswer {
        self.get(path, &[("authorization", &format!("Bearer {token}"))]).await
    }

    /// Waits until the bridge's caches have synced (`/readyz`).
    pub async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let http = self.http();
        loop {
            // Refused until the bridge listens; 503 until its caches have synced.
            if try_http_get(&http, "/readyz", &[]).await.is_ok_and(|a| a.status == 200) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the bridge did not become ready in 30s; its log:\n{}",
                self.logs()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The bridge process's PID (not the wrapper's).
    pub fn pid(&self) -> i32 {
        let pidfile = format!("{}.pid", self.log.display());
        std::fs::read_to_string(pidfile).expect("run-owned.sh wrote the pid").trim().parse().expect("a pid")
    }

    /// kill -9: a crash, with no chance to release the Lease or finish anything.
    pub fn kill9(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.pid().to_string()]).status();
        let _ = self.wrapper.wait();
        self.killed = true;
    }

    /// A metric's value (the first series of that name and labels), read with Prometheus's token; `None` while
    /// the bridge does not listen yet.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let token = cluster_of(&self.log).prometheus_token().await;
        let answer =
            try_http_get(&self.http(), "/metrics", &[("authorization", &format!("Bearer {token}"))]).await.ok()?;
        assert_eq!(answer.status, 200, "/metrics: {}", answer.text());
        answer.text().lines().find_map(|l| l.strip_prefix(&format!("{series} ")).and_then(|v| v.trim().parse().ok()))
    }

    /// Asserts the bridge process is alive and well: it serves, nothing in it ever panicked (the bridge counts
    /// every panic of the process), and none of its background tasks stopped (`/healthz` fails then).
    pub async fn assert_healthy(&self) {
        let tail =
            || self.logs().lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        let panics = self.metric("apiportal_bridge_panics_total").await;
        assert_eq!(
            panics,
            Some(0.0),
            "panics in the bridge (None: it no longer serves); the end of its log:\n{}",
            tail()
        );
        let health = try_http_get(&self.http(), "/healthz", &[]).await;
        assert!(
            health.as_ref().is_ok_and(|h| h.status == 200),
            "the bridge is unhealthy: {:?}; the end of its log:\n{}",
            health.map(|h| (h.status, h.text())),
            tail()
        );
    }

    /// Everything the bridge logged.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The cluster a bridge's log lives in (bridges run in their cluster's folder).
fn cluster_of(log: &Path) -> &'static Cluster {
    let dir = log.parent().expect("a bridge log lives in its cluster's folder");
    [CLUSTER.get(), BARE.get(), OTHER.get()].into_iter().flatten().find(|c| c.dir == dir).expect("the bridge's cluster")
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let _ = self.wrapper.wait();
    }
}

/// The test binary's shared bridge (tests that do not stop or restart it share one, as replicas share a Lease).
pub async fn shared_bridge() -> &'static Bridge {
    static BRIDGE: tokio::sync::OnceCell<Bridge> = tokio::sync::OnceCell::const_new();
    // The tests' document server (OpenAPI, OIDC discovery) runs on 127.0.0.1 over http: allowed here, and only here.
    // Users' own (OIDC) tokens are accepted too, as a bridge behind a Backstage that forwards them would be set up.
    BRIDGE
        .get_or_init(|| {
            Bridge::start(
                cluster(),
                &[
                    "--fetch-allow-cidr=127.0.0.1/32",
                    "--fetch-allow-http",
                    "--token-audience=apiportal-bridge,https://kubernetes.default.svc",
                ],
            )
        })
        .await
}

/// Waits until `check` returns Some, polling for up to `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    within(seconds, check).await.unwrap_or_else(|| panic!("timed out after {seconds}s waiting for {what}"))
}

/// Like `eventually`, for a caller that copes with the time running out: `None` then.
pub async fn within<T, F, Fut>(seconds: u64, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Serves `router` over plain HTTP on a free port of 127.0.0.1 until the test binary exits; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// An HTTP server on 127.0.0.1 answering GETs of the given paths with the given bodies (404 otherwise): an OIDC
/// issuer or a documentation host for the bridge to fetch from. Returns its base URL.
pub async fn serve_documents(documents: Vec<(String, String)>) -> String {
    let router = documents.into_iter().fold(axum::Router::new(), |router, (path, body)| {
        router.route(&path, axum::routing::get(move || std::future::ready(body)))
    });
    serve(router).await
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

/// A request received by `receive_posts`.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// An HTTP server on 127.0.0.1 that answers every request 200 and keeps it: a webhook receiver. Returns its base
/// URL and what it received, in order.
pub async fn receive_posts() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Received>>>) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = received.clone();
    let keep = move |request: axum::extract::Request| {
        let store = store.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
            let headers = parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
            store.lock().unwrap().push(Received { path, headers, body });
        }
    };
    (serve(axum::Router::new().fallback(keep)).await, received)
}

/// A TCP listener on 127.0.0.1 that counts the connections made to it (and closes them): proof that nothing
/// reached an address, whatever it would have spoken (a TLS handshake is no HTTP request). Returns its port.
pub async fn count_connections() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

impl Cluster {
    /// Serves `router` over HTTPS on a free port of 127.0.0.1, with the certificate the harness's CA signed for
    /// 127.0.0.1 (the API server trusts it given `ca_file`): e.g. an admission webhook. Returns its base URL.
    pub async fn serve_tls(&self, router: axum::Router) -> String {
        let read = |file: &str| std::fs::read(self.dir.join("pki").join(file)).expect("the harness's serving pair");
        let certs = pem::parse_many(read("serving.crt"))
            .expect("PEM")
            .into_iter()
            .map(|p| rustls::pki_types::CertificateDer::from(p.into_contents()))
            .collect();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(pem::parse(read("serving.key")).expect("PEM").into_contents())
                .expect("a private key");
        let config =
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("the serving certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        url
    }
}

/// The authorizer webhook kube-apiserver asks about ServiceAccount `flood/flooder`'s namespaced requests (see
/// `cluster/cluster.sh`), served by a test: it holds every review until `release`, so the test decides how long
/// that caller's reviews take, and counts how many it holds at once. It answers "no opinion": RBAC decides.
pub struct SlowAuthorizer {
    state: std::sync::Arc<AuthorizerState>,
}

#[derive(Default)]
struct AuthorizerState {
    held: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
    open: std::sync::atomic::AtomicBool,
}

/// The ServiceAccount whose namespaced requests the slow authorizer is asked about.
pub const FLOODER: (&str, &str) = ("flood", "flooder");

impl Cluster {
    /// Starts the slow authorizer on the port kube-apiserver calls (one per cluster at a time).
    pub async fn slow_authorizer(&self) -> SlowAuthorizer {
        use std::sync::atomic::Ordering;
        let port = &self.env["AUTHZ_WEBHOOK_PORT"];
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("the authorizer's port");
        let state = std::sync::Arc::new(AuthorizerState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let _review = request.into_body().collect().await;
                        let now = state.held.fetch_add(1, Ordering::SeqCst) + 1;
                        state.most.fetch_max(now, Ordering::SeqCst);
                        let released = state.released.notified();
                        if !state.open.load(Ordering::SeqCst) {
                            released.await;
                        }
                        state.held.fetch_sub(1, Ordering::SeqCst);
                        let body = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":false}}"#;
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/json")
                                .body(http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes())))
                                .expect("a response"),
                        )
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        SlowAuthorizer { state }
    }
}

impl SlowAuthorizer {
    /// Reviews it holds now.
    pub fn held(&self) -> usize {
        self.state.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most reviews it held at once.
    pub fn most_held(&self) -> usize {
        self.state.most.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Answers every held review, and every later one at once.
    pub fn release(&self) {
        self.state.open.store(true, std::sync::atomic::Ordering::SeqCst);
        self.state.released.notify_waiters();
    }
}
