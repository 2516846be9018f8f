//! The accounting harness: uniquely numbered messages of known kinds go in, and after a scenario
//! every one of them is accounted for: handled and deleted, or in the dead-letter queue.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{QueuePair, depth, drain_bodies, good_body};

/// What a message is meant to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Valid: must be handled and deleted.
    Good,
    /// Panics on its first delivery (`panic-` ids with the test handler), then succeeds.
    PanicsOnce,
    /// Not JSON: must end in the dead-letter queue.
    Poison,
}

/// Every message sent, by its key: the body's `id`, or the whole body for poison.
#[derive(Debug, Default)]
pub struct Ledger {
    pub kinds: BTreeMap<String, Kind>,
    pub bodies: Vec<String>,
}

impl Ledger {
    /// `n` messages: every `poison_every`-th is poison, every `panic_every`-th panics once.
    pub fn plan(n: usize, poison_every: usize, panic_every: usize) -> Self {
        let mut ledger = Self::default();
        for i in 0..n {
            let (key, body, kind) = if poison_every > 0 && i % poison_every == 0 {
                let body = format!("poison-{i:06}");
                (body.clone(), body, Kind::Poison)
            } else if panic_every > 0 && i % panic_every == 1 {
                let id = format!("panic-{i:06}");
                (id.clone(), good_body(&id, 0), Kind::PanicsOnce)
            } else {
                let id = format!("msg-{i:06}");
                (id.clone(), good_body(&id, 0), Kind::Good)
            };
            ledger.kinds.insert(key, kind);
            ledger.bodies.push(body);
        }
        ledger
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.kinds.values().filter(|k| **k == kind).count()
    }

    /// Sends every body, 10 a request, from 8 tasks.
    pub async fn send(&self, client: &Client, url: &str) {
        let mut tasks = tokio::task::JoinSet::new();
        let chunks: Vec<Vec<String>> = self.bodies.chunks(10).map(<[String]>::to_vec).collect();
        for worker in 0..8 {
            let mine: Vec<Vec<String>> = chunks.iter().skip(worker).step_by(8).cloned().collect();
            let (client, url) = (client.clone(), url.to_owned());
            tasks.spawn(async move {
                for chunk in mine {
                    let entries = chunk.iter().enumerate().map(|(i, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body)
                            .build()
                            .expect("id and body")
                    });
                    let output = client
                        .send_message_batch()
                        .queue_url(&url)
                        .set_entries(Some(entries.collect()))
                        .send()
                        .await;
                    assert!(output.expect("SendMessageBatch").failed.is_empty(), "a send failed");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a sender panicked");
        }
    }
}

/// Where every message ended up.
#[derive(Debug)]
pub struct Reconciliation {
    pub scenario: String,
    pub sent: usize,
    pub poison_sent: usize,
    /// Handled successfully, counting each message once.
    pub handled: usize,
    /// Successful handlings beyond the first of a message.
    pub duplicates: usize,
    pub deleted: u64,
    pub in_dlq: usize,
    /// Good messages never handled, and poison not in the DLQ.
    pub lost: Vec<String>,
    /// DLQ messages that were not poison.
    pub wrongly_dead: Vec<String>,
    /// Still in the source queue.
    pub left_in_queue: u64,
}

/// Reconciles a scenario: `handled` is every successful handling (with repeats), `deleted` the
/// runner's own count.
pub async fn reconcile(
    scenario: &str,
    client: &Client,
    queue: &QueuePair,
    ledger: &Ledger,
    handled: &[String],
    deleted: u64,
) -> Reconciliation {
    let unique: BTreeSet<&String> = handled.iter().collect();
    let dead: BTreeSet<String> = drain_bodies(client, &queue.dlq_url).await.into_iter().collect();
    let (visible, hidden) = depth(client, &queue.url).await;
    let mut lost = Vec::new();
    for (key, kind) in &ledger.kinds {
        let fine = match kind {
            Kind::Good | Kind::PanicsOnce => unique.contains(key),
            Kind::Poison => dead.contains(key),
        };
        if !fine {
            lost.push(key.clone());
        }
    }
    let wrongly_dead = dead.iter().filter(|b| ledger.kinds.get(*b) != Some(&Kind::Poison)).cloned().collect();
    Reconciliation {
        scenario: scenario.to_owned(),
        sent: ledger.kinds.len(),
        poison_sent: ledger.count(Kind::Poison),
        handled: unique.len(),
        duplicates: handled.len() - unique.len(),
        deleted,
        in_dlq: dead.len(),
        lost,
        wrongly_dead,
        left_in_queue: visible + hidden,
    }
}

impl Reconciliation {
    /// Nothing lost, nothing wrongly dead, nothing left behind; duplicates at most `explained`.
    pub fn assert_balanced(&self, explained: usize) {
        println!("{self}");
        assert!(
            self.lost.is_empty(),
            "{}: lost {} messages: {:?}",
            self.scenario,
            self.lost.len(),
            &self.lost[..self.lost.len().min(10)]
        );
        assert!(
            self.wrongly_dead.is_empty(),
            "{}: good messages in the DLQ: {:?}",
            self.scenario,
            self.wrongly_dead
        );
        assert_eq!(self.left_in_queue, 0, "{}: messages left in the queue", self.scenario);
        assert_eq!(self.in_dlq, self.poison_sent, "{}: the DLQ holds exactly the poison", self.scenario);
        assert!(
            self.duplicates <= explained,
            "{}: {} duplicates, only {explained} explained",
            self.scenario,
            self.duplicates
        );
    }
}

impl fmt::Display for Reconciliation {
    /// One row of RELIABILITY.md's table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} |",
            self.scenario,
            self.sent,
            self.handled,
            self.deleted,
            self.in_dlq,
            self.lost.len(),
            self.duplicates
        )
    }
}
