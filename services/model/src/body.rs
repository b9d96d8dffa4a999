//! Message bodies: a JSON object with at least `type`. Validated once when a
//! message is sent; stored and forwarded as the client's JSON text.

pub const BODY_TYPES: &[&str] = &[
    "text", "image", "file", "audio", "video", "location", "custom",
];

/// The type of a group event stored in a conversation by the server. It is
/// deliberately not in [`BODY_TYPES`]: a client can never send one, so an
/// `event` body in a conversation always comes from the server.
pub const EVENT_BODY_TYPE: &str = "event";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is required")]
    Missing,
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("body.type must be one of {}", BODY_TYPES.join(", "))]
    BadType,
    #[error("a text body needs a non-empty string body.text")]
    MissingText,
    #[error("body is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("body nests deeper than {MAX_BODY_DEPTH} levels")]
    TooDeep,
}

/// Deepest nesting of arrays and objects a body may have: every recipient's
/// JSON parser must be able to read it, and some recurse.
pub const MAX_BODY_DEPTH: usize = 32;

/// The deepest nesting of `[`/`{` in JSON text (brackets inside strings do
/// not count). One pass over the bytes, no allocation.
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A validated body: its type and, for text, the text (what moderation and
/// push previews need). The JSON itself is stored and forwarded as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub kind: String,
    pub text: Option<String>,
}

/// Only the fields Confab looks at; any others are the tenant's and are kept
/// untouched in the stored JSON. Deserialising into this struct skips the
/// rest without building a map (this runs once per message sent).
#[derive(serde::Deserialize)]
struct BodyHead<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<TextField<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TextField<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

impl Body {
    /// Parses the JSON text of a body, enforcing the size limit first so that a
    /// huge body is never parsed.
    pub fn parse(text: &str, max_bytes: usize) -> Result<Self, BodyError> {
        let trimmed = text.trim_start();
        if trimmed.is_empty() {
            return Err(BodyError::Missing);
        }
        if text.len() > max_bytes {
            return Err(BodyError::TooLarge {
                size: text.len(),
                limit: max_bytes,
            });
        }
        // serde would also accept a JSON array for a struct: insist on an object.
        if !trimmed.starts_with('{') {
            return Err(BodyError::NotAnObject);
        }
        if nesting_depth(text) > MAX_BODY_DEPTH {
            return Err(BodyError::TooDeep);
        }
        let head: BodyHead = serde_json::from_str(text).map_err(|_| BodyError::NotAnObject)?;
        let kind = match head.kind.as_deref() {
            Some(t) if BODY_TYPES.contains(&t) => t.to_owned(),
            _ => return Err(BodyError::BadType),
        };
        let text = match head.text {
            Some(TextField::Text(t)) => Some(t.into_owned()),
            _ => None,
        };
        if kind == "text" && text.as_deref().unwrap_or_default().is_empty() {
            return Err(BodyError::MissingText);
        }
        Ok(Self { kind, text })
    }

    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// The body type as a bounded metrics label.
pub fn body_type_label(kind: &str) -> &'static str {
    BODY_TYPES
        .iter()
        .find(|t| **t == kind)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bodies_nested_too_deep_counting_only_real_brackets() {
        let nested = |n: usize| {
            format!(
                r#"{{"type":"custom","d":{}{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(Body::parse(&nested(MAX_BODY_DEPTH - 1), 10_000).is_ok());
        assert_eq!(
            Body::parse(&nested(MAX_BODY_DEPTH), 10_000),
            Err(BodyError::TooDeep)
        );
        let brackets_in_text = format!(r#"{{"type":"text","text":"{}\"[["}}"#, "[".repeat(100));
        assert!(Body::parse(&brackets_in_text, 10_000).is_ok());
    }

    #[test]
    fn accepts_text_and_rejects_bad_bodies() {
        assert_eq!(
            Body::parse(r#"{"type":"text","text":"hi"}"#, 100)
                .unwrap()
                .text(),
            Some("hi")
        );
        assert_eq!(
            Body::parse(r#"{"type":"text"}"#, 100),
            Err(BodyError::MissingText)
        );
        assert_eq!(
            Body::parse(r#"{"type":"sticker"}"#, 100),
            Err(BodyError::BadType)
        );
        assert_eq!(Body::parse(r#"[1]"#, 100), Err(BodyError::NotAnObject));
        assert!(matches!(
            Body::parse(
                &format!(r#"{{"type":"text","text":"{}"}}"#, "x".repeat(200)),
                100
            ),
            Err(BodyError::TooLarge { .. })
        ));
        assert!(Body::parse(r#"{"type":"image","url":"u"}"#, 100).is_ok());
        assert_eq!(
            Body::parse(r#"{"type":"event","event":"removed"}"#, 100),
            Err(BodyError::BadType),
            "clients cannot forge group events"
        );
        assert_eq!(
            Body::parse(r#"["type","text"]"#, 100),
            Err(BodyError::NotAnObject)
        );
        assert_eq!(
            Body::parse(r#"{"type":"text","text":7}"#, 100),
            Err(BodyError::MissingText)
        );
        assert_eq!(
            Body::parse(r#"{"type":"text","text":"a\"b","x":{"y":[1]}}"#, 100)
                .unwrap()
                .text(),
            Some("a\"b")
        );
    }
}
