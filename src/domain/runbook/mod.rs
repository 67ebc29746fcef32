//! Incident runbooks as data, and the pure engine that runs them.
//!
//! A runbook (`assets/runbooks/*.toml`, parsed by [`Runbook::parse`] with file:line:column
//! errors) is an ordered list of steps taken from the seed policy (004 §4.7, §10, §6). An
//! incident is a log of [`IncidentRecord`]s; [`Incident::replay`] folds the log into each
//! step's [`StepState`], and [`Incident::plan`] adds the next step, the exact AWS calls it
//! will make ([`Op`]s) and the incident's clocks. [`Incident::prepare`] and
//! [`Incident::may_skip`] say whether a step may run (or be skipped) now, and why not.
//!
//! Pure: no IO, no clock reads (`now` is passed in), no SDK types, and no secret values:
//! an op that creates a secret value only names the call that generates and stores it.
//!
//! Files: this one (the format and its validation), `op.rs` ([`Op`]), `record.rs` (the log
//! records), `engine.rs` (replay, plan, prepare), `tests.rs`.
//!
//! # Runbook format
//!
//! ```toml
//! [runbook]
//! id = "kms-key-compromise"       # kebab-case; incident.opened names it
//! title = "..."
//! target = "key"                  # "key" (a KMS key) or "secret" (a Secrets Manager secret)
//! source = "004 §4.7 ..."
//! containment = "disable"         # the step whose completion contains the incident
//!
//! [[deadlines]]                   # clocks shown with the plan
//! name = "containment"
//! within = "1h"                   # "30m", "72h", "2d"
//! from = "detected"               # "detected" (the detection time) or "opened"
//! until = "disable"               # met when this step is done
//! source = "004 §10 ..."
//!
//! [[steps]]
//! id = "disable"                  # kebab-case, unique: `keydeck incident run ID --step disable`
//! title = "..."
//! kind = "action"                 # "action" (changes AWS), "query" (reads AWS), "ack" (a note)
//! destructive = true              # actions only: the key alias / secret name is typed to confirm
//! note = true                     # needs an operator note (acks and acknowledged actions always do)
//! file = true                     # needs ciphertext files (steps with kms:ReEncrypt, and only they)
//! required = true                 # may be skipped only when every one of its dependencies was skipped
//! approval = "create-key"         # 004 §6 dual approval before it runs ("create-key", with one kms:CreateKey call)
//! depends_on = ["open"]           # earlier steps that must be done or skipped first
//! calls = [{ call = "kms:DisableKey" }]
//! source = "004 §4.7 step 3"      # the policy text the step comes from
//! explain = "..."                 # one short operator-facing paragraph
//! ```
//!
//! A call is `{ call = "service:Action", ... }` with, where they apply: `key = "target" |
//! "replacement"`; `when = "notify-topic" | "rotation-enabled" | "rotation-disabled" |
//! "symmetric-key"` (the call is left out otherwise); `expect` (checked against the
//! response, see [`Op::unmet_expectation`]); `policy = "quarantine" | "original"` for
//! kms:PutKeyPolicy; `lookback = "30d"` (before detection) or `since = "STEP"` (from that
//! dependency's successful attempt) for cloudtrail:LookupEvents. A step whose calls all
//! drop out (no topic, no grants, no aliases) is completed by an acknowledgement instead.
//! Deletion calls are rejected: 004 §6 gives ScheduleKeyDeletion dual approval and a
//! waiting period, so it is never a runbook step.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

mod engine;
mod op;
mod record;
#[cfg(test)]
mod tests;

pub use engine::{
    plan, Deadline, Incident, NextStep, Plan, Refusal, ReplayError, StepInput, StepState, StepStatus, Work,
};
pub use op::Op;
pub use record::{CallResult, IncidentRecord, IncidentTarget, KeyTarget, Opened, SecretTarget, StepRecord};

