//! The engine: replay an incident's log against its runbook; each step's state, the next
//! step's exact calls, the clocks; whether a step may run or be skipped now.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::op::strings_at;
use super::*;

/// Error codes after which the same call may simply be tried again.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "InternalServiceError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    EXPECTATION_NOT_MET,
];

/// The actions the quarantine key policy allows its one principal (re-encrypt from the key
/// and administer it; no Decrypt, no grants).
const QUARANTINE_ACTIONS: &[&str] = &[
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:ReEncryptFrom",
];

/// A step's state, from the log (and, for Pending/Blocked, its dependencies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    /// Ready to run: dependencies done or skipped, nothing logged yet.
    Pending,
    /// These dependencies are neither done nor skipped.
    Blocked {
        by: Vec<String>,
    },
    /// 004 §6: request `request_id` is in the approvals store, not yet carried out or
    /// ended; `confirm` is what its approver types (the target's alias).
    WaitingForApproval {
        request_id: String,
        confirm: String,
    },
    /// The last request ended without the operation (rejected, withdrawn, expired,
    /// failed): ready to be requested again.
    ApprovalEnded {
        request_id: String,
        /// `rejected`, `withdrawn`, `expired`, `failed`.
        outcome: String,
        by: Option<String>,
        reason: String,
    },
    /// An intent without outcome: running, if the live process owns this attempt, else
    /// unknown after a restart and to be settled by observing AWS (the app knows which).
    Unknown {
        attempt: u32,
    },
    Done {
        at: DateTime<Utc>,
    },
    /// AWS answered with an error (or the response failed an expectation). `retryable`:
    /// every error code is one after which the same call may succeed if simply tried again.
    Failed {
        attempt: u32,
        error: String,
        retryable: bool,
    },
    Skipped {
        reason: String,
    },
}

impl StepState {
    /// `waiting for approval: request ID (approve with `keydeck --allow-write approvals
    /// approve ID --confirm ALIAS`)`.
    pub fn waiting_text(request_id: &str, confirm: &str) -> String {
        format!(
            "waiting for approval: request {request_id} (approve with `keydeck --allow-write approvals approve {request_id} --confirm {}`)",
            crate::domain::text::inert(confirm)
        )
    }

    /// A dual-approval state in the operator's words, with what to do next (`None` for
    /// the other states): `waiting for approval: request ID (…)`, `request ID rejected by
    /// WHO: REASON — Enter/run requests it again`. Text from the store and AWS is made inert.
    pub fn approval_text(&self) -> Option<String> {
        use crate::domain::text::inert;
        match self {
            Self::WaitingForApproval { request_id, confirm } => Some(Self::waiting_text(request_id, confirm)),
            Self::ApprovalEnded { request_id, outcome, by, reason } => {
                let by = by.as_deref().map(|b| format!(" by {}", inert(b))).unwrap_or_default();
                Some(format!("request {request_id} {outcome}{by}: {}; run it to request again", inert(reason)))
            }
            _ => None,
        }
    }
}

/// What the operator supplies to run a step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepInput {
    pub note: Option<String>,
    /// The typed confirmation of a destructive step ([`IncidentTarget::confirm_text`]).
    pub confirm: Option<String>,
    /// Ciphertext files for kms:ReEncrypt, one CiphertextBlob each.
    pub files: Vec<String>,
    /// The caller's IAM principal ARN as a key policy names it (a user or role ARN):
    /// the one principal of the quarantine key policy.
    pub principal_arn: Option<String>,
}

/// How a step is carried out now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "work", rename_all = "snake_case")]
pub enum Work {
    /// Write `step.intent` with these, make the calls in order (stop at the first failure
    /// or unmet expectation), write `step.outcome`.
    Calls { attempt: u32, ops: Vec<Op> },
    /// Write `step.acknowledged` with the note: an ack step, or one whose calls all drop out.
    Acknowledge,
}

/// Why a step may not run (or be skipped) now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    UnknownStep {
        step: String,
    },
    AlreadyDone,
    AlreadySkipped,
    /// Attempt `attempt` has no outcome: settle it (observe AWS) before anything else.
    OutcomeUnknown {
        attempt: u32,
    },
    Blocked {
        by: Vec<String>,
    },
    /// 004 §6: these ops go through a request in the approvals store first
    /// (`approval.requested`, then the store's request).
    NeedsApproval {
        approval: Approval,
        ops: Vec<Op>,
    },
    /// Request `request_id` is open: its approver carries it out.
    WaitingForApproval {
        approval: Approval,
        request_id: String,
        ops: Vec<Op>,
    },
    NeedsNote,
    /// Type this to confirm.
    NeedsConfirmation {
        expected: String,
    },
    ConfirmationMismatch {
        expected: String,
    },
    NeedsFile,
    NeedsPrincipal,
    /// Something an earlier step should have learned is not in the log.
    MissingFact {
        what: String,
    },
    NeedsReason,
    /// A required step may be skipped only when every one of its dependencies was skipped.
    Required,
}

