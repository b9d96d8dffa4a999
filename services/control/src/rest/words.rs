//! Sensitive-word lists: the global one (an operator changes it; everyone
//! signed in may read it) and one per app (its tenant's admins and operators).

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::dto::{
    ImportQuery, PageQuery, WordAction, WordList, WordsChange, WordsChanged, WordsImported,
};
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth, JsonBody, TextBody};
use super::page::paginate;
use crate::service::WordScope;

async fn list(
    state: &ApiState,
    auth: &Auth,
    scope: &WordScope,
    page: &PageQuery,
) -> ApiResult<Json<WordList>> {
    let words = state.control.words(&auth.actor, scope).await?;
    let (items, next_cursor) = paginate(words, |w| w.word.clone(), page)?;
    Ok(Json(WordList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

async fn change(
    state: &ApiState,
    auth: &Auth,
    scope: &WordScope,
    body: WordsChange,
) -> ApiResult<Json<WordsChanged>> {
    let words = state
        .control
        .change_words(
            &auth.actor,
            scope,
            body.add.into_iter().map(Into::into).collect(),
            body.remove,
        )
        .await?;
    Ok(Json(WordsChanged { count: words.len() }))
}

async fn import(
    state: &ApiState,
    auth: &Auth,
    scope: &WordScope,
    query: ImportQuery,
    text: &str,
) -> ApiResult<Json<WordsImported>> {
    // Who may change the list before what the text holds.
    match scope {
        WordScope::App(app_id) => {
            state.control.app(&auth.actor, app_id).await?;
        }
        WordScope::Global => auth.require_operator()?,
    }
    let action = query.default_action.unwrap_or(WordAction::Block);
    let imported = state
        .control
        .import_words(&auth.actor, scope, text, action.into())
        .await?;
    let count = state.control.words(&auth.actor, scope).await?.len();
    Ok(Json(WordsImported { imported, count }))
}

/// The global word list.
#[utoipa::path(
    get,
    path = "/admin/v1/words",
    tag = "words",
    operation_id = "list_global_words",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the global list, by word", body = WordList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn global_words(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<WordList>> {
    list(&state, &auth, &WordScope::Global, &page).await
}

/// Adds and removes words of the global list (operator only).
#[utoipa::path(
    post,
    path = "/admin/v1/words",
    tag = "words",
    operation_id = "change_global_words",
    request_body(content = WordsChange, example = json!({"add": [{"word": "spam", "action": "block"}, {"word": "darn", "action": "mask"}], "remove": ["oldword"]})),
    responses(
        (status = 200, description = "The size of the list after the change", body = WordsChanged),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn change_global_words(
    State(state): State<ApiState>,
    auth: Auth,
    JsonBody(body, _): JsonBody<WordsChange>,
) -> ApiResult<Json<WordsChanged>> {
    change(&state, &auth, &WordScope::Global, body).await
}

/// Imports words into the global list from text (operator only).
#[utoipa::path(
    post,
    path = "/admin/v1/words/import",
    tag = "words",
    operation_id = "import_global_words",
    params(ImportQuery),
    request_body(content = String, content_type = "text/plain", description = "One word per line, optionally followed by a comma or tab and `block` or `mask`; blank lines and lines starting with `#` are skipped.",
                 example = "spam\ndarn,mask\n# a comment\nscam\tblock\n"),
    responses(
        (status = 200, description = "Lines imported and the size of the list", body = WordsImported),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn import_global_words(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ImportQuery>,
    TextBody(text): TextBody,
) -> ApiResult<Json<WordsImported>> {
    import(&state, &auth, &WordScope::Global, query, &text).await
}

/// An app's word list.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/words",
    tag = "words",
    operation_id = "list_app_words",
    params(("app_id" = String, Path, description = "The app's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the app's list, by word", body = WordList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn app_words(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<WordList>> {
    list(&state, &auth, &WordScope::App(app_id), &page).await
}

/// Adds and removes words of an app's list.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/words",
    tag = "words",
    operation_id = "change_app_words",
    params(("app_id" = String, Path, description = "The app's id")),
    request_body(content = WordsChange, example = json!({"add": [{"word": "spam", "action": "block"}], "remove": []})),
    responses(
        (status = 200, description = "The size of the list after the change", body = WordsChanged),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn change_app_words(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    JsonBody(body, _): JsonBody<WordsChange>,
) -> ApiResult<Json<WordsChanged>> {
    change(&state, &auth, &WordScope::App(app_id), body).await
}

/// Imports words into an app's list from text.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/words/import",
    tag = "words",
    operation_id = "import_app_words",
    params(("app_id" = String, Path, description = "The app's id"), ImportQuery),
    request_body(content = String, content_type = "text/plain", description = "One word per line, optionally followed by a comma or tab and `block` or `mask`; blank lines and lines starting with `#` are skipped.",
                 example = "spam\ndarn,mask\n"),
    responses(
        (status = 200, description = "Lines imported and the size of the list", body = WordsImported),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn import_app_words(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    TextBody(text): TextBody,
) -> ApiResult<Json<WordsImported>> {
    import(&state, &auth, &WordScope::App(app_id), query, &text).await
}