/// 004 §4.7 emergency revocation of a KMS key.
pub const KMS_KEY_COMPROMISE: &str = include_str!("../../../assets/runbooks/kms-key-compromise.toml");
/// 004 §4.7 JWT_SECRET emergency rotation.
pub const JWT_SECRET_COMPROMISE: &str = include_str!("../../../assets/runbooks/jwt-secret-compromise.toml");
/// The embedded runbooks as (name used in error messages, TOML text).
pub const EMBEDDED: [(&str, &str); 2] = [
    ("<embedded assets/runbooks/kms-key-compromise.toml>", KMS_KEY_COMPROMISE),
    ("<embedded assets/runbooks/jwt-secret-compromise.toml>", JWT_SECRET_COMPROMISE),
];

/// Error code an executor records for a call whose response failed the op's expectation.
pub const EXPECTATION_NOT_MET: &str = "keydeck.ExpectationNotMet";

/// Tag of a replacement key (kms-key-compromise, step create-key): the incident's id.
pub const TAG_INCIDENT: &str = "keydeck:incident";
/// Tag of a replacement key: the key id of the compromised key it replaces. The inventory
/// names a replaced key after its replacement by it.
pub const TAG_REPLACES: &str = "keydeck:replaces";

/// Calls a runbook may never make (004 §6: deletion needs dual approval and a waiting period).
const DELETIONS: &[&str] =
    &["kms:ScheduleKeyDeletion", "kms:DeleteAlias", "kms:DeleteImportedKeyMaterial", "secretsmanager:DeleteSecret"];

// ---- the runbook -------------------------------------------------------------------

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A KMS key.
    Key,
    /// A Secrets Manager secret.
    Secret,
}

/// How a step is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// AWS calls that change things (intent, then outcome).
    Action,
    /// AWS reads (intent, then outcome).
    Query,
    /// The operator acknowledges, with a note.
    Ack,
}

/// A 004 §6 operation that needs a second person's approval: the step's calls go through
/// a request in the approvals store and run under the approver's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    /// "Create new KMS key: drop-key-admin + CISO approval".
    CreateKey,
}

impl Approval {
    /// The operation's name in the policy's `[approvals]` matrix and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateKey => "create-key",
        }
    }
}

/// When a call applies (`when = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The incident names an SNS topic ([`Opened::notify_topic_arn`]).
    NotifyTopic,
    /// The secret has a rotation function (DescribeSecret RotationEnabled).
    RotationEnabled,
    RotationDisabled,
    /// The key is a symmetric encryption key (the only kind KMS rotates automatically).
    SymmetricKey,
}

/// Which key a KMS call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// The compromised key.
    Target,
    /// The key created by kms:CreateKey in this incident.
    Replacement,
}

/// The key policy a kms:PutKeyPolicy sets on the compromised key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyChoice {
    /// Only the operator's principal, and only to re-encrypt from and administer the key.
    Quarantine,
    /// The policy captured when the incident was opened.
    Original,
}

/// What a read call's response must show (`expect = ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// kms:DescribeKey: this KeyState ("Enabled", "Disabled", ...).
    KeyState(String),
    /// kms:ListGrants: `"none"`.
    NoGrants,
    /// kms:ListAliases: `"target-aliases"`, every alias the compromised key had.
    TargetAliases,
    /// secretsmanager:DescribeSecret: `"rotated"`, AWSCURRENT off the version current at
    /// opening and nothing pending.
    Rotated,
    /// secretsmanager:DescribeSecret: `"previous-staged-out"`, the version current at
    /// opening has no staging label.
    PreviousStagedOut,
}

/// The CloudTrail window of a cloudtrail:LookupEvents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// This many seconds before the detection time, until the call.
    Lookback(i64),
    /// From the intent of this dependency's successful attempt, until the call.
    Since(String),
}

