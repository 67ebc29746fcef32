//! Everything the console knows. `ui` draws it; only `update` changes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::assessment::{assess, AssessedItem, Assessment};
use crate::domain::identity::CallerIdentity;
use crate::domain::inventory::{Fetched, Inventory, KeyItem, KeyPolicySummary, SecretItem};
use crate::domain::policy::Policy;
use crate::domain::review::{changes_since, Change, ReviewRecord};
use crate::domain::runbook::{Incident, IncidentRecord, Plan, Refusal, Runbook, StepInput, StepRecord, Work};
use crate::domain::scope::Scope;

/// The console's views (number keys and the `:` palette switch between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Inventory,
    Feed,
    Alerts,
    Session,
    Incident,
    Approvals,
}

impl View {
    pub const ALL: [View; 6] =
        [View::Inventory, View::Feed, View::Alerts, View::Session, View::Incident, View::Approvals];

    pub fn title(self) -> &'static str {
        match self {
            View::Inventory => "Inventory",
            View::Feed => "Feed",
            View::Alerts => "Alerts",
            View::Session => "Session",
            View::Incident => "Incident",
            View::Approvals => "Approvals",
        }
    }
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Editing the `/` filter of the current view (`State::filter` or `FeedState::filter`).
    Filter,
    /// Typing a `:` command.
    Palette(String),
    Help,
    /// Typing the note for marking the selected item reviewed.
    Note(String),
    /// Answering an incident prompt (a reason, a note, a file, or the typed alias of a
    /// destructive step).
    Prompt(Prompt),
    /// An approvals prompt or dialog (approve, reject, withdraw, propose).
    Approval(super::approvals::ApprovalPrompt),
}

/// What an incident prompt is for. Esc cancels; a destructive step runs only when the
/// typed text is exactly the expected alias (Cancel is the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptFor {
    /// Opening an incident on a key or secret: the reason.
    StartReason { target: String, label: String, secret: bool, alert: Option<String> },
    /// The note a step needs.
    Note { step: String },
    /// The ciphertext file a re-encryption needs.
    File { step: String, note: Option<String> },
    /// Why a step is skipped.
    SkipReason { step: String },
    /// The confirmation of a step that changes AWS, with the exact calls it will make:
    /// `expected` is the key alias (or secret name) a destructive step needs typed; without
    /// it, `y` runs the step and any other key cancels.
    Confirm { step: String, expected: Option<String>, calls: Vec<String>, note: Option<String>, files: Vec<String> },
}

