//! Why messages failed, by reason, and where each one went: the end-of-run summary's table.
//!
//! A failure's reason is its error's text in its general shape: ids and numbers in it are put as
//! `<id>` and `<n>`, and quoted values as `"…"` (`order <id> is out of stock`), so a handler that
//! names the message in its error still gets one line per kind of failure. Each
//! message is followed from failure to failure until it succeeds or the run ends; at the end its
//! last receive count, set against the queue's `maxReceiveCount`, says whether SQS has moved it
//! to the dead-letter queue or will hand it out again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::aws::queue::Redrive;

/// Distinct reasons kept; later ones are counted under [`OTHER_REASONS`]. Error texts that carry
/// ids would otherwise grow without bound.
const MAX_REASONS: usize = 100;
/// Failed messages followed at once (about 100 bytes each); beyond that, a failure is counted
/// but its message is not followed to where it went.
const MAX_FOLLOWED: usize = 100_000;
/// The reason the failures beyond `MAX_REASONS` are counted under.
pub const OTHER_REASONS: &str = "(other reasons)";

/// Failures of one reason, and where their messages went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureGroup {
    /// The error's text.
    pub reason: String,
    /// Failures with this reason: a message failing on three receives counts three times.
    pub failures: u64,
    /// Messages that failed with it at least once.
    pub messages: u64,
    /// Of those, succeeded on a later receive in this run.
    pub recovered: u64,
    /// Failed on receive `maxReceiveCount`: SQS moves them to the dead-letter queue at their
    /// next receive.
    pub dead_lettered: u64,
    /// Back on the queue for another receive (the highest receive so far in `last_receive`).
    pub retrying: u64,
    /// The highest receive count a message of this group failed on.
    pub last_receive: u32,
    /// Failed messages this run could not follow (more than it keeps track of).
    pub unfollowed: u64,
}

/// The failures of a run; shared by every batch.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    groups: Vec<FailureGroup>,
    by_reason: HashMap<String, usize>,
    /// Message id -> (its last failure's group, the receive it failed on).
    followed: HashMap<String, (usize, u32)>,
}

impl Failures {
    /// `message_id` failed with `reason` on receive `receive_count`.
    pub(crate) fn failed(&self, message_id: &str, reason: &str, receive_count: u32) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let group = inner.group(reason);
        let same_reason_as_before = inner.followed.get(message_id).is_some_and(|(g, _)| *g == group);
        let entry = &mut inner.groups[group];
        entry.failures += 1;
        entry.last_receive = entry.last_receive.max(receive_count);
        if !same_reason_as_before {
            entry.messages += 1;
        }
        if inner.followed.len() < MAX_FOLLOWED || inner.followed.contains_key(message_id) {
            inner.followed.insert(message_id.to_owned(), (group, receive_count));
        } else {
            inner.groups[group].unfollowed += 1;
        }
    }

    /// `message_id` succeeded on receive `receive_count`; it counts as recovered if it failed
    /// before in this run. A first receive cannot have failed before, so it costs no lookup.
    pub(crate) fn succeeded(&self, message_id: &str, receive_count: u32) {
        if receive_count <= 1 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((group, _)) = inner.followed.remove(message_id) {
            inner.groups[group].recovered += 1;
        }
    }

    /// The groups, most failures first, with where the messages still failing went under
    /// `redrive` (none: they stay on the queue until its retention period ends).
    pub(crate) fn groups(&self, redrive: Option<&Redrive>) -> Vec<FailureGroup> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut groups = inner.groups.clone();
        for (group, receive_count) in inner.followed.values() {
            let entry = &mut groups[*group];
            if redrive.is_some_and(|r| *receive_count >= r.max_receive_count) {
                entry.dead_lettered += 1;
            } else {
                entry.retrying += 1;
            }
        }
        groups.sort_by(|a, b| b.failures.cmp(&a.failures).then_with(|| a.reason.cmp(&b.reason)));
        groups
    }
}

