//! Wasm images in OCI registries: references, the manifest rules of the CNCF Wasm OCI artifact
//! format, and a small registry v2 client that pulls (for the runtime) and pushes
//! ([`push_wasm`], [`push_image`]: monolithic blob uploads, skipped when a HEAD finds the
//! blob, then the manifest PUT), answering basic and bearer-token challenges.
//!
//! A Wasm artifact is an image manifest whose config has media type
//! [`WASM_CONFIG_MEDIA_TYPE`] and whose single layer is the module or component, with one of
//! [`WASM_LAYER_MEDIA_TYPES`]. A manifest whose config is something else but which carries
//! exactly such a layer is accepted too (older tools wrote other config types).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use wasmkube_kubelet::runtime::PullProgress;
/// Registry credentials, as the kubelet resolves them from `imagePullSecrets`.
pub use wasmkube_kubelet::runtime::RegistryAuth;

use crate::images::{Digest, ImageStore, WASM_MAGIC, WasmKind, wasm_kind};

/// The config media type of a CNCF Wasm OCI artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";

/// Layer media types that hold a Wasm module or component: the CNCF artifact's
/// `application/wasm`, the containerd shim's, and wasm-to-oci's older one.
pub const WASM_LAYER_MEDIA_TYPES: [&str; 3] = [
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];

/// The layer media type [`push_wasm`] writes (the CNCF Wasm OCI artifact's).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// The OCI image manifest media type (what [`push_wasm`] writes).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Errors of references, manifests and registry round trips.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid image reference {0:?}")]
    InvalidReference(String),
    #[error("manifest is not valid json")]
    ManifestJson(#[source] serde_json::Error),
    #[error("manifest media type {0:?} is not supported")]
    UnsupportedManifest(String),
    #[error("the image is not a wasm artifact: {0}")]
    NotWasm(String),
    #[error("image index has no manifest")]
    EmptyIndex,
    #[error("registry request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry answered {status} for {url}")]
    Status { url: String, status: u16 },
    #[error("registry {registry} requires credentials (401 Unauthorized)")]
    Unauthorized { registry: String },
    #[error("registry {registry} refused the credentials for user {username:?} ({status})")]
    Denied {
        registry: String,
        username: String,
        status: u16,
    },
    #[error("registry token response is invalid")]
    Token(#[source] serde_json::Error),
    #[error("blob {digest} is larger than the limit of {limit} bytes")]
    TooLarge { digest: String, limit: u64 },
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("building the http client")]
    Client(#[source] reqwest::Error),
    #[error("registry protocol error: {0}")]
    Protocol(String),
    #[error("cannot push a reference with a digest ({0}); name a tag")]
    PushByDigest(String),
    #[error("reading the local image")]
    LocalImage(#[source] crate::images::ImageError),
}

/// A parsed image reference: `[registry/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written, `docker.io` when none was.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// Whether the reference named its registry explicitly.
    pub explicit_registry: bool,
}

impl Reference {
    /// Parses like Docker does: the first path component is a registry if it contains `.`
    /// or `:` or is `localhost`; Docker Hub's official images live under `library/`.
    pub fn parse(s: &str) -> Result<Reference, OciError> {
        let bad = || OciError::InvalidReference(s.to_string());
        let s = s.trim();
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !d.contains(':') {
                    return Err(bad());
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (registry, path, explicit) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path, true)
            }
            _ => ("docker.io".to_string(), rest, false),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
            _ => (path.to_string(), None),
        };
        if repository.is_empty()
            || tag.as_deref() == Some("")
            || repository.split('/').any(str::is_empty)
        {
            return Err(bad());
        }
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
            explicit_registry: explicit,
        })
    }

    /// The manifest reference to ask for: the digest if given, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host the v2 API is served on.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// `registry/repository` (what `imageID` is built from).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// What a manifest GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    /// An image index / manifest list: per-platform manifests.
    Index(Vec<Descriptor>),
}