/// The AWS calls a runbook can name. Each expands to [`Op`]s (see [`Incident::prepare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    DescribeKey,
    ListAliases,
    GetKeyPolicy,
    ListGrants,
    DisableKey,
    EnableKey,
    CreateKey,
    EnableKeyRotation,
    UpdateAlias,
    RevokeGrant,
    PutKeyPolicy,
    ReEncrypt,
    LookupEvents,
    Publish,
    DescribeSecret,
    RotateSecret,
    GenerateAndPutSecretValue,
    UpdateSecretVersionStage,
}

impl Call {
    pub const ALL: [Call; 18] = [
        Call::DescribeKey,
        Call::ListAliases,
        Call::GetKeyPolicy,
        Call::ListGrants,
        Call::DisableKey,
        Call::EnableKey,
        Call::CreateKey,
        Call::EnableKeyRotation,
        Call::UpdateAlias,
        Call::RevokeGrant,
        Call::PutKeyPolicy,
        Call::ReEncrypt,
        Call::LookupEvents,
        Call::Publish,
        Call::DescribeSecret,
        Call::RotateSecret,
        Call::GenerateAndPutSecretValue,
        Call::UpdateSecretVersionStage,
    ];

    /// The name used in runbooks, op JSON and call results: `service:Action`.
    pub fn name(self) -> &'static str {
        match self {
            Call::DescribeKey => "kms:DescribeKey",
            Call::ListAliases => "kms:ListAliases",
            Call::GetKeyPolicy => "kms:GetKeyPolicy",
            Call::ListGrants => "kms:ListGrants",
            Call::DisableKey => "kms:DisableKey",
            Call::EnableKey => "kms:EnableKey",
            Call::CreateKey => "kms:CreateKey",
            Call::EnableKeyRotation => "kms:EnableKeyRotation",
            Call::UpdateAlias => "kms:UpdateAlias",
            Call::RevokeGrant => "kms:RevokeGrant",
            Call::PutKeyPolicy => "kms:PutKeyPolicy",
            Call::ReEncrypt => "kms:ReEncrypt",
            Call::LookupEvents => "cloudtrail:LookupEvents",
            Call::Publish => "sns:Publish",
            Call::DescribeSecret => "secretsmanager:DescribeSecret",
            Call::RotateSecret => "secretsmanager:RotateSecret",
            Call::GenerateAndPutSecretValue => "secretsmanager:GetRandomPassword+PutSecretValue",
            Call::UpdateSecretVersionStage => "secretsmanager:UpdateSecretVersionStage",
        }
    }

    /// Whether the call changes AWS state or writes output (then only action steps make it).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Call::DescribeKey
                | Call::ListAliases
                | Call::GetKeyPolicy
                | Call::ListGrants
                | Call::LookupEvents
                | Call::DescribeSecret
        )
    }

    /// The kind of target the call acts on; `None`: any.
    pub fn target(self) -> Option<TargetKind> {
        match self {
            Call::LookupEvents | Call::Publish => None,
            Call::DescribeSecret
            | Call::RotateSecret
            | Call::GenerateAndPutSecretValue
            | Call::UpdateSecretVersionStage => Some(TargetKind::Secret),
            _ => Some(TargetKind::Key),
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// One call of a step, with its qualifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRule {
    pub call: Call,
    pub key: KeyRef,
    pub when: Option<Condition>,
    pub expect: Option<Expect>,
    /// kms:PutKeyPolicy only (required there).
    pub policy: Option<PolicyChoice>,
    /// cloudtrail:LookupEvents only (required there).
    pub window: Option<Window>,
}

/// One step of a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Stable kebab-case id, used on the command line.
    pub id: String,
    pub title: String,
    pub kind: StepKind,
    /// An action whose calls need the target's name typed to confirm.
    pub destructive: bool,
    /// Needs an operator note even when it makes calls.
    pub note: bool,
    /// Needs ciphertext files (kms:ReEncrypt).
    pub file: bool,
    /// May be skipped only when every one of its dependencies was skipped.
    pub required: bool,
    pub approval: Option<Approval>,
    /// Earlier steps that must be done or skipped first.
    pub depends_on: Vec<String>,
    pub calls: Vec<CallRule>,
    /// The policy text it comes from, e.g. "004 §4.7 step 3".
    pub source: String,
    pub explain: String,
}

