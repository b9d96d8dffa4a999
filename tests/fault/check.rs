//! The verdict: for every acknowledged message, what each recipient's
//! device holds after a final sync from 0.

use std::collections::{HashMap, HashSet};

use confab_proto::Message;

use crate::traffic::Acked;

/// Problems found for one device's inbox (empty: all good).
pub fn check_inbox(user: &str, inbox: &[Message], acked: &[&Acked]) -> Vec<String> {
    let mut problems = Vec::new();
    // Gap-free: inbox_seq is exactly 1..=n.
    let seqs: Vec<u64> = inbox.iter().map(|m| m.inbox_seq.unwrap_or(0)).collect();
    for (i, s) in seqs.iter().enumerate() {
        let want = i as u64 + 1;
        if *s != want {
            problems.push(format!(
                "{user}: inbox position {i} has inbox_seq {s}, expected {want} (hole or repeat; around: {:?})",
                &seqs[i.saturating_sub(3)..(i + 3).min(seqs.len())]
            ));
            break;
        }
    }
    // No duplicates after dedupe by msg_id: one msg_id per (sender, client_msg_id).
    let mut by_msg: HashMap<&str, &Message> = HashMap::new();
    let mut by_client: HashMap<(&str, &str), &str> = HashMap::new();
    for m in inbox {
        by_msg.insert(m.msg_id.as_str(), m);
        if m.client_msg_id.is_empty() {
            continue;
        }
        if let Some(other) = by_client.insert((&m.from, &m.client_msg_id), &m.msg_id)
            && other != m.msg_id
        {
            problems.push(format!(
                "{user}: {} from {} stored twice as {other} and {}",
                m.client_msg_id, m.from, m.msg_id
            ));
        }
    }
    // Per-conversation order: seq strictly increases along the inbox.
    let mut last: HashMap<&str, (u64, &str)> = HashMap::new();
    let mut shown = HashSet::new();
    for m in inbox {
        if let Some((prev, prev_id)) = last.get(m.conv_id.as_str())
            && m.seq <= *prev
            && prev_id != &m.msg_id
            && shown.insert(m.conv_id.clone())
        {
            problems.push(format!(
                "{user}: conversation {} out of order: seq {} ({}) after seq {prev} ({prev_id})",
                m.conv_id, m.seq, m.msg_id
            ));
        }
        last.insert(&m.conv_id, (m.seq, &m.msg_id));
    }
    // Every acknowledged message to this user: there, same msg_id and seq.
    for a in acked {
        match by_msg.get(a.msg_id.as_str()) {
            None => problems.push(format!(
                "{user}: MISSING acknowledged {} from {} (msg_id {}, conv {}, seq {})",
                a.client_msg_id, a.from, a.msg_id, a.conv_id, a.seq
            )),
            Some(m) if m.seq != a.seq || m.conv_id != a.conv_id => problems.push(format!(
                "{user}: {} acknowledged as {} seq {} but stored as {} seq {}",
                a.client_msg_id, a.conv_id, a.seq, m.conv_id, m.seq
            )),
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(inbox_seq: u64, conv: &str, seq: u64, id: &str, cmid: &str) -> Message {
        Message {
            inbox_seq: Some(inbox_seq),
            conv_id: conv.into(),
            seq,
            msg_id: id.into(),
            from: "a".into(),
            client_msg_id: cmid.into(),
            ..Default::default()
        }
    }

    fn acked(id: &str, conv: &str, seq: u64) -> Acked {
        Acked {
            from: "a".into(),
            to: "b".into(),
            client_msg_id: format!("c-{id}"),
            msg_id: id.into(),
            conv_id: conv.into(),
            seq,
        }
    }

    #[test]
    fn a_clean_inbox_passes() {
        let inbox = [msg(1, "c1", 1, "m1", "x1"), msg(2, "c1", 2, "m2", "x2")];
        let a = [acked("m1", "c1", 1), acked("m2", "c1", 2)];
        let refs: Vec<&Acked> = a.iter().collect();
        assert!(check_inbox("b", &inbox, &refs).is_empty());
    }

    #[test]
    fn each_kind_of_loss_is_named() {
        let inbox = [
            msg(1, "c1", 2, "m2", "x2"),
            msg(3, "c1", 1, "m1", "x1"),
            msg(4, "c1", 3, "m3", "x1"),
        ];
        let a = [acked("m1", "c1", 1), acked("m9", "c1", 9)];
        let refs: Vec<&Acked> = a.iter().collect();
        let p = check_inbox("b", &inbox, &refs).join("\n");
        assert!(p.contains("inbox_seq 3, expected 2"), "{p}");
        assert!(p.contains("stored twice"), "{p}");
        assert!(p.contains("out of order"), "{p}");
        assert!(p.contains("MISSING acknowledged c-m9"), "{p}");
    }
}
