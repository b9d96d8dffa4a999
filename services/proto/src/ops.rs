//! Operation names and error codes: the stable strings of protocol v1.

// Client requests.
pub const LOGIN: &str = "login";
pub const PING: &str = "ping";
pub const LOGOUT: &str = "logout";
pub const SEND: &str = "send";
pub const ACK: &str = "ack";
pub const SYNC: &str = "sync";
pub const HISTORY: &str = "history";
pub const READ: &str = "read";
pub const CONVERSATIONS: &str = "conversations";
pub const RECALL: &str = "recall";
pub const TYPING: &str = "typing";
pub const GROUP_CREATE: &str = "group_create";
pub const GROUP_INFO: &str = "group_info";
pub const GROUP_UPDATE: &str = "group_update";
pub const GROUP_JOIN: &str = "group_join";
pub const GROUP_QUIT: &str = "group_quit";
pub const GROUP_ADD: &str = "group_add";
pub const GROUP_REMOVE: &str = "group_remove";
pub const GROUP_MEMBERS: &str = "group_members";
pub const GROUP_ROLE: &str = "group_role";
pub const GROUP_TRANSFER: &str = "group_transfer";
pub const GROUP_MUTE: &str = "group_mute";
pub const GROUP_DISMISS: &str = "group_dismiss";
pub const GROUP_REQUESTS: &str = "group_requests";
pub const GROUP_REQUEST_DECIDE: &str = "group_request_decide";
pub const ROOM_JOIN: &str = "room_join";
pub const ROOM_LEAVE: &str = "room_leave";
/// The `event` of the push a room's members get when it is closed.
pub const ROOM_CLOSED_EVENT: &str = "room_closed";
pub const PUSH_REGISTER: &str = "push_register";
pub const PUSH_UNREGISTER: &str = "push_unregister";
pub const APP_STATE: &str = "app_state";
pub const CONV_MUTE: &str = "conv_mute";
pub const PUSH_SETTINGS: &str = "push_settings";

// Server frames.
pub const REPLY: &str = "reply";
pub const MESSAGE: &str = "message";
pub const KICKED: &str = "kicked";
pub const RECEIPT: &str = "receipt";
pub const RECALLED: &str = "recalled";
pub const EVENT: &str = "event";
/// Read diffusion (a group above the app's threshold): "`conv_id` has a
/// new message at `seq`"; the client pulls it with `sync` or `history`.
pub const GROUP_NOTIFY: &str = "group_notify";
/// The server is shutting down or draining: reconnect after `retry_after_ms`.
pub const GOAWAY: &str = "goaway";

/// Stable error codes (docs/protocol.md lists them with their meaning).
pub mod code {
    pub const BAD_FRAME: &str = "bad_frame";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const UNKNOWN_OP: &str = "unknown_op";
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NOT_LOGGED_IN: &str = "not_logged_in";
    pub const ALREADY_LOGGED_IN: &str = "already_logged_in";
    pub const NOT_FOUND: &str = "not_found";
    pub const FORBIDDEN: &str = "forbidden";
    pub const RECALL_WINDOW_PASSED: &str = "recall_window_passed";
    pub const CONTENT_BLOCKED: &str = "content_blocked";
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const INTERNAL: &str = "internal";
    /// The op or destination exists in the protocol but is not available on
    /// this server yet (e.g. groups before they ship).
    pub const UNSUPPORTED: &str = "unsupported";
    pub const CONFLICT: &str = "conflict";
    /// The app or its tenant is suspended by the operator.
    pub const SUSPENDED: &str = "suspended";
    /// The sender is muted in this group (or the whole group is muted).
    pub const MUTED: &str = "muted";

    /// Every code above, so that mappings (e.g. the REST API's HTTP status
    /// per code) can be checked against the whole list in tests.
    pub const ALL: &[&str] = &[
        BAD_FRAME,
        BAD_REQUEST,
        UNKNOWN_OP,
        FRAME_TOO_LARGE,
        UNAUTHORIZED,
        NOT_LOGGED_IN,
        ALREADY_LOGGED_IN,
        NOT_FOUND,
        FORBIDDEN,
        RECALL_WINDOW_PASSED,
        CONTENT_BLOCKED,
        QUOTA_EXCEEDED,
        RATE_LIMITED,
        UNAVAILABLE,
        INTERNAL,
        UNSUPPORTED,
        CONFLICT,
        SUSPENDED,
        MUTED,
    ];
}
