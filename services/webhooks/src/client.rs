//! One signed POST to a tenant's endpoint, and what came of it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sign;

/// Most bytes of a response read (a before_send answer is small).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Ok,
    /// A non-2xx answer.
    HttpError,
    /// No answer in time.
    Timeout,
    /// Could not connect, or the connection broke.
    Network,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::HttpError => "http_error",
            Self::Timeout => "timeout",
            Self::Network => "network_error",
        }
    }
}

/// The result of one request.
#[derive(Debug, Clone)]
pub struct Response {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub latency: Duration,
    /// The response body (2xx only, at most [`MAX_RESPONSE_BYTES`]).
    pub body: Option<Bytes>,
    pub error: Option<String>,
}

impl Response {
    pub fn latency_ms(&self) -> u32 {
        u32::try_from(self.latency.as_millis()).unwrap_or(u32::MAX)
    }
}

/// An HTTP client for webhook requests (shared: one connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("Confab-Webhooks/", env!("CARGO_PKG_VERSION")))
            // A webhook URL is what the tenant configured, not where a
            // redirect leads.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http }
    }

    /// POSTs `body` signed with `secret`, waiting at most `timeout` for the
    /// whole exchange.
    pub async fn post(
        &self,
        url: &str,
        secret: &str,
        event_id: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Response {
        let started = Instant::now();
        let signature = sign::header_value(secret, confab_model::now_ms() / 1000, &body);
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::SIGNATURE_HEADER, signature)
            .header(sign::EVENT_ID_HEADER, event_id)
            .body(body)
            .send();
        let result = tokio::time::timeout(timeout, async {
            let mut response = request.await?;
            let status = response.status();
            let mut body = Vec::new();
            if status.is_success() {
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
            }
            Ok::<_, reqwest::Error>((status, body))
        })
        .await;
        let latency = started.elapsed();
        match result {
            Err(_) => Response {
                outcome: Outcome::Timeout,
                status: None,
                latency,
                body: None,
                error: Some(format!("no answer within {} ms", timeout.as_millis())),
            },
            Ok(Err(e)) => Response {
                outcome: if e.is_timeout() {
                    Outcome::Timeout
                } else {
                    Outcome::Network
                },
                status: None,
                latency,
                body: None,
                error: Some(error_chain(&e)),
            },
            Ok(Ok((status, body))) if status.is_success() => Response {
                outcome: Outcome::Ok,
                status: Some(status.as_u16()),
                latency,
                body: Some(Bytes::from(body)),
                error: None,
            },
            Ok(Ok((status, _))) => Response {
                outcome: Outcome::HttpError,
                status: Some(status.as_u16()),
                latency,
                body: None,
                error: Some(format!("the endpoint answered HTTP {}", status.as_u16())),
            },
        }
    }
}

/// The error and its causes, for the delivery list (no URL secrets: the
/// URL is the tenant's own).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s.chars().take(500).collect()
}
