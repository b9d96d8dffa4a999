//! The web console (`admin-ui/`, a single-page app) at `/console/`.
//!
//! The built files (`admin-ui/dist`, committed and checked current by
//! `scripts/test-console`) are embedded at compile time, so `confab serve`
//! needs nothing else. `CONFAB_CONSOLE_DIR` serves another build from disk
//! instead (console development). Paths that are not files are the app's own
//! routes (bookmarkable URLs) and get `index.html`.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../admin-ui/dist"]
#[allow_missing = true]
struct Built;

/// Where the console's files come from.
#[derive(Clone)]
enum Source {
    Embedded,
    Dir(PathBuf),
}

fn file(source: &Source, path: &str) -> Option<(Vec<u8>, String)> {
    // No way out of the console's directory.
    if path
        .split('/')
        .any(|part| part == ".." || part.contains('\\'))
    {
        return None;
    }
    match source {
        Source::Embedded => Built::get(path).map(|f| {
            let mime = f.metadata.mimetype().to_owned();
            (f.data.into_owned(), mime)
        }),
        Source::Dir(dir) => {
            let full = dir.join(path);
            if !full.is_file() {
                return None;
            }
            let bytes = std::fs::read(&full).ok()?;
            let mime = mime_guess::from_path(&full)
                .first_or_octet_stream()
                .essence_str()
                .to_owned();
            Some((bytes, mime))
        }
    }
}

/// The console's Content-Security-Policy (the same as the `<meta>` tag in
/// its index.html, `admin-ui/vite.config.ts`, plus what only a header can say).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn serve(source: &Source, path: &str) -> Response {
    let path = path.trim_start_matches('/');
    let (found, is_index) = match file(source, path) {
        Some(f) if !path.is_empty() => (Some(f), false),
        // A missing asset is a 404, never the page: a stale page must not
        // load HTML as its script.
        None if path.starts_with("assets/") => {
            return (StatusCode::NOT_FOUND, "no such console asset").into_response();
        }
        // The app's own routes (no such file): the SPA's entry point.
        _ => (file(source, "index.html"), true),
    };
    let Some((bytes, mime)) = found else {
        return (
            StatusCode::NOT_FOUND,
            "the console is not built into this binary (see admin-ui/README.md)",
        )
            .into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // Hashed asset names never change content; the entry point always may.
    let cache = if !is_index && path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The other security headers of every console response: no sniffing, no
/// framing (also for browsers without `frame-ancestors`), no referrer (URLs
/// carry app and user ids), a browsing context of its own, and no powerful
/// features the console never uses.
const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
];

/// `/console` and everything under it: from `dir` if given, else the
/// files built into the binary.
pub fn router(dir: Option<PathBuf>) -> Router {
    let source = match dir {
        Some(dir) => Source::Dir(dir),
        None => Source::Embedded,
    };
    let (index, rest) = (source.clone(), source);
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(move || async move { serve(&index, "") }))
        .route(
            "/console/{*path}",
            get(move |Path(path): Path<String>| async move { serve(&rest, &path) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_answer_carries_the_security_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
        let source = Source::Dir(dir.path().to_owned());
        for path in ["", "apps/app_1/push", "index.html"] {
            let r = serve(&source, path);
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let h = r.headers();
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            for directive in [
                "default-src 'self'",
                "script-src 'self'",
                "frame-ancestors 'none'",
                "object-src 'none'",
            ] {
                assert!(csp.contains(directive), "{directive} in {csp}");
            }
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(h["cross-origin-opener-policy"], "same-origin");
        }
    }
}