impl PromptFor {
    /// Is it about a step of the incident on screen (not opening a new incident)?
    pub fn is_incident_step(&self) -> bool {
        !matches!(self, PromptFor::StartReason { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub purpose: PromptFor,
    pub text: String,
}

/// The incident on screen: the engine's plan (re-read after every record), the log's
/// last lines, and the step under the cursor.
#[derive(Debug, Clone)]
pub struct IncidentState {
    pub id: String,
    pub runbook: Arc<Runbook>,
    /// The log's step records, oldest first (anchors and repairs left out).
    pub records: Vec<IncidentRecord>,
    /// The engine's plan, recomputed from `records` when they change and every minute.
    pub plan: Plan,
    /// Who holds the incident when this console can only read it.
    pub held_by: Option<String>,
    /// The step being carried out now.
    pub running: Option<String>,
    pub cursor: usize,
}

impl IncidentState {
    /// Build from the log's records; `None` when the log cannot be replayed.
    pub fn new(id: String, runbook: Arc<Runbook>, records: Vec<IncidentRecord>, now: DateTime<Utc>) -> Option<Self> {
        let plan = crate::domain::runbook::plan(&runbook, &records, now).ok()?;
        Some(Self { id, runbook, records, plan, held_by: None, running: None, cursor: 0 })
    }

    /// The confirmation text of destructive steps: the key's first alias, or the secret's name.
    pub fn confirm_text(&self) -> String {
        self.opened().map(|o| o.target.confirm_text().to_owned()).unwrap_or_default()
    }

    pub fn opened(&self) -> Option<&crate::domain::runbook::Opened> {
        self.records.iter().find_map(|r| match &r.record {
            StepRecord::Opened(o) => Some(o.as_ref()),
            _ => None,
        })
    }

    /// The scope step's report, from its last successful LookupEvents result.
    pub fn scope(&self) -> Option<Scope> {
        self.scope_of("scope")
    }

    /// The CloudTrail report of `step` (scope: 30 days before detection; verify: the calls
    /// on the old key since the disable), from its last successful LookupEvents result.
    pub fn scope_of(&self, wanted: &str) -> Option<Scope> {
        self.records.iter().rev().find_map(|r| match &r.record {
            StepRecord::Outcome { step, ok: true, results, .. } if step == wanted => results
                .iter()
                .find(|c| c.call == "cloudtrail:LookupEvents")
                .and_then(|c| c.fields.get("Scope"))
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            _ => None,
        })
    }

    /// The step under the cursor.
    pub fn selected(&self) -> Option<&crate::domain::runbook::StepStatus> {
        self.plan.steps.get(self.cursor)
    }

    /// What running `step` now would do, with every input given (`note` or a placeholder,
    /// the alias, `files` or a placeholder, `principal`): its calls, an acknowledgement, or
    /// the refusals no input answers (done, blocked, waiting for approval …). `None` when
    /// the log does not replay.
    pub fn preview(
        &self,
        step: &str,
        note: Option<String>,
        files: &[String],
        principal: &str,
    ) -> Option<Result<Work, Vec<Refusal>>> {
        let input = self.preview_input(step, note, files, principal);
        Incident::replay(&self.runbook, &self.records).ok().map(|i| i.prepare(step, &input))
    }

    /// What `step` would do once it may run (its calls, or an acknowledgement when it has
    /// none to make), whatever its state now: what its panel says Enter will ask.
    pub fn preview_work(&self, step: &str, principal: &str) -> Option<Result<Work, Refusal>> {
        let input = self.preview_input(step, None, &[], principal);
        Incident::replay(&self.runbook, &self.records).ok().and_then(|i| i.work_of(step, &input))
    }

    fn preview_input(&self, step: &str, note: Option<String>, files: &[String], principal: &str) -> StepInput {
        let needs_file = self.runbook.step(step).is_some_and(|m| m.file);
        StepInput {
            note: note.or_else(|| Some("(preview)".into())),
            confirm: Some(self.confirm_text()),
            files: if files.is_empty() && needs_file { vec!["FILE".into()] } else { files.to_vec() },
            principal_arn: Some(principal.to_owned()),
        }
    }
}

/// An incident of this data dir with steps still to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub id: String,
    /// The key's or secret's ARN.
    pub target_arn: String,
    /// The key's first alias, or the secret's name.
    pub label: String,
}

impl OpenIncident {
    /// Is it about `target` (an ARN, an alias with or without `alias/`, a secret name)?
    pub fn is_on(&self, target: &str) -> bool {
        target == self.target_arn || target.trim_start_matches("alias/") == self.label
    }
}

/// Who and where the console acts; fixed for the life of the console.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub identity: CallerIdentity,
    pub regions: Vec<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
    pub write_enabled: bool,
    pub policy_name: String,
    pub data_dir: String,
    pub log_file: String,
}

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// The item under the cursor, with its raw inventory record.
pub enum Selected<'a> {
    Key(&'a AssessedItem, &'a KeyItem),
    Secret(&'a AssessedItem, &'a SecretItem),
}

#[derive(Debug)]
pub struct State {
    pub session: Session,
    pub policy: Arc<Policy>,
    pub view: View,
    pub mode: Mode,
    pub inventory: Option<Inventory>,
    /// The inventory judged against the policy at `assessment.at`.
    pub assessment: Assessment,
    /// The inventory on screen came from the cache and the live refresh has not landed.
    pub stale: bool,
    pub loading: bool,
    pub filter: String,
    pub show_aws_managed: bool,
    pub detail_open: bool,
    /// Rows the open detail pane (inventory, feed) or the incident's step panel is
    /// scrolled down by (J/K); back to 0 when the selection or the view changes.
    pub pane_scroll: u16,
    /// How far that pane can scroll, as last drawn (`Msg::PaneRows`).
    pub pane_max: u16,
    /// Review mode: the reviewer marks items reviewed (item id → note) and saves.
    pub review_mode: bool,
    pub review_marks: BTreeMap<String, String>,
    pub last_review: Option<ReviewRecord>,
    /// What changed since `last_review` (recomputed with the assessment).
    pub review_changes: Vec<Change>,
    /// The CloudTrail feed, its detections and alerts.
    pub feed: super::feed::FeedState,
    /// Key policies read on demand, by key ARN.
    pub key_policies: HashMap<String, Fetched<KeyPolicySummary>>,
    /// Index into the current rows; kept on the same item across refreshes via `selected_id`.
    pub cursor: usize,
    pub selected_id: Option<String>,
    pub status: Option<Status>,
    /// When `status` was set (the clock of the last tick).
    pub status_since: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub last_request: Option<DateTime<Utc>>,
    pub refresh_every: Duration,
    pub size: (u16, u16),
    pub color: bool,
    pub quit: bool,
    /// The inventory table's first row on screen (kept across redraws and refreshes).
    pub offset: usize,
    /// Rows each list showed when last drawn (measured by `ui::draw`, for paging).
    pub page_rows: PageRows,
    /// The incident this console works on (started here or resumed).
    pub incident: Option<IncidentState>,
    /// This data dir's open incidents, newest first, as the incident task last listed
    /// them (`[` / `]` switch between them in view 5).
    pub open_incidents: Vec<OpenIncident>,
    /// An incident asked for (`[`, `]`, `i` on a key with one) that has not loaded yet:
    /// until it shows, no key acts on an incident, so nothing runs on the one leaving.
    pub incident_pending: Option<String>,
    /// Unfinished incidents of the data dir whose target is not found here (not shown).
    pub incidents_elsewhere: usize,
    /// Dual-approval requests (issue 11).
    pub approvals: super::approvals::ApprovalsState,
}

