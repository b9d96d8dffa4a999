//! User tokens: HS256 JWTs signed with one of the app's secret keys (api.md).
//!
//! The header's `kid` names the key; the key names the app, which must match
//! the `app` claim. `exp` is required and at most 30 days ahead; tokens issued
//! before a user's revocation time are refused. Keys are cached for a few
//! seconds so that a login costs no database read, while a revoked key or a
//! new app (the CLI may add one while the server runs) is seen quickly.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use confab_model::{AppId, UserId};
use confab_store::{AppKey, Directory};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{LogicError, Result};

/// Longest token lifetime accepted (api.md: `exp` at most 30 days ahead).
pub const MAX_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    pub exp: i64,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub app_id: AppId,
    pub user_id: UserId,
    pub key_id: String,
}

pub struct TokenVerifier {
    directory: Arc<dyn Directory>,
    keys: RwLock<HashMap<String, (Instant, Option<AppKey>)>>,
}

impl TokenVerifier {
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self {
            directory,
            keys: RwLock::new(HashMap::new()),
        }
    }

    async fn key(&self, kid: &str) -> Result<Option<AppKey>> {
        if let Some((at, key)) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(key.clone());
        }
        let key = self.directory.key(kid).await?;
        let mut cache = self.keys.write().unwrap_or_else(|p| p.into_inner());
        // Unknown kids are cached too (briefly) so that a flood of junk tokens
        // costs no database reads; the map is bounded by clearing it.
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(kid.to_owned(), (Instant::now(), key.clone()));
        Ok(key)
    }

    /// Checks a token; every refusal is `unauthorized` with the reason.
    pub async fn verify(&self, token: &str) -> Result<Verified> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| LogicError::unauthorized(format!("malformed token: {e}")))?;
        if header.alg != Algorithm::HS256 {
            return Err(LogicError::unauthorized("token must be signed with HS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| LogicError::unauthorized("token header has no kid"))?;
        // Key ids are `key_` + a ULID; anything else is refused before any
        // lookup, so junk tokens cost neither a database read nor cache space.
        if kid.len() > 64
            || !kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(LogicError::unauthorized("unknown key id (kid)"));
        }
        let key = self
            .key(&kid)
            .await?
            .ok_or_else(|| LogicError::unauthorized("unknown key id (kid)"))?;
        if key.revoked_at.is_some() {
            return Err(LogicError::unauthorized(
                "the key that signed this token is revoked",
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(key.secret.as_bytes()),
            &validation,
        )
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            LogicError::unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired".to_owned(),
                ErrorKind::InvalidSignature => "bad token signature".to_owned(),
                ErrorKind::MissingRequiredClaim(c) => format!("token has no {c} claim"),
                _ => format!("invalid token: {e}"),
            })
        })?;
        let claims = data.claims;
        if claims.app != key.app_id.as_str() {
            return Err(LogicError::unauthorized(
                "token's app claim does not match its key",
            ));
        }
        let now_s = confab_model::now_ms() / 1000;
        if claims.exp - now_s > MAX_TOKEN_TTL_SECS + LEEWAY_SECS as i64 {
            return Err(LogicError::unauthorized(
                "token exp is more than 30 days ahead",
            ));
        }
        let user_id = UserId::parse(&claims.sub).map_err(|e| {
            LogicError::unauthorized(format!("token sub is not a valid user id: {e}"))
        })?;
        if let Some(before_ms) = self
            .directory
            .tokens_revoked_before(&key.app_id, &user_id)
            .await?
        {
            let issued_ms = claims.iat.unwrap_or(0).saturating_mul(1000);
            if issued_ms < before_ms {
                return Err(LogicError::unauthorized("token was revoked"));
            }
        }
        Ok(Verified {
            app_id: key.app_id,
            user_id,
            key_id: kid,
        })
    }
}

/// Mints a user token with `key` (what `confab token mint` and the REST API do;
/// any JWT library does the same).
pub fn mint(key: &AppKey, user: &UserId, ttl_secs: i64) -> Result<String> {
    if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl_secs) {
        return Err(LogicError::bad_request(format!(
            "ttl must be 1 to {MAX_TOKEN_TTL_SECS} seconds"
        )));
    }
    let now = confab_model::now_ms() / 1000;
    let claims = Claims {
        sub: user.as_str().to_owned(),
        app: key.app_id.as_str().to_owned(),
        iat: Some(now),
        exp: now + ttl_secs,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.key_id.clone());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(key.secret.as_bytes()),
    )
    .map_err(|e| LogicError::new("internal", format!("signing token: {e}")))
}

/// A new random id with a prefix: `app_…`, `key_…`, `t_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A new secret key: `sk_` and 40 hex digits (160 bits).
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    let mut s = String::with_capacity(43);
    s.push_str("sk_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
