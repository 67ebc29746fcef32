//! Messages into the update loop and actions out of it.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use std::collections::HashMap;

use crate::domain::inventory::{Fetched, Inventory, KeyItem, KeyPolicySummary, SecretItem};
use crate::domain::review::ReviewRecord;
use crate::domain::runbook::{IncidentRecord, Runbook};
use std::sync::Arc;

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    /// The rows a list view showed in the frame just drawn (the drawing measures them).
    ListRows {
        view: super::state::View,
        rows: usize,
    },
    /// How many rows the open detail pane or incident step panel can scroll (its
    /// wrapped lines beyond its height) in the frame just drawn; caps J/K.
    PaneRows {
        max: u16,
    },
    /// The clock, once a second; the only way the app learns the time.
    Tick(DateTime<Utc>),
    /// The last inventory saved in the data dir, drawn at once and marked stale.
    CacheLoaded(Inventory),
    /// A full inventory fetch finished (problems are inside it, per region).
    InventoryLoaded(Inventory),
    /// A key policy read on demand for the detail pane.
    KeyPolicyLoaded {
        arn: String,
        summary: Fetched<KeyPolicySummary>,
    },
    /// The last saved review of this account, read from the journal at start.
    LastReviewLoaded(Option<ReviewRecord>),
    /// A review was written to the journal (and fsynced), or why not.
    ReviewSaved(Result<ReviewRecord, String>),
    /// One CloudTrail poll of one region.
    TrailPolled(PollResult),
    /// A poll failed (throttling never gets here: it is retried with backoff).
    FeedProblem(String),
    /// Keys re-read after the feed saw them change; `gone` no longer exist.
    KeysReread {
        region: String,
        items: Vec<KeyItem>,
        gone: Vec<String>,
        problems: Vec<String>,
    },
    /// Secrets re-read after the feed saw them change.
    SecretsReread {
        region: String,
        items: Vec<SecretItem>,
        gone: Vec<String>,
        problems: Vec<String>,
    },
    /// Acknowledgements read from the journal at start (alert id → who).
    AcksLoaded(HashMap<String, String>),
    /// An acknowledgement was written to the journal (alert id, who), or why not.
    AckSaved(Result<(String, String), String>),
    /// The incident as its log now stands (opened, resumed, or a record written);
    /// `held_by`: another console holds it (this one can only read).
    IncidentLoaded {
        id: String,
        runbook: Arc<Runbook>,
        records: Vec<IncidentRecord>,
        held_by: Option<String>,
    },
    /// An incident action finished: what it did (one line), or why not.
    IncidentDone(Result<String, String>),
    /// This data dir's open incidents, newest first.
    IncidentsOpen(Vec<super::state::OpenIncident>),
    /// How many more unfinished incidents the data dir holds whose key or secret these
    /// credentials and Regions do not find (another account or Region, a reseeded sandbox).
    IncidentsElsewhere(usize),
    /// The approval store as listed for this operator, or why not (one line).
    ApprovalsLoaded(Result<crate::domain::approval::Listing, String>),
    /// The target key of a request, read for the approval dialog.
    ApprovalTargetRead {
        arn: String,
        read: super::approvals::TargetRead,
    },
    /// A propose, approve, reject or withdraw finished: what happened (one line), or
    /// why not (`NotYet`: CloudTrail has not attested the proposer; try again).
    ApprovalDone(Result<String, String>),
}

/// Something the runtime must do (AWS work runs in tasks and answers with a `Msg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RefreshInventory,
    FetchKeyPolicy {
        region: String,
        key_id: String,
        arn: String,
    },
    SaveReview(Box<ReviewRecord>),
    RereadKeys {
        region: String,
        key_ids: Vec<String>,
    },
    RereadSecrets {
        region: String,
        secret_ids: Vec<String>,
    },
    SaveAck {
        alert_id: String,
        actor: String,
        summary: String,
    },
    /// Open an incident on a key (alias, id, ARN) or a secret (name, ARN).
    IncidentStart {
        target: String,
        secret: bool,
        reason: String,
        alert: Option<String>,
    },
    /// Run one step of the incident with the operator's input.
    IncidentRun {
        id: String,
        step: String,
        note: Option<String>,
        confirm: Option<String>,
        files: Vec<String>,
    },
    IncidentSkip {
        id: String,
        step: String,
        reason: String,
    },
    /// Show incident `id` in view 5 (held for writing with `--allow-write`, letting go of
    /// the one shown before).
    IncidentShow {
        id: String,
    },
    /// List the approval store now (the approvals task also lists it on its timer).
    LoadApprovals,
    /// Read a request's target key (state, aliases, rotation) for the approval dialog.
    ReadApprovalTarget {
        arn: String,
    },
    /// Propose an on-demand rotation (`rotate-key`, kms:RotateKeyOnDemand) of a key.
    ApprovalPropose {
        key_arn: String,
        reason: String,
    },
    /// Approve a request, typed alias `confirm`; it runs under this operator's credentials.
    ApprovalApprove {
        id: String,
        confirm: String,
    },
    ApprovalReject {
        id: String,
        reason: String,
    },
    ApprovalWithdraw {
        id: String,
    },
}

/// What a poll produced.
#[derive(Debug, Clone)]
pub struct PollResult {
    pub region: String,
    /// (EventId, CloudTrailEvent JSON), possibly with duplicates of earlier polls.
    pub records: Vec<(String, String)>,
    /// Calls made (for the operator's cost view and the benchmark).
    pub calls: usize,
    /// Throttled calls that were retried after a backoff (never shown as errors).
    pub throttled: usize,
    /// The poll's window end: the next poll starts `overlap` before it.
    pub until: DateTime<Utc>,
    /// When the poll finished (local clock), for "polled at" displays.
    pub finished: DateTime<Utc>,
}
