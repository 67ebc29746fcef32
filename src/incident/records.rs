//! The local records keydeck keeps besides incidents, each kind in its own journal per
//! account: daily reviews (`reviews-<account>.jsonl`) and alert acknowledgements
//! (`alerts-<account>.jsonl`), dual-approval transitions (`approvals-<account>.jsonl`),
//! with their readers.

use std::path::{Path, PathBuf};

use super::journal::{read, Journal};
use crate::domain::review::ReviewRecord;

/// The journal entry kind of an alert acknowledgement.
pub const ACK_KIND: &str = "alert.ack";

/// Acknowledged alert ids (→ who) from an alerts journal.
pub fn acknowledgements(path: &Path) -> Result<std::collections::HashMap<String, String>, String> {
    let entries = read(path).map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .filter(|e| e.kind == ACK_KIND)
        .filter_map(|e| Some((e.body.get("alert_id")?.as_str()?.to_owned(), e.actor)))
        .collect())
}

/// The last review saved in a review journal (for "what changed since").
pub fn last_review(path: &Path) -> Result<Option<ReviewRecord>, String> {
    let entries = read(path).map_err(|e| e.to_string())?;
    Ok(entries
        .iter()
        .rev()
        .filter(|e| e.kind == REVIEW_KIND)
        .find_map(|e| serde_json::from_value::<ReviewRecord>(e.body.clone()).ok()))
}

/// The request ids an approvals journal already records as expired (`approval.expired`).
pub fn expired_requests(path: &Path) -> Result<std::collections::HashSet<String>, String> {
    Ok(recorded_requests(path, EXPIRED_KIND)?.into_keys().collect())
}

/// The request ids an approvals journal records with `kind` (`approval.proposed`, ...),
/// each with the actor of its (last) entry.
pub fn recorded_requests(path: &Path, kind: &str) -> Result<std::collections::HashMap<String, String>, String> {
    let entries = read(path).map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .filter(|e| e.kind == kind)
        .filter_map(|e| Some((e.body.get("id")?.as_str()?.to_owned(), e.actor)))
        .collect())
}

/// The journal entry kind of a request proposed by this journal's operator.
pub const PROPOSED_KIND: &str = "approval.proposed";

/// The journal entry kind of a request found expired, unapproved.
pub const EXPIRED_KIND: &str = "approval.expired";

/// The journal entry kind of a saved review.
pub const REVIEW_KIND: &str = "review";

/// Open the journal at `path` (when there is one), append one entry and fsync it.
/// Blocking: call it off the async workers.
pub fn append_one(
    path: Option<PathBuf>,
    at: chrono::DateTime<chrono::Utc>,
    kind: &'static str,
    actor: &str,
    body: serde_json::Value,
) -> Result<(), String> {
    let path = path.ok_or_else(|| "no journal configured".to_owned())?;
    let mut j = Journal::open(&path).map_err(|e| e.to_string())?;
    j.append(at, kind, actor, body).map(|_| ()).map_err(|e| e.to_string())
}

/// Reviews of one account live in one hash-chained journal.
pub fn review_journal_path(data_dir: &Path, account: &str) -> PathBuf {
    data_dir.join("journal").join(format!("reviews-{account}.jsonl"))
}

/// Dual-approval transitions this operator made or saw, of one account, in one
/// hash-chained journal (kinds [`APPROVAL_KINDS`]).
pub fn approvals_journal_path(data_dir: &Path, account: &str) -> PathBuf {
    data_dir.join("journal").join(format!("approvals-{account}.jsonl"))
}

/// The journal entry kinds of a request's transitions.
pub const APPROVAL_KINDS: [&str; 6] = [
    "approval.proposed",
    "approval.approved",
    "approval.rejected",
    "approval.withdrawn",
    "approval.executed",
    EXPIRED_KIND,
];

/// Alert acknowledgements of one account live in one hash-chained journal.
pub fn alerts_journal_path(data_dir: &Path, account: &str) -> PathBuf {
    data_dir.join("journal").join(format!("alerts-{account}.jsonl"))
}
