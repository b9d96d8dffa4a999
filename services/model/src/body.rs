//! Message bodies: a JSON object with at least `type`. Validated once when a
//! message is sent; stored and forwarded as the client's JSON text.

use serde_json::{Map, Value};

pub const BODY_TYPES: &[&str] = &[
    "text", "image", "file", "audio", "video", "location", "custom",
];

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
}

/// A validated body.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub kind: String,
    pub fields: Map<String, Value>,
}

impl Body {
    /// Parses the JSON text of a body, enforcing the size limit first so that a
    /// huge body is never parsed.
    pub fn parse(text: &str, max_bytes: usize) -> Result<Self, BodyError> {
        if text.trim().is_empty() {
            return Err(BodyError::Missing);
        }
        if text.len() > max_bytes {
            return Err(BodyError::TooLarge {
                size: text.len(),
                limit: max_bytes,
            });
        }
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
            return Err(BodyError::NotAnObject);
        };
        let kind = match fields.get("type").and_then(Value::as_str) {
            Some(t) if BODY_TYPES.contains(&t) => t.to_owned(),
            _ => return Err(BodyError::BadType),
        };
        if kind == "text"
            && !fields
                .get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
        {
            return Err(BodyError::MissingText);
        }
        Ok(Self { kind, fields })
    }

    pub fn text(&self) -> Option<&str> {
        self.fields.get("text").and_then(Value::as_str)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