impl Refusal {
    /// Is it the operator's input that is missing or wrong (a step id, a note, the typed
    /// name, a file, a reason), rather than the runbook or the incident's state saying no?
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::UnknownStep { .. }
                | Self::NeedsNote
                | Self::NeedsConfirmation { .. }
                | Self::ConfirmationMismatch { .. }
                | Self::NeedsFile
                | Self::NeedsPrincipal
                | Self::NeedsReason
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownStep { step } => write!(f, "no step {step:?} in this runbook"),
            Self::AlreadyDone => f.write_str("already done"),
            Self::AlreadySkipped => f.write_str("already skipped"),
            Self::OutcomeUnknown { attempt } => {
                write!(f, "attempt {attempt} has no outcome: settle it by checking AWS before anything else")
            }
            Self::Blocked { by } => write!(f, "waits for {}", by.join(", ")),
            Self::NeedsApproval { approval, .. } => {
                write!(f, "needs dual approval ({}, 004 §6): running it proposes the request", approval.name())
            }
            Self::WaitingForApproval { request_id, .. } => {
                write!(f, "waiting for approval: request {request_id} (keydeck approvals approve {request_id})")
            }
            Self::NeedsNote => f.write_str("needs a note"),
            Self::NeedsConfirmation { expected } => write!(f, "destructive: type {expected} to confirm"),
            Self::ConfirmationMismatch { expected } => write!(f, "confirmation does not match: type {expected}"),
            Self::NeedsFile => f.write_str("needs the ciphertext files to re-encrypt"),
            Self::NeedsPrincipal => f.write_str("needs the caller's IAM principal ARN for the quarantine policy"),
            Self::MissingFact { what } => f.write_str(what),
            Self::NeedsReason => f.write_str("a skip needs a reason"),
            Self::Required => f.write_str("required: may be skipped only when every step it depends on was skipped"),
        }
    }
}

/// A clock of the incident. Times in UTC; `remaining_secs` is `due` minus the time the
/// `until` step was done (or `now` while it is not): negative means late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub name: String,
    pub from: ClockStart,
    pub until: String,
    pub due: DateTime<Utc>,
    pub met_at: Option<DateTime<Utc>>,
    pub remaining_secs: i64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepStatus {
    pub id: String,
    pub title: String,
    pub state: StepState,
    /// Attempts made (intents written).
    pub attempts: u32,
}

/// The next step and its exact calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextStep {
    pub step: String,
    /// The calls it would make now (or that it is an acknowledgement), or what the calls
    /// still depend on (files, principal, an earlier step's result).
    pub work: Result<Work, Refusal>,
    /// What [`Incident::prepare`] says with no operator input (note, confirmation, ...).
    pub refusals: Vec<Refusal>,
}

/// The state of an incident at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub incident_id: String,
    pub runbook: String,
    /// What the incident is about, as the operator names it: the key's alias at opening
    /// (else its key id), or the secret's name.
    pub target: String,
    /// The key's or secret's ARN.
    pub target_arn: String,
    pub opened_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    /// Seconds from opening to `now`.
    pub elapsed_secs: i64,
    /// Seconds from opening to the containment step's completion.
    pub time_to_containment_secs: Option<i64>,
    pub deadlines: Vec<Deadline>,
    pub steps: Vec<StepStatus>,
    /// The first step, in runbook order, that is pending, waiting for approval, failed
    /// or unknown; `None` when every step is done or skipped (or blocked).
    pub next: Option<NextStep>,
    /// Records that did not fit the log and were ignored; the key left enabled by a step.
    pub warnings: Vec<String>,
}

/// Why a log cannot be replayed against a runbook at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError(pub String);

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayError {}

/// The log's verdict on one step.
#[derive(Debug, Clone, Default)]
enum Logged {
    #[default]
    Nothing,
    InFlight(u32),
    Done(DateTime<Utc>),
    Failed {
        attempt: u32,
        error: String,
        retryable: bool,
    },
    Skipped(String),
}

