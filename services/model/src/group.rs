//! Groups: roles, join policies and the events stored in a group's
//! conversation. The store persists them; logic decides who may do what.

use crate::ids::{GroupId, IdError, UserId};

/// A member's role. The order matters: a higher role manages lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupRole {
    Member,
    Admin,
    Owner,
}

impl GroupRole {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            other => Err(IdError::Unknown {
                what: "role",
                value: other.to_owned(),
            }),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
    /// Owners and admins manage the group.
    pub fn manages(self) -> bool {
        self >= Self::Admin
    }
}

/// Who may join a group on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JoinPolicy {
    /// Anyone in the app who knows the id joins at once.
    Open,
    /// A join is a request that an owner or admin approves (by adding).
    #[default]
    Approval,
    /// Only owners and admins add members.
    InviteOnly,
}

impl JoinPolicy {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "open" => Ok(Self::Open),
            "approval" => Ok(Self::Approval),
            "invite_only" => Ok(Self::InviteOnly),
            other => Err(IdError::Unknown {
                what: "join policy",
                value: other.to_owned(),
            }),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approval => "approval",
            Self::InviteOnly => "invite_only",
        }
    }
}

/// A group as stored (without its member list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub group_id: GroupId,
    pub owner: UserId,
    pub name: String,
    pub avatar: String,
    pub announcement: String,
    /// The tenant's own fields: JSON object text.
    pub custom: String,
    pub join_policy: JoinPolicy,
    /// Only owners and admins may send while set.
    pub mute_all: bool,
    pub member_count: u64,
    pub created_at: i64,
    /// Dismissed groups keep their row so that the id (and its conversation's
    /// `seq`) is never reused; they have no members.
    pub dismissed: bool,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub user_id: UserId,
    pub role: GroupRole,
    /// Sends are refused until this time (ms); 0 = not muted.
    pub muted_until: i64,
    /// The first `seq` of the group conversation this member may read:
    /// history before joining stays hidden.
    pub join_seq: u64,
    pub joined_at: i64,
}

impl GroupMember {
    pub fn muted_at(&self, now_ms: i64) -> bool {
        self.muted_until > now_ms
    }
}

/// Event kinds stored in a group's conversation (body `{"type":"event","event":<kind>,...}`).
pub mod event {
    pub const CREATED: &str = "created";
    pub const JOINED: &str = "joined";
    pub const LEFT: &str = "left";
    pub const REMOVED: &str = "removed";
    pub const MUTED: &str = "muted";
    pub const UNMUTED: &str = "unmuted";
    pub const ROLE: &str = "role";
    pub const TRANSFERRED: &str = "transferred";
    pub const UPDATED: &str = "updated";
    pub const DISMISSED: &str = "dismissed";
    /// Not stored: a transient push to online owners and admins.
    pub const JOIN_REQUESTED: &str = "join_requested";
    /// Not stored: a transient push to the requester whose join request an
    /// admin rejected (an approved requester gets the stored `joined`).
    pub const JOIN_REJECTED: &str = "join_rejected";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(GroupRole::Owner > GroupRole::Admin && GroupRole::Admin > GroupRole::Member);
        assert!(GroupRole::Admin.manages() && !GroupRole::Member.manages());
        assert_eq!(GroupRole::parse("admin"), Ok(GroupRole::Admin));
        assert!(GroupRole::parse("root").is_err());
        assert_eq!(JoinPolicy::parse("invite_only"), Ok(JoinPolicy::InviteOnly));
        assert!(JoinPolicy::parse("closed").is_err());
    }
}