/// A reason's general shape: every number as `<n>`, every id (a word with a digit and a `-`,
/// `_`, `.`, `:` or `/` in it, or one of 8 characters or more: `o-17`, a UUID, a hash) as `<id>`,
/// and every double-quoted value as `"…"`. The words of the message itself stay (`u64`).
pub(crate) fn shape(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut word = String::new();
    let mut quoted = false;
    let flush = |word: &mut String, out: &mut String| {
        let digits = word.bytes().any(|b| b.is_ascii_digit());
        let separated = word.contains(['-', '_', '.', ':', '/']);
        if digits && word.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str("<n>");
        } else if digits && (separated || word.len() >= 8) {
            out.push_str("<id>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in reason.chars() {
        if quoted {
            if c == '"' {
                out.push_str("…\"");
                quoted = false;
            }
            continue;
        }
        if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/') && !word.is_empty() {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        out.push(c);
        quoted = c == '"';
    }
    if quoted {
        out.push('…');
    }
    flush(&mut word, &mut out);
    out
}

impl Inner {
    fn group(&mut self, reason: &str) -> usize {
        let reason = &shape(reason);
        if let Some(index) = self.by_reason.get(reason) {
            return *index;
        }
        let reason = if self.groups.len() + 1 < MAX_REASONS { reason } else { OTHER_REASONS };
        if let Some(index) = self.by_reason.get(reason) {
            return *index;
        }
        self.groups.push(FailureGroup { reason: reason.to_owned(), ..FailureGroup::default() });
        self.by_reason.insert(reason.to_owned(), self.groups.len() - 1);
        self.groups.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_that_differ_only_in_ids_numbers_and_quoted_values_share_a_shape() {
        assert_eq!(
            shape("transient failure: order o-17 is out of stock"),
            "transient failure: order <id> is out of stock"
        );
        assert_eq!(
            shape("timed out after 30 s on 9e5b12ab-0000-4000-8000-000000000001"),
            "timed out after <n> s on <id>"
        );
        assert_eq!(
            shape(r#"invalid body at `id`: invalid type: string "a-very-long-value", expected u64"#),
            r#"invalid body at `id`: invalid type: string "…", expected u64"#
        );
        assert_eq!(
            shape("invalid body at `id`: must not be empty"),
            "invalid body at `id`: must not be empty"
        );
        assert_eq!(shape(r#"unterminated "quote 42"#), r#"unterminated "…"#);
    }

    #[test]
    fn thirty_failures_that_each_name_their_order_are_one_reason() {
        let failures = Failures::default();
        for n in 0..30 {
            failures.failed(&format!("m{n}"), &format!("permanent failure: order o-{n} was cancelled"), 1);
        }
        let groups = failures.groups(None);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(
            (groups[0].reason.as_str(), groups[0].failures, groups[0].messages),
            ("permanent failure: order <id> was cancelled", 30, 30)
        );
    }

    fn redrive(max: u32) -> Redrive {
        Redrive { dead_letter_queue: "orders-dlq".into(), max_receive_count: max }
    }

    #[test]
    fn failures_group_by_reason_and_follow_each_message_to_the_dlq_or_back_to_the_queue() {
        let failures = Failures::default();
        for receive in 1..=3 {
            failures.failed("a", "invalid body at `id`: missing field `id`", receive);
        }
        failures.failed("b", "invalid body at `id`: missing field `id`", 1);
        failures.failed("c", "gateway timed out", 1);
        failures.succeeded("c", 2);

        let groups = failures.groups(Some(&redrive(3)));
        assert_eq!(groups.len(), 2);
        let invalid = &groups[0];
        assert_eq!(invalid.reason, "invalid body at `id`: missing field `id`");
        assert_eq!((invalid.failures, invalid.messages), (4, 2), "a failed 3 times, b once");
        assert_eq!((invalid.dead_lettered, invalid.retrying, invalid.recovered), (1, 1, 0));
        assert_eq!(invalid.last_receive, 3);
        let timeout = &groups[1];
        assert_eq!((timeout.failures, timeout.messages, timeout.recovered, timeout.retrying), (1, 1, 1, 0));
    }

    #[test]
    fn without_a_redrive_policy_nothing_is_said_to_reach_a_dlq() {
        let failures = Failures::default();
        failures.failed("a", "boom", 9);
        let groups = failures.groups(None);
        assert_eq!((groups[0].dead_lettered, groups[0].retrying), (0, 1));
    }

    #[test]
    fn a_message_failing_for_a_new_reason_counts_under_both_and_goes_where_the_last_one_sent_it() {
        let failures = Failures::default();
        failures.failed("a", "first", 1);
        failures.failed("a", "second", 2);
        let groups = failures.groups(Some(&redrive(2)));
        let by = |r: &str| groups.iter().find(|g| g.reason == r).cloned().unwrap_or_default();
        assert_eq!((by("first").messages, by("first").dead_lettered, by("first").retrying), (1, 0, 0));
        assert_eq!((by("second").messages, by("second").dead_lettered), (1, 1));
    }

    #[test]
    fn reasons_beyond_the_limit_share_one_group() {
        let failures = Failures::default();
        for n in 0..(MAX_REASONS + 50) {
            // Reasons that differ in words, not in ids: each its own shape.
            let word: String =
                format!("{n:03}").chars().map(|d| char::from(b'a' + (d as u8 - b'0'))).collect();
            failures.failed(&format!("m{n}"), &format!("order {word} failed"), 1);
        }
        let groups = failures.groups(None);
        assert_eq!(groups.len(), MAX_REASONS);
        assert_eq!(groups[0].reason, OTHER_REASONS);
        assert_eq!(groups.iter().map(|g| g.failures).sum::<u64>(), (MAX_REASONS + 50) as u64);
    }
}
