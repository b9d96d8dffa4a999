//! Live rooms: the priority a room message carries. Under overload a node
//! sheds room messages by priority instead of stalling (low first, then
//! normal); high-priority ones (e.g. "the room is muted") always go out.

/// How important a live room message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum RoomPriority {
    /// Likes, gifts and the like: shed first (sampled) under load.
    Low,
    /// Chat: shed only under heavy load.
    #[default]
    Normal,
    /// Never shed.
    High,
}

impl RoomPriority {
    /// Parses the wire value; empty means normal.
    pub fn parse(s: &str) -> Result<Self, crate::IdError> {
        match s {
            "" | "normal" => Ok(Self::Normal),
            "low" => Ok(Self::Low),
            "high" => Ok(Self::High),
            other => Err(crate::IdError::Unknown {
                what: "priority",
                value: other.to_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}
