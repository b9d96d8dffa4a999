//! The `/v1` handlers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use confab_logic::Session;
use confab_model::{ConvId, Platform, UserId};
use confab_proto::Frame;

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::*;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult, JsonBody};

/// The user id messages sent with `from_system: true` carry (reserved: a
/// request may not name it as `from`).
pub const SYSTEM_USER: &str = "system";
/// A token's lifetime when the request names none.
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 24 * 3600;
/// Most users per online-status request.
pub const MAX_ONLINE_USERS: usize = 500;

fn user_id(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).map_err(|e| ApiError::bad_request(format!("user_id: {e}")))
}

/// Mint a user token.
///
/// An HS256 JWT signed with the app's newest active secret key, for the
/// gateway's `login`. Accepts `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/tokens",
    tag = "tokens",
    operation_id = "mint_token",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response"),
    ),
    request_body(content = MintToken, description = "Optional; an empty body takes the defaults"),
    responses(
        (status = 201, description = "The token", body = Token),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 409, response = crate::Conflict),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn mint_token(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<MintToken>,
) -> ApiResult<Response> {
    let user = user_id(&user)?;
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
    let key = caller
        .app
        .active_key()
        .ok_or_else(|| ApiError::new("unavailable", "the app has no active key"))?
        .clone();
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::CREATED,
            async {
                let token =
                    confab_logic::auth::mint(&key.key_id, &key.secret, &caller.app_id, &user, ttl)?;
                Ok(Token {
                    user_id: user.as_str().to_owned(),
                    token,
                    key_id: key.key_id.clone(),
                    expires_at: rfc3339((confab_model::now_ms() / 1000 + ttl) * 1000),
                })
            },
        )
        .await
}

/// Revoke a user's tokens.
///
/// Every token of the user issued before now stops working (a token minted
/// in the same second as the revocation counts as before it), and the
/// user's live sessions are sent `kicked` and closed.
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/revoke",
    tag = "tokens",
    operation_id = "revoke_tokens",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn revoke_tokens(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<Json<Revoked>> {
    let user = user_id(&user)?;
    let now = confab_model::now_ms();
    state
        .logic
        .stores()
        .revocations
        .revoke_tokens(&caller.app_id, &user, now)
        .await?;
    state
        .logic
        .delivery()
        .kick_user(&caller.app_id, &user, "tokens revoked");
    Ok(Json(Revoked {
        user_id: user.as_str().to_owned(),
        revoked_before: rfc3339(now),
    }))
}

/// Send a message.
///
/// As a user (`from`) or as the system (`from_system: true`, sender id
/// `system`) to a user, a group or a live room (with `priority`; nothing is
/// stored, so the reply has no `seq`). The same pipeline as the wire
/// protocol's `send`: validation, moderation, quotas, dedupe by
/// `client_msg_id`, storage, delivery to online devices. Accepts
/// `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    operation_id = "send_message",
    params(("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response")),
    request_body = SendMessage,
    responses(
        (status = 201, description = "Stored (or a duplicate `client_msg_id`: the first message)", body = Sent),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 409, response = crate::Conflict),
        (status = 422, response = crate::ContentBlocked),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn send_message(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<SendMessage>,
) -> ApiResult<Response> {
    let from = match (&body.from, body.from_system) {
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "give either from or from_system: true, not both",
            ));
        }
        (None, false) => {
            return Err(ApiError::bad_request(
                "from (a user id) or from_system: true is required",
            ));
        }
        (Some(f), false) if f == SYSTEM_USER => {
            return Err(ApiError::bad_request(format!(
                "the user id {SYSTEM_USER:?} is reserved; use from_system: true"
            )));
        }
        (Some(f), false) => {
            UserId::parse(f).map_err(|e| ApiError::bad_request(format!("from: {e}")))?
        }
        (None, true) => {
            UserId::parse(SYSTEM_USER).map_err(|e| ApiError::internal(e.to_string()))?
        }
    };
    if !body.body.is_object() {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    if body.priority.is_some() && body.to.kind != "room" {
        return Err(ApiError::bad_request(
            "priority applies to room messages only (to.kind \"room\")",
        ));
    }
    // As the system, the app acts with its own rights (in groups: the
    // owner's, without being a member).
    let session = if body.from_system {
        Session::for_app(caller.app_id.clone(), caller.app.settings.clone())?
    } else {
        Session {
            app_id: caller.app_id.clone(),
            user_id: from,
            device_id: "rest".into(),
            platform: Platform::Other,
            session_id: format!("rest-{}", ulid::Ulid::new()),
            settings: confab_logic::shared_settings::share(
                &caller.app_id,
                caller.app.settings.clone(),
            ),
            client_version: String::new(),
        }
    };
    let frame = Frame {
        op: confab_proto::ops::SEND.into(),
        rid: Some(1),
        to: Some(confab_proto::Peer {
            kind: body.to.kind.clone(),
            id: body.to.id.clone(),
        }),
        body: body.body.to_string(),
        client_msg_id: body.client_msg_id.clone().unwrap_or_default(),
        priority: body.priority.clone().unwrap_or_default(),
        ..Default::default()
    };
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::CREATED,
            async {
                let reply = state.logic.handle(&session, frame).await;
                if reply.ok != Some(true) {
                    let e = reply.error.unwrap_or_default();
                    let mut error = ApiError::new(&e.code, e.message);
                    error.retry_after_secs = reply
                        .retry_after_ms
                        .map(|ms| crate::error::secs_ceil(u64::from(ms)));
                    return Err(error);
                }
                Ok(Sent {
                    msg_id: reply.msg_id,
                    conv_id: reply.conv_id,
                    seq: reply.seq,
                    ts: rfc3339(reply.ts.unwrap_or_default()),
                    client_msg_id: reply.client_msg_id,
                    masked: reply.masked.unwrap_or(false),
                    inbox_seq: reply.inbox_seq,
                })
            },
        )
        .await
}

