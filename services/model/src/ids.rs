//! Identifiers. User, app and group ids are tenant-chosen strings, so they are
//! checked once: 1–64 characters from `[A-Za-z0-9_.@-]`. Keeping `:` out lets
//! conversation ids embed them unambiguously.

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be 1 to 64 characters of A-Z a-z 0-9 _ . @ -")]
    Invalid { what: &'static str },
    #[error("unknown {what} {value:?}")]
    Unknown { what: &'static str, value: String },
}

fn check(what: &'static str, s: &str) -> Result<(), IdError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IdError::Invalid { what })
    }
}

macro_rules! string_id {
    ($name:ident, $what:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check($what, s)?;
                Ok(Self(Arc::from(s)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }
    };
}

string_id!(AppId, "app id");
string_id!(UserId, "user id");
string_id!(GroupId, "group id");
string_id!(RoomId, "room id");

/// The kind of a message's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    User,
    Group,
    Room,
}

impl PeerKind {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "user" => Ok(Self::User),
            "group" => Ok(Self::Group),
            "room" => Ok(Self::Room),
            other => Err(IdError::Unknown {
                what: "peer kind",
                value: other.to_owned(),
            }),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Room => "room",
        }
    }
}

/// Where a message goes: a user, a group or a room.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    pub kind: PeerKind,
    pub id: Arc<str>,
}

impl Peer {
    pub fn parse(kind: &str, id: &str) -> Result<Self, IdError> {
        let kind = PeerKind::parse(kind)?;
        check("peer id", id)?;
        Ok(Self {
            kind,
            id: Arc::from(id),
        })
    }
    pub fn user(user: &UserId) -> Self {
        Self {
            kind: PeerKind::User,
            id: user.0.clone(),
        }
    }
}

/// A conversation id. Single chat: `p2p:<a>:<b>` with the two user ids sorted, so
/// both sides name the same conversation. Groups: `group:<id>`; rooms: `room:<id>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvId(Arc<str>);

impl ConvId {
    pub fn p2p(a: &UserId, b: &UserId) -> Self {
        let (lo, hi) = if a.as_str() <= b.as_str() {
            (a, b)
        } else {
            (b, a)
        };
        Self(Arc::from(format!("p2p:{lo}:{hi}")))
    }

    /// The conversation a message from `from` to `to` belongs to.
    pub fn for_message(from: &UserId, to: &Peer) -> Self {
        match to.kind {
            PeerKind::User => Self(Arc::from(format!(
                "p2p:{}",
                sorted_pair(from.as_str(), &to.id)
            ))),
            PeerKind::Group => Self(Arc::from(format!("group:{}", to.id))),
            PeerKind::Room => Self(Arc::from(format!("room:{}", to.id))),
        }
    }

    /// Parses a conversation id sent by a client.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let invalid = || IdError::Unknown {
            what: "conversation",
            value: s.to_owned(),
        };
        let (kind, rest) = s.split_once(':').ok_or_else(invalid)?;
        match kind {
            "p2p" => {
                let (a, b) = rest.split_once(':').ok_or_else(invalid)?;
                check("user id", a).map_err(|_| invalid())?;
                check("user id", b).map_err(|_| invalid())?;
                if a > b {
                    return Err(invalid());
                }
            }
            "group" | "room" => check("id", rest).map_err(|_| invalid())?,
            _ => return Err(invalid()),
        }
        Ok(Self(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A group's conversation.
    pub fn group(group: &GroupId) -> Self {
        Self(Arc::from(format!("group:{group}")))
    }

    /// For a group conversation, the group's id.
    pub fn group_id(&self) -> Option<GroupId> {
        GroupId::parse(self.0.strip_prefix("group:")?).ok()
    }

    /// For single chat, the two participants.
    pub fn p2p_members(&self) -> Option<(&str, &str)> {
        self.0.strip_prefix("p2p:")?.split_once(':')
    }

    /// Whether `user` takes part in this conversation (single chat only; groups
    /// are checked against their member list).
    pub fn p2p_includes(&self, user: &UserId) -> bool {
        self.p2p_members()
            .is_some_and(|(a, b)| a == user.as_str() || b == user.as_str())
    }

    /// The conversation as seen by `viewer`: the other user in single chat, the
    /// group or room otherwise.
    pub fn peer_for(&self, viewer: &UserId) -> Option<Peer> {
        if let Some((a, b)) = self.p2p_members() {
            let other = if a == viewer.as_str() { b } else { a };
            return Some(Peer {
                kind: PeerKind::User,
                id: Arc::from(other),
            });
        }
        let (kind, id) = self.0.split_once(':')?;
        Some(Peer {
            kind: PeerKind::parse(kind).ok()?,
            id: Arc::from(id),
        })
    }
}

fn sorted_pair(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}:{b}")
    } else {
        format!("{b}:{a}")
    }
}

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The platform a device logs in from; the kick policy counts sessions by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Ios,
    Android,
    Web,
    Desktop,
    Other,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "ios" => Ok(Self::Ios),
            "android" => Ok(Self::Android),
            "web" => Ok(Self::Web),
            "desktop" => Ok(Self::Desktop),
            "other" => Ok(Self::Other),
            other => Err(IdError::Unknown {
                what: "platform",
                value: other.to_owned(),
            }),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Web => "web",
            Self::Desktop => "desktop",
            Self::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2p_conversation_is_the_same_from_both_sides() {
        let a = UserId::parse("alice").unwrap();
        let b = UserId::parse("bob").unwrap();
        assert_eq!(ConvId::p2p(&a, &b), ConvId::p2p(&b, &a));
        assert_eq!(
            ConvId::for_message(&b, &Peer::user(&a)).as_str(),
            "p2p:alice:bob"
        );
        assert_eq!(ConvId::p2p(&a, &b).peer_for(&a).unwrap().id.as_ref(), "bob");
    }

    #[test]
    fn ids_reject_separators_and_oversize() {
        assert!(UserId::parse("a:b").is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse("user_1.x@y-z").is_ok());
    }

    #[test]
    fn conv_ids_from_clients_are_checked() {
        assert!(ConvId::parse("p2p:alice:bob").is_ok());
        assert!(ConvId::parse("p2p:bob:alice").is_err(), "unsorted pair");
        assert!(ConvId::parse("group:g1").is_ok());
        assert!(ConvId::parse("nope").is_err());
        assert!(ConvId::parse("p2p:alice").is_err());
    }
}
