//! The incident log: one append-only, hash-chained file per incident, written by the
//! guided emergency revocation so that every step's *intent* (the exact AWS calls) is on
//! disk before the calls are made, and its *outcome* after.
//!
//! # Files
//!
//! In `<data-dir>/incidents/` (created 0700), for an incident id such as
//! `20261129T091500Z-3fa9c1` ([`IncidentId`]: UTC second, then 6 hex digits; ids sort by
//! time and are safe in file names):
//!
//! - `<id>.jsonl` — the log, 0600, in the [`super::journal`] format (same [`Entry`] and
//!   hash, so the verifier is shared with the review and alert journals). Every record is
//!   fsynced before the call that wrote it returns; the directory is fsynced when the file
//!   is created.
//! - `<id>.lock` — who holds the write lock ([`Holder`]: actor, pid, host, since), 0600.
//!   Informational only: the lock itself is an advisory exclusive lock (`flock`, through
//!   std's `File::try_lock`) on the log file, held for as long as the [`IncidentLog`] is
//!   alive. The operating system releases it when the holder exits, however it exits, so
//!   a stale `.lock` file from a dead process never blocks anyone; it is overwritten by the
//!   next writer and removed when a writer closes.
//! - `<id>.head` — `{"seq":N,"hash":"…"}`: the last record written, replaced (write,
//!   fsync, rename) after each record's fsync. It exists to catch truncation (below).
//!
//! # Records
//!
//! [`Record`] is the only way to write. Step records are the runbook engine's own
//! [`StepRecord`] (`domain::runbook`), and an entry's `kind` and `body` are exactly its
//! serde form: the engine's records are written as they are, and a log read back replays
//! in the engine ([`Replay::incident_records`] gives what
//! [`Incident::replay`](crate::domain::runbook::Incident::replay) takes). The log adds two
//! kinds of its own, `anchor` and `log.repaired`. The writer checks each record against
//! the log so far (an intent for a step whose last attempt has no outcome is refused, an
//! outcome must answer the open intent's ops in order, ...); approvals are the engine's
//! to judge and are written as given.
//!
//! | kind | body |
//! |---|---|
//! | `incident.opened` | [`Opened`] {incident_id, runbook, target, detected_at, note, notify_topic_arn} |
//! | `step.intent` | {step, attempt, ops: [[`Op`]]} |
//! | `step.outcome` | {step, attempt, ok, results: [[`CallResult`] {call, request_id, fields, error_code, error}]} |
//! | `step.resolved` | {step, attempt, settled_done, observed} |
//! | `step.skipped` | {step, reason} |
//! | `step.acknowledged` | {step, note} |
//! | `approval.requested` | {step, approval, ops: [[`Op`]], request_id} (before the store's request) |
//! | `approval.executed` | {step, request_id, approver, results: [[`CallResult`]]} |
//! | `approval.ended` | {step, request_id, state, by, reason} (rejected, withdrawn, expired, failed) |
//! | `anchor` | [`Anchor`] {head_seq, head_hash, key_arn, signing_algorithm, signature (base64)} |
//! | `log.repaired` | [`Repaired`] {line, offset, dropped_bytes, dropped_sha256, dropped_text} |
//!
//! An outcome records only answers AWS gave. A call whose fate is not known (the process
//! died, the connection dropped after sending) gets no outcome: [`Replay::unknown_outcomes`]
//! lists every step whose last intent has neither an outcome nor a resolution (with the
//! intent's ops), and the runbook settles it by observing AWS and writing `step.resolved`.
//!
//! # Crashes and recovery
//!
//! An append is one `write` of one line followed by `fdatasync`, so a crash can leave at
//! most an incomplete last line: bytes after the last newline. That *torn tail* was never
//! acknowledged to the caller (its append did not return), so no AWS call followed it.
//! Opening for write truncates exactly those bytes and appends a `log.repaired` record
//! saying how many bytes at which offset were dropped (with their SHA-256 and text). Only
//! that is repaired: a complete line that does not verify (garbage, an empty line, a bad
//! hash, a wrong seq or prev) is tampering, and the log is not opened for writing. Nor is a
//! torn tail repaired when the head file shows that the torn line had been committed
//! (then it is truncation).
//!
//! # Verification: what [`verify`] detects offline
//!
//! - any edit to a record (a field's value: the hash no longer matches; or only its form,
//!   e.g. `z` for `Z`: the line is no longer the JSON written), a deleted record (seq gap),
//!   records in the wrong order (seq out of order, naming where the expected one is), a
//!   duplicated record, a record spliced from elsewhere (prev mismatch), garbage or empty
//!   lines — each named by line and seq, at the first place it occurs;
//! - a torn tail, reported apart from tampering;
//! - removal of whole records at the end (which the chain alone cannot show), by comparing
//!   with `<id>.head`: a head seq past the end is truncation, a head hash that differs from
//!   the record at that seq is a rewrite.
//!
//! It cannot detect, because the chain has no secret in it: someone with write access who
//! rewrites records and recomputes every later hash and the head file; truncation when the
//! head file is deleted too (reported as "no head file", not as tampering) or rolled back
//! to an older copy. After a crash the head can also lag behind the log (its rename is not
//! forced to disk); records past the head are reported, not flagged. A reader running while
//! a console writes can see the record being written as a torn tail.
//!
//! # What `--online` adds: anchors
//!
//! An `anchor` record carries a KMS signature of the log's head at that moment. The bytes
//! signed are exactly the 32 bytes of the head record's hash (`head_hash` hex-decoded),
//! sent to `kms:Sign` with `MessageType=DIGEST` and a SHA-256 signing algorithm
//! ([`SigningAlgorithm`]). That hash is SHA-256 over the bytes `prev || "\n" ||
//! canonical` of the head record, where `prev` is the previous record's hash as 64
//! lowercase hex digits ([`GENESIS`] for the first) and `canonical` is serde_json's compact
//! `{"seq":N,"at":"<RFC 3339 UTC>","kind":"…","actor":"…","body":{…}}` in that field order
//! (the same bytes as the line minus its `prev` and `hash` fields). So the signature is the
//! same as a RAW signature over that byte string, and it commits to every record up to
//! `head_seq`. [`anchors_to_verify`] returns, for each anchor, the message recomputed *from
//! the file* (not the hash the anchor claims) with the decoded signature; the caller (not
//! this module) calls `kms:Verify` (KeyId = `key_arn`, Message = those 32 bytes,
//! MessageType = DIGEST, SigningAlgorithm, Signature). A valid signature proves the
//! records up to `head_seq` are as they were when someone with `kms:Sign` on that key
//! signed them: a full rewrite by someone without that permission fails it. Records after
//! the last anchor are protected only as offline verify protects them, and deleting the
//! last anchor together with everything after it can only be seen by comparing with the
//! key's `Sign` events in CloudTrail (a caller's job).

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::journal::{self, Entry, Journal, JournalError, Problem, Scan, TornTail, GENESIS};
use crate::domain::runbook::{CallResult, IncidentRecord, Op, Opened, StepRecord};

/// The folder under the data dir that holds incident logs.
pub const INCIDENTS_DIR: &str = "incidents";

/// The `MessageType` to pass to `kms:Sign` / `kms:Verify` with an anchor's message.
pub const ANCHOR_MESSAGE_TYPE: &str = "DIGEST";

/// How much of a dropped torn tail is kept as text in the `log.repaired` record.
const DROPPED_TEXT_MAX: usize = 4096;

// ---------------------------------------------------------------------------------------
// Incident ids

const ID_TIME: &str = "%Y%m%dT%H%M%SZ";

/// An incident id: `YYYYMMDDTHHMMSSZ-xxxxxx` (the UTC second it was opened, then six
/// lowercase hex digits). Ids sort by time as strings and are safe as file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IncidentId(String);

