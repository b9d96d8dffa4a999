//! The cell secret: every gRPC call inside a cell carries it, and servers
//! refuse calls without it. Without a configured secret (development, tests)
//! nothing is checked and operators must keep the ports private
//! (docs/operations.md).

use std::sync::OnceLock;

use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

const HEADER: &str = "x-confab-cell-secret";

static SECRET: OnceLock<Option<AsciiMetadataValue>> = OnceLock::new();

/// Sets the cell secret for this process (once, at start). Returns an error
/// if it cannot be sent as a header value.
pub fn set_cell_secret(secret: Option<&str>) -> Result<(), String> {
    let value = match secret.filter(|s| !s.is_empty()) {
        Some(s) => Some(
            AsciiMetadataValue::try_from(s)
                .map_err(|_| "the cell secret must be printable ASCII")?,
        ),
        None => None,
    };
    let _ = SECRET.set(value);
    Ok(())
}

fn secret() -> Option<&'static AsciiMetadataValue> {
    SECRET.get().and_then(|s| s.as_ref())
}

/// Client side: stamps the secret on every call.
#[derive(Clone, Copy, Default)]
pub struct Stamp;

impl Interceptor for Stamp {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(s) = secret() {
            req.metadata_mut().insert(HEADER, s.clone());
        }
        Ok(req)
    }
}

/// Server side: refuses calls without the right secret.
#[derive(Clone, Copy, Default)]
pub struct Check;

impl Interceptor for Check {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        check(secret(), &req)?;
        Ok(req)
    }
}

fn check(expected: Option<&AsciiMetadataValue>, req: &Request<()>) -> Result<(), Status> {
    let Some(expected) = expected else {
        return Ok(());
    };
    match req.metadata().get(HEADER) {
        Some(got) if constant_time_eq(got.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(Status::unauthenticated("missing or wrong cell secret")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(header: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(h) = header {
            r.metadata_mut()
                .insert(HEADER, AsciiMetadataValue::try_from(h).unwrap());
        }
        r
    }

    #[test]
    fn calls_need_the_cell_secret_when_one_is_set() {
        let secret = AsciiMetadataValue::try_from("s3cret").unwrap();
        assert!(check(Some(&secret), &with(Some("s3cret"))).is_ok());
        assert_eq!(
            check(Some(&secret), &with(Some("guess")))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            check(Some(&secret), &with(None)).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(
            check(None, &with(None)).is_ok(),
            "no secret configured: open (development)"
        );
    }
}