const HISTORY_DEFAULT: u32 = 50;
const HISTORY_MAX: u32 = 100;

/// A conversation's history.
///
/// Newest first, paged by `seq`: pass `next_cursor` as `cursor` for older
/// messages. Pages are stable while new messages arrive. A conversation of
/// another app is `404 not_found`.
#[utoipa::path(
    get,
    path = "/v1/conversations/{conv_id}/messages",
    tag = "messages",
    operation_id = "conversation_history",
    params(("conv_id" = String, Path, description = "e.g. `p2p:alice:bob` or `group:g1`"), HistoryQuery),
    responses(
        (status = 200, description = "One page", body = MessagePage),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn history(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(conv): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<MessagePage>> {
    let limit = q.limit.unwrap_or(HISTORY_DEFAULT);
    if !(1..=HISTORY_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {HISTORY_MAX}"
        )));
    }
    let conv = ConvId::parse(&conv).map_err(|_| ApiError::not_found("no such conversation"))?;
    let before = match q.cursor.as_deref() {
        None | Some("") => q.before_seq,
        Some(c) => Some(
            B64.decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("cursor is not one this API gave"))?,
        ),
    };
    let mut found = state
        .logic
        .stores()
        .messages
        .history(&caller.app_id, &conv, before, limit + 1)
        .await?;
    if found.is_empty() && before.is_none() {
        return Err(ApiError::not_found("no such conversation"));
    }
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next_cursor = match (more, found.last()) {
        (true, Some(m)) => Some(B64.encode(m.seq.to_string())),
        _ => None,
    };
    Ok(Json(MessagePage {
        items: found.iter().map(MessageOut::from).collect(),
        next_cursor,
    }))
}

/// A user's conversations with unread counts.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/conversations",
    tag = "conversations",
    operation_id = "user_conversations",
    params(("user_id" = String, Path, description = "The user's id"), ConversationsQuery),
    responses(
        (status = 200, description = "Most recently active first", body = ConversationPage),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn conversations(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConversationsQuery>,
) -> ApiResult<Json<ConversationPage>> {
    let user = user_id(&user)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 100"));
    }
    if q.cursor.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::bad_request("cursor is not one this API gave"));
    }
    // Read-diffused groups' last seqs come with a pull (docs/protocol.md
    // §4.15), as for the wire's `conversations`.
    state
        .logic
        .stores()
        .inbox
        .pull_group_timelines(&caller.app_id, &user, 500)
        .await?;
    let (list, total_unread) = state
        .logic
        .stores()
        .reads
        .conversations(&caller.app_id, &user, limit)
        .await?;
    Ok(Json(ConversationPage {
        items: list
            .iter()
            .map(|c| ConversationOut {
                conv_id: c.conv_id.as_str().to_owned(),
                last_seq: c.last_seq,
                read_seq: c.read_seq,
                unread: c.unread(),
                last_message: c.last_message.as_ref().map(MessageOut::from),
            })
            .collect(),
        total_unread,
        next_cursor: None,
    }))
}

/// Online status of up to 500 users.
#[utoipa::path(
    get,
    path = "/v1/users/online",
    tag = "users",
    operation_id = "users_online",
    params(OnlineQuery),
    responses(
        (status = 200, description = "Each user's status", body = OnlinePage),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn online(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<OnlineQuery>,
) -> ApiResult<Json<OnlinePage>> {
    let mut users: Vec<UserId> = Vec::new();
    for raw in q
        .user_ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let u = user_id(raw)?;
        if !users.contains(&u) {
            users.push(u);
        }
    }
    if users.is_empty() || users.len() > MAX_ONLINE_USERS {
        return Err(ApiError::bad_request(format!(
            "user_ids must name 1 to {MAX_ONLINE_USERS} users"
        )));
    }
    let routes = &state.logic.stores().routes;
    let found =
        futures_util::future::join_all(users.iter().map(|u| routes.routes(&caller.app_id, u)))
            .await;
    let mut items = Vec::with_capacity(users.len());
    for (user, routes) in users.iter().zip(found) {
        let devices: Vec<DeviceOut> = routes?
            .into_iter()
            .map(|r| DeviceOut {
                device_id: r.device_id,
                platform: r.platform,
            })
            .collect();
        items.push(Presence {
            user_id: user.as_str().to_owned(),
            online: !devices.is_empty(),
            devices,
        });
    }
    Ok(Json(OnlinePage { items }))
}
