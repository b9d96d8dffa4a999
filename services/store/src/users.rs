//! User profiles ([`UserStore`]): what a tenant's backend imported about its
//! users (REST `/v1/users`). A profile is optional: any user id can log in
//! with a token the app minted, imported or not; the profile only carries
//! display data (nickname, avatar, the tenant's own custom JSON).

use async_trait::async_trait;
use confab_model::{AppId, UserId};

use crate::Result;

/// A user's profile as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub user_id: UserId,
    pub nickname: String,
    pub avatar_url: String,
    /// A JSON object, as text (the caller bounds and validates it).
    pub custom: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields to change; `None` leaves a field as it is. `custom` replaces the
/// stored object as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub custom: Option<String>,
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates the profiles that do not exist yet, in one transaction; an
    /// existing profile is left as it is (never overwritten). Returns, for
    /// each profile in order, whether it was created (a repeat of an id
    /// within `users` is `false`: the first one created it).
    async fn import_users(&self, app: &AppId, users: &[UserProfile]) -> Result<Vec<bool>>;

    /// The user's profile, if it was imported (and not deleted).
    async fn user(&self, app: &AppId, user: &UserId) -> Result<Option<UserProfile>>;

    /// Changes a profile's fields and sets `updated_at` to `at`; `None` if
    /// there is no such profile.
    async fn update_user(
        &self,
        app: &AppId,
        user: &UserId,
        update: ProfileUpdate,
        at: i64,
    ) -> Result<Option<UserProfile>>;

    /// Deletes the profile; `false` if there was none.
    async fn delete_user(&self, app: &AppId, user: &UserId) -> Result<bool>;
}