/// Parses a manifest body, using the `Content-Type` when the body has no `mediaType`.
pub fn parse_manifest(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, OciError> {
    let raw: RawManifest = serde_json::from_slice(body).map_err(OciError::ManifestJson)?;
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
    let media_type = raw.media_type.clone().or(content_type).unwrap_or_default();
    match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => Ok(Manifest::Index(raw.manifests)),
        OCI_MANIFEST | DOCKER_MANIFEST | "" => match raw.config {
            Some(config) => Ok(Manifest::Image(ImageManifest {
                media_type: raw.media_type,
                config,
                layers: raw.layers,
            })),
            // No media type anywhere and no config: an index written without mediaType.
            None if !raw.manifests.is_empty() => Ok(Manifest::Index(raw.manifests)),
            None => Err(OciError::UnsupportedManifest(media_type)),
        },
        other => Err(OciError::UnsupportedManifest(other.to_string())),
    }
}

/// Picks the entry of an index to follow: a Wasm platform if one is listed, else the first.
pub fn pick_from_index(entries: &[Descriptor]) -> Result<&Descriptor, OciError> {
    let is_wasm = |d: &&Descriptor| {
        d.platform.as_ref().is_some_and(|p| {
            matches!(p.os.as_str(), "wasi" | "wasip1" | "wasip2")
                || matches!(p.architecture.as_str(), "wasm" | "wasm32")
        })
    };
    entries
        .iter()
        .find(is_wasm)
        .or_else(|| entries.first())
        .ok_or(OciError::EmptyIndex)
}

/// The layer holding the Wasm binary, if the manifest is a Wasm artifact.
pub fn wasm_layer(manifest: &ImageManifest) -> Result<&Descriptor, OciError> {
    let wasm_layers: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .collect();
    match wasm_layers.as_slice() {
        [one] => Ok(one),
        [] if manifest.config.media_type == WASM_CONFIG_MEDIA_TYPE
            && manifest.layers.len() == 1 =>
        {
            // The config says Wasm; trust it for a lone layer of an unusual media type (the
            // magic bytes are checked after the download anyway).
            Ok(&manifest.layers[0])
        }
        [] => Err(OciError::NotWasm(format!(
            "config {:?} with layers {:?}",
            manifest.config.media_type,
            manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
        ))),
        many => Err(OciError::NotWasm(format!(
            "{} wasm layers, expected one",
            many.len()
        ))),
    }
}

/// An image manifest with the bytes it was served as (what a content store keeps).
#[derive(Debug, Clone)]
pub struct RawImageManifest {
    pub manifest: ImageManifest,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub media_type: String,
}

/// Picks the entry of an index for this machine's Linux platform, else the first.
pub fn pick_linux(entries: &[Descriptor]) -> Result<&Descriptor, OciError> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    entries
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .or_else(|| entries.first())
        .ok_or(OciError::EmptyIndex)
}

/// A pulled module.
#[derive(Debug)]
pub(crate) struct PulledBlob {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: Digest,
}

/// A registry v2 client: manifests and blobs, with bearer-token and basic auth. Also used by
/// the containerd runtime, which pulls Linux images client-side (containerd 1.6 has no
/// transfer service).
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Vec<String>,
    /// How to authenticate to a (registry, repository), learned from its last challenge and
    /// reused until the registry rejects it.
    /// Keyed by (registry, repository, username): a token fetched with one pod's pull
    /// secret must not let a pod without it read a private repository.
    auth_cache: Mutex<HashMap<AuthKey, CachedAuth>>,
}

/// (registry, repository, username).
type AuthKey = (String, String, Option<String>);

#[derive(Debug, Clone)]
enum CachedAuth {
    Bearer(String),
    /// The registry asked for basic auth: send the credentials up front.
    Basic,
}

/// One registry request, re-sendable after an auth challenge.
struct Request<'a> {
    method: reqwest::Method,
    url: &'a str,
    accept: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Option<bytes::Bytes>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut map = HashMap::new();
    // key="value" pairs separated by commas; values may contain commas (scopes), so scan.
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(stripped) = after.strip_prefix('"') {
            let end = stripped.find('"')?;
            (&stripped[..end], &stripped[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        map.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: map.remove("realm")?,
        service: map.remove("service"),
        scope: map.remove("scope"),
    })
}

fn is_loopback_host(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .map(|(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The credentials in `auth` for `registry`, matching on host with any scheme or path stripped.
pub fn credentials_for<'a>(auth: &'a [RegistryAuth], registry: &str) -> Option<&'a RegistryAuth> {
    let norm = |s: &str| {
        let s = s
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let s = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
        match s.as_str() {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                "docker.io".to_string()
            }
            _ => s,
        }
    };
    let want = norm(registry);
    auth.iter().find(|a| norm(&a.registry) == want)
}

