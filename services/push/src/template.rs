//! Renders a stored message into a notification's title and body with the
//! app's [`PushTemplates`], and builds the [`PushMessage`] for one device.
//! Runs in the logic layer when a job is enqueued, so that the worker sends
//! exactly what was decided (and a retry shows the same text).

use std::collections::BTreeMap;

use confab_model::PushTemplates;

use crate::provider::PushMessage;

/// Longest notification body, in characters: the phone shows a line or two,
/// and APNs caps the whole payload at 4 KiB.
pub const MAX_BODY_CHARS: usize = 160;
/// `apns-collapse-id` is at most 64 bytes.
pub const MAX_COLLAPSE_BYTES: usize = 64;

/// What a notification says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub title: String,
    pub body: String,
}

/// The title and body for a message of body type `kind` (text in `text`)
/// from `sender`, in group `group` (its name) when it is a group message.
pub fn render(
    t: &PushTemplates,
    sender: &str,
    group: Option<&str>,
    kind: &str,
    text: Option<&str>,
) -> Rendered {
    let title_template = if group.is_some() {
        &t.group_title
    } else {
        &t.title
    };
    let title = fill(title_template, sender, group.unwrap_or_default());
    let body = if t.hide_content {
        t.hidden_body.clone()
    } else {
        match (kind, text) {
            ("text", Some(text)) => truncate_chars(text, MAX_BODY_CHARS),
            _ => t
                .placeholders
                .get(kind)
                .cloned()
                .unwrap_or_else(|| t.other.clone()),
        }
    };
    Rendered { title, body }
}

fn fill(template: &str, sender: &str, group: &str) -> String {
    template
        .replace("{sender}", sender)
        .replace("{group}", group)
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A fresh notification id: a random (version 4) UUID in canonical form,
/// chosen once per job so that every retry and redelivery carries it.
pub fn new_message_id() -> String {
    let mut bits: u128 = rand::random();
    bits = (bits & !(0xF << 76)) | (0x4 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let h = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The collapse/thread id for a conversation: the conversation id when it
/// fits the providers' 64-byte limit, otherwise a digest of it.
pub fn collapse_id(conv_id: &str) -> String {
    if conv_id.len() <= MAX_COLLAPSE_BYTES {
        return conv_id.to_owned();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(conv_id.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything about one notification except the device it goes to.
#[derive(Debug, Clone)]
pub struct Notification {
    pub rendered: Rendered,
    pub badge: Option<u32>,
    pub conv_id: String,
    pub data: BTreeMap<String, String>,
}

impl Notification {
    /// The message for one device (a fresh id each).
    pub fn for_device(&self, token: &str, bundle: &str) -> PushMessage {
        let collapse = collapse_id(&self.conv_id);
        PushMessage {
            id: new_message_id(),
            token: token.to_owned(),
            bundle: bundle.to_owned(),
            title: self.rendered.title.clone(),
            body: self.rendered.body.clone(),
            badge: self.badge,
            collapse_id: Some(collapse.clone()),
            thread_id: Some(collapse),
            data: self.data.clone(),
            expires_at: None,
            high_priority: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_chat_text_uses_sender_title_and_text() {
        let r = render(&PushTemplates::default(), "alice", None, "text", Some("hi"));
        assert_eq!(r.title, "alice");
        assert_eq!(r.body, "hi");
    }

    #[test]
    fn group_title_names_sender_and_group() {
        let r = render(
            &PushTemplates::default(),
            "alice",
            Some("Climbers"),
            "text",
            Some("hi"),
        );
        assert_eq!(r.title, "alice in Climbers");
    }

    #[test]
    fn non_text_bodies_get_placeholders() {
        let t = PushTemplates::default();
        assert_eq!(render(&t, "a", None, "image", None).body, "[image]");
        assert_eq!(render(&t, "a", None, "custom", None).body, "[message]");
    }

    #[test]
    fn hide_content_replaces_every_body() {
        let t = PushTemplates {
            hide_content: true,
            ..Default::default()
        };
        assert_eq!(
            render(&t, "a", None, "text", Some("secret")).body,
            "You have a new message"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let long = "é".repeat(500);
        let r = render(&PushTemplates::default(), "a", None, "text", Some(&long));
        assert_eq!(r.body.chars().count(), MAX_BODY_CHARS + 1);
    }

    #[test]
    fn ids_are_canonical_v4_uuids_and_collapse_ids_fit() {
        let id = new_message_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_message_id());
        assert_eq!(collapse_id("p2p:a:b"), "p2p:a:b");
        assert_eq!(collapse_id(&"x".repeat(200)).len(), 64);
    }
}
