//! Local fake push providers: HTTPS (HTTP/2 or HTTP/1.1 by ALPN) on
//! 127.0.0.1 with a certificate from a CA generated at test time. Each fake
//! records every request it got and which TCP connection carried it, and
//! answers through a handler the test supplies.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate for 127.0.0.1 / localhost signed by it.
pub struct TestCa {
    pub ca_pem: String,
    server: Arc<ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "confab push test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");

        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .expect("leaf cert");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server config");
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TestCa {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub version: Version,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Which TCP connection (1-based, in accept order) carried it.
    pub conn: usize,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    pub fn form(&self) -> std::collections::HashMap<String, String> {
        serde_urlencoded::from_bytes(&self.body).expect("form body")
    }
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }
}

pub type Handler = dyn Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync;

pub struct Fake {
    pub url: String,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub async fn start(
        ca: &TestCa,
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Fake {
        Fake::start_with_streams(ca, 1000, handler).await
    }

    /// A fake that keeps no log of requests (for the benchmark, where the
    /// log would cost more than the fake).
    pub async fn start_unrecorded(
        ca: &TestCa,
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Fake {
        Fake::serve(ca, 1000, false, handler).await
    }

    /// As [`start`](Self::start), advertising at most `max_streams`
    /// concurrent HTTP/2 streams per connection.
    pub async fn start_with_streams(
        ca: &TestCa,
        max_streams: u32,
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Fake {
        Fake::serve(ca, max_streams, true, handler).await
    }

    async fn serve(
        ca: &TestCa,
        max_streams: u32,
        record: bool,
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor = TlsAcceptor::from(ca.server.clone());
        let (conns, log) = (connections.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let conn = conns.fetch_add(1, Ordering::SeqCst) + 1;
                let (acceptor, handler, log) = (acceptor.clone(), handler.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (handler, log) = (handler.clone(), log.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let seen = Seen {
                                method: parts.method,
                                version: parts.version,
                                path: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                                conn,
                            };
                            let res = handler(&seen);
                            if record {
                                log.lock().unwrap().push(seen);
                            }
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http2().max_concurrent_streams(max_streams);
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Fake {
            url,
            connections,
            seen,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to `path` (exact match).
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

pub fn reply(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    reply_with(status, &[], body)
}

pub fn reply_with(
    status: u16,
    headers: &[(&str, &str)],
    body: serde_json::Value,
) -> Response<Full<Bytes>> {
    let mut res = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        res = res.header(*k, *v);
    }
    let bytes = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    res.body(Full::new(bytes)).expect("response")
}

/// Endpoints with every vendor pointed at `url` and the test CA trusted.
pub fn endpoints(ca: &TestCa, url: &str) -> confab_push::Endpoints {
    confab_push::Endpoints {
        apns: url.into(),
        apns_sandbox: url.into(),
        fcm: url.into(),
        fcm_oauth: format!("{url}/token"),
        huawei: url.into(),
        huawei_oauth: format!("{url}/oauth2/v3/token"),
        xiaomi: url.into(),
        oppo: url.into(),
        vivo: url.into(),
        honor: url.into(),
        honor_oauth: format!("{url}/auth/token"),
        extra_ca_pem: Some(ca.ca_pem.clone()),
        timeout: std::time::Duration::from_secs(10),
    }
}

/// A notification with every optional field set.
pub fn message(token: &str) -> confab_push::PushMessage {
    confab_push::PushMessage {
        id: "3f2b8c1e-9a4d-4e7b-8c6f-1d2e3f4a5b6c".into(),
        token: token.into(),
        bundle: "com.example.chat".into(),
        title: "Alice".into(),
        body: "Lunch at noon?".into(),
        badge: Some(3),
        collapse_id: Some("conv-42".into()),
        thread_id: Some("conv-42".into()),
        data: [
            ("conv_id".to_string(), "42".to_string()),
            ("msg_id".to_string(), "7".to_string()),
        ]
        .into_iter()
        .collect(),
        expires_at: Some(now() + 3600),
        high_priority: true,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