/// Where a deadline's clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStart {
    /// [`Opened::detected_at`].
    Detected,
    /// The time of the incident.opened record.
    Opened,
}

/// A clock of the runbook: `until` must be done `within_secs` of `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineRule {
    pub name: String,
    pub within_secs: i64,
    pub from: ClockStart,
    pub until: String,
    pub source: String,
}

/// A validated runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runbook {
    pub id: String,
    pub title: String,
    pub target: TargetKind,
    pub source: String,
    /// The step that contains the incident (time to containment = open → this step done).
    pub containment: String,
    pub deadlines: Vec<DeadlineRule>,
    /// In order. The first is an ack completed by the incident.opened record itself.
    pub steps: Vec<Step>,
}

/// A runbook error with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for RunbookError {}

// ---- raw TOML shape ----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    runbook: RawHeader,
    #[serde(default)]
    deadlines: Vec<RawDeadline>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    id: Spanned<String>,
    title: String,
    target: Spanned<String>,
    #[serde(default)]
    source: String,
    containment: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadline {
    name: Spanned<String>,
    within: Spanned<String>,
    from: Spanned<String>,
    until: Spanned<String>,
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    title: String,
    kind: Spanned<String>,
    destructive: Option<Spanned<bool>>,
    #[serde(default)]
    note: bool,
    file: Option<Spanned<bool>>,
    #[serde(default)]
    required: bool,
    approval: Option<Spanned<String>>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    calls: Vec<RawCall>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    explain: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall {
    call: Spanned<String>,
    key: Option<Spanned<String>>,
    when: Option<Spanned<String>>,
    expect: Option<Spanned<String>>,
    policy: Option<Spanned<String>>,
    lookback: Option<Spanned<String>>,
    since: Option<Spanned<String>>,
}

// ---- parsing and validation ----------------------------------------------------------

struct Src<'a> {
    file: &'a str,
    text: &'a str,
}

impl Src<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> RunbookError {
        let (line, column) = line_col(self.text, span.start);
        RunbookError { file: self.file.to_owned(), line, column, message: message.into() }
    }

    fn secs(&self, s: &Spanned<String>, what: &str) -> Result<i64, RunbookError> {
        parse_secs(s.get_ref()).ok_or_else(|| {
            self.err(
                s.span(),
                format!(
                    "bad duration {:?} for {what}: write whole minutes, hours or days, e.g. \"30m\", \"72h\", \"30d\"",
                    s.get_ref()
                ),
            )
        })
    }
}

/// 1-based line and column (in characters) of a byte offset (as policy.rs counts them).
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset.min(src.len())).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// Seconds in `"30m"`, `"72h"` or `"30d"` (1 minute to 366 days).
fn parse_secs(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let unit = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.parse::<i64>().ok()?.checked_mul(unit).filter(|s| (60..=366 * 86_400).contains(s))
}