impl IncidentId {
    /// The id for an incident opened at `now` (clamped to years 0000–9999), with `suffix`
    /// (random bytes from the caller: [`random_suffix`] in production, fixed in tests).
    pub fn new(now: DateTime<Utc>, suffix: [u8; 3]) -> Self {
        let lo = NaiveDateTime::parse_from_str("00000101T000000Z", ID_TIME).map(|t| t.and_utc()).ok();
        let hi = NaiveDateTime::parse_from_str("99991231T235959Z", ID_TIME).map(|t| t.and_utc()).ok();
        let now = match (lo, hi) {
            (Some(lo), Some(hi)) => now.clamp(lo, hi),
            _ => now,
        };
        Self(format!("{}-{:02x}{:02x}{:02x}", now.format(ID_TIME), suffix[0], suffix[1], suffix[2]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The second the incident was opened, from the id.
    pub fn opened_at(&self) -> Option<DateTime<Utc>> {
        NaiveDateTime::parse_from_str(self.0.get(..16)?, ID_TIME).ok().map(|t| t.and_utc())
    }
}

/// Three bytes for an [`IncidentId`] suffix from std's per-process random hasher keys.
/// Unique enough to keep two incidents opened in the same second apart; not for secrets.
pub fn random_suffix() -> [u8; 3] {
    use std::hash::BuildHasher;
    let h = std::collections::hash_map::RandomState::new().hash_one((std::process::id(), std::time::SystemTime::now()));
    let b = h.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// Why a string is not an [`IncidentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an incident id (YYYYMMDDTHHMMSSZ-xxxxxx): {0:?}")]
pub struct BadIncidentId(pub String);

impl FromStr for IncidentId {
    type Err = BadIncidentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let shape = b.len() == 23
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'T'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'Z'
            && b[16] == b'-'
            && b[17..].iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        let id = Self(s.to_owned());
        if shape && id.opened_at().is_some() {
            Ok(id)
        } else {
            Err(BadIncidentId(s.to_owned()))
        }
    }
}

impl TryFrom<String> for IncidentId {
    type Error = BadIncidentId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<IncidentId> for String {
    fn from(id: IncidentId) -> Self {
        id.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------
// Paths

/// `<data-dir>/incidents`.
pub fn incidents_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(INCIDENTS_DIR)
}

/// `<data-dir>/incidents/<id>.jsonl`.
pub fn log_path(data_dir: &Path, id: &IncidentId) -> PathBuf {
    incidents_dir(data_dir).join(format!("{id}.jsonl"))
}

/// The lock-holder file next to a log: `<id>.lock`.
pub fn lock_path(log: &Path) -> PathBuf {
    log.with_extension("lock")
}

/// The head file next to a log: `<id>.head`.
pub fn head_path(log: &Path) -> PathBuf {
    log.with_extension("head")
}

/// The incidents in a data dir, oldest first (a missing folder is none).
pub fn list(data_dir: &Path) -> std::io::Result<Vec<IncidentId>> {
    let dir = incidents_dir(data_dir);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut ids = Vec::new();
    for e in rd {
        let name = e?.file_name();
        if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")).and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

// ---------------------------------------------------------------------------------------
// Records

/// KMS signing algorithms that take a 32-byte SHA-256 digest (the anchor message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    #[serde(rename = "ECDSA_SHA_256")]
    EcdsaSha256,
    #[serde(rename = "RSASSA_PSS_SHA_256")]
    RsassaPssSha256,
    #[serde(rename = "RSASSA_PKCS1_V1_5_SHA_256")]
    RsassaPkcs1V15Sha256,
}

impl SigningAlgorithm {
    /// The name KMS uses (`SigningAlgorithm` parameter).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaSha256 => "ECDSA_SHA_256",
            Self::RsassaPssSha256 => "RSASSA_PSS_SHA_256",
            Self::RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        }
    }
}

/// `anchor`: a KMS signature over the head of the log (see the module doc for the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub head_seq: u64,
    pub head_hash: String,
    pub key_arn: String,
    pub signing_algorithm: SigningAlgorithm,
    /// The signature KMS returned, base64.
    pub signature: String,
}

/// `log.repaired`: written by recovery only, after dropping a torn tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repaired {
    /// The line the incomplete tail was on.
    pub line: usize,
    /// Where the dropped bytes started (the file was truncated to this length).
    pub offset: u64,
    pub dropped_bytes: u64,
    pub dropped_sha256: String,
    /// The dropped bytes as text (lossy UTF-8, at most 4096 bytes of them).
    pub dropped_text: String,
}

impl Repaired {
    fn of(t: &TornTail) -> Self {
        let kept = &t.content[..t.content.len().min(DROPPED_TEXT_MAX)];
        Self {
            line: t.line,
            offset: t.offset,
            dropped_bytes: t.bytes,
            dropped_sha256: hex(&Sha256::digest(&t.content)),
            dropped_text: String::from_utf8_lossy(kept).into_owned(),
        }
    }
}

const ANCHOR_KIND: &str = "anchor";
const REPAIRED_KIND: &str = "log.repaired";

/// One incident-log record: a runbook step record (the domain's [`StepRecord`], whose
/// serde form is the journal entry's `kind` and `body`), or one of the log's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `incident.opened`, `step.*`, `approval.*`.
    Step(StepRecord),
    /// `anchor`.
    Anchor(Anchor),
    /// `log.repaired`.
    Repaired(Repaired),
}

impl Record {
    /// The journal `kind` of this record.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Step(r) => r.kind(),
            Self::Anchor(_) => ANCHOR_KIND,
            Self::Repaired(_) => REPAIRED_KIND,
        }
    }

    /// The runbook step this record is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::Step(r) => r.step(),
            Self::Anchor(_) | Self::Repaired(_) => None,
        }
    }

    /// Read a journal entry as a record.
    pub fn from_entry(e: &Entry) -> Result<Self, serde_json::Error> {
        match e.kind.as_str() {
            ANCHOR_KIND => serde_json::from_value(e.body.clone()).map(Self::Anchor),
            REPAIRED_KIND => serde_json::from_value(e.body.clone()).map(Self::Repaired),
            _ => serde_json::from_value(serde_json::json!({ "kind": e.kind, "body": e.body })).map(Self::Step),
        }
    }

    /// The body as the journal stores it (for a step record, the `body` of its serde form).
    fn body(&self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Step(r) => match serde_json::to_value(r)? {
                Value::Object(mut m) => Ok(m.remove("body").unwrap_or(Value::Null)),
                _ => Ok(Value::Null),
            },
            Self::Anchor(a) => serde_json::to_value(a),
            Self::Repaired(r) => serde_json::to_value(r),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Replay

/// A record with where and when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub record: Record,
}

/// One step's records, in log order.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecords {
    pub step: String,
    pub records: Vec<Stamped>,
}

/// A step whose last intent has neither an outcome nor a resolution: after a crash, the
/// calls may or may not have been made. Settle it by observing AWS (`step.resolved`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownOutcome {
    pub step: String,
    pub attempt: u32,
    /// The seq of the intent record.
    pub intent_seq: u64,
    /// The intent's ops, whose fate is unknown.
    pub ops: Vec<Op>,
}

/// A log read back as records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// Every record, in log order.
    pub records: Vec<Stamped>,
    /// The records of each step, steps in the order they first appear.
    pub steps: Vec<StepRecords>,
    index: HashMap<String, usize>,
}

/// A verified entry that is not an incident record (an unknown kind, a malformed body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record seq {seq} ({kind}): {reason}")]
pub struct RecordError {
    pub seq: u64,
    pub kind: String,
    pub reason: String,
}

/// Read entries (verified, in order) as records and group them by step.
pub fn replay(entries: &[Entry]) -> Result<Replay, RecordError> {
    let mut r = Replay::default();
    for e in entries {
        let record = Record::from_entry(e).map_err(|err| RecordError {
            seq: e.seq,
            kind: e.kind.clone(),
            reason: err.to_string(),
        })?;
        r.push(Stamped { seq: e.seq, at: e.at, actor: e.actor.clone(), record });
    }
    Ok(r)
}

/// Where a step stands, from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StepState<'a> {
    last_attempt: u32,
    /// The last attempt, when it has an intent and no outcome or resolution: (attempt,
    /// its ops).
    open: Option<(u32, &'a [Op])>,
}

/// Whether a call result carries an error (an AWS error, or an unmet expectation).
fn has_error(r: &CallResult) -> bool {
    r.error.is_some() || r.error_code.is_some()
}

impl Replay {
    fn push(&mut self, s: Stamped) {
        if let Some(step) = s.record.step() {
            let i = match self.index.get(step) {
                Some(&i) => i,
                None => {
                    self.steps.push(StepRecords { step: step.to_owned(), records: Vec::new() });
                    self.index.insert(step.to_owned(), self.steps.len() - 1);
                    self.steps.len() - 1
                }
            };
            self.steps[i].records.push(s.clone());
        }
        self.records.push(s);
    }

    /// The `incident.opened` record.
    pub fn opened(&self) -> Option<&Opened> {
        self.records.iter().find_map(|s| match &s.record {
            Record::Step(StepRecord::Opened(o)) => Some(&**o),
            _ => None,
        })
    }

    /// One step's records, in order.
    pub fn step(&self, step: &str) -> Option<&StepRecords> {
        self.index.get(step).map(|&i| &self.steps[i])
    }

    /// The step records with the journal's time and actor, in log order (anchors and
    /// repairs left out): what [`Incident::replay`](crate::domain::runbook::Incident::replay)
    /// takes.
    pub fn incident_records(&self) -> Vec<IncidentRecord> {
        self.records
            .iter()
            .filter_map(|s| match &s.record {
                Record::Step(r) => Some(IncidentRecord { at: s.at, actor: s.actor.clone(), record: r.clone() }),
                Record::Anchor(_) | Record::Repaired(_) => None,
            })
            .collect()
    }