/// The rows each list view shows, as the last draw measured them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRows {
    pub inventory: usize,
    pub feed: usize,
    pub alerts: usize,
}

impl Default for PageRows {
    fn default() -> Self {
        Self { inventory: 10, feed: 10, alerts: 10 }
    }
}

impl State {
    pub fn new(session: Session, policy: Arc<Policy>, now: DateTime<Utc>, color: bool) -> Self {
        Self {
            session,
            feed: super::feed::FeedState::new(super::feed::DEFAULT_FEED_CAPACITY, &policy),
            policy,
            view: View::Inventory,
            mode: Mode::Normal,
            inventory: None,
            assessment: Assessment::default(),
            stale: false,
            loading: false,
            filter: String::new(),
            show_aws_managed: false,
            detail_open: false,
            pane_scroll: 0,
            pane_max: 0,
            review_mode: false,
            review_marks: BTreeMap::new(),
            last_review: None,
            review_changes: Vec::new(),
            key_policies: HashMap::new(),
            cursor: 0,
            selected_id: None,
            status: None,
            status_since: now,
            now,
            last_request: None,
            refresh_every: Duration::from_secs(60),
            size: (80, 24),
            color,
            quit: false,
            offset: 0,
            page_rows: PageRows::default(),
            incident: None,
            open_incidents: Vec::new(),
            incident_pending: None,
            incidents_elsewhere: 0,
            approvals: Default::default(),
        }
    }

    /// Judge the inventory again (new data, or time moved on).
    pub fn reassess(&mut self) {
        if let Some(inv) = &self.inventory {
            self.assessment = assess(inv, &self.policy, self.now, &self.session.regions);
            self.feed.keys = crate::domain::detect::KeyIndex::from_inventory(inv, &self.policy);
        }
        self.review_changes = match &self.last_review {
            Some(r) if self.inventory.is_some() => changes_since(r, &self.assessment),
            _ => Vec::new(),
        };
    }

    /// The change since the last review for an item, if any.
    pub fn change_for(&self, id: &str) -> Option<&Change> {
        self.review_changes.iter().find(|c| c.id() == id)
    }

    /// The rows the inventory view shows: sorted by severity then name, filtered.
    pub fn rows(&self) -> Vec<&AssessedItem> {
        self.assessment
            .items
            .iter()
            .filter(|i| self.show_aws_managed || !i.aws_managed)
            .filter(|i| i.matches(&self.filter))
            .collect()
    }

    /// The item under the cursor.
    pub fn selected(&self) -> Option<Selected<'_>> {
        let id = self.selected_id.as_deref()?;
        let item = self.assessment.item(id)?;
        let inv = self.inventory.as_ref()?;
        if let Some(k) = inv.keys().find(|k| k.arn == id) {
            return Some(Selected::Key(item, k));
        }
        inv.secrets().find(|s| s.arn == id).map(|s| Selected::Secret(item, s))
    }

    /// Seconds since the inventory was fetched.
    pub fn refreshed_secs_ago(&self) -> Option<i64> {
        let at = self.inventory.as_ref()?.fetched_at?;
        Some((self.now - at).num_seconds().max(0))
    }
}
