//! HTTPS plumbing shared by the provider adapters: the TLS configuration
//! (public web roots plus an optional extra CA), a pooled client for the
//! vendors' JSON/form APIs, the single multiplexed HTTP/2 connection APNs
//! wants, and `Retry-After` parsing.
//!
//! It knows nothing about any vendor's payloads; it moves bytes and reports
//! transport failures as strings (which the adapters turn into
//! `Outcome::Retry`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::PushError;

/// A reply, fully read. Provider replies are small JSON documents.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, or `Null` when it is empty or not JSON (an HTML
    /// error page from a proxy, say); callers then go by the status alone.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `Retry-After`, when present and readable.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers, SystemTime::now())
    }
}

/// Body of a request to send.
pub(crate) enum Body {
    Json(Vec<u8>),
    Form(String),
}

/// TLS client configuration: the Mozilla root set (the providers' public
/// hosts) plus, when configured, one extra CA (a corporate proxy, or the
/// test CA of the fakes). `alpn` lists the protocols to offer.
pub(crate) fn tls_config(
    extra_ca_pem: Option<&str>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, PushError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| PushError::Config(format!("extra CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| PushError::Config(format!("extra CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(PushError::Config(
                "extra CA PEM holds no certificate".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PushError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_uri(url: &str) -> Result<Uri, String> {
    url.parse::<Uri>()
        .map_err(|e| format!("bad URL {url}: {e}"))
}

fn build_request(
    uri: Uri,
    headers: &[(HeaderName, HeaderValue)],
    body: Body,
) -> Result<Request<Full<Bytes>>, String> {
    let (content_type, bytes) = match body {
        Body::Json(b) => ("application/json; charset=utf-8", Bytes::from(b)),
        Body::Form(s) => (
            "application/x-www-form-urlencoded; charset=utf-8",
            Bytes::from(s),
        ),
    };
    let mut req = Request::post(uri)
        .body(Full::new(bytes))
        .map_err(|e| format!("request: {e}"))?;
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in headers {
        req.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(req)
}

async fn read_reply(res: http::Response<hyper::body::Incoming>) -> Result<Reply, String> {
    let (parts, body) = res.into_parts();
    // Replies are small; a cap keeps a misbehaving endpoint from making us
    // buffer without bound.
    let limited = http_body_util::Limited::new(body, 1 << 20);
    let body = limited
        .collect()
        .await
        .map_err(|e| format!("reading reply: {e}"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A pooled HTTPS client for the vendors' APIs (HTTP/2 when the server
/// offers it through ALPN, else HTTP/1.1 keep-alive). Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(extra_ca_pem: Option<&str>, timeout: Duration) -> Result<HttpClient, PushError> {
        // No ALPN here: the connector offers h2 and http/1.1 itself.
        let tls = tls_config(extra_ca_pem, &[])?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_only()
            .enable_all_versions()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(HttpClient { inner, timeout })
    }

    /// POSTs and reads the reply; `Err` is a transport failure or timeout.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Body,
    ) -> Result<Reply, String> {
        let req = build_request(parse_uri(url)?, headers, body)?;
        let call = async {
            let res = self
                .inner
                .request(req)
                .await
                .map_err(|e| format!("{e:#}"))?;
            read_reply(res).await
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("no reply within {:?}", self.timeout))?
    }
}

/// One HTTP/2 connection to one origin, opened on first use and reopened
/// when it dies, that every request multiplexes over. APNs asks for exactly
/// this ("keep your connections open ... reuse them for multiple
/// requests"); opening a connection per push would be throttled as a
/// denial-of-service attempt.
pub(crate) struct H2Connection {
    base: Uri,
    host: String,
    port: u16,
    tls: TlsConnector,
    timeout: Duration,
    /// Held while connecting so that many concurrent first sends share one
    /// new connection instead of racing to open one each; otherwise only
    /// held for a clone.
    sender: Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
}

impl H2Connection {
    pub fn new(
        base: &str,
        extra_ca_pem: Option<&str>,
        timeout: Duration,
    ) -> Result<H2Connection, PushError> {
        let base = base
            .trim_end_matches('/')
            .parse::<Uri>()
            .map_err(|e| PushError::Config(format!("bad URL {base}: {e}")))?;
        if base.scheme_str() != Some("https") {
            return Err(PushError::Config(format!(
                "{base}: only https is supported"
            )));
        }
        let host = base
            .host()
            .ok_or_else(|| PushError::Config(format!("{base}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = base.port_u16().unwrap_or(443);
        let tls = TlsConnector::from(tls_config(extra_ca_pem, &[b"h2"])?);
        Ok(H2Connection {
            base,
            host,
            port,
            tls,
            timeout,
            sender: Mutex::new(None),
        })
    }

    /// The origin as `https://host[:port]`, to prefix request paths with.
    pub fn base(&self) -> String {
        self.base.to_string().trim_end_matches('/').to_string()
    }

    async fn connect(&self) -> Result<http2::SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let name =
            ServerName::try_from(self.host.clone()).map_err(|e| format!("server name: {e}"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            // Until the server's SETTINGS arrive we do not know its stream
            // limit; assuming hyper's default (100) gets streams above a
            // lower limit refused. One stream until then costs one round
            // trip on a new connection; queued sends then go out at once.
            .initial_max_send_streams(1)
            // Pings keep idle NAT/proxy state alive and detect a dead peer.
            .keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "push HTTP/2 connection closed");
            }
        });
        Ok(sender)
    }

    async fn sender(&self) -> Result<http2::SendRequest<Full<Bytes>>, String> {
        let mut slot = self.sender.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let fresh = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| format!("connect: no answer within {:?}", self.timeout))??;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// POSTs `path` on this connection and reads the reply.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Body,
    ) -> Result<Reply, String> {
        let uri = parse_uri(&format!("{}{}", self.base(), path))?;
        let req = build_request(uri, headers, body)?;
        let call = async {
            let mut sender = self.sender().await?;
            sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            let res = sender.send_request(req).await.map_err(|e| format!("{e}"))?;
            read_reply(res).await
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("no reply within {:?}", self.timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_str(&later).unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }
}