impl RegistryClient {
    pub fn new(timeout: Duration, insecure: Vec<String>) -> Result<RegistryClient, OciError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("wasmkube/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(OciError::Client)?;
        Ok(RegistryClient {
            http,
            insecure,
            auth_cache: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self, r: &Reference) -> String {
        let host = r.api_host();
        let scheme = if is_loopback_host(host)
            || self.insecure.iter().any(|h| h == host || h == &r.registry)
        {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{}", r.repository)
    }

    /// GETs `url`, answering an auth challenge once.
    async fn get(
        &self,
        r: &Reference,
        url: &str,
        accept: Option<&str>,
        auth: Option<&RegistryAuth>,
    ) -> Result<reqwest::Response, OciError> {
        let req = Request {
            method: reqwest::Method::GET,
            url,
            accept,
            content_type: None,
            body: None,
        };
        self.send(r, req, auth).await
    }

    /// Sends one request, answering an auth challenge once: credentials learned for the
    /// repository (a bearer token, or that the registry takes basic auth) are sent up front
    /// afterwards, so an upload's body normally goes over the wire once. Non-2xx answers
    /// become [`OciError::Status`], 401/403 after authenticating [`OciError::Unauthorized`].
    async fn send(
        &self,
        r: &Reference,
        req: Request<'_>,
        auth: Option<&RegistryAuth>,
    ) -> Result<reqwest::Response, OciError> {
        let key = (
            r.registry.clone(),
            r.repository.clone(),
            auth.map(|a| a.username.clone()),
        );
        let cached = self
            .auth_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let url = req.url;
        let send = |with: Option<&CachedAuth>| {
            let mut b = self.http.request(req.method.clone(), url);
            if let Some(a) = req.accept {
                b = b.header(reqwest::header::ACCEPT, a);
            }
            if let Some(c) = req.content_type {
                b = b.header(reqwest::header::CONTENT_TYPE, c);
            }
            match (with, auth) {
                (Some(CachedAuth::Bearer(t)), _) => b = b.bearer_auth(t),
                (Some(CachedAuth::Basic), Some(a)) => {
                    b = b.basic_auth(&a.username, Some(&a.password))
                }
                _ => {}
            }
            // `Bytes` clones share the buffer: a retried upload does not copy it.
            match &req.body {
                Some(body) => b.body(body.clone()),
                None if req.method == reqwest::Method::POST
                    || req.method == reqwest::Method::PUT =>
                {
                    b.header(reqwest::header::CONTENT_LENGTH, "0")
                }
                None => b,
            }
            .send()
        };
        let http_err = |source| OciError::Http {
            url: url.to_string(),
            source,
        };
        let resp = send(cached.as_ref()).await.map_err(http_err)?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return check_status(resp, url);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let learned = match challenge {
            Some(Challenge::Basic) => {
                if auth.is_none() {
                    return Err(OciError::Unauthorized {
                        registry: r.registry.clone(),
                    });
                }
                CachedAuth::Basic
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", r.repository));
                CachedAuth::Bearer(
                    self.token(r, &realm, service.as_deref(), &scope, auth)
                        .await?,
                )
            }
            None => {
                return Err(OciError::Unauthorized {
                    registry: r.registry.clone(),
                });
            }
        };
        self.auth_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, learned.clone());
        let resp = send(Some(&learned)).await.map_err(http_err)?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            || resp.status() == reqwest::StatusCode::FORBIDDEN
        {
            return Err(denied(r, auth, resp.status().as_u16()));
        }
        check_status(resp, url)
    }

    /// Fetches a bearer token for `scope` from the registry's token service.
    async fn token(
        &self,
        r: &Reference,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, OciError> {
        let mut req = self.http.get(realm).query(&[("scope", scope)]);
        if let Some(s) = service {
            req = req.query(&[("service", s)]);
        }
        if let Some(a) = auth {
            req = req.basic_auth(&a.username, Some(&a.password));
        }
        let token_resp = req.send().await.map_err(|source| OciError::Http {
            url: realm.to_string(),
            source,
        })?;
        let token_resp = check_status(token_resp, realm).map_err(|e| match e {
            OciError::Status {
                status: status @ (401 | 403),
                ..
            } => denied(r, auth, status),
            e => e,
        })?;
        let body = read_limited(token_resp, realm, 1 << 20, None).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(OciError::Token)?;
        Ok(parsed.token.or(parsed.access_token).unwrap_or_default())
    }

    /// Resolves `r` to an image manifest, following one level of index.
    pub(crate) async fn manifest(
        &self,
        r: &Reference,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageManifest, OciError> {
        Ok(self.manifest_raw(r, auth, pick_from_index).await?.manifest)
    }

    /// Resolves `r` to an image manifest and its bytes as served, following one level of
    /// index with `pick` choosing the entry.
    pub async fn manifest_raw(
        &self,
        r: &Reference,
        auth: Option<&RegistryAuth>,
        pick: fn(&[Descriptor]) -> Result<&Descriptor, OciError>,
    ) -> Result<RawImageManifest, OciError> {
        let accept = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST].join(", ");
        let mut reference = r.manifest_ref().to_string();
        for _ in 0..2 {
            let url = format!("{}/manifests/{}", self.base(r), reference);
            let resp = self.get(r, &url, Some(&accept), auth).await?;
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = read_limited(resp, &url, 4 << 20, None).await?;
            match parse_manifest(content_type.as_deref(), &body)? {
                Manifest::Image(manifest) => {
                    let media_type = manifest
                        .media_type
                        .clone()
                        .or(content_type
                            .map(|c| c.split(';').next().unwrap_or(&c).trim().to_string()))
                        .unwrap_or_else(|| OCI_MANIFEST.to_string());
                    return Ok(RawImageManifest {
                        manifest,
                        digest: Digest::of(&body).to_string(),
                        media_type,
                        bytes: body,
                    });
                }
                Manifest::Index(entries) => reference = pick(&entries)?.digest.clone(),
            }
        }
        Err(OciError::UnsupportedManifest("nested image index".into()))
    }

    /// Downloads blob `digest` of `r`'s repository (at most `limit` bytes), checking its
    /// sha256 digest.
    pub async fn blob(
        &self,
        r: &Reference,
        digest: &str,
        auth: Option<&RegistryAuth>,
        limit: u64,
        progress: Option<&PullProgress>,
    ) -> Result<Vec<u8>, OciError> {
        let url = format!("{}/blobs/{digest}", self.base(r));
        let resp = self.get(r, &url, None, auth).await?;
        let bytes = read_limited(resp, &url, limit, progress).await?;
        let actual = Digest::of(&bytes);
        if digest.starts_with("sha256:") && actual.as_str() != digest {
            return Err(OciError::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Uploads `config` and `layers` (each with its media type) and tags their manifest as
    /// `r`'s tag: how tests and `wasmkube bench` put a Linux image into a registry.
    pub async fn push_artifact(
        &self,
        r: &Reference,
        config_media_type: &str,
        config: Vec<u8>,
        layers: Vec<(String, Vec<u8>)>,
        auth: Option<&RegistryAuth>,
    ) -> Result<PushedImage, OciError> {
        let artifact = Artifact {
            config_media_type: config_media_type.to_string(),
            config: Bytes::from(config),
            layers: layers
                .into_iter()
                .map(|(m, b)| (m, Bytes::from(b)))
                .collect(),
        };
        self.push(r, artifact, auth).await
    }

    /// Downloads the Wasm layer of `r`, checking its digest, size and magic bytes.
    pub(crate) async fn pull(
        &self,
        r: &Reference,
        auth: Option<&RegistryAuth>,
        max_bytes: u64,
        progress: &PullProgress,
    ) -> Result<PulledBlob, OciError> {
        let manifest = self.manifest(r, auth).await?;
        let layer = wasm_layer(&manifest)?.clone();
        if layer.size > max_bytes {
            return Err(OciError::TooLarge {
                digest: layer.digest,
                limit: max_bytes,
            });
        }
        progress.expect(layer.size);
        let url = format!("{}/blobs/{}", self.base(r), layer.digest);
        let resp = self.get(r, &url, None, auth).await?;
        let bytes = read_limited(resp, &url, max_bytes, Some(progress)).await?;
        let digest = Digest::of(&bytes);
        if layer.digest.starts_with("sha256:") && digest.as_str() != layer.digest {
            return Err(OciError::DigestMismatch {
                expected: layer.digest,
                actual: digest.to_string(),
            });
        }
        if !bytes.starts_with(WASM_MAGIC) {
            return Err(OciError::NotWasm(format!(
                "layer {} does not start with \\0asm",
                layer.digest
            )));
        }
        Ok(PulledBlob { bytes, digest })
    }

    /// Whether `r` names a Wasm artifact: one manifest round trip, no blob download.
    pub(crate) async fn is_wasm(
        &self,
        r: &Reference,
        auth: Option<&RegistryAuth>,
    ) -> Result<bool, OciError> {
        let manifest = self.manifest(r, auth).await?;
        Ok(wasm_layer(&manifest).is_ok())
    }
}

impl RegistryClient {
    /// Whether `r`'s repository already holds blob `digest`.
    async fn has_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        auth: Option<&RegistryAuth>,
    ) -> Result<bool, OciError> {
        let url = format!("{}/blobs/{digest}", self.base(r));
        let req = Request {
            method: reqwest::Method::HEAD,
            url: &url,
            accept: None,
            content_type: None,
            body: None,
        };
        match self.send(r, req, auth).await {
            Ok(_) => Ok(true),
            Err(OciError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads a blob unless the repository has it: a monolithic upload (POST opens an
    /// upload session, one PUT sends the bytes and the digest the registry verifies).
    /// Returns whether it was uploaded.
    async fn upload_blob(
        &self,
        r: &Reference,
        bytes: Bytes,
        digest: &Digest,
        auth: Option<&RegistryAuth>,
    ) -> Result<bool, OciError> {
        if self.has_blob(r, digest, auth).await? {
            return Ok(false);
        }
        let start = format!("{}/blobs/uploads/", self.base(r));
        let req = Request {
            method: reqwest::Method::POST,
            url: &start,
            accept: None,
            content_type: None,
            body: None,
        };
        let resp = self.send(r, req, auth).await?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                OciError::Protocol(format!("no Location in the answer to POST {start}"))
            })?;
        // The location may be relative and usually carries state in its query already.
        let mut put = reqwest::Url::parse(&start)
            .and_then(|base| base.join(location))
            .map_err(|e| OciError::Protocol(format!("bad upload location {location:?}: {e}")))?;
        put.query_pairs_mut().append_pair("digest", digest.as_str());
        let put = put.to_string();
        let req = Request {
            method: reqwest::Method::PUT,
            url: &put,
            accept: None,
            content_type: Some("application/octet-stream"),
            body: Some(bytes),
        };
        self.send(r, req, auth).await?;
        Ok(true)
    }

    /// Uploads `artifact`'s blobs (skipping those present) and tags its manifest as
    /// `r`'s tag.
    pub(crate) async fn push(
        &self,
        r: &Reference,
        artifact: Artifact,
        auth: Option<&RegistryAuth>,
    ) -> Result<PushedImage, OciError> {
        let tag = match (&r.digest, &r.tag) {
            (Some(d), _) => return Err(OciError::PushByDigest(format!("{}@{d}", r.name()))),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        };
        let config_digest = Digest::of(&artifact.config);
        let mut uploaded = 0;
        let mut layers = Vec::new();
        let mut layer_digests = Vec::new();
        for (media_type, bytes) in artifact.layers {
            let digest = Digest::of(&bytes);
            let size = bytes.len() as u64;
            if self.upload_blob(r, bytes, &digest, auth).await? {
                uploaded += 1;
            }
            layers.push(serde_json::json!({
                "mediaType": media_type,
                "digest": digest.as_str(),
                "size": size,
            }));
            layer_digests.push(digest);
        }
        let config_size = artifact.config.len() as u64;
        if self
            .upload_blob(r, artifact.config, &config_digest, auth)
            .await?
        {
            uploaded += 1;
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": artifact.config_media_type,
                "digest": config_digest.as_str(),
                "size": config_size,
            },
            "layers": layers,
        });
        let manifest = Bytes::from(manifest.to_string());
        let manifest_digest = Digest::of(&manifest);
        let url = format!("{}/manifests/{tag}", self.base(r));
        let req = Request {
            method: reqwest::Method::PUT,
            url: &url,
            accept: None,
            content_type: Some(OCI_MANIFEST),
            body: Some(manifest),
        };
        self.send(r, req, auth).await?;
        Ok(PushedImage {
            reference: format!("{}:{tag}", r.name()),
            manifest_digest,
            config_digest,
            layer_digests,
            uploaded_blobs: uploaded,
        })
    }
}

/// An artifact to push: a config blob and layers, each with its media type.
pub(crate) struct Artifact {
    pub(crate) config_media_type: String,
    pub(crate) config: Bytes,
    pub(crate) layers: Vec<(String, Bytes)>,
}

/// How [`push_wasm`] and [`push_image`] reach the registry.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Credentials, for basic auth or to obtain a bearer token.
    pub auth: Option<RegistryAuth>,
    /// Speak plain HTTP to the registry. Loopback registries always are.
    pub insecure: bool,
    /// Timeout of one registry round trip.
    pub timeout: Duration,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            auth: None,
            insecure: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a push left in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `registry/repository:tag`.
    pub reference: String,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layer_digests: Vec<Digest>,
    /// How many blobs were uploaded; the others were already in the repository.
    pub uploaded_blobs: usize,
}

/// Pushes a Wasm module or component to `target` (`registry/repository[:tag]`) as a CNCF
/// Wasm OCI artifact: config [`WASM_CONFIG_MEDIA_TYPE`], one [`WASM_LAYER_MEDIA_TYPE`]
/// layer. The config carries no timestamp, so pushing the same bytes twice yields the same
/// manifest digest.
pub async fn push_wasm(
    wasm: impl Into<Bytes>,
    target: &str,
    opts: &PushOptions,
) -> Result<PushedImage, OciError> {
    let wasm: Bytes = wasm.into();
    let os = match wasm_kind(&wasm, target) {
        Ok(WasmKind::Module) => "wasip1",
        Ok(WasmKind::Component) => "wasip2",
        Err(e) => return Err(OciError::NotWasm(e.to_string())),
    };
    let r = Reference::parse(target)?;
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": os,
        "layerDigests": [Digest::of(&wasm).as_str()],
    });
    let artifact = Artifact {
        config_media_type: WASM_CONFIG_MEDIA_TYPE.to_string(),
        config: Bytes::from(config.to_string()),
        layers: vec![(WASM_LAYER_MEDIA_TYPE.to_string(), wasm)],
    };
    let insecure = if opts.insecure {
        vec![r.registry.clone()]
    } else {
        Vec::new()
    };
    let client = RegistryClient::new(opts.timeout, insecure)?;
    client.push(&r, artifact, opts.auth.as_ref()).await
}

/// Pushes the local image `image` (`name[:tag]`, or a digest) of `store` to `target`, as
/// [`push_wasm`] does.
pub async fn push_image(
    store: &ImageStore,
    image: &str,
    target: &str,
    opts: &PushOptions,
) -> Result<PushedImage, OciError> {
    let info = store
        .resolve(image)
        .ok_or_else(|| OciError::LocalImage(crate::images::ImageError::NotFound(image.into())))?;
    let path = store.blob_path(&info.digest);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| OciError::LocalImage(crate::images::ImageError::Io { path, source }))?;
    push_wasm(bytes, target, opts).await
}

/// A 401/403 after authenticating: wrong credentials, or none when the registry needs some.
fn denied(r: &Reference, auth: Option<&RegistryAuth>, status: u16) -> OciError {
    match auth {
        Some(a) => OciError::Denied {
            registry: r.registry.clone(),
            username: a.username.clone(),
            status,
        },
        None => OciError::Unauthorized {
            registry: r.registry.clone(),
        },
    }
}

fn check_status(resp: reqwest::Response, url: &str) -> Result<reqwest::Response, OciError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(OciError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        })
    }
}

