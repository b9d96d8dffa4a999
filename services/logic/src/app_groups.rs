//! Groups managed by the app's backend (REST `/v1/groups`).
//!
//! The wire's `group_*` ops act as a member, with that member's role. The
//! backend is the app itself: it acts with the owner's rights in every group
//! of its app without being a member (it may not remove or mute the owner,
//! nor change the owner's role — the owner is the one member it cannot act
//! against, as on the wire). It goes through the very same functions as the
//! wire ops (groups.rs), so every change is stored, recorded as an `event`
//! in the group's conversation, pushed to the members online and sent to the
//! app's webhook — with `actor: "system"`.

use tracing::Instrument;

use confab_model::{AppId, GroupMember, GroupRole, Platform, UserId};
use confab_proto::{Frame, ops};

use crate::error::{LogicError, Result};
use crate::{Logic, Session, groups};

/// The user id of the app acting (as in messages sent as the system).
pub const APP_ACTOR: &str = "system";

/// Session ids of the app acting start with this. The gateway's are ULIDs,
/// so no device can hold one: the marker cannot be claimed over the wire.
const APP_SESSION_PREFIX: &str = "app:";

impl Session {
    /// The app itself acting through its backend.
    pub fn for_app(app_id: AppId, settings: confab_model::AppSettings) -> Result<Self> {
        let settings = crate::shared_settings::share(&app_id, settings);
        Ok(Self {
            app_id,
            user_id: UserId::parse(APP_ACTOR)
                .map_err(|e| LogicError::new("internal", e.to_string()))?,
            device_id: "rest".into(),
            platform: Platform::Other,
            session_id: format!("{APP_SESSION_PREFIX}{}", ulid::Ulid::new()),
            settings,
            client_version: String::new(),
        })
    }

    /// Whether this is the app acting (see [`Session::for_app`]).
    pub fn is_app(&self) -> bool {
        self.session_id.starts_with(APP_SESSION_PREFIX) && self.user_id.as_str() == APP_ACTOR
    }
}

/// The rights the app holds in a group: the owner's, as a non-member.
pub(crate) fn app_membership(s: &Session) -> GroupMember {
    GroupMember {
        user_id: s.user_id.clone(),
        role: GroupRole::Owner,
        muted_until: 0,
        join_seq: 1,
        joined_at: 0,
    }
}

impl Logic {
    /// Runs a `group_*` op (`frame.op`) as the app. For `group_create`,
    /// `frame.user_id` names the owner. The reply is the wire reply's
    /// content (group, members, the event's position), or the op's error.
    pub async fn group_as_app(&self, app: &AppId, frame: Frame) -> Result<Frame> {
        let settings = self.app_settings(app)?;
        let s = Session::for_app(app.clone(), settings)?;
        let span = tracing::info_span!("app_group_op", app = %app.as_str(), op = %frame.op, group = %frame.group_id);
        let op = frame.op.clone();
        async {
            match op.as_str() {
                ops::GROUP_CREATE => groups::create(self, &s, frame).await,
                ops::GROUP_INFO => groups::info(self, &s, frame).await,
                ops::GROUP_UPDATE => groups::update(self, &s, frame).await,
                ops::GROUP_ADD => groups::add(self, &s, frame).await,
                ops::GROUP_REMOVE => groups::remove(self, &s, frame).await,
                ops::GROUP_MEMBERS => groups::members(self, &s, frame).await,
                ops::GROUP_ROLE => groups::role(self, &s, frame).await,
                ops::GROUP_MUTE => groups::mute(self, &s, frame).await,
                ops::GROUP_DISMISS => groups::dismiss(self, &s, frame).await,
                other => Err(LogicError::bad_request(format!(
                    "{other} is not a group op the app may run"
                ))),
            }
        }
        .instrument(span)
        .await
    }
}