fn is_kebab(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.split('-').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

impl Runbook {
    /// The embedded runbooks, parsed.
    pub fn embedded() -> Result<Vec<Runbook>, RunbookError> {
        EMBEDDED.iter().map(|(name, src)| Self::parse(name, src)).collect()
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Parse and validate a runbook's text. `file` is only used in error messages.
    ///
    /// Rejected (each at the offending value): TOML errors and unknown fields; an unknown
    /// target, kind, call, qualifier, condition, approval or expectation; deletion calls;
    /// step ids that are not kebab-case or repeat; dependencies on unknown, later or the
    /// same steps; destructive or approval-gated steps that are not actions; acks with
    /// calls; queries with calls that change things; actions without one; `file` without
    /// kms:ReEncrypt (and the reverse); a first step that is not a dependency-free ack;
    /// a missing `source` or `explain`; deadlines and containment naming unknown steps.
    pub fn parse(file: &str, text: &str) -> Result<Self, RunbookError> {
        let src = Src { file, text };
        let raw: RawRunbook =
            toml::from_str(text).map_err(|e| src.err(e.span().unwrap_or(0..0), e.message().trim()))?;
        let h = &raw.runbook;
        if !is_kebab(h.id.get_ref()) {
            return Err(src.err(h.id.span(), format!("runbook id {:?} must be kebab-case", h.id.get_ref())));
        }
        let target = match h.target.get_ref().as_str() {
            "key" => TargetKind::Key,
            "secret" => TargetKind::Secret,
            other => return Err(src.err(h.target.span(), format!("unknown target {other:?}: use key or secret"))),
        };
        let mut steps: Vec<Step> = Vec::new();
        for (i, s) in raw.steps.iter().enumerate() {
            let step = parse_step(&src, s, &steps, &raw.steps[i + 1..], target)?;
            if i == 0 && (step.kind != StepKind::Ack || !step.depends_on.is_empty()) {
                return Err(src.err(
                    s.id.span(),
                    "the first step is completed by incident.opened: make it an ack without depends_on",
                ));
            }
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(src.err(h.id.span(), "a runbook needs at least one [[steps]]"));
        }
        let known = |s: &Spanned<String>, what: &str| -> Result<String, RunbookError> {
            match steps.iter().any(|st| &st.id == s.get_ref()) {
                true => Ok(s.get_ref().clone()),
                false => Err(src.err(s.span(), format!("{what} names unknown step {:?}", s.get_ref()))),
            }
        };
        let containment = known(&h.containment, "containment")?;
        let mut deadlines: Vec<DeadlineRule> = Vec::new();
        for d in &raw.deadlines {
            if deadlines.iter().any(|x| &x.name == d.name.get_ref()) {
                return Err(src.err(d.name.span(), format!("duplicate deadline {:?}", d.name.get_ref())));
            }
            let from = match d.from.get_ref().as_str() {
                "detected" => ClockStart::Detected,
                "opened" => ClockStart::Opened,
                other => {
                    return Err(src.err(d.from.span(), format!("unknown clock start {other:?}: use detected or opened")))
                }
            };
            deadlines.push(DeadlineRule {
                name: d.name.get_ref().clone(),
                within_secs: src.secs(&d.within, "within")?,
                from,
                until: known(&d.until, "until")?,
                source: d.source.clone(),
            });
        }
        Ok(Self {
            id: h.id.get_ref().clone(),
            title: h.title.clone(),
            target,
            source: h.source.clone(),
            containment,
            deadlines,
            steps,
        })
    }
}

fn parse_step(
    src: &Src<'_>,
    s: &RawStep,
    earlier: &[Step],
    later: &[RawStep],
    target: TargetKind,
) -> Result<Step, RunbookError> {
    let id = s.id.get_ref();
    if !is_kebab(id) {
        return Err(src.err(s.id.span(), format!("step id {id:?} must be kebab-case (a-z, 0-9, single dashes)")));
    }
    if earlier.iter().any(|e| &e.id == id) {
        return Err(src.err(s.id.span(), format!("duplicate step id {id:?}")));
    }
    let kind = match s.kind.get_ref().as_str() {
        "action" => StepKind::Action,
        "query" => StepKind::Query,
        "ack" => StepKind::Ack,
        other => return Err(src.err(s.kind.span(), format!("unknown step kind {other:?}: use action, query or ack"))),
    };
    if s.source.trim().is_empty() || s.explain.trim().is_empty() {
        return Err(src.err(s.id.span(), format!("step {id:?} needs `source` (the policy text) and `explain`")));
    }
    let mut depends_on = Vec::new();
    for d in &s.depends_on {
        let name = d.get_ref();
        if name == id {
            return Err(src.err(d.span(), format!("step {id:?} depends on itself")));
        }
        if !earlier.iter().any(|e| &e.id == name) {
            let why = match later.iter().any(|l| l.id.get_ref() == name) {
                true => format!("step {id:?} depends on {name:?}, a later step: dependencies must come earlier"),
                false => format!("step {id:?} depends on unknown step {name:?}"),
            };
            return Err(src.err(d.span(), why));
        }
        depends_on.push(name.clone());
    }
    let destructive = s.destructive.as_ref().is_some_and(|d| *d.get_ref());
    if let Some(d) = s.destructive.as_ref().filter(|d| *d.get_ref() && kind != StepKind::Action) {
        return Err(
            src.err(d.span(), "only an action can be destructive: confirmation guards AWS calls that change things")
        );
    }
    let approval = match &s.approval {
        None => None,
        Some(a) if kind != StepKind::Action => {
            return Err(src.err(a.span(), "only an action can need approval"));
        }
        Some(a) => Some(match a.get_ref().as_str() {
            "create-key" if s.calls.len() == 1 && s.calls[0].call.get_ref() == "kms:CreateKey" => Approval::CreateKey,
            "create-key" => {
                return Err(src.err(a.span(), "approval create-key gates exactly one call, kms:CreateKey"));
            }
            other => return Err(src.err(a.span(), format!("unknown approval {other:?}: use create-key"))),
        }),
    };
    let mut calls = Vec::new();
    for c in &s.calls {
        let rule = parse_call(src, c, target, &depends_on)?;
        match kind {
            StepKind::Ack => return Err(src.err(c.call.span(), "an ack step makes no AWS calls")),
            StepKind::Query if rule.call.writes() => {
                return Err(src.err(
                    c.call.span(),
                    format!("{} changes things: a query step only reads (make the step an action)", rule.call.name()),
                ))
            }
            _ => {}
        }
        calls.push(rule);
    }
    match kind {
        StepKind::Action if !calls.iter().any(|c| c.call.writes()) => {
            return Err(src.err(s.kind.span(), format!("action step {id:?} needs a call that changes things")));
        }
        StepKind::Query if calls.is_empty() => {
            return Err(src.err(s.kind.span(), format!("query step {id:?} needs calls")));
        }
        _ => {}
    }
    let file = s.file.as_ref().is_some_and(|f| *f.get_ref());
    let reencrypts = calls.iter().any(|c| c.call == Call::ReEncrypt);
    if let Some(f) = s.file.as_ref().filter(|_| file && !reencrypts) {
        return Err(src.err(f.span(), "`file` is for steps with kms:ReEncrypt (the ciphertexts to re-encrypt)"));
    }
    if reencrypts && !file {
        return Err(src.err(s.id.span(), format!("step {id:?} calls kms:ReEncrypt: add `file = true`")));
    }
    Ok(Step {
        id: id.clone(),
        title: s.title.clone(),
        kind,
        destructive,
        note: s.note,
        file,
        required: s.required,
        approval,
        depends_on,
        calls,
        source: s.source.clone(),
        explain: s.explain.clone(),
    })
}

fn parse_call(src: &Src<'_>, c: &RawCall, target: TargetKind, deps: &[String]) -> Result<CallRule, RunbookError> {
    let name = c.call.get_ref().as_str();
    let call = Call::from_name(name).ok_or_else(|| match DELETIONS.contains(&name) {
        true => src.err(
            c.call.span(),
            format!("{name}: runbooks never delete; 004 §6 gives deletion dual approval and a waiting period"),
        ),
        false => {
            let all = Call::ALL.map(Call::name).join(", ");
            src.err(c.call.span(), format!("unknown call {name:?}: use one of {all}"))
        }
    })?;
    if let Some(t) = call.target().filter(|t| *t != target) {
        return Err(src.err(c.call.span(), format!("{name} acts on a {t:?}, this runbook's target is a {target:?}")));
    }
    let not_for = |f: &Spanned<String>, what: &str| src.err(f.span(), format!("`{what}` does not apply to {name}"));
    let key = match &c.key {
        None => KeyRef::Target,
        Some(k)
            if !matches!(
                call,
                Call::DescribeKey
                    | Call::ListAliases
                    | Call::GetKeyPolicy
                    | Call::ListGrants
                    | Call::DisableKey
                    | Call::EnableKey
                    | Call::EnableKeyRotation
            ) =>
        {
            return Err(not_for(k, "key"))
        }
        Some(k) => match k.get_ref().as_str() {
            "target" => KeyRef::Target,
            "replacement" => KeyRef::Replacement,
            other => return Err(src.err(k.span(), format!("unknown key {other:?}: use target or replacement"))),
        },
    };
    let when = match &c.when {
        None => None,
        Some(w) => {
            let (cond, fits) = match w.get_ref().as_str() {
                "notify-topic" => (Condition::NotifyTopic, true),
                "rotation-enabled" => (Condition::RotationEnabled, target == TargetKind::Secret),
                "rotation-disabled" => (Condition::RotationDisabled, target == TargetKind::Secret),
                "symmetric-key" => (Condition::SymmetricKey, target == TargetKind::Key),
                other => {
                    return Err(src.err(
                        w.span(),
                        format!("unknown condition {other:?}: use notify-topic, rotation-enabled, rotation-disabled or symmetric-key"),
                    ))
                }
            };
            if !fits {
                return Err(src.err(w.span(), format!("condition {:?} does not apply to a {target:?}", w.get_ref())));
            }
            Some(cond)
        }
    };
    let expect = match &c.expect {
        None => None,
        Some(e) => Some(match (call, e.get_ref().as_str()) {
            (Call::DescribeKey, s @ ("Enabled" | "Disabled" | "PendingDeletion")) => Expect::KeyState(s.to_owned()),
            (Call::ListGrants, "none") => Expect::NoGrants,
            (Call::ListAliases, "target-aliases") => Expect::TargetAliases,
            (Call::DescribeSecret, "rotated") => Expect::Rotated,
            (Call::DescribeSecret, "previous-staged-out") => Expect::PreviousStagedOut,
            (Call::DescribeKey | Call::ListGrants | Call::ListAliases | Call::DescribeSecret, other) => {
                return Err(src.err(e.span(), format!("unknown expectation {other:?} for {name}")))
            }
            _ => return Err(not_for(e, "expect")),
        }),
    };
    let policy = match (&c.policy, call) {
        (None, Call::PutKeyPolicy) => {
            return Err(src.err(c.call.span(), "kms:PutKeyPolicy needs policy = \"quarantine\" or \"original\""))
        }
        (None, _) => None,
        (Some(p), Call::PutKeyPolicy) => Some(match p.get_ref().as_str() {
            "quarantine" => PolicyChoice::Quarantine,
            "original" => PolicyChoice::Original,
            other => return Err(src.err(p.span(), format!("unknown policy {other:?}: use quarantine or original"))),
        }),
        (Some(p), _) => return Err(not_for(p, "policy")),
    };
    let window = match (&c.lookback, &c.since, call) {
        (Some(l), None, Call::LookupEvents) => Some(Window::Lookback(src.secs(l, "lookback")?)),
        (None, Some(s), Call::LookupEvents) if deps.contains(s.get_ref()) => Some(Window::Since(s.get_ref().clone())),
        (None, Some(s), Call::LookupEvents) => {
            return Err(src.err(s.span(), format!("since {:?}: name one of this step's depends_on", s.get_ref())))
        }
        (_, _, Call::LookupEvents) => {
            return Err(src.err(c.call.span(), "cloudtrail:LookupEvents needs exactly one of `lookback` or `since`"))
        }
        (Some(f), _, _) => return Err(not_for(f, "lookback")),
        (None, Some(f), _) => return Err(not_for(f, "since")),
        (None, None, _) => None,
    };
    Ok(CallRule { call, key, when, expect, policy, window })
}