    fn state(&self, step: &str) -> StepState<'_> {
        let mut st = StepState::default();
        for s in self.step(step).map(|s| s.records.as_slice()).unwrap_or_default() {
            match &s.record {
                Record::Step(StepRecord::Intent { attempt, ops, .. }) => {
                    st.last_attempt = *attempt;
                    st.open = Some((*attempt, ops.as_slice()));
                }
                Record::Step(StepRecord::Outcome { attempt, .. } | StepRecord::Resolved { attempt, .. })
                    if st.open.is_some_and(|(a, _)| a == *attempt) =>
                {
                    st.open = None;
                }
                _ => {}
            }
        }
        st
    }

    /// Steps with an intent and no outcome or resolution (outcome unknown after a crash),
    /// in the order the steps first appear, each with the intent's ops.
    pub fn unknown_outcomes(&self) -> Vec<UnknownOutcome> {
        let mut out = Vec::new();
        for s in &self.steps {
            let Some((attempt, ops)) = self.state(&s.step).open else { continue };
            let intent_seq = s.records.iter().rev().find_map(|r| match &r.record {
                Record::Step(StepRecord::Intent { attempt: a, .. }) if *a == attempt => Some(r.seq),
                _ => None,
            });
            if let Some(intent_seq) = intent_seq {
                out.push(UnknownOutcome { step: s.step.clone(), attempt, intent_seq, ops: ops.to_vec() });
            }
        }
        out
    }

    /// Why `record` may not be written next, if it may not.
    fn refuse(&self, record: &Record, head: (u64, &str)) -> Option<String> {
        match record {
            Record::Step(r) => self.refuse_step(r),
            Record::Anchor(a) => {
                if (a.head_seq, a.head_hash.as_str()) != head || a.head_seq == 0 {
                    Some(format!("an anchor must sign the current head (seq {})", head.0))
                } else if a.key_arn.is_empty() || a.signature.is_empty() {
                    Some("an anchor needs a key ARN and a signature".into())
                } else {
                    None
                }
            }
            Record::Repaired(_) => Some("log.repaired is written by recovery only".into()),
        }
    }

    fn refuse_step(&self, record: &StepRecord) -> Option<String> {
        if record.step().is_some_and(|s| s.trim().is_empty()) {
            return Some("a step id must not be empty".into());
        }
        let st = record.step().map(|s| self.state(s)).unwrap_or_default();
        match record {
            StepRecord::Opened(_) if !self.records.is_empty() => Some("the incident is already opened".into()),
            StepRecord::Opened(_) => None,
            StepRecord::Intent { step, attempt, ops } => {
                if let Some((a, _)) = st.open {
                    Some(format!("step {step} attempt {a} has no outcome yet: write its outcome or resolve it first"))
                } else if *attempt != st.last_attempt + 1 {
                    Some(format!("step {step} attempt {attempt} where {} is next", st.last_attempt + 1))
                } else if ops.is_empty() {
                    Some("an intent needs at least one op".into())
                } else {
                    None
                }
            }
            StepRecord::Outcome { step, attempt, ok, results } => match st.open {
                Some((a, ops)) if a == *attempt => {
                    let failed = results.iter().position(has_error);
                    if results.len() > ops.len() {
                        Some(format!("{} results for an intent with {} ops", results.len(), ops.len()))
                    } else if let Some((i, (r, op))) =
                        results.iter().zip(ops).enumerate().find(|(_, (r, op))| r.call != op.call().name())
                    {
                        Some(format!(
                            "result {i} is for {}, but op {i} is {}: results answer the ops in order",
                            r.call,
                            op.call().name()
                        ))
                    } else if failed.is_some_and(|i| i + 1 != results.len()) {
                        Some("a result after a failed call: the calls stop at the first failure".into())
                    } else if *ok && (failed.is_some() || results.len() < ops.len()) {
                        Some("an ok outcome needs a result without an error for every op".into())
                    } else if !*ok && failed.is_none() {
                        Some("an outcome that is not ok needs a result with an error".into())
                    } else {
                        None
                    }
                }
                _ => Some(format!("step {step} attempt {attempt} has no open intent")),
            },
            StepRecord::Resolved { step, attempt, .. } => match st.open {
                Some((a, _)) if a == *attempt => None,
                _ => Some(format!("step {step} attempt {attempt} has no unknown outcome to resolve")),
            },
            StepRecord::Skipped { step, reason } => {
                if st.open.is_some() {
                    Some(format!("step {step} has an unknown outcome: resolve it before skipping"))
                } else if reason.trim().is_empty() {
                    Some("a skip needs a reason".into())
                } else {
                    None
                }
            }
            StepRecord::Acknowledged { note, .. } if note.trim().is_empty() => {
                Some("an acknowledgement needs a note".into())
            }
            StepRecord::Acknowledged { .. } => None,
            // Who may approve what is the engine's to judge (it ignores a self-approval).
            StepRecord::ApprovalRequested { .. }
            | StepRecord::ApprovalExecuted { .. }
            | StepRecord::ApprovalEnded { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Verification

/// What the head file says, read as-is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HeadRead {
    Absent,
    Unreadable(String),
    Head(HeadFile),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeadFile {
    seq: u64,
    hash: String,
}

fn read_head(path: &Path) -> HeadRead {
    match std::fs::read(path) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(h) => HeadRead::Head(h),
            Err(e) => HeadRead::Unreadable(e.to_string()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HeadRead::Absent,
        Err(e) => HeadRead::Unreadable(e.to_string()),
    }
}

/// The log compared with its head file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadCheck {
    /// No head file: truncation of whole records at the end cannot be checked offline.
    Absent,
    /// The head is the last record.
    Matches,
    /// The head is an earlier record of the log (normal by one record after a crash
    /// between a record's fsync and the head's; records past it are not covered by it).
    Behind { head_seq: u64, last_seq: u64 },
    /// The head names a record past the end: whole records were removed.
    Truncated { head_seq: u64, last_seq: u64 },
    /// The record at the head's seq has another hash: the log was rewritten.
    Mismatch { head_seq: u64 },
    /// The head file exists but cannot be read.
    Unreadable(String),
    /// Not compared, because the chain is already broken.
    NotChecked,
}

/// What is wrong, in a [`Finding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogProblem {
    /// The chain is broken at a line: edited, missing, reordered, duplicated, garbage...
    Chain(Problem),
    /// Whole records at the end are gone (the head file says `head_seq` was written).
    Truncated { head_seq: u64, last_seq: u64 },
    /// The record at the head's seq is not the one the head file names.
    HeadMismatch { head_seq: u64 },
    /// The head file is unreadable.
    HeadUnreadable(String),
}

impl fmt::Display for LogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain(p) => p.fmt(f),
            Self::Truncated { head_seq, last_seq } => write!(
                f,
                "truncated: the log ends at seq {last_seq} but seq {head_seq} was written (records {}..={head_seq} are gone)",
                last_seq + 1
            ),
            Self::HeadMismatch { head_seq } => {
                write!(f, "rewritten: record {head_seq} is not the one the head file recorded")
            }
            Self::HeadUnreadable(e) => write!(f, "the head file is unreadable: {e}"),
        }
    }
}

/// The first sign of tampering: where (line and seq, when they apply) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: Option<usize>,
    pub seq: Option<u64>,
    pub problem: LogProblem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.seq) {
            (Some(l), Some(s)) => write!(f, "line {l} (seq {s}): {}", self.problem),
            (Some(l), None) => write!(f, "line {l}: {}", self.problem),
            (None, Some(s)) => write!(f, "seq {s}: {}", self.problem),
            (None, None) => self.problem.fmt(f),
        }
    }
}

/// The result of verifying one incident log offline.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub path: PathBuf,
    /// Records that verify (the intact prefix of the log).
    pub records: usize,
    pub last_seq: u64,
    pub last_hash: String,
    /// The first tampering found, in the chain or against the head file.
    pub tampering: Option<Finding>,
    /// An incomplete last line left by a crash: not tampering; repaired on open-for-write.
    pub torn_tail: Option<TornTail>,
    pub head: HeadCheck,
    /// Seqs of the anchor records in the intact prefix (check them with [`anchors_to_verify`]).
    pub anchors: Vec<u64>,
}

impl VerifyReport {
    /// No tampering and no torn tail.
    pub fn is_intact(&self) -> bool {
        self.tampering.is_none() && self.torn_tail.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        match &self.tampering {
            Some(t) => write!(f, "TAMPERED at {t}; {} records verify before it", self.records)?,
            None => write!(f, "{} records verify (last seq {})", self.records, self.last_seq)?,
        }
        if let Some(t) = &self.torn_tail {
            write!(f, "; incomplete last line {} ({} bytes at offset {})", t.line, t.bytes, t.offset)?;
        }
        match &self.head {
            HeadCheck::Absent => write!(f, "; no head file, truncation at the end not checked")?,
            HeadCheck::Behind { head_seq, .. } => write!(f, "; head file at seq {head_seq}")?,
            _ => {}
        }
        write!(f, "; {} anchors to check online", self.anchors.len())
    }
}

fn assess(path: &Path, scan: &Scan, head: &HeadRead) -> VerifyReport {
    let records = scan.entries.len();
    let (last_seq, last_hash) = scan.entries.last().map(|e| (e.seq, e.hash.clone())).unwrap_or((0, GENESIS.to_owned()));
    let chain = scan.broken.as_ref().map(|b| Finding {
        line: Some(b.line),
        seq: b.seq,
        problem: LogProblem::Chain(b.problem.clone()),
    });
    let head = match head {
        _ if chain.is_some() => HeadCheck::NotChecked,
        HeadRead::Absent => HeadCheck::Absent,
        HeadRead::Unreadable(e) => HeadCheck::Unreadable(e.clone()),
        HeadRead::Head(h) if h.seq > last_seq => HeadCheck::Truncated { head_seq: h.seq, last_seq },
        HeadRead::Head(h) => {
            let at = if h.seq == 0 { GENESIS } else { scan.entries[h.seq as usize - 1].hash.as_str() };
            if at != h.hash {
                HeadCheck::Mismatch { head_seq: h.seq }
            } else if h.seq == last_seq {
                HeadCheck::Matches
            } else {
                HeadCheck::Behind { head_seq: h.seq, last_seq }
            }
        }
    };
    let tampering = chain.or_else(|| match &head {
        HeadCheck::Truncated { head_seq, last_seq } => Some(Finding {
            line: Some(records + 1),
            seq: Some(last_seq + 1),
            problem: LogProblem::Truncated { head_seq: *head_seq, last_seq: *last_seq },
        }),
        HeadCheck::Mismatch { head_seq } => Some(Finding {
            line: Some(*head_seq as usize),
            seq: Some(*head_seq),
            problem: LogProblem::HeadMismatch { head_seq: *head_seq },
        }),
        HeadCheck::Unreadable(e) => {
            Some(Finding { line: None, seq: None, problem: LogProblem::HeadUnreadable(e.clone()) })
        }
        _ => None,
    });
    VerifyReport {
        path: path.to_owned(),
        records,
        last_seq,
        last_hash,
        tampering,
        torn_tail: scan.torn_tail.clone(),
        head,
        anchors: scan.entries.iter().filter(|e| e.kind == "anchor").map(|e| e.seq).collect(),
    }
}

