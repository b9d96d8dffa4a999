//! User tokens: HS256 JWTs signed with one of the app's secret keys (api.md).
//!
//! The header's `kid` names the key; the key names the app, which must match
//! the `app` claim. `exp` is required and at most 30 days ahead; tokens issued
//! before a user's revocation time are refused. Keys come from the node's
//! config (streamed by the control plane), so checking a token reads no
//! database except the user's revocation time.

use std::sync::Arc;

use confab_config::{AppStatus, ConfigView};
use confab_model::{AppId, UserId};
use confab_proto::ops::code;
use confab_store::TokenRevocations;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{LogicError, Result};

/// Longest token lifetime accepted (api.md: `exp` at most 30 days ahead).
pub const MAX_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
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
    config: ConfigView,
    revocations: Arc<dyn TokenRevocations>,
}

impl TokenVerifier {
    pub fn new(config: ConfigView, revocations: Arc<dyn TokenRevocations>) -> Self {
        Self {
            config,
            revocations,
        }
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
        let config = self.config.current();
        // A key of an app this cell does not serve is as unknown as a key
        // that does not exist: the refusal names no other tenant.
        let (app, key) = config
            .key(&kid)
            .ok_or_else(|| LogicError::unauthorized("unknown key id (kid)"))?;
        if app.status == AppStatus::Suspended {
            return Err(LogicError::new(
                code::SUSPENDED,
                "this app is suspended; contact the app's operator",
            ));
        }
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
        if claims.app != app.app_id {
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
        let app_id = AppId::parse(&app.app_id)
            .map_err(|_| LogicError::unauthorized("token's app id is not valid"))?;
        let user_id = UserId::parse(&claims.sub).map_err(|e| {
            LogicError::unauthorized(format!("token sub is not a valid user id: {e}"))
        })?;
        if let Some(before_ms) = self
            .revocations
            .tokens_revoked_before(&app_id, &user_id)
            .await?
        {
            let issued_ms = claims.iat.unwrap_or(0).saturating_mul(1000);
            if issued_ms < before_ms {
                return Err(LogicError::unauthorized("token was revoked"));
            }
        }
        Ok(Verified {
            app_id,
            user_id,
            key_id: kid,
        })
    }
}

/// Mints a user token with an app's key (what `confab token mint` and the
/// REST API do; any JWT library does the same).
pub fn mint(
    key_id: &str,
    secret: &str,
    app: &AppId,
    user: &UserId,
    ttl_secs: i64,
) -> Result<String> {
    if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl_secs) {
        return Err(LogicError::bad_request(format!(
            "ttl must be 1 to {MAX_TOKEN_TTL_SECS} seconds"
        )));
    }
    let now = confab_model::now_ms() / 1000;
    let claims = Claims {
        sub: user.as_str().to_owned(),
        app: app.as_str().to_owned(),
        iat: Some(now),
        exp: now + ttl_secs,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_id.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| LogicError::new("internal", format!("signing token: {e}")))
}

/// A new random id with a prefix: `app_…`, `key_…`, `t_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}
