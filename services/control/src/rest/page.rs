//! Cursor pagination: items in the order of a key, a page after the cursor
//! (the base64url of the previous page's last key).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::dto::PageQuery;
use super::extract::{ApiError, ApiResult};
use crate::error::ControlError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// One page of `items` (in any order) by `key`, and the next cursor.
pub fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError(ControlError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        ))));
    }
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(
            B64.decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError(ControlError::bad_request("cursor is not one this API gave"))
                })?,
        ),
    };
    let mut keyed: Vec<(String, T)> = items.into_iter().map(|t| (key(&t), t)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rest = keyed
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .peekable();
    let mut page = Vec::new();
    let mut last = None;
    while page.len() < limit as usize {
        let Some((k, item)) = rest.next() else { break };
        last = Some(k);
        page.push(item);
    }
    let next = match (rest.peek(), last) {
        (Some(_), Some(last)) => Some(B64.encode(last)),
        _ => None,
    };
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<u32>, cursor: Option<String>) -> PageQuery {
        PageQuery { limit, cursor }
    }

    #[test]
    fn pages_through_everything_once() {
        let items: Vec<u32> = (0..7).rev().collect();
        let key = |n: &u32| format!("{n:03}");
        let (a, c) = paginate(items.clone(), key, &q(Some(3), None)).unwrap();
        assert_eq!(a, vec![0, 1, 2]);
        let (b, c) = paginate(items.clone(), key, &q(Some(3), c)).unwrap();
        assert_eq!(b, vec![3, 4, 5]);
        let (d, c) = paginate(items.clone(), key, &q(Some(3), c)).unwrap();
        assert_eq!(d, vec![6]);
        assert_eq!(c, None);
        let (all, c) = paginate(items, key, &q(None, None)).unwrap();
        assert_eq!(all.len(), 7);
        assert_eq!(c, None);
    }

    #[test]
    fn refuses_bad_limits_and_cursors() {
        for query in [
            q(Some(0), None),
            q(Some(201), None),
            q(None, Some("!!".into())),
        ] {
            assert!(paginate(vec![1], |n: &i32| n.to_string(), &query).is_err());
        }
    }
}
