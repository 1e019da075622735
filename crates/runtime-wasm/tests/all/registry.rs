//! Pushing and pulling through a real OCI registry: Debian's `docker-registry` (the CNCF
//! distribution registry), started on a free loopback port with its own storage: anonymous,
//! with htpasswd basic auth, and with bearer tokens from a small token service the test runs
//! (ES256 JWTs signed with a key whose self-signed certificate the registry trusts).
//! Loopback registries are spoken to over plain HTTP without any `insecure_registries` entry.
//!
//! The registry is required: install it with `scripts/install-test-deps.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmkube_kubelet::runtime::{PullPolicy, RegistryAuth, Runtime, RuntimeError};
use wasmkube_runtime_wasm::Digest;
use wasmkube_runtime_wasm::oci::{OciError, PushOptions, push_image, push_wasm};

use crate::harness::{free_port, log_lines, module, node};

/// How a test registry authenticates.
pub enum Auth<'a> {
    Anonymous,
    /// htpasswd basic auth of one user (name, password).
    Basic(&'a str, &'a str),
    /// Bearer tokens from `realm`, signed by the key of the PEM certificate `cert_pem`.
    Token {
        realm: &'a str,
        cert_pem: &'a str,
    },
}

/// A `docker-registry serve` child, killed (and reaped) on drop, even when a test panics.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
}