#[derive(Debug, Clone, Default)]
enum ApprovalLog {
    #[default]
    None,
    Requested {
        request_id: String,
        ops: Vec<Op>,
    },
    Ended {
        request_id: String,
        outcome: String,
        by: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
struct StepLog {
    /// Intent time and ops of each attempt (index attempt - 1).
    intents: Vec<(DateTime<Utc>, Vec<Op>)>,
    /// Intent time of the attempt that succeeded.
    done_intent_at: Option<DateTime<Utc>>,
    logged: Logged,
    approval: ApprovalLog,
}

/// What earlier calls learned.
#[derive(Debug, Clone, Default)]
struct Facts {
    /// The ARN of the key kms:CreateKey made.
    replacement: Option<String>,
    /// Grant ids from the latest kms:ListGrants on the compromised key.
    grants: Option<Vec<String>>,
    /// Aliases (without `alias/`) kms:ListAliases found on the compromised key.
    aliases: BTreeSet<String>,
    /// The compromised key was enabled by this step at this time, and not disabled since.
    target_enabled: Option<(String, DateTime<Utc>)>,
}

impl Facts {
    fn learn(&mut self, target_arn: &str, step: &str, at: DateTime<Utc>, op: &Op, fields: &Value) {
        match op {
            Op::CreateKey { .. } => {
                if let Some(arn) = fields.pointer("/KeyMetadata/Arn").and_then(Value::as_str) {
                    self.replacement = Some(arn.to_owned());
                }
            }
            Op::ListGrants { key_id, .. } if key_id == target_arn => {
                self.grants = Some(strings_at(fields, "Grants", "GrantId"));
            }
            Op::ListAliases { key_id, .. } if key_id == target_arn => {
                let found = strings_at(fields, "Aliases", "AliasName");
                self.aliases.extend(found.iter().map(|a| a.trim_start_matches("alias/").to_owned()));
            }
            Op::EnableKey { key_id } if key_id == target_arn => self.target_enabled = Some((step.to_owned(), at)),
            Op::DisableKey { key_id } if key_id == target_arn => self.target_enabled = None,
            _ => {}
        }
    }
}

/// An incident replayed from its log.
#[derive(Debug, Clone)]
pub struct Incident<'r> {
    runbook: &'r Runbook,
    opened: Opened,
    opened_at: DateTime<Utc>,
    opened_by: String,
    logs: Vec<StepLog>,
    facts: Facts,
    warnings: Vec<String>,
}

/// Replay `records` against `runbook` and plan at `now` (see [`Incident::plan`]).
pub fn plan(runbook: &Runbook, records: &[IncidentRecord], now: DateTime<Utc>) -> Result<Plan, ReplayError> {
    Ok(Incident::replay(runbook, records)?.plan(now))
}

fn is_retryable(code: Option<&str>) -> bool {
    code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
}

/// A failed attempt: each error as `call: code: message`; retryable when every code is.
fn failure(attempt: u32, results: &[CallResult]) -> Logged {
    let errs: Vec<&CallResult> = results.iter().filter(|x| x.error.is_some()).collect();
    let error = (errs.iter())
        .map(|x| {
            format!("{}: {}: {}", x.call, x.error_code.as_deref().unwrap_or("error"), x.error.as_deref().unwrap_or(""))
        })
        .collect::<Vec<_>>()
        .join("; ");
    Logged::Failed {
        attempt,
        retryable: !errs.is_empty() && errs.iter().all(|x| is_retryable(x.error_code.as_deref())),
        error: if error.is_empty() { "failed without an error message".into() } else { error },
    }
}

/// A ClientRequestToken (UUID-shaped, 36 characters) derived from the incident, step and
/// attempt: a resent attempt is idempotent, a new attempt is a new version.
pub(super) fn request_token(incident: &str, step: &str, attempt: u32) -> String {
    let h: String = Sha256::digest(format!("{incident}/{step}/{attempt}").as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

impl<'r> Incident<'r> {
    /// Fold the log. The first record must be `incident.opened` for this runbook and a
    /// target of its kind (else [`ReplayError`]). Later records that do not fit (unknown
    /// step, an outcome without its intent, a second opening, ...) are ignored with a
    /// warning rather than refused: an operator mid-incident must still see the plan.
    pub fn replay(runbook: &'r Runbook, records: &[IncidentRecord]) -> Result<Self, ReplayError> {
        let Some((first, rest)) = records.split_first() else {
            return Err(ReplayError("the incident log is empty".into()));
        };
        let StepRecord::Opened(opened) = &first.record else {
            return Err(ReplayError(format!(
                "the incident log starts with {}, not incident.opened",
                first.record.kind()
            )));
        };
        if opened.runbook != runbook.id {
            return Err(ReplayError(format!(
                "the incident follows runbook {:?}, not {:?}",
                opened.runbook, runbook.id
            )));
        }
        if opened.target.kind() != runbook.target {
            return Err(ReplayError(format!(
                "runbook {:?} is for a {:?}, the incident's target is a {:?}",
                runbook.id,
                runbook.target,
                opened.target.kind()
            )));
        }
        let mut inc = Self {
            runbook,
            opened: (**opened).clone(),
            opened_at: first.at,
            opened_by: first.actor.clone(),
            logs: vec![StepLog::default(); runbook.steps.len()],
            facts: Facts::default(),
            warnings: Vec::new(),
        };
        inc.logs[0].logged = Logged::Done(first.at);
        for (i, r) in rest.iter().enumerate() {
            if let Err(why) = inc.apply(r) {
                inc.warnings.push(format!("record {} ({}): {why}; ignored", i + 2, r.record.kind()));
            }
        }
        Ok(inc)
    }

    fn apply(&mut self, r: &IncidentRecord) -> Result<(), String> {
        let step = r.record.step().ok_or("the incident is already open")?;
        let i = self.runbook.index(step).ok_or_else(|| format!("no step {step:?} in runbook {}", self.runbook.id))?;
        let target_arn = self.opened.target.arn().to_owned();
        let log = &mut self.logs[i];
        let open_attempt = |log: &StepLog, attempt: u32| match log.logged {
            Logged::InFlight(a) if a == attempt => Ok(log.intents[a as usize - 1].clone()),
            _ => Err(format!("attempt {attempt} of {step} has no intent awaiting an outcome")),
        };
        match &r.record {
            StepRecord::Opened(_) => return Err("the incident is already open".into()),
            StepRecord::Intent { attempt, ops, .. } => {
                match log.logged {
                    Logged::Done(_) | Logged::Skipped(_) => return Err(format!("{step} is already settled")),
                    Logged::InFlight(a) => return Err(format!("attempt {a} of {step} has no outcome yet")),
                    _ if *attempt as usize != log.intents.len() + 1 => {
                        return Err(format!("attempt {attempt} of {step} after {} attempts", log.intents.len()))
                    }
                    _ => {}
                }
                log.intents.push((r.at, ops.clone()));
                log.logged = Logged::InFlight(*attempt);
            }
            StepRecord::Outcome { attempt, ok, results, .. } => {
                let (intent_at, ops) = open_attempt(log, *attempt)?;
                for (op, res) in ops.iter().zip(results).filter(|(_, res)| res.error.is_none()) {
                    self.facts.learn(&target_arn, step, r.at, op, &res.fields);
                }
                log.logged = match ok {
                    true => {
                        log.done_intent_at = Some(intent_at);
                        Logged::Done(r.at)
                    }
                    false => failure(*attempt, results),
                };
            }
            StepRecord::Resolved { attempt, settled_done, observed, .. } => {
                let (intent_at, ops) = open_attempt(log, *attempt)?;
                if *settled_done {
                    for op in &ops {
                        if matches!(op, Op::CreateKey { .. } | Op::EnableKey { .. } | Op::DisableKey { .. }) {
                            self.facts.learn(&target_arn, step, r.at, op, observed);
                        }
                    }
                    log.logged = Logged::Done(r.at);
                    log.done_intent_at = Some(intent_at);
                } else {
                    log.logged = Logged::Failed {
                        attempt: *attempt,
                        error: "observed in AWS: the calls did not take effect".into(),
                        retryable: true,
                    };
                }
            }
            StepRecord::Skipped { reason, .. } => match log.logged {
                Logged::Done(_) | Logged::InFlight(_) => return Err(format!("{step} cannot be skipped now")),
                _ => log.logged = Logged::Skipped(reason.clone()),
            },
            StepRecord::Acknowledged { .. } => match log.logged {
                Logged::Done(_) | Logged::InFlight(_) | Logged::Skipped(_) => {
                    return Err(format!("{step} cannot be acknowledged now"))
                }
                _ => log.logged = Logged::Done(r.at),
            },
            StepRecord::ApprovalRequested { ops, request_id, .. } => match (&log.logged, &log.approval) {
                (Logged::Done(_) | Logged::Skipped(_) | Logged::InFlight(_), _) => {
                    return Err(format!("{step} is not waiting to be requested"))
                }
                (_, ApprovalLog::Requested { request_id: open, .. }) => {
                    return Err(format!("request {open} of {step} is still open"))
                }
                _ => log.approval = ApprovalLog::Requested { request_id: request_id.clone(), ops: ops.clone() },
            },
            StepRecord::ApprovalExecuted { request_id, results, .. } => match &log.approval {
                ApprovalLog::Requested { request_id: open, ops } if open == request_id => {
                    for (op, res) in ops.iter().zip(results).filter(|(_, res)| res.error.is_none()) {
                        self.facts.learn(&target_arn, step, r.at, op, &res.fields);
                    }
                    log.done_intent_at = Some(r.at);
                    log.logged = Logged::Done(r.at);
                }
                _ => return Err(format!("request {request_id} is not the open request of {step}")),
            },
            StepRecord::ApprovalEnded { request_id, state, by, reason, .. } => match &log.approval {
                ApprovalLog::Requested { request_id: open, .. } if open == request_id => {
                    log.approval = ApprovalLog::Ended {
                        request_id: request_id.clone(),
                        outcome: state.clone(),
                        by: by.clone(),
                        reason: reason.clone(),
                    }
                }
                _ => return Err(format!("request {request_id} is not the open request of {step}")),
            },
        }
        Ok(())
    }

    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    fn settled(&self, id: &str) -> bool {
        self.runbook.index(id).is_some_and(|i| matches!(self.logs[i].logged, Logged::Done(_) | Logged::Skipped(_)))
    }

    fn done_at(&self, id: &str) -> Option<DateTime<Utc>> {
        match self.runbook.index(id).map(|i| &self.logs[i].logged) {
            Some(Logged::Done(at)) => Some(*at),
            _ => None,
        }
    }

    /// The state of the step at index `i`.
    fn state(&self, i: usize) -> StepState {
        let log = &self.logs[i];
        match &log.logged {
            Logged::Done(at) => StepState::Done { at: *at },
            Logged::Skipped(reason) => StepState::Skipped { reason: reason.clone() },
            Logged::InFlight(attempt) => StepState::Unknown { attempt: *attempt },
            Logged::Failed { attempt, error, retryable } => {
                StepState::Failed { attempt: *attempt, error: error.clone(), retryable: *retryable }
            }
            Logged::Nothing => {
                let by: Vec<String> =
                    self.runbook.steps[i].depends_on.iter().filter(|d| !self.settled(d)).cloned().collect();
                match (by.is_empty(), &log.approval) {
                    (false, _) => StepState::Blocked { by },
                    (true, ApprovalLog::Requested { request_id, .. }) => StepState::WaitingForApproval {
                        request_id: request_id.clone(),
                        confirm: self.opened.target.confirm_text().to_owned(),
                    },
                    (true, ApprovalLog::Ended { request_id, outcome, by, reason }) => StepState::ApprovalEnded {
                        request_id: request_id.clone(),
                        outcome: outcome.clone(),
                        by: by.clone(),
                        reason: reason.clone(),
                    },
                    (true, ApprovalLog::None) => StepState::Pending,
                }
            }
        }
    }

    /// Each step's state, the next step with its calls, and the clocks at `now`.
    pub fn plan(&self, now: DateTime<Utc>) -> Plan {
        let steps: Vec<StepStatus> = (self.runbook.steps.iter().zip(&self.logs).enumerate())
            .map(|(i, (s, log))| StepStatus {
                id: s.id.clone(),
                title: s.title.clone(),
                state: self.state(i),
                attempts: log.intents.len() as u32,
            })
            .collect();
        let next = steps
            .iter()
            .enumerate()
            .find(|(_, s)| {
                matches!(
                    s.state,
                    StepState::Pending
                        | StepState::WaitingForApproval { .. }
                        | StepState::ApprovalEnded { .. }
                        | StepState::Unknown { .. }
                        | StepState::Failed { .. }
                )
            })
            .map(|(i, s)| NextStep {
                step: s.id.clone(),
                // An unknown outcome shows the calls whose fate is unknown.
                work: match s.state {
                    StepState::Unknown { attempt } => {
                        Ok(Work::Calls { attempt, ops: self.logs[i].intents[attempt as usize - 1].1.clone() })
                    }
                    _ => self.work(i, &StepInput::default()),
                },
                refusals: self.prepare(&s.id, &StepInput::default()).err().unwrap_or_default(),
            });
        let deadlines = self
            .runbook
            .deadlines
            .iter()
            .map(|d| {
                let start = match d.from {
                    ClockStart::Detected => self.opened.detected_at,
                    ClockStart::Opened => self.opened_at,
                };
                let due = start + Duration::seconds(d.within_secs);
                let met_at = self.done_at(&d.until);
                Deadline {
                    name: d.name.clone(),
                    from: d.from,
                    until: d.until.clone(),
                    due,
                    met_at,
                    remaining_secs: (due - met_at.unwrap_or(now)).num_seconds(),
                    source: d.source.clone(),
                }
            })
            .collect();
        let mut warnings = self.warnings.clone();
        if let Some((step, at)) = &self.facts.target_enabled {
            warnings.push(format!(
                "the compromised key was enabled by {step} at {} and is not disabled again",
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        Plan {
            incident_id: self.opened.incident_id.clone(),
            runbook: self.runbook.id.clone(),
            target: self.opened.target.confirm_text().to_owned(),
            target_arn: self.opened.target.arn().to_owned(),
            opened_at: self.opened_at,
            detected_at: self.opened.detected_at,
            elapsed_secs: (now - self.opened_at).num_seconds(),
            time_to_containment_secs: self
                .done_at(&self.runbook.containment)
                .map(|t| (t - self.opened_at).num_seconds()),
            deadlines,
            steps,
            next,
            warnings,
        }
    }

    /// Whether `step` may run now with `input`, and how: every reason it may not, or the
    /// work to do. Refused: unknown, done, skipped or unknown-outcome steps; unmet
    /// dependencies; a missing, pending or denied approval (004 §6), or one for other ops;
    /// missing files, principal or earlier results; a missing note (acknowledgements and
    /// `note = true`); a missing or wrong confirmation of a destructive step's calls.
    /// A failed step may run again (its next attempt), retryable or not.
    pub fn prepare(&self, step: &str, input: &StepInput) -> Result<Work, Vec<Refusal>> {
        let Some(i) = self.runbook.index(step) else {
            return Err(vec![Refusal::UnknownStep { step: step.to_owned() }]);
        };
        let s = &self.runbook.steps[i];
        match self.state(i) {
            StepState::Done { .. } => return Err(vec![Refusal::AlreadyDone]),
            StepState::Skipped { .. } => return Err(vec![Refusal::AlreadySkipped]),
            StepState::Unknown { attempt } => return Err(vec![Refusal::OutcomeUnknown { attempt }]),
            StepState::Blocked { by } => return Err(vec![Refusal::Blocked { by }]),
            _ => {}
        }
        let mut refusals = Vec::new();
        let work = self.work(i, input);
        // 004 §6: the approver carries the calls out under their own credentials; this
        // step only requests them and then records what the approver's calls made.
        if let (Ok(Work::Calls { ops, .. }), Some(approval)) = (&work, s.approval) {
            match &self.logs[i].approval {
                ApprovalLog::None | ApprovalLog::Ended { .. } => {
                    refusals.push(Refusal::NeedsApproval { approval, ops: ops.clone() })
                }
                ApprovalLog::Requested { request_id, ops } => refusals.push(Refusal::WaitingForApproval {
                    approval,
                    request_id: request_id.clone(),
                    ops: ops.clone(),
                }),
            }
        }
        let acknowledge = matches!(work, Ok(Work::Acknowledge));
        if (s.note || acknowledge) && input.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
            refusals.push(Refusal::NeedsNote);
        }
        if s.destructive && !acknowledge {
            let expected = self.opened.target.confirm_text().to_owned();
            match input.confirm.as_deref().map(str::trim) {
                None | Some("") => refusals.push(Refusal::NeedsConfirmation { expected }),
                Some(typed) if typed != expected => refusals.push(Refusal::ConfirmationMismatch { expected }),
                Some(_) => {}
            }
        }
        match work {
            Ok(w) if refusals.is_empty() => Ok(w),
            Ok(_) => Err(refusals),
            Err(r) => {
                refusals.insert(0, r);
                Err(refusals)
            }
        }
    }

    /// Whether `step` may be skipped with `reason`: not when done, already skipped or
    /// with an unknown outcome, not without a reason, and a `required` step only when
    /// every one of its dependencies was skipped.
    pub fn may_skip(&self, step: &str, reason: &str) -> Result<(), Vec<Refusal>> {
        let Some(i) = self.runbook.index(step) else {
            return Err(vec![Refusal::UnknownStep { step: step.to_owned() }]);
        };
        let mut refusals = match &self.logs[i].logged {
            Logged::Done(_) => vec![Refusal::AlreadyDone],
            Logged::Skipped(_) => vec![Refusal::AlreadySkipped],
            Logged::InFlight(attempt) => vec![Refusal::OutcomeUnknown { attempt: *attempt }],
            _ => vec![],
        };
        if reason.trim().is_empty() {
            refusals.push(Refusal::NeedsReason);
        }
        let s = &self.runbook.steps[i];
        // Every dependency, not one: end-quarantine depends on quarantine and re-encrypt,
        // and a skipped re-encryption after a quarantine that ran leaves it required.
        let dependencies_skipped = s
            .depends_on
            .iter()
            .all(|d| self.runbook.index(d).is_some_and(|j| matches!(self.logs[j].logged, Logged::Skipped(_))));
        if s.required && !dependencies_skipped {
            refusals.push(Refusal::Required);
        }
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(refusals)
        }
    }

    /// What `step` would do with `input`, whatever its state (blocked, done …): its calls,
    /// an acknowledgement when none applies, or what it cannot be expanded without. `None`
    /// for a step not in the runbook. [`Self::prepare`] says whether it may run now.
    pub fn work_of(&self, step: &str, input: &StepInput) -> Option<Result<Work, Refusal>> {
        self.runbook.index(step).map(|i| self.work(i, input))
    }

    /// The work of step `i` now: its calls expanded against the target and what earlier
    /// calls learned, or an acknowledgement when none applies.
    fn work(&self, i: usize, input: &StepInput) -> Result<Work, Refusal> {
        let step = &self.runbook.steps[i];
        let attempt = self.logs[i].intents.len() as u32 + 1;
        let mut ops = Vec::new();
        for rule in step.calls.iter().filter(|r| r.when.is_none_or(|c| self.holds(c))) {
            ops.extend(self.expand(step, rule, attempt, input)?);
        }
        Ok(if ops.is_empty() { Work::Acknowledge } else { Work::Calls { attempt, ops } })
    }

    fn holds(&self, c: Condition) -> bool {
        match (c, &self.opened.target) {
            (Condition::NotifyTopic, _) => self.opened.notify_topic_arn.is_some(),
            (Condition::RotationEnabled, IncidentTarget::Secret(s)) => s.rotation_enabled,
            (Condition::RotationDisabled, IncidentTarget::Secret(s)) => !s.rotation_enabled,
            (Condition::SymmetricKey, IncidentTarget::Key(k)) => k.key_spec == "SYMMETRIC_DEFAULT",
            _ => false,
        }
    }

    fn expand(&self, step: &Step, rule: &CallRule, attempt: u32, input: &StepInput) -> Result<Vec<Op>, Refusal> {
        let missing = |what: &str| Refusal::MissingFact { what: what.to_owned() };
        let target = &self.opened.target;
        let key = || match target {
            IncidentTarget::Key(k) => Ok(k),
            IncidentTarget::Secret(_) => Err(missing("this call needs a KMS key target")),
        };
        let secret = || match target {
            IncidentTarget::Secret(s) => Ok(s),
            IncidentTarget::Key(_) => Err(missing("this call needs a secret target")),
        };
        let replacement = || {
            self.facts
                .replacement
                .clone()
                .ok_or_else(|| missing("no replacement key yet: kms:CreateKey (create-key) returns it"))
        };
        let key_id = |r: KeyRef| match r {
            KeyRef::Target => key().map(|k| k.arn.clone()),
            KeyRef::Replacement => replacement(),
        };
        let aliases = || -> Result<Vec<String>, Refusal> {
            let mut all: BTreeSet<String> = key()?.aliases.iter().cloned().collect();
            all.extend(self.facts.aliases.iter().cloned());
            Ok(all.into_iter().map(|a| format!("alias/{a}")).collect())
        };
        let token = || request_token(&self.opened.incident_id, &step.id, attempt);
        Ok(match rule.call {
            Call::DescribeKey => vec![Op::DescribeKey {
                key_id: key_id(rule.key)?,
                expect_key_state: match &rule.expect {
                    Some(Expect::KeyState(s)) => Some(s.clone()),
                    _ => None,
                },
            }],
            Call::ListAliases => vec![Op::ListAliases {
                key_id: key_id(rule.key)?,
                expect_aliases: if rule.expect == Some(Expect::TargetAliases) { aliases()? } else { vec![] },
            }],
            Call::GetKeyPolicy => vec![Op::GetKeyPolicy { key_id: key_id(rule.key)?, policy_name: "default".into() }],
            Call::ListGrants => {
                vec![Op::ListGrants { key_id: key_id(rule.key)?, expect_none: rule.expect == Some(Expect::NoGrants) }]
            }
            Call::DisableKey => vec![Op::DisableKey { key_id: key_id(rule.key)? }],
            Call::EnableKey => vec![Op::EnableKey { key_id: key_id(rule.key)? }],
            Call::EnableKeyRotation => vec![Op::EnableKeyRotation { key_id: key_id(rule.key)? }],
            Call::CreateKey => {
                let k = key()?;
                let mut tags = k.tags.clone();
                tags.insert(super::TAG_INCIDENT.into(), self.opened.incident_id.clone());
                tags.insert(super::TAG_REPLACES.into(), k.key_id.clone());
                vec![Op::CreateKey {
                    region: k.region.clone(),
                    key_spec: k.key_spec.clone(),
                    key_usage: k.key_usage.clone(),
                    description: k.description.clone(),
                    policy: k.policy.clone(),
                    tags,
                }]
            }
            Call::UpdateAlias => {
                let (region, new) = (key()?.region.clone(), replacement()?);
                aliases()?
                    .into_iter()
                    .map(|alias_name| Op::UpdateAlias {
                        region: region.clone(),
                        alias_name,
                        target_key_id: new.clone(),
                    })
                    .collect()
            }
            Call::RevokeGrant => {
                let k = key()?;
                let grants = self.facts.grants.as_ref().ok_or_else(|| {
                    missing(
                        "no grant list: no successful kms:ListGrants on the compromised key in this incident (scope)",
                    )
                })?;
                grants.iter().map(|g| Op::RevokeGrant { key_id: k.arn.clone(), grant_id: g.clone() }).collect()
            }
            Call::PutKeyPolicy => {
                let k = key()?;
                let (policy, summary) = match rule.policy {
                    Some(PolicyChoice::Quarantine) => {
                        let principal = input
                            .principal_arn
                            .as_deref()
                            .filter(|p| p.starts_with("arn:"))
                            .ok_or(Refusal::NeedsPrincipal)?;
                        (
                            quarantine_policy(principal, &self.opened.incident_id),
                            format!("quarantine: only {principal}, to re-encrypt from and administer the key"),
                        )
                    }
                    _ => (k.policy.clone(), "the policy captured when the incident was opened".into()),
                };
                vec![Op::PutKeyPolicy { key_id: k.arn.clone(), policy_name: "default".into(), policy, summary }]
            }
            Call::ReEncrypt => {
                if input.files.is_empty() {
                    return Err(Refusal::NeedsFile);
                }
                let (source, dest) = (key()?.arn.clone(), replacement()?);
                (input.files.iter())
                    .map(|f| Op::ReEncrypt {
                        source_key_id: source.clone(),
                        destination_key_id: dest.clone(),
                        input_file: f.clone(),
                        output_file: format!("{f}.reencrypted"),
                    })
                    .collect()
            }
            Call::LookupEvents => {
                let start_time = match &rule.window {
                    Some(Window::Lookback(secs)) => self.opened.detected_at - Duration::seconds(*secs),
                    Some(Window::Since(s)) => {
                        self.runbook.index(s).and_then(|j| self.logs[j].done_intent_at).ok_or_else(|| {
                            missing(&format!("{s} has no successful attempt to start the window from"))
                        })?
                    }
                    None => return Err(missing("cloudtrail:LookupEvents without a window")),
                };
                vec![Op::LookupEvents {
                    region: target.region().to_owned(),
                    resource_name: target.arn().to_owned(),
                    start_time,
                    end_time: None,
                }]
            }
            Call::Publish => {
                let topic_arn =
                    self.opened.notify_topic_arn.clone().ok_or_else(|| missing("the incident names no SNS topic"))?;
                let (subject, message) = self.summary();
                vec![Op::Publish { topic_arn, subject, message }]
            }
            Call::DescribeSecret => {
                let s = secret()?;
                let old = || Some(s.current_version_id.clone());
                vec![Op::DescribeSecret {
                    secret_id: s.arn.clone(),
                    expect_rotated_from: if rule.expect == Some(Expect::Rotated) { old() } else { None },
                    expect_unstaged: if rule.expect == Some(Expect::PreviousStagedOut) { old() } else { None },
                }]
            }
            Call::RotateSecret => vec![Op::RotateSecret {
                secret_id: secret()?.arn.clone(),
                client_request_token: token(),
                rotate_immediately: true,
            }],
            // 004 §4.2: JWT_SECRET is 256 bits from a CSPRNG; 64 of [A-Za-z0-9] carry ~381.
            Call::GenerateAndPutSecretValue => vec![Op::GenerateAndPutSecretValue {
                secret_id: secret()?.arn.clone(),
                client_request_token: token(),
                password_length: 64,
                exclude_punctuation: true,
            }],
            Call::UpdateSecretVersionStage => {
                let s = secret()?;
                vec![Op::UpdateSecretVersionStage {
                    secret_id: s.arn.clone(),
                    version_stage: "AWSPREVIOUS".into(),
                    remove_from_version_id: s.current_version_id.clone(),
                }]
            }
        })
    }

    /// The SNS subject (printable ASCII, under 100 characters, as SNS requires) and
    /// message of the incident summary. Names and times only, never key material.
    fn summary(&self) -> (String, String) {
        let o = &self.opened;
        let (what, name) = match &o.target {
            IncidentTarget::Key(k) => {
                ("KMS key", k.aliases.first().map(|a| format!("alias/{a}")).unwrap_or_else(|| k.key_id.clone()))
            }
            IncidentTarget::Secret(s) => ("secret", s.name.clone()),
        };
        let subject: String = format!("keydeck incident {}: {} {name}", o.incident_id, self.runbook.id)
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .take(99)
            .collect();
        let t = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let message = format!(
            "{}\nIncident: {}\nTarget: {what} {name} ({}, {})\nDetected: {}\nOpened: {} by {}\nTrigger: {}\n",
            self.runbook.title,
            o.incident_id,
            o.target.arn(),
            o.target.region(),
            t(o.detected_at),
            t(self.opened_at),
            self.opened_by,
            o.note,
        );
        (subject, message)
    }
}

/// A key policy that lets only `principal` re-encrypt from the key and administer it
/// (no Decrypt; the account root statement is gone, so IAM policies grant nothing).
fn quarantine_policy(principal: &str, incident: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": format!("keydeck-quarantine-{incident}"),
        "Statement": [{
            "Sid": "KeydeckQuarantine",
            "Effect": "Allow",
            "Principal": { "AWS": principal },
            "Action": QUARANTINE_ACTIONS,
            "Resource": "*",
        }],
    })
    .to_string()
}