/// Read the head file, then the log (in that order, so that a writer appending meanwhile
/// can only make the head look behind, never truncated).
fn load(path: &Path) -> Result<(Scan, VerifyReport), LogError> {
    if !path.exists() {
        return Err(LogError::NotFound { path: path.to_owned() });
    }
    let head = read_head(&head_path(path));
    let scan = journal::scan(path)?;
    let report = assess(path, &scan, &head);
    Ok((scan, report))
}

/// Verify an incident log offline: the chain, a torn tail, and the head file. Reading
/// only; no lock needed. See the module doc for what this can and cannot detect.
pub fn verify(path: &Path) -> Result<VerifyReport, LogError> {
    load(path).map(|(_, r)| r)
}

/// One anchor to check online with `kms:Verify`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorCheck {
    pub anchor_seq: u64,
    pub line: usize,
    pub anchor: Anchor,
    /// The message: the 32 bytes of the hash of record `anchor.head_seq` *as recomputed
    /// from the file* (MessageType [`ANCHOR_MESSAGE_TYPE`]).
    pub message: [u8; 32],
    /// The signature, decoded from base64.
    pub signature: Vec<u8>,
    /// Why this anchor fails without asking KMS (it names a head that is not in the log,
    /// or a hash other than the log's, or its signature is not base64).
    pub problem: Option<String>,
}

/// The anchors of an incident log's intact prefix, each with the exact bytes to verify
/// against KMS. The caller does the `kms:Verify` calls.
pub fn anchors_to_verify(path: &Path) -> Result<Vec<AnchorCheck>, LogError> {
    let (scan, _) = load(path)?;
    Ok(anchor_checks(&scan.entries))
}

/// [`anchors_to_verify`] over entries already read (verified, in order).
pub fn anchor_checks(entries: &[Entry]) -> Vec<AnchorCheck> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Ok(Record::Anchor(anchor)) = Record::from_entry(e) else { continue };
        let target = (anchor.head_seq >= 1 && anchor.head_seq < e.seq)
            .then(|| entries.get(anchor.head_seq as usize - 1))
            .flatten();
        let message = target.and_then(|t| hex32(&t.hash)).or_else(|| hex32(&anchor.head_hash)).unwrap_or([0; 32]);
        let signature = base64_decode(&anchor.signature);
        let problem = match (target, &signature) {
            (None, _) => Some(format!("it signs seq {}, which is not an earlier record", anchor.head_seq)),
            (Some(t), _) if t.hash != anchor.head_hash => {
                Some(format!("it signs a hash that is not record {}'s", anchor.head_seq))
            }
            (_, None) => Some("its signature is not base64".to_owned()),
            _ => None,
        };
        out.push(AnchorCheck {
            anchor_seq: e.seq,
            line: i + 1,
            anchor,
            message,
            signature: signature.unwrap_or_default(),
            problem,
        });
    }
    out
}

/// The 32 bytes a chain hash (64 lowercase hex digits) stands for.
pub fn hex32(hash: &str) -> Option<[u8; 32]> {
    let b = hash.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(b[2 * i])? << 4 | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as KMS signatures are shown.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`base64_encode`]; `None` for anything it would not have written.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (q, quad) in b.chunks(4).enumerate() {
        let last = q == b.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in quad[..4 - pad].iter().enumerate() {
            let v = B64.iter().position(|x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    (base64_encode(&out) == text).then_some(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A read-only view of an incident log: what a second console gets.
#[derive(Debug, Clone)]
pub struct IncidentView {
    pub report: VerifyReport,
    /// The records of the intact prefix.
    pub replay: Replay,
}

/// Read an incident log without locking: verify it and replay its intact prefix.
pub fn read(path: &Path) -> Result<IncidentView, LogError> {
    let (scan, report) = load(path)?;
    let replay = replay(&scan.entries).map_err(|source| LogError::Record { path: path.to_owned(), source })?;
    Ok(IncidentView { report, replay })
}

// ---------------------------------------------------------------------------------------
// Writing

/// Who holds an incident log open for writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The STS ARN of the operator.
    pub actor: String,
    pub pid: u32,
    pub host: String,
    pub since: DateTime<Utc>,
}

impl Holder {
    /// This process, for `actor`, from `since`.
    pub fn this_process(actor: &str, since: DateTime<Utc>) -> Self {
        Self { actor: actor.to_owned(), pid: std::process::id(), host: hostname(), since }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, since {})",
            self.actor,
            self.pid,
            self.host,
            self.since.format("%Y-%m-%d %H:%M:%SZ")
        )
    }
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".to_owned())
}

fn describe(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another process (its lock file is missing or unreadable)".to_owned(),
    }
}

/// Why an incident log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("incident log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Another console holds the write lock.
    #[error("incident log {} is open for writing by {}", path.display(), describe(holder))]
    Locked { path: PathBuf, holder: Option<Holder> },
    /// The log fails verification and is not opened for writing.
    #[error("incident log {} fails verification at {finding}", path.display())]
    Tampered { path: PathBuf, finding: Finding },
    #[error("incident log {} already exists", path.display())]
    Exists { path: PathBuf },
    #[error("no incident log at {}", path.display())]
    NotFound { path: PathBuf },
    /// A verified entry that is not an incident record.
    #[error("incident log {}: {source}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: RecordError,
    },
    /// A record that may not be written now (out of order, inconsistent).
    #[error("incident log {}: refused: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

/// What [`IncidentLog::open`] got.
#[derive(Debug)]
pub enum Access {
    Write(IncidentLog),
    /// Someone else is writing: a read-only view, and who it is.
    ReadOnly {
        view: IncidentView,
        held_by: Option<Holder>,
    },
}

/// Removes `<id>.lock` when the writer closes, while it still holds the lock.
#[derive(Debug)]
struct LockNote {
    path: PathBuf,
}

impl Drop for LockNote {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An incident log open for writing: holds the exclusive lock until dropped.
#[derive(Debug)]
pub struct IncidentLog {
    // Field order matters: the lock note is removed before the file (and its lock) closes.
    _note: LockNote,
    journal: Journal,
    id: IncidentId,
    holder: Holder,
    replay: Replay,
    repaired: Option<Repaired>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_owned(), source }
}

/// Create `dir` 0700 (and its parents as the umask says), or restrict it to 0700.
fn ensure_dir(dir: &Path) -> Result<(), LogError> {
    private_dir(dir).map_err(io_err(dir))
}

/// Create `dir` readable only by its owner (0700; its parents as the umask says, the new
/// entry made durable), or restrict an existing one to 0700. The data dir's incident,
/// journal and cache directories are made with it.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.is_dir() {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {
                    if let Some(parent) = dir.parent() {
                        File::open(parent).and_then(|d| d.sync_all())?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Replace `path` with `bytes` (0600): write a temporary file, fsync it, rename it over.
/// Returns whether `path` existed before.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let existed = path.exists();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(existed)
}

fn write_head(log: &Path, seq: u64, hash: &str) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(&HeadFile { seq, hash: hash.to_owned() })?;
    bytes.push(b'\n');
    let existed = replace_file(&head_path(log), &bytes)?;
    if !existed {
        if let Some(dir) = log.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

fn read_holder(log: &Path) -> Option<Holder> {
    serde_json::from_slice(&std::fs::read(lock_path(log)).ok()?).ok()
}

/// Take the exclusive lock on the log file without waiting, and note who holds it.
fn lock(path: &Path, file: &File, holder: &Holder) -> Result<LockNote, LogError> {
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LogError::Locked { path: path.to_owned(), holder: read_holder(path) });
        }
        Err(TryLockError::Error(e)) => return Err(io_err(path)(e)),
    }
    let note = lock_path(path);
    if let Some(stale) = read_holder(path) {
        tracing::info!("incident log {}: previous writer {stale} did not close it cleanly", path.display());
    }
    let bytes = serde_json::to_vec(holder).map_err(|e| io_err(&note)(e.into()))?;
    replace_file(&note, &bytes).map_err(io_err(&note))?;
    Ok(LockNote { path: note })
}

