//! Sensitive-word matching: Aho–Corasick over normalised text.
//!
//! Both the words and the text are normalised the same way before matching:
//! NFKC (full-width letters and digits become half-width, compatibility forms
//! fold), lower case, and every character that is not a letter or digit is
//! dropped, so that "F.U.C.K", "ｆｕｃｋ" and "f u c k" all read "fuck", and "法.轮"
//! reads "法轮". Masking maps the match back to the original characters, so the
//! masked text keeps everything outside the match as it was.
//!
//! The price of dropping separators is that a word may match across two real
//! words ("as shit" → "asshit"); lists of short Latin words should be chosen
//! with that in mind (docs/operations.md).

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// What a matching word does to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum WordAction {
    /// The message is refused with `content_blocked`.
    Block,
    /// The message is stored and delivered with the word replaced by `*`.
    Mask,
}

/// One entry of a word list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordRule {
    pub word: String,
    pub action: WordAction,
}

/// The outcome of checking a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The text with every masked word replaced by `*`s.
    Masked(String),
    /// The first blocking word found (as listed).
    Blocked(String),
}

/// A compiled word list (the global list and the app's, merged).
#[derive(Debug, Default)]
pub struct WordFilter {
    matcher: Option<AhoCorasick>,
    /// Per pattern: the word as listed and its action.
    patterns: Vec<(String, WordAction)>,
}

/// Normalises `text`; returns the normalised string and, for each of its
/// characters, (its byte offset in the normalised string, the byte range of
/// the original character it came from).
fn normalise(text: &str) -> (String, Vec<(usize, usize, usize)>) {
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len());
    for (start, ch) in text.char_indices() {
        let end = start + ch.len_utf8();
        for folded in std::iter::once(ch).nfkc() {
            for lower in folded.to_lowercase() {
                if lower.is_alphanumeric() {
                    map.push((out.len(), start, end));
                    out.push(lower);
                }
            }
        }
    }
    (out, map)
}

/// The normalised form of a word, as matching sees it ("" if nothing is left).
pub fn normalise_word(word: &str) -> String {
    normalise(word).0
}

impl WordFilter {
    /// Compiles rules; a word listed twice (after normalisation) blocks if
    /// either entry blocks. Words that normalise to nothing are ignored.
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a WordRule>) -> Self {
        let mut merged: BTreeMap<String, (String, WordAction)> = BTreeMap::new();
        for rule in rules {
            let key = normalise_word(&rule.word);
            if key.is_empty() {
                continue;
            }
            merged
                .entry(key)
                .and_modify(|(_, action)| *action = (*action).min(rule.action))
                .or_insert_with(|| (rule.word.clone(), rule.action));
        }
        if merged.is_empty() {
            return Self::default();
        }
        let keys: Vec<&String> = merged.keys().collect();
        // Leftmost-longest: "fucking" wins over "fuck" when both are listed.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&keys)
            .ok();
        Self {
            matcher,
            patterns: merged.into_values().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    pub fn check(&self, text: &str) -> Verdict {
        let Some(matcher) = &self.matcher else {
            return Verdict::Clean;
        };
        let (normalised, map) = normalise(text);
        let mut masks: Vec<(usize, usize)> = Vec::new();
        for found in matcher.find_iter(&normalised) {
            let (word, action) = &self.patterns[found.pattern().as_usize()];
            if *action == WordAction::Block {
                return Verdict::Blocked(word.clone());
            }
            // The original span: from the first matched character's start to
            // the last one's end (separators inside the span are masked too).
            let first = map.partition_point(|(at, _, _)| *at < found.start());
            let last = map.partition_point(|(at, _, _)| *at < found.end()) - 1;
            masks.push((map[first].1, map[last].2));
        }
        if masks.is_empty() {
            return Verdict::Clean;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in masks {
            if start < at {
                continue;
            }
            out.push_str(&text[at..start]);
            out.extend(std::iter::repeat_n('*', text[start..end].chars().count()));
            at = end;
        }
        out.push_str(&text[at..]);
        Verdict::Masked(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rules: &[(&str, WordAction)]) -> WordFilter {
        let rules: Vec<WordRule> = rules
            .iter()
            .map(|(w, a)| WordRule {
                word: (*w).to_owned(),
                action: *a,
            })
            .collect();
        WordFilter::new(&rules)
    }

    #[test]
    fn evasions_of_a_blocked_word_are_caught() {
        let f = filter(&[("fuck", WordAction::Block)]);
        for text in [
            "fuck",
            "what the FUCK",
            "f.u.c.k you",
            "f u c k",
            "f-u_c*k",
            "ｆｕｃｋ",
            "ＦＵＣＫ!",
        ] {
            assert_eq!(f.check(text), Verdict::Blocked("fuck".into()), "{text}");
        }
        assert_eq!(f.check("duck soup"), Verdict::Clean);
    }

    #[test]
    fn chinese_words_match_with_separators_and_full_width() {
        let f = filter(&[("法轮", WordAction::Block), ("傻逼", WordAction::Mask)]);
        assert_eq!(f.check("这是法.轮功"), Verdict::Blocked("法轮".into()));
        assert_eq!(
            f.check("你是 傻 逼 吗"),
            Verdict::Masked("你是 *** 吗".into())
        );
        assert_eq!(f.check("你好"), Verdict::Clean);
    }

    #[test]
    fn masking_keeps_the_rest_of_the_text() {
        let f = filter(&[("damn", WordAction::Mask), ("hell", WordAction::Mask)]);
        assert_eq!(
            f.check("Damn, d.a.m.n it to HELL!"),
            Verdict::Masked("****, ******* it to ****!".into())
        );
    }

    #[test]
    fn block_wins_over_mask_and_longest_match_wins() {
        let f = filter(&[
            ("bad", WordAction::Mask),
            ("BAD", WordAction::Block),
            ("ab", WordAction::Mask),
            ("abcd", WordAction::Mask),
        ]);
        assert!(matches!(f.check("so bad"), Verdict::Blocked(_)));
        assert_eq!(f.check("xabcdx"), Verdict::Masked("x****x".into()));
    }

    #[test]
    fn empty_and_punctuation_only_words_are_ignored() {
        let f = filter(&[("...", WordAction::Block), ("", WordAction::Block)]);
        assert!(f.is_empty());
        assert_eq!(f.check("hello..."), Verdict::Clean);
    }
}