/// Reads a body, refusing more than `limit` bytes (a hostile registry can't fill memory), and
/// counting what arrives into `progress`.
async fn read_limited(
    mut resp: reqwest::Response,
    url: &str,
    limit: u64,
    progress: Option<&PullProgress>,
) -> Result<Vec<u8>, OciError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(OciError::TooLarge {
            digest: url.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| OciError::Http {
        url: url.to_string(),
        source,
    })? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(OciError::TooLarge {
                digest: url.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
        if let Some(p) = progress {
            p.downloaded(chunk.len() as u64);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("hello").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/hello", Some("latest"))
        );
        assert!(!r.explicit_registry);
        let r = Reference::parse("127.0.0.1:5000/wasm/hello:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "wasm/hello", Some("v1"))
        );
        assert!(r.explicit_registry);
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        let r = Reference::parse("ghcr.io/o/r:t@sha256:abc").unwrap();
        assert_eq!(r.manifest_ref(), "sha256:abc");
        assert_eq!(
            Reference::parse("docker.io/user/img").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("a//b").is_err());
        assert!(Reference::parse("a:").is_err());
        assert!(Reference::parse("x@nodigest").is_err());
    }

    fn manifest(config: &str, layers: &[&str]) -> String {
        let layers: Vec<String> = layers
            .iter()
            .map(|m| {
                format!(
                    r#"{{"mediaType":"{m}","digest":"sha256:{}","size":10}}"#,
                    "b".repeat(64)
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{config}","digest":"sha256:{}","size":2}},"layers":[{}]}}"#,
            "c".repeat(64),
            layers.join(",")
        )
    }

    #[test]
    fn wasm_artifacts_are_recognized() {
        for layer in WASM_LAYER_MEDIA_TYPES {
            let m = parse_manifest(None, manifest(WASM_CONFIG_MEDIA_TYPE, &[layer]).as_bytes())
                .unwrap();
            let Manifest::Image(m) = m else {
                panic!("not an image manifest")
            };
            assert_eq!(wasm_layer(&m).unwrap().media_type, layer);
        }
        // wasm-to-oci wrote other config types; the layer decides.
        let m = parse_manifest(
            None,
            manifest(
                "application/vnd.wasm.config.v1+json",
                &["application/vnd.module.wasm.content.layer.v1+wasm"],
            )
            .as_bytes(),
        )
        .unwrap();
        let Manifest::Image(m) = m else {
            panic!("not an image manifest")
        };
        assert!(wasm_layer(&m).is_ok());
        // Wasm config with one layer of an odd type is trusted.
        let Manifest::Image(m) = parse_manifest(
            None,
            manifest(WASM_CONFIG_MEDIA_TYPE, &["application/octet-stream"]).as_bytes(),
        )
        .unwrap() else {
            panic!()
        };
        assert!(wasm_layer(&m).is_ok());
    }

    #[test]
    fn linux_images_are_not_wasm() {
        let body = manifest(
            "application/vnd.oci.image.config.v1+json",
            &["application/vnd.oci.image.layer.v1.tar+gzip"],
        );
        let Manifest::Image(m) = parse_manifest(Some(OCI_MANIFEST), body.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert!(matches!(wasm_layer(&m), Err(OciError::NotWasm(_))));
        let body = manifest(
            WASM_CONFIG_MEDIA_TYPE,
            &["application/wasm", "application/wasm"],
        );
        let Manifest::Image(m) = parse_manifest(None, body.as_bytes()).unwrap() else {
            panic!()
        };
        assert!(matches!(wasm_layer(&m), Err(OciError::NotWasm(_))));
    }

    #[test]
    fn indexes_pick_wasm_platform() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{a}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{b}","size":1,"platform":{{"architecture":"wasm","os":"wasip1"}}}}]}}"#,
            a = "1".repeat(64),
            b = "2".repeat(64)
        );
        let Manifest::Index(entries) = parse_manifest(Some(OCI_INDEX), body.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            pick_from_index(&entries).unwrap().digest,
            format!("sha256:{}", "2".repeat(64))
        );
        assert!(matches!(
            parse_manifest(Some("text/html"), b"{}"),
            Err(OciError::UnsupportedManifest(_))
        ));
        assert!(matches!(
            parse_manifest(None, b"not json"),
            Err(OciError::ManifestJson(_))
        ));
    }

    #[test]
    fn challenges_parse() {
        let Some(Challenge::Bearer {
            realm,
            service,
            scope,
        }) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        else {
            panic!("not bearer")
        };
        assert_eq!(realm, "https://auth.example/token");
        assert_eq!(service.as_deref(), Some("registry.example"));
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
        assert!(matches!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge("Negotiate").is_none());
    }

    #[test]
    fn hosts_and_credentials() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("ghcr.io"));
        let auth = vec![RegistryAuth {
            registry: "https://index.docker.io/v1/".into(),
            username: "u".into(),
            password: "p".into(),
        }];
        assert!(credentials_for(&auth, "docker.io").is_some());
        assert!(credentials_for(&auth, "ghcr.io").is_none());
    }
}