impl IncidentLog {
    /// Create the log for a new incident in `data_dir`, lock it for `holder` and write
    /// `incident.opened` at `at`. `opened.incident_id` must be an [`IncidentId`] (it names
    /// the file; [`LogError::Refused`] otherwise). Fails if the incident already has records.
    pub fn create(data_dir: &Path, opened: Opened, holder: Holder, at: DateTime<Utc>) -> Result<Self, LogError> {
        let id: IncidentId = opened
            .incident_id
            .parse()
            .map_err(|e: BadIncidentId| LogError::Refused { path: incidents_dir(data_dir), reason: e.to_string() })?;
        let path = log_path(data_dir, &id);
        let dir = incidents_dir(data_dir);
        ensure_dir(&dir)?;
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            return Err(LogError::Exists { path });
        }
        let (file, _) = journal::open_file(&path)?;
        let note = lock(&path, &file, &holder)?;
        // Someone may have created it between the check and the lock.
        if file.metadata().map_err(io_err(&path))?.len() > 0 {
            return Err(LogError::Exists { path });
        }
        let mut log = Self {
            _note: note,
            journal: Journal::resume(&path, file, 0, GENESIS.to_owned()),
            id,
            holder,
            replay: Replay::default(),
            repaired: None,
        };
        log.write(at, Record::Step(StepRecord::Opened(Box::new(opened))))?;
        Ok(log)
    }

    /// Open an existing incident for writing if no one else is; otherwise a read-only view
    /// and who holds it.
    pub fn open(data_dir: &Path, id: &IncidentId, holder: Holder) -> Result<Access, LogError> {
        match Self::open_for_write(data_dir, id, holder) {
            Ok(log) => Ok(Access::Write(log)),
            Err(LogError::Locked { path, holder }) => Ok(Access::ReadOnly { view: read(&path)?, held_by: holder }),
            Err(e) => Err(e),
        }
    }

    /// Open an existing incident for writing: take the lock ([`LogError::Locked`] if it is
    /// held), verify the whole log once, refuse it if it was tampered with
    /// ([`LogError::Tampered`]), and repair a torn tail (truncate it, then write
    /// `log.repaired` at `holder.since`).
    pub fn open_for_write(data_dir: &Path, id: &IncidentId, holder: Holder) -> Result<Self, LogError> {
        let path = log_path(data_dir, id);
        if !path.exists() {
            return Err(LogError::NotFound { path });
        }
        ensure_dir(&incidents_dir(data_dir))?;
        let (file, _) = journal::open_file(&path)?;
        let note = lock(&path, &file, &holder)?;
        let (scan, report) = load(&path)?;
        if let Some(finding) = report.tampering {
            return Err(LogError::Tampered { path, finding });
        }
        let replay = replay(&scan.entries).map_err(|source| LogError::Record { path: path.clone(), source })?;
        if let Some(o) = replay.opened().filter(|o| o.incident_id != id.as_str()) {
            return Err(LogError::Refused { path, reason: format!("this is the log of incident {}", o.incident_id) });
        }
        if let Some(t) = &scan.torn_tail {
            file.set_len(t.offset).and_then(|()| file.sync_all()).map_err(io_err(&path))?;
            tracing::warn!(
                "incident log {}: dropped an incomplete last line ({} bytes at offset {})",
                path.display(),
                t.bytes,
                t.offset
            );
        }
        let journal = Journal::resume(&path, file, report.last_seq, report.last_hash);
        let mut log = Self { _note: note, journal, id: id.clone(), holder, replay, repaired: None };
        if let Some(t) = &scan.torn_tail {
            let r = Repaired::of(t);
            log.commit(log.holder.since, Record::Repaired(r.clone()))?;
            log.repaired = Some(r);
        } else if report.head != HeadCheck::Matches && report.last_seq > 0 {
            let (seq, hash) = log.journal.head();
            write_head(&path, seq, hash).map_err(io_err(&path))?;
        }
        Ok(log)
    }

    pub fn id(&self) -> &IncidentId {
        &self.id
    }

    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The last record's seq and hash.
    pub fn head(&self) -> (u64, &str) {
        self.journal.head()
    }

    /// The log's records so far (kept up to date by every write).
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// The repair done when this log was opened, if there was a torn tail.
    pub fn repaired(&self) -> Option<&Repaired> {
        self.repaired.as_ref()
    }

    /// Write a step record: `step.intent` before making the calls (the step's previous
    /// attempt must have an outcome or resolution, and `attempt` must be the next one),
    /// `step.outcome` for the open intent, `step.resolved` to settle an unknown outcome
    /// from what AWS shows, `step.skipped`, `step.acknowledged`, `approval.*`. A record that
    /// does not fit the log so far is [`LogError::Refused`] and not written.
    pub fn append(&mut self, at: DateTime<Utc>, record: &StepRecord) -> Result<Entry, LogError> {
        self.write(at, Record::Step(record.clone()))
    }

    /// What to sign now for an anchor: the current head and its 32-byte message.
    pub fn anchor_request(&self) -> AnchorRequest {
        let (head_seq, head_hash) = self.journal.head();
        AnchorRequest { head_seq, head_hash: head_hash.to_owned(), message: hex32(head_hash).unwrap_or([0; 32]) }
    }

    /// Write an `anchor` for `request` (which must still be the head) with the signature
    /// KMS returned for `request.message` (MessageType DIGEST).
    pub fn anchor(
        &mut self,
        at: DateTime<Utc>,
        request: &AnchorRequest,
        key_arn: &str,
        signing_algorithm: SigningAlgorithm,
        signature: &[u8],
    ) -> Result<Entry, LogError> {
        self.write(
            at,
            Record::Anchor(Anchor {
                head_seq: request.head_seq,
                head_hash: request.head_hash.clone(),
                key_arn: key_arn.to_owned(),
                signing_algorithm,
                signature: base64_encode(signature),
            }),
        )
    }

    /// Check, then [`Self::commit`].
    fn write(&mut self, at: DateTime<Utc>, record: Record) -> Result<Entry, LogError> {
        if let Some(reason) = self.replay.refuse(&record, self.journal.head()) {
            return Err(LogError::Refused { path: self.path().to_owned(), reason });
        }
        self.commit(at, record)
    }

    /// Append (fsynced), remember, then move the head file. Never reads the log.
    fn commit(&mut self, at: DateTime<Utc>, record: Record) -> Result<Entry, LogError> {
        let path = self.journal.path().to_owned();
        let body = record.body().map_err(|e| io_err(&path)(e.into()))?;
        let entry = self.journal.append(at, record.kind(), &self.holder.actor, body)?;
        self.replay.push(Stamped { seq: entry.seq, at, actor: entry.actor.clone(), record });
        // The record is durable from here on. If the head cannot be moved, it lags (as after
        // a crash); the next write or open moves it.
        if let Err(e) = write_head(&path, entry.seq, &entry.hash) {
            tracing::warn!("incident log {}: head file not updated: {e}", path.display());
        }
        Ok(entry)
    }
}