impl Registry {
    /// Starts a registry with the given authentication.
    pub async fn start(auth: Auth<'_>) -> Registry {
        let bin = which("docker-registry").unwrap_or_else(|| {
            panic!("docker-registry is not installed: run scripts/install-test-deps.sh")
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let host = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n  secret: wasmkube-test\n",
            dir.path().join("storage").display()
        );
        match auth {
            Auth::Anonymous => {}
            Auth::Basic(name, password) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", name, password])
                    .output()
                    .expect("htpasswd is not installed: run scripts/install-test-deps.sh");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: wasmkube-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            Auth::Token { realm, cert_pem } => {
                let bundle = dir.path().join("token-ca.pem");
                std::fs::write(&bundle, cert_pem).unwrap();
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    \
                     issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    bundle.display()
                ));
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut reg = Registry { child, dir, host };
        reg.wait_ready().await;
        reg
    }

    /// Waits (at most 20 s) until `/v2/` answers, with 200 or with 401 when auth is on.
    async fn wait_ready(&mut self) {
        let url = format!("http://{}/v2/", self.host);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if let Ok(resp) = client.get(&url).send().await
                && (resp.status() == 200 || resp.status() == 401)
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not answer on {url} within 20 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

/// Pushes an arbitrary artifact with plain registry v2 calls (anonymous access): what other
/// tools (wasm-to-oci, a Linux image build) leave in a registry.
async fn raw_push(
    host: &str,
    repo: &str,
    tag: &str,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) {
    let http = reqwest::Client::new();
    let upload = |bytes: Vec<u8>| {
        let http = http.clone();
        async move {
            let digest = Digest::of(&bytes);
            let resp = http
                .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            let location = resp.headers()["location"].to_str().unwrap().to_string();
            let mut url = reqwest::Url::parse(&format!("http://{host}/"))
                .unwrap()
                .join(&location)
                .unwrap();
            url.query_pairs_mut().append_pair("digest", digest.as_str());
            let resp = http.put(url).body(bytes.clone()).send().await.unwrap();
            assert_eq!(resp.status(), 201);
            serde_json::json!({
                "mediaType": "",
                "digest": digest.as_str(),
                "size": bytes.len(),
            })
        }
    };
    let mut config_desc = upload(config.1.to_vec()).await;
    config_desc["mediaType"] = config.0.into();
    let mut layer_descs = Vec::new();
    for (media_type, bytes) in layers {
        let mut d = upload(bytes.to_vec()).await;
        d["mediaType"] = (*media_type).into();
        layer_descs.push(d);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layer_descs,
    });
    let resp = http
        .put(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

/// A module printing `text` and a newline.
fn printer(text: &str) -> Vec<u8> {
    let line = format!("{text}\n");
    wat::parse_str(module(
        &format!(r#"(data (i32.const 64) "{text}\n")"#),
        &format!("(call $print (i32.const 64) (i32.const {}))", line.len()),
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_with_every_policy() {
    let reg = Registry::start(Auth::Anonymous).await;
    let n = node();
    let v1 = printer("one");
    let target = format!("{}/wasm/hello:v1", reg.host);
    let pushed = push_wasm(v1.clone(), &target, &PushOptions::default())
        .await
        .expect("push");
    assert_eq!(pushed.reference, target);
    assert_eq!(pushed.layer_digests, vec![Digest::of(&v1)]);
    assert_eq!(pushed.uploaded_blobs, 2);
    // The blobs are there already (HEAD), and the same bytes give the same manifest.
    let again = push_wasm(v1.clone(), &target, &PushOptions::default())
        .await
        .unwrap();
    assert_eq!(again.uploaded_blobs, 0);
    assert_eq!(again.manifest_digest, pushed.manifest_digest);

    // What the registry holds is a CNCF Wasm OCI artifact.
    let http = reqwest::Client::new();
    let manifest: serde_json::Value = http
        .get(format!("http://{}/v2/wasm/hello/manifests/v1", reg.host))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    let config: serde_json::Value = http
        .get(format!(
            "http://{}/v2/wasm/hello/blobs/{}",
            reg.host, pushed.config_digest
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("wasm"), Some("wasip1"))
    );

    // Never: not on the node yet.
    let e =
        n.rt.pull(&target, PullPolicy::Never, &[])
            .await
            .unwrap_err();
    assert!(matches!(e, RuntimeError::ImageNeverPull { .. }), "{e:?}");
    // IfNotPresent pulls it; it runs.
    let img =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[])
            .await
            .unwrap();
    assert_eq!(
        img.image_id,
        format!("{}/wasm/hello@{}", reg.host, Digest::of(&v1))
    );
    assert_eq!(n.run(n.container("one", img)).await.exit_code, 0);
    assert_eq!(log_lines(&n.log_path("one"), "stdout"), vec!["one"]);
    // Never is satisfied now.
    n.rt.pull(&target, PullPolicy::Never, &[]).await.unwrap();

    // A new image under the same tag: IfNotPresent keeps the node's, Always fetches it.
    let v2 = printer("two");
    push_wasm(v2.clone(), &target, &PushOptions::default())
        .await
        .unwrap();
    let kept =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[])
            .await
            .unwrap();
    assert!(kept.image_id.ends_with(Digest::of(&v1).as_str()));
    // A pull reports its bytes: the whole module, expected before it arrives.
    let progress = wasmkube_kubelet::runtime::PullProgress::default();
    let fresh =
        n.rt.pull_with_progress(&target, PullPolicy::Always, &[], &progress)
            .await
            .unwrap();
    assert!(fresh.image_id.ends_with(Digest::of(&v2).as_str()));
    assert_eq!(progress.get(), (v2.len() as u64, v2.len() as u64));
    // One already present downloads nothing.
    let none = wasmkube_kubelet::runtime::PullProgress::default();
    n.rt.pull_with_progress(&target, PullPolicy::IfNotPresent, &[], &none)
        .await
        .unwrap();
    assert_eq!(none.get(), (0, 0));
    assert_eq!(n.run(n.container("two", fresh)).await.exit_code, 0);
    assert_eq!(log_lines(&n.log_path("two"), "stdout"), vec!["two"]);

    // A tag the registry does not have.
    let missing = format!("{}/wasm/hello:nope", reg.host);
    let e =
        n.rt.pull(&missing, PullPolicy::Always, &[])
            .await
            .unwrap_err();
    assert!(matches!(e, RuntimeError::ImageNotFound { .. }), "{e:?}");
    assert_eq!(e.reason(), "ErrImagePull");

    // A Linux image is not a Wasm artifact.
    let linux = format!("{}/linux/busybox:1", reg.host);
    raw_push(
        &reg.host,
        "linux/busybox",
        "1",
        ("application/vnd.oci.image.config.v1+json", b"{}"),
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            b"\x1f\x8b not really a tarball",
        )],
    )
    .await;
    let e =
        n.rt.pull(&linux, PullPolicy::IfNotPresent, &[])
            .await
            .unwrap_err();
    assert!(matches!(e, RuntimeError::InvalidImage { .. }), "{e:?}");

    // wasm-to-oci's older layout.
    let old = printer("old");
    raw_push(
        &reg.host,
        "legacy/hello",
        "v0",
        ("application/vnd.wasm.config.v1+json", b"{}"),
        &[("application/vnd.wasm.content.layer.v1+wasm", &old)],
    )
    .await;
    let legacy = format!("{}/legacy/hello:v0", reg.host);
    let img =
        n.rt.pull(&legacy, PullPolicy::IfNotPresent, &[])
            .await
            .unwrap();
    assert!(img.image_id.ends_with(Digest::of(&old).as_str()));
    assert_eq!(n.run(n.container("old", img)).await.exit_code, 0);
    assert_eq!(log_lines(&n.log_path("old"), "stdout"), vec!["old"]);

    // A local image pushed from the store (`wasmkube image push`), then pulled by digest.
    n.rt.images()
        .import_bytes(&printer("local"), "local:v1", "local")
        .unwrap();
    let copy = format!("{}/copies/local:v1", reg.host);
    let pushed = push_image(n.rt.images(), "local:v1", &copy, &PushOptions::default())
        .await
        .unwrap();
    let by_digest = format!("{}/copies/local@{}", reg.host, pushed.manifest_digest);
    let n2 = node();
    let img = n2
        .rt
        .pull(&by_digest, PullPolicy::IfNotPresent, &[])
        .await
        .unwrap();
    assert_eq!(n2.run(n2.container("local", img)).await.exit_code, 0);
    assert!(matches!(
        push_image(n.rt.images(), "absent", &copy, &PushOptions::default()).await,
        Err(OciError::LocalImage(_))
    ));
    assert!(matches!(
        push_wasm(b"not wasm".to_vec(), &copy, &PushOptions::default()).await,
        Err(OciError::NotWasm(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_basic_auth() {
    let reg = Registry::start(Auth::Basic("alice", "s3cret")).await;
    let n = node();
    let target = format!("{}/private/hello:v1", reg.host);
    let creds = |password: &str| RegistryAuth {
        registry: reg.host.clone(),
        username: "alice".into(),
        password: password.into(),
    };
    let wasm = printer("private");

    let e = push_wasm(wasm.clone(), &target, &PushOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::Unauthorized { .. }), "{e:?}");
    let wrong = PushOptions {
        auth: Some(creds("wrong")),
        ..PushOptions::default()
    };
    let e = push_wasm(wasm.clone(), &target, &wrong).await.unwrap_err();
    assert!(matches!(e, OciError::Denied { .. }), "{e:?}");
    let right = PushOptions {
        auth: Some(creds("s3cret")),
        ..PushOptions::default()
    };
    assert_eq!(
        push_wasm(wasm.clone(), &target, &right)
            .await
            .unwrap()
            .uploaded_blobs,
        2
    );

    // Without credentials (no imagePullSecrets): ErrImagePull with the registry's 401.
    let e =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[])
            .await
            .unwrap_err();
    assert_eq!(e.reason(), "ErrImagePull");
    assert!(e.to_string().contains("401"), "{e}");
    // Wrong credentials.
    let e =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[creds("wrong")])
            .await
            .unwrap_err();
    assert_eq!(e.reason(), "ErrImagePull");
    assert!(e.to_string().contains("refused"), "{e}");
    // Credentials for another registry don't apply.
    let other = RegistryAuth {
        registry: "ghcr.io".into(),
        ..creds("s3cret")
    };
    assert!(
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[other])
            .await
            .is_err()
    );
    // The pull secret's registry may be written as a URL, as in a dockerconfigjson.
    let auth = RegistryAuth {
        registry: format!("http://{}/v2/", reg.host),
        ..creds("s3cret")
    };
    let img =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[auth])
            .await
            .unwrap();
    assert_eq!(n.run(n.container("private", img)).await.exit_code, 0);
    assert_eq!(log_lines(&n.log_path("private"), "stdout"), vec!["private"]);
}

const TOKEN_SERVICE: &str = "wasmkube-test-registry";
const TOKEN_ISSUER: &str = "wasmkube-test-issuer";

/// A token service on a free loopback port, answering `GET /token?scope=...&service=...` as
/// Docker's does: with a JWT granting the requested scope to `user` (basic auth), an empty
/// grant to anonymous callers, and 401 to wrong credentials. Stops when dropped.
struct TokenService {
    realm: String,
    cert_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenService {
    async fn start(user: &'static str, password: &'static str) -> TokenService {
        use base64::Engine as _;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["token-issuer".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let state = Arc::new((key, x5c, expected));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(issue(&state, user, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TokenService {
            realm,
            cert_pem: cert.pem(),
            task,
        }
    }
}

/// One token request.
fn issue(
    state: &(rcgen::KeyPair, String, String),
    user: &str,
    req: &hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use base64::Engine as _;
    use rcgen::SigningKey as _;
    let (key, x5c, expected) = state;
    let respond = |status: u16, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap()
    };
    let subject = match req.headers().get("authorization") {
        None => "",
        Some(h) if h.as_bytes() == expected.as_bytes() => user,
        Some(_) => return respond(401, r#"{"details":"wrong credentials"}"#.into()),
    };
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://x/?{q}"))
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut access = Vec::new();
    if !subject.is_empty() {
        for (_, scope) in query.iter().filter(|(k, _)| k == "scope") {
            // repository:<name>:<action,action>
            let mut parts = scope.splitn(3, ':');
            let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            access.push(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({ "typ": "JWT", "alg": "ES256", "x5c": [x5c] });
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER,
        "sub": subject,
        "aud": TOKEN_SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now - 10,
        "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let der = key.sign(signing_input.as_bytes()).unwrap();
    let token = format!("{signing_input}.{}", b64.encode(ecdsa_der_to_raw(&der)));
    respond(200, serde_json::json!({ "token": token }).to_string())
}

/// ECDSA P-256 signature from ASN.1 DER (`SEQUENCE { INTEGER r, INTEGER s }`, what ring
/// produces for certificates) to JWS's fixed 64-byte `r || s`.
fn ecdsa_der_to_raw(der: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> (&[u8], &[u8]) {
        assert_eq!(bytes[0], 0x02, "not an INTEGER");
        let len = bytes[1] as usize;
        (&bytes[2..2 + len], &bytes[2 + len..])
    }
    assert_eq!(der[0], 0x30, "not a SEQUENCE");
    // P-256 signatures are short enough for one-byte lengths.
    let (r, rest) = integer(&der[2..]);
    let (s, _) = integer(rest);
    let mut out = vec![0u8; 64];
    for (i, value) in [r, s].into_iter().enumerate() {
        // Strip the sign byte, left-pad to 32 bytes.
        let value = &value[value.len().saturating_sub(32)..];
        out[32 * i + 32 - value.len()..32 * (i + 1)].copy_from_slice(value);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_bearer_tokens() {
    let tokens = TokenService::start("bob", "t0ken-pass").await;
    let reg = Registry::start(Auth::Token {
        realm: &tokens.realm,
        cert_pem: &tokens.cert_pem,
    })
    .await;
    let n = node();
    let target = format!("{}/tok/hello:v1", reg.host);
    let creds = |password: &str| RegistryAuth {
        registry: reg.host.clone(),
        username: "bob".into(),
        password: password.into(),
    };
    let wasm = printer("bearer");

    // Anonymous tokens grant nothing; wrong credentials get no token at all.
    let e = push_wasm(wasm.clone(), &target, &PushOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::Unauthorized { .. }), "{e:?}");
    let wrong = PushOptions {
        auth: Some(creds("nope")),
        ..PushOptions::default()
    };
    let e = push_wasm(wasm.clone(), &target, &wrong).await.unwrap_err();
    assert!(matches!(e, OciError::Denied { .. }), "{e:?}");
    // With credentials: a pull token for the HEAD, then a pull,push token for the upload.
    let right = PushOptions {
        auth: Some(creds("t0ken-pass")),
        ..PushOptions::default()
    };
    let pushed = push_wasm(wasm.clone(), &target, &right).await.unwrap();
    assert_eq!(pushed.uploaded_blobs, 2, "{}", reg.log());

    let e =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[])
            .await
            .unwrap_err();
    assert_eq!(e.reason(), "ErrImagePull", "{e}");
    let img =
        n.rt.pull(&target, PullPolicy::IfNotPresent, &[creds("t0ken-pass")])
            .await
            .unwrap();
    assert_eq!(n.run(n.container("bearer", img)).await.exit_code, 0);
    assert_eq!(log_lines(&n.log_path("bearer"), "stdout"), vec!["bearer"]);
}