/// What to sign for an anchor (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorRequest {
    pub head_seq: u64,
    pub head_hash: String,
    /// The 32 bytes to sign with MessageType DIGEST: `head_hash` decoded.
    pub message: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runbook::{
        Incident, IncidentTarget, KeyTarget, Runbook, StepInput, StepState, Work, EXPECTATION_NOT_MET,
    };
    use chrono::TimeZone;
    use serde_json::json;
    use std::collections::BTreeMap;

    const ACTOR: &str = "arn:aws:sts::123456789012:assumed-role/security-lead/alice";
    const KEY: &str = "arn:aws:kms:eu-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000 + s, 0).single().expect("time")
    }

    fn id() -> IncidentId {
        IncidentId::new(at(0), [0x3f, 0xa9, 0xc1])
    }

    fn holder(s: i64) -> Holder {
        Holder::this_process(ACTOR, at(s))
    }

    fn key_target() -> IncidentTarget {
        IncidentTarget::Key(KeyTarget {
            arn: KEY.into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            region: "eu-north-1".into(),
            aliases: vec!["drop-kyc-key".into()],
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            description: "KYC document objects in S3".into(),
            tags: BTreeMap::from([("classification".into(), "L4".into())]),
            policy: r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
        })
    }

    fn opened(id: &str, note: &str) -> Opened {
        Opened {
            incident_id: id.into(),
            runbook: "kms-key-compromise".into(),
            target: key_target(),
            detected_at: at(-600),
            note: note.into(),
            notify_topic_arn: None,
        }
    }

    /// The op for a KMS action on the key.
    fn op(action: &str) -> Op {
        let key_id = KEY.to_owned();
        match action {
            "DisableKey" => Op::DisableKey { key_id },
            "EnableKey" => Op::EnableKey { key_id },
            "EnableKeyRotation" => Op::EnableKeyRotation { key_id },
            "DescribeKey" => Op::DescribeKey { key_id, expect_key_state: Some("Disabled".into()) },
            "ListGrants" => Op::ListGrants { key_id, expect_none: false },
            "RevokeGrant" => Op::RevokeGrant { key_id, grant_id: "g-1".into() },
            other => panic!("no op {other} in these tests"),
        }
    }

    fn intent(step: &str, attempt: u32, actions: &[&str]) -> StepRecord {
        StepRecord::Intent { step: step.into(), attempt, ops: actions.iter().map(|a| op(a)).collect() }
    }

    fn answered(action: &str, n: usize) -> CallResult {
        CallResult {
            call: op(action).call().name().into(),
            request_id: Some(format!("req-{n}")),
            fields: json!({ "KeyMetadata": { "KeyState": "Disabled" } }),
            error_code: None,
            error: None,
        }
    }

    fn failed(action: &str, code: &str, message: &str) -> CallResult {
        CallResult {
            call: op(action).call().name().into(),
            request_id: Some("req-failed".into()),
            fields: Value::Null,
            error_code: Some(code.into()),
            error: Some(message.into()),
        }
    }

    /// A successful outcome answering every one of `actions`.
    fn done(step: &str, attempt: u32, actions: &[&str]) -> StepRecord {
        let results = actions.iter().enumerate().map(|(n, a)| answered(a, n)).collect();
        StepRecord::Outcome { step: step.into(), attempt, ok: true, results }
    }

    fn outcome(step: &str, attempt: u32, ok: bool, results: Vec<CallResult>) -> StepRecord {
        StepRecord::Outcome { step: step.into(), attempt, ok, results }
    }

    fn skipped(step: &str, reason: &str) -> StepRecord {
        StepRecord::Skipped { step: step.into(), reason: reason.into() }
    }

    fn acknowledged(step: &str, note: &str) -> StepRecord {
        StepRecord::Acknowledged { step: step.into(), note: note.into() }
    }

    fn new_log(dir: &Path) -> IncidentLog {
        IncidentLog::create(dir, opened(id().as_str(), "JWT signing key leaked"), holder(0), at(1)).expect("create")
    }

    /// opened(1), intent disable(2), outcome disable(3), intent enable-rotation(4), outcome
    /// enable-rotation(5).
    fn five(dir: &Path) -> PathBuf {
        let mut log = new_log(dir);
        log.append(at(2), &intent("disable", 1, &["DisableKey"])).expect("intent");
        log.append(at(3), &done("disable", 1, &["DisableKey"])).expect("outcome");
        log.append(at(4), &intent("enable-rotation", 1, &["EnableKeyRotation"])).expect("intent");
        log.append(at(5), &done("enable-rotation", 1, &["EnableKeyRotation"])).expect("outcome");
        log.path().to_owned()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
    }

    fn tampering(path: &Path) -> Finding {
        let r = verify(path).expect("verify");
        r.tampering.clone().unwrap_or_else(|| panic!("expected tampering: {r}"))
    }

    fn refused_for_writing(dir: &Path) -> Finding {
        match IncidentLog::open_for_write(dir, &id(), holder(9)) {
            Err(LogError::Tampered { finding, .. }) => finding,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn ids_sort_by_time_and_are_safe_file_names() {
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 9, 15, 0).single().expect("time");
        let id = IncidentId::new(t, [0x3f, 0xa9, 0xc1]);
        assert_eq!(id.as_str(), "20261129T091500Z-3fa9c1");
        assert_eq!(id.opened_at(), Some(t));
        assert_eq!(id.as_str().parse::<IncidentId>().as_ref(), Ok(&id));
        assert_eq!(serde_json::from_value::<IncidentId>(json!(id.as_str())).ok(), Some(id.clone()));

        // Out of order times and suffixes: sorting the ids sorts by time.
        let secs = [86_400 * 400, 5, 3_600, 0, 59, 86_400 * 31, 86_400 * 365 * 9];
        let mut ids: Vec<IncidentId> =
            secs.iter().enumerate().map(|(i, s)| IncidentId::new(at(*s), [0xff - i as u8, 0, i as u8])).collect();
        ids.sort();
        let times: Vec<_> = ids.iter().map(|i| i.opened_at().expect("time")).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|i| i.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));

        for bad in
            ["../../etc/passwd", "20261129T091500Z-3FA9C1", "20261129T091500Z-3fa9c", "20261399T091500Z-3fa9c1", ""]
        {
            assert!(bad.parse::<IncidentId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn create_writes_opened_with_private_files() {
        let d = tempfile::tempdir().expect("tmp");
        let log = new_log(d.path());
        let path = log.path().to_owned();
        assert_eq!(path, d.path().join("incidents/20261118T110640Z-3fa9c1.jsonl"));
        assert_eq!(log.replay().opened().map(|o| o.note.as_str()), Some("JWT signing key leaked"));
        let held = read_holder(&path).expect("lock file names the holder");
        assert_eq!((held.actor.as_str(), held.pid), (ACTOR, std::process::id()));
        assert!(!held.host.is_empty());
        #[cfg(unix)]
        {
            assert_eq!(mode(&incidents_dir(d.path())), 0o700);
            for p in [path.clone(), head_path(&path), lock_path(&path)] {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
        assert!(matches!(
            IncidentLog::create(d.path(), opened(id().as_str(), "again"), holder(1), at(1)),
            Err(LogError::Exists { .. } | LogError::Locked { .. })
        ));
        drop(log);
        assert!(!lock_path(&path).exists(), "a clean close removes the lock file");
        assert!(matches!(
            IncidentLog::create(d.path(), opened(id().as_str(), "again"), holder(1), at(1)),
            Err(LogError::Exists { .. })
        ));
        assert_eq!(list(d.path()).expect("list"), vec![id()]);
        // The id names the file: one that is not an IncidentId is refused, nothing is created.
        let other = tempfile::tempdir().expect("tmp");
        for bad in ["inc-1", "../20261118T110640Z-3fa9c1", ""] {
            let r = IncidentLog::create(other.path(), opened(bad, "x"), holder(1), at(1));
            assert!(
                matches!(&r, Err(LogError::Refused { reason, .. }) if reason.contains("not an incident id")),
                "{r:?}"
            );
        }
        assert_eq!(list(other.path()).expect("list"), vec![]);
        let r = verify(&path).expect("verify");
        assert!(r.is_intact() && r.head == HeadCheck::Matches, "{r}");
    }

    #[test]
    fn replay_gives_each_step_its_records_in_order() {
        let d = tempfile::tempdir().expect("tmp");
        let mut log = new_log(d.path());
        log.append(at(2), &intent("disable", 1, &["DisableKey"])).expect("w");
        log.append(at(3), &intent("revoke-grants", 1, &["ListGrants", "RevokeGrant"])).expect("w");
        let failure = failed("DisableKey", "KMSInternalException", "try again");
        log.append(at(4), &outcome("disable", 1, false, vec![failure])).expect("w");
        log.append(at(5), &skipped("rotate-secret", "no secret uses the key")).expect("w");
        log.append(at(6), &done("revoke-grants", 1, &["ListGrants", "RevokeGrant"])).expect("w");
        log.append(at(7), &intent("disable", 2, &["DisableKey"])).expect("w");
        log.append(at(8), &done("disable", 2, &["DisableKey"])).expect("w");
        log.append(at(9), &acknowledged("disable", "first try failed, second worked")).expect("w");
        let mine = log.replay().clone();
        let path = log.path().to_owned();
        drop(log);

        let view = read(&path).expect("read");
        assert_eq!(view.replay, mine, "the writer's replay is the file's");
        let steps: Vec<&str> = view.replay.steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(steps, ["disable", "revoke-grants", "rotate-secret"]);
        let disable = view.replay.step("disable").expect("step");
        let kinds: Vec<(&str, u64)> = disable.records.iter().map(|s| (s.record.kind(), s.seq)).collect();
        assert_eq!(
            kinds,
            [
                ("step.intent", 2),
                ("step.outcome", 4),
                ("step.intent", 7),
                ("step.outcome", 8),
                ("step.acknowledged", 9)
            ]
        );
        assert!(view.replay.unknown_outcomes().is_empty());
        assert_eq!(view.replay.records.len(), 9);
        assert_eq!(view.replay.records[0].actor, ACTOR);
        // What the engine gets: the same records, with the journal's time and actor.
        let records = view.replay.incident_records();
        assert_eq!(records.len(), 9);
        assert_eq!((records[3].at, records[3].actor.as_str()), (at(4), ACTOR));
        assert_eq!(
            records[3].record,
            outcome("disable", 1, false, vec![failed("DisableKey", "KMSInternalException", "try again")])
        );
    }

    #[test]
    fn a_log_written_here_replays_in_the_runbook_engine() {
        let runbooks = Runbook::embedded().expect("embedded runbooks parse");
        let rb = runbooks.iter().find(|r| r.id == "kms-key-compromise").expect("the KMS runbook");
        let d = tempfile::tempdir().expect("tmp");
        let mut log = new_log(d.path());
        let disable = |replay: &Replay| {
            let plan = Incident::replay(rb, &replay.incident_records()).expect("replays").plan(at(30));
            plan.steps.into_iter().find(|s| s.id == "disable").expect("step").state
        };
        assert_eq!(disable(log.replay()), StepState::Pending);

        // The engine prepares the step; its intent goes through the log as it is.
        let incident = Incident::replay(rb, &log.replay().incident_records()).expect("replays");
        let input = StepInput { confirm: Some("drop-kyc-key".into()), ..StepInput::default() };
        let Ok(Work::Calls { attempt, ops }) = incident.prepare("disable", &input) else { panic!("disable has calls") };
        assert_eq!(ops, [op("DisableKey")]);
        let written = StepRecord::Intent { step: "disable".into(), attempt, ops };
        let entry = log.append(at(2), &written).expect("intent");
        // The entry's kind and body are the record's serde form, and read back as it.
        assert_eq!(serde_json::to_value(&written).expect("json"), json!({ "kind": entry.kind, "body": entry.body }));
        assert_eq!(Record::from_entry(&entry).expect("record"), Record::Step(written));
        let path = log.path().to_owned();
        drop(log); // a crash before the outcome

        // Read back from the file: the intent alone is an unknown outcome, for the log and the engine.
        let view = read(&path).expect("read");
        assert_eq!(view.replay.unknown_outcomes().len(), 1);
        assert_eq!(disable(&view.replay), StepState::Unknown { attempt: 1 });

        // Anchors and repairs are the log's own: the engine never sees them.
        let mut log = IncidentLog::open_for_write(d.path(), &id(), holder(10)).expect("open");
        let req = log.anchor_request();
        log.anchor(at(11), &req, KEY, SigningAlgorithm::EcdsaSha256, b"sig").expect("anchor");
        log.append(
            at(12),
            &StepRecord::Resolved {
                step: "disable".into(),
                attempt: 1,
                settled_done: false,
                observed: json!({ "KeyMetadata": { "KeyState": "Enabled" } }),
            },
        )
        .expect("resolve");
        log.append(at(13), &intent("disable", 2, &["DisableKey"])).expect("retry");
        log.append(at(14), &done("disable", 2, &["DisableKey"])).expect("outcome");
        drop(log);
        let view = read(&path).expect("read");
        assert_eq!(view.replay.records.len(), 6);
        assert_eq!(view.replay.incident_records().len(), 5, "the anchor is left out");
        assert_eq!(disable(&view.replay), StepState::Done { at: at(14) });
        let incident = Incident::replay(rb, &view.replay.incident_records()).expect("replays");
        assert_eq!(incident.opened(), view.replay.opened().expect("opened"));
    }

    #[test]
    fn a_second_opener_gets_a_read_only_view_and_who_holds_it() {
        let d = tempfile::tempdir().expect("tmp");
        let mut first = new_log(d.path());
        first.append(at(2), &intent("disable", 1, &["DisableKey"])).expect("w");

        // A second open file description in this process: flock refuses it as it would
        // refuse another process.
        let err = IncidentLog::open_for_write(d.path(), &id(), holder(5)).expect_err("locked");
        match &err {
            LogError::Locked { holder: Some(h), .. } => {
                assert_eq!((h.actor.as_str(), h.pid, h.since), (ACTOR, std::process::id(), at(0)));
            }
            other => panic!("expected Locked with a holder, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(ACTOR) && msg.contains(&format!("pid {}", std::process::id())), "{msg}");

        match IncidentLog::open(d.path(), &id(), holder(5)).expect("open") {
            Access::ReadOnly { view, held_by } => {
                assert_eq!(held_by.map(|h| h.since), Some(at(0)));
                assert_eq!(view.replay.records.len(), 2);
                assert_eq!(view.replay.unknown_outcomes().len(), 1, "the writer's intent shows as pending");
            }
            Access::Write(_) => panic!("two writers"),
        }
        drop(first);
        assert!(matches!(IncidentLog::open(d.path(), &id(), holder(6)), Ok(Access::Write(_))));
    }

    #[test]
    fn a_stale_lock_file_from_a_dead_process_does_not_block() {
        let d = tempfile::tempdir().expect("tmp");
        let path = five(d.path());
        let dead = Holder {
            actor: "arn:aws:sts::1:assumed-role/x/bob".into(),
            pid: 999_999,
            host: "gone".into(),
            since: at(0),
        };
        std::fs::write(lock_path(&path), serde_json::to_vec(&dead).expect("json")).expect("write");
        let log = IncidentLog::open_for_write(d.path(), &id(), holder(7)).expect("a leftover lock file is only a note");
        assert_eq!(read_holder(&path).map(|h| h.pid), Some(std::process::id()));
        assert_eq!(log.head().0, 5);
    }

    #[test]
    fn a_torn_tail_is_verified_apart_repaired_and_recorded() {
        let d = tempfile::tempdir().expect("tmp");
        let path = five(d.path());
        let committed = std::fs::metadata(&path).expect("meta").len();
        let partial = r#"{"seq":6,"at":"2026-11-18T07:33:26Z","kind":"step.int"#;
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(partial.as_bytes()).expect("write");
        drop(f);

        let r = verify(&path).expect("verify");
        assert_eq!(r.tampering, None, "{r}");
        assert_eq!(r.head, HeadCheck::Matches);
        let t = r.torn_tail.clone().expect("torn");
        assert_eq!((t.line, t.offset, t.bytes), (6, committed, partial.len() as u64));
        assert!(!r.is_intact());
        assert_eq!(read(&path).expect("readable").replay.records.len(), 5);

        let log = IncidentLog::open_for_write(d.path(), &id(), holder(10)).expect("repairs");
        let rep = log.repaired().cloned().expect("repaired");
        assert_eq!((rep.line, rep.offset, rep.dropped_bytes), (6, committed, partial.len() as u64));
        assert_eq!(rep.dropped_text, partial);
        assert_eq!(rep.dropped_sha256, hex(&Sha256::digest(partial.as_bytes())));
        drop(log);

        let r = verify(&path).expect("verify");
        assert!(r.is_intact() && r.head == HeadCheck::Matches, "{r}");
        let view = read(&path).expect("read");
        let last = view.replay.records.last().expect("record");
        assert_eq!((last.seq, last.at, &last.record), (6, at(10), &Record::Repaired(rep)));
        assert!(lines(&path)[5].starts_with(r#"{"seq":6,"at":"2026-11-18T11:06:50Z","kind":"log.repaired""#));
    }

    #[test]
    fn a_torn_line_that_had_been_committed_is_truncation_not_a_crash() {
        let d = tempfile::tempdir().expect("tmp");
        let path = five(d.path());
        let len = std::fs::metadata(&path).expect("meta").len();
        OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 10).expect("truncate");
        let r = verify(&path).expect("verify");
        assert!(r.torn_tail.is_some());
        let t = r.tampering.expect("tampering");
        assert_eq!((t.line, t.seq, t.problem), (Some(5), Some(5), LogProblem::Truncated { head_seq: 5, last_seq: 4 }));
        refused_for_writing(d.path());
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), len - 10, "nothing is repaired");
    }

    #[test]
    fn every_one_byte_edit_is_tampering_at_its_line() {
        let d = tempfile::tempdir().expect("tmp");
        let path = five(d.path());
        let original = std::fs::read(&path).expect("read");
        let mut line = 1;
        for i in 0..original.len() {
            let b = original[i];
            if b == b'\n' {
                line += 1;
                continue;
            }
            let mut edited = original.clone();
            edited[i] = match b {
                b'0' => b'1',
                b'1'..=b'9' => b'0',
                b'a'..=b'z' | b'A'..=b'Z' => b ^ 0x20,
                _ => b'x',
            };
            // What verify(path) does, on the edited bytes in memory (2 000 edits, fast).
            let r = assess(&path, &journal::scan_from(&edited[..]).expect("scan"), &read_head(&head_path(&path)));
            match &r.tampering {
                Some(Finding { line: Some(l), problem: LogProblem::Chain(_), .. }) if *l == line => {}
                _ => panic!("byte {i} ({:?}) on line {line}: {r}", b as char),
            }
        }
        assert!(verify(&path).expect("verify").is_intact());
        let mut edited = original;
        edited[40] = b'x';
        std::fs::write(&path, &edited).expect("write");
        assert_eq!(tampering(&path).line, Some(1));
    }

    #[test]
    fn each_kind_of_tampering_is_named_and_refused() {
        let d = tempfile::tempdir().expect("tmp");
        let path = five(d.path());
        let orig = lines(&path);
        let head = std::fs::read(head_path(&path)).expect("head");
        let check = |edited: Vec<String>, line: usize, seq: Option<u64>, problem: LogProblem| {
            write_lines(&path, &edited);
            let f = tampering(&path);
            assert_eq!(f, Finding { line: Some(line), seq, problem });
            assert_eq!(refused_for_writing(d.path()), f);
            write_lines(&path, &orig);
            std::fs::write(head_path(&path), &head).expect("head");
        };

        // Edited content.
        let mut e = orig.clone();
        e[1] = e[1].replace("DisableKey", "EnableKey");
        check(e, 2, Some(2), LogProblem::Chain(Problem::EditedContent));
        // A record deleted.
        let mut e = orig.clone();
        e.remove(2);
        check(e, 3, Some(4), LogProblem::Chain(Problem::MissingRecords { expected: 3, found: 4 }));
        // Two records swapped.
        let mut e = orig.clone();
        e.swap(2, 3);
        check(
            e,
            3,
            Some(4),
            LogProblem::Chain(Problem::Reordered { expected: 3, found: 4, expected_at_line: Some(4) }),
        );
        // A record repeated (the sequence goes backwards).
        let mut e = orig.clone();
        e.push(orig[2].clone());
        check(e, 6, Some(3), LogProblem::Chain(Problem::Duplicate));
        // A record with the right seq from another chain.
        let other = tempfile::tempdir().expect("tmp");
        let mut l =
            IncidentLog::create(other.path(), opened(id().as_str(), "another incident"), holder(0), at(1)).expect("c");
        l.append(at(2), &intent("disable", 1, &["DisableKey"])).expect("w");
        let mut e = orig.clone();
        e[1] = lines(l.path())[1].clone();
        check(e, 2, Some(2), LogProblem::Chain(Problem::PrevMismatch));
        // Whole records cut off the end, caught by the head file.
        check(orig[..3].to_vec(), 4, Some(4), LogProblem::Truncated { head_seq: 5, last_seq: 3 });
        // A complete line of garbage at the end is tampering, not a torn tail.
        let mut e = orig.clone();
        e.push("garbage".into());
        write_lines(&path, &e);
        let r = verify(&path).expect("verify");
        assert!(r.torn_tail.is_none());
        assert!(
            matches!(
                r.tampering,
                Some(Finding { line: Some(6), seq: None, problem: LogProblem::Chain(Problem::NotAnEntry(_)) })
            ),
            "{r}"
        );
        refused_for_writing(d.path());
        // So is an empty line.
        let mut e = orig.clone();
        e.insert(2, String::new());
        check(e, 3, None, LogProblem::Chain(Problem::EmptyLine));

        // The head file rewritten to another hash: the log no longer matches it.
        std::fs::write(head_path(&path), format!("{{\"seq\":4,\"hash\":\"{}\"}}\n", "ab".repeat(32))).expect("head");
        let f = tampering(&path);
        assert_eq!((f.line, f.seq, f.problem), (Some(4), Some(4), LogProblem::HeadMismatch { head_seq: 4 }));
        std::fs::write(head_path(&path), &head).expect("head");

        // What offline verify cannot see: truncation with the head file gone too.
        write_lines(&path, &orig[..3]);
        std::fs::remove_file(head_path(&path)).expect("rm");
        let r = verify(&path).expect("verify");
        assert_eq!((r.tampering, r.head), (None, HeadCheck::Absent));
    }

    #[test]
    fn an_intent_without_an_outcome_is_unknown_until_resolved() {
        let d = tempfile::tempdir().expect("tmp");
        let mut log = new_log(d.path());
        log.append(at(2), &intent("disable", 1, &["DisableKey"])).expect("w");
        log.append(at(3), &intent("revoke-grants", 1, &["RevokeGrant"])).expect("w");
        log.append(at(4), &done("revoke-grants", 1, &["RevokeGrant"])).expect("w");
        drop(log); // the console died between DisableKey's intent and its outcome

        let unknown = read(&log_path(d.path(), &id())).expect("read").replay.unknown_outcomes();
        assert_eq!(
            unknown,
            [UnknownOutcome { step: "disable".into(), attempt: 1, intent_seq: 2, ops: vec![op("DisableKey")] }]
        );
        let mut log = IncidentLog::open_for_write(d.path(), &id(), holder(20)).expect("open");
        assert_eq!(log.replay().unknown_outcomes(), unknown);
        // Not retried, skipped or given a late outcome for another attempt before it is settled.
        let refused = |r: Result<Entry, LogError>| matches!(r, Err(LogError::Refused { .. }));
        assert!(refused(log.append(at(21), &intent("disable", 2, &["DisableKey"]))));
        assert!(refused(log.append(at(21), &skipped("disable", "x"))));
        assert!(refused(log.append(at(21), &done("disable", 2, &["DisableKey"]))));
        let observed = json!({ "KeyMetadata": { "KeyState": "Enabled" } });
        let not_done = StepRecord::Resolved { step: "disable".into(), attempt: 1, settled_done: false, observed };
        log.append(at(22), &not_done).expect("resolve");
        assert!(log.replay().unknown_outcomes().is_empty());
        assert!(refused(log.append(at(22), &not_done)), "nothing left to resolve");
        log.append(at(23), &intent("disable", 2, &["DisableKey"])).expect("retry");
        assert_eq!(log.replay().unknown_outcomes().len(), 1);
        log.append(at(24), &done("disable", 2, &["DisableKey"])).expect("w");
        assert!(read(log.path()).expect("read").replay.unknown_outcomes().is_empty());
    }

    #[test]
    fn malformed_records_are_refused_and_not_written() {
        let d = tempfile::tempdir().expect("tmp");
        let mut log = new_log(d.path());
        let refused = |r: Result<Entry, LogError>| matches!(r, Err(LogError::Refused { .. }));
        let two = ["DisableKey", "DescribeKey"];
        assert!(refused(log.append(at(2), &done("disable", 1, &["DisableKey"]))), "no intent yet");
        assert!(refused(log.append(at(2), &intent("disable", 2, &["DisableKey"]))), "attempt 1 comes first");
        assert!(refused(log.append(at(2), &intent("disable", 1, &[]))), "no ops");
        assert!(refused(log.append(at(2), &intent("", 1, &["DisableKey"]))), "no step");
        assert!(
            refused(log.append(at(2), &StepRecord::Opened(Box::new(opened(id().as_str(), "again"))))),
            "opened twice"
        );
        log.append(at(2), &intent("disable", 1, &two)).expect("w");
        assert!(
            refused(log.append(at(3), &done("disable", 1, &["DisableKey", "DescribeKey", "DescribeKey"]))),
            "three results for two ops"
        );
        assert!(refused(log.append(at(3), &done("disable", 2, &two))), "wrong attempt");
        assert!(
            refused(log.append(at(3), &done("disable", 1, &["DescribeKey", "DisableKey"]))),
            "results out of order"
        );
        let mut o = done("disable", 1, &two);
        if let StepRecord::Outcome { results, .. } = &mut o {
            results[1].error_code = Some(EXPECTATION_NOT_MET.into());
            results[1].error = Some("KeyState is Enabled, expected Disabled".into());
        }
        assert!(refused(log.append(at(3), &o)), "ok with an error");
        assert!(refused(log.append(at(3), &done("disable", 1, &["DisableKey"]))), "ok with an op unanswered");
        let answered_only = outcome("disable", 1, false, vec![answered("DisableKey", 0)]);
        assert!(refused(log.append(at(3), &answered_only)), "not ok without an error");
        let after_failure = vec![failed("DisableKey", "KMSInternalException", "x"), answered("DescribeKey", 1)];
        assert!(refused(log.append(at(3), &outcome("disable", 1, false, after_failure))), "a result after a failure");
        assert!(refused(log.append(at(3), &acknowledged("disable", " "))), "an ack needs a note");
        let stale = log.anchor_request();
        let first_failed = outcome("disable", 1, false, vec![failed("DisableKey", "AccessDeniedException", "no")]);
        log.append(at(3), &first_failed).expect("one result: the second op was not called");
        assert!(refused(log.anchor(at(4), &stale, KEY, SigningAlgorithm::EcdsaSha256, b"sig")), "not the head");
        assert!(refused(log.append(at(4), &skipped("disable", " "))), "a skip needs a reason");
        let r = verify(log.path()).expect("verify");
        assert!(r.is_intact() && r.records == 3, "{r}");
    }

    #[test]
    fn appends_never_read_the_log() {
        let d = tempfile::tempdir().expect("tmp");
        let mut log = new_log(d.path());
        let scans = journal::scans_on_this_thread();
        for n in 0..50 {
            let step = format!("step-{n}");
            log.append(at(n), &intent(&step, 1, &["DisableKey"])).expect("w");
            log.append(at(n), &done(&step, 1, &["DisableKey"])).expect("w");
        }
        assert_eq!(journal::scans_on_this_thread(), scans, "100 appends, no scan");

        // And no re-verification: an edit made behind the writer's back is not noticed by
        // appending (verify finds it).
        let path = log.path().to_owned();
        let mut l = lines(&path);
        l[1] = l[1].replace("DisableKey", "EnableKe_");
        write_lines(&path, &l);
        log.append(at(999), &acknowledged("step-0", "done")).expect("append");
        assert_eq!(log.head().0, 102);
        let f = tampering(&path);
        assert_eq!((f.line, f.problem), (Some(2), LogProblem::Chain(Problem::EditedContent)));
    }

    #[test]
    fn anchors_sign_the_head_hash_and_come_back_with_the_bytes_to_verify() {
        let d = tempfile::tempdir().expect("tmp");
        let mut log = new_log(d.path());
        log.append(at(2), &intent("disable", 1, &["DisableKey"])).expect("w");
        let head = log.append(at(3), &done("disable", 1, &["DisableKey"])).expect("w");
        let req = log.anchor_request();
        assert_eq!((req.head_seq, req.head_hash.as_str()), (3, head.hash.as_str()));

        // The message is the SHA-256 the chain already computes for the head record:
        // prev hex, a newline, then the record's canonical JSON (seq, at, kind, actor, body).
        let canonical = format!(
            r#"{{"seq":3,"at":{},"kind":"step.outcome","actor":{},"body":{}}}"#,
            serde_json::to_string(&head.at).expect("json"),
            serde_json::to_string(ACTOR).expect("json"),
            serde_json::to_string(&head.body).expect("json"),
        );
        let mut h = Sha256::new();
        h.update(head.prev.as_bytes());
        h.update(b"\n");
        h.update(canonical.as_bytes());
        assert_eq!(req.message, <[u8; 32]>::from(h.finalize()));

        let sig = [0x30, 0x45, 0x02, 0x21, 0x00, 0xff];
        let a = log.anchor(at(4), &req, KEY, SigningAlgorithm::EcdsaSha256, &sig).expect("anchor");
        log.append(at(5), &acknowledged("disable", "anchored")).expect("w");
        assert!(a.body.to_string().contains(r#""signing_algorithm":"ECDSA_SHA_256""#));

        let checks = anchors_to_verify(log.path()).expect("anchors");
        assert_eq!(checks.len(), 1);
        let c = &checks[0];
        assert_eq!((c.anchor_seq, c.line, c.message, c.signature.as_slice()), (4, 4, req.message, &sig[..]));
        assert_eq!((c.anchor.key_arn.as_str(), c.anchor.signing_algorithm.as_str()), (KEY, "ECDSA_SHA_256"));
        assert_eq!(c.problem, None);
        assert_eq!(verify(log.path()).expect("verify").anchors, vec![4]);

        // An anchor that claims a hash the log does not have fails without asking KMS.
        let mut entries = journal::read(log.path()).expect("read");
        entries[3].body["head_hash"] = json!("00".repeat(32));
        assert!(anchor_checks(&entries)[0].problem.is_some());
    }

    #[test]
    fn signatures_round_trip_through_base64() {
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        for n in 0..70u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).as_deref(), Some(&bytes[..]));
        }
        for bad in ["Zm9", "Zm9vYg=", "Zm==Zm9v", "Zm9v!mFy", "Zm9vYh=="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
