//! The incident log as domain records, mappable 1:1 onto journal entries (`kind`, `body`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Approval, Op, TargetKind};

/// The compromised item, as captured when the incident was opened. The log keeps this
/// snapshot: after a quarantine AWS shows a different key policy, and the original is what
/// CreateKey copies and end-quarantine restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IncidentTarget {
    Key(KeyTarget),
    Secret(SecretTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTarget {
    pub arn: String,
    pub key_id: String,
    pub region: String,
    /// Alias names without `alias/`, sorted.
    pub aliases: Vec<String>,
    /// KMS KeySpec, e.g. `SYMMETRIC_DEFAULT`.
    pub key_spec: String,
    /// KMS KeyUsage, e.g. `ENCRYPT_DECRYPT`.
    pub key_usage: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// The key policy document (JSON text, GetKeyPolicy "default").
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretTarget {
    pub arn: String,
    pub name: String,
    pub region: String,
    /// A rotation function is configured and enabled (DescribeSecret RotationEnabled and
    /// a RotationLambdaARN): RotateSecret can make the new value.
    pub rotation_enabled: bool,
    /// The version that held AWSCURRENT at opening (the compromised value).
    pub current_version_id: String,
}

impl IncidentTarget {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Key(_) => TargetKind::Key,
            Self::Secret(_) => TargetKind::Secret,
        }
    }

    pub fn arn(&self) -> &str {
        match self {
            Self::Key(k) => &k.arn,
            Self::Secret(s) => &s.arn,
        }
    }

    pub fn region(&self) -> &str {
        match self {
            Self::Key(k) => &k.region,
            Self::Secret(s) => &s.region,
        }
    }

    /// What the operator types to confirm a destructive step: the key's first alias
    /// (without `alias/`), else its key id; the secret's name.
    pub fn confirm_text(&self) -> &str {
        match self {
            Self::Key(k) => k.aliases.first().unwrap_or(&k.key_id),
            Self::Secret(s) => &s.name,
        }
    }
}

/// The body of `incident.opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    pub incident_id: String,
    /// The runbook's id.
    pub runbook: String,
    pub target: IncidentTarget,
    /// When the compromise was detected or suspected (at or before opening): starts the
    /// clocks that run `from = "detected"`.
    pub detected_at: DateTime<Utc>,
    /// The trigger and what was seen (the first step's acknowledgement).
    pub note: String,
    /// The SNS topic incident summaries go to (a policy setting, snapshotted here).
    pub notify_topic_arn: Option<String>,
}

/// The answer to one op of an intent: `results[i]` answers `ops[i]`; ops after a failure
/// have no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResult {
    /// `service:Action`, as [`Call::name`](super::Call::name).
    pub call: String,
    pub request_id: Option<String>,
    /// The response's non-secret members under their AWS names (e.g. `KeyMetadata`,
    /// `Grants`, `Aliases`, `VersionIdsToStages`, `VersionId`); `null` when none.
    pub fields: Value,
    /// The AWS error code, or [`EXPECTATION_NOT_MET`](super::EXPECTATION_NOT_MET).
    pub error_code: Option<String>,
    pub error: Option<String>,
}

/// One incident log record: the journal entry's `kind` and `body` (serialised exactly as
/// `{"kind": ..., "body": ...}`), see [`StepRecord::kind`].
///
/// An outcome means AWS answered; a call whose fate is unknown (e.g. a timeout after
/// sending) gets no outcome, and is settled by a `step.resolved` after observing AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body")]
pub enum StepRecord {
    #[serde(rename = "incident.opened")]
    Opened(Box<Opened>),
    /// Written (and fsynced) before the calls. `attempt` counts from 1 per step.
    #[serde(rename = "step.intent")]
    Intent { step: String, attempt: u32, ops: Vec<Op> },
    #[serde(rename = "step.outcome")]
    Outcome { step: String, attempt: u32, ok: bool, results: Vec<CallResult> },
    /// An intent without outcome settled by observing AWS. `observed` uses AWS member
    /// names; for kms:CreateKey it is the found key's `{"KeyMetadata": {...}}`.
    #[serde(rename = "step.resolved")]
    Resolved { step: String, attempt: u32, settled_done: bool, observed: Value },
    #[serde(rename = "step.skipped")]
    Skipped { step: String, reason: String },
    #[serde(rename = "step.acknowledged")]
    Acknowledged { step: String, note: String },
    /// 004 §6 dual approval through the request store (`keydeck approvals`): written
    /// (fsynced) before request `request_id` is stored, which asks for exactly these ops.
    /// The record's actor is the proposer.
    #[serde(rename = "approval.requested")]
    ApprovalRequested { step: String, approval: Approval, ops: Vec<Op>, request_id: String },
    /// The approver carried request `request_id` out under their own credentials, and
    /// keydeck found its result in AWS: `results` answer the requested ops, in order, as
    /// a `step.outcome`'s would (kms:CreateKey: the new key's `KeyMetadata`, read with
    /// DescribeKey). `approver`: who CloudTrail attests moved the request to executed
    /// (`None`: not delivered yet). The step is done.
    #[serde(rename = "approval.executed")]
    ApprovalExecuted { step: String, request_id: String, approver: Option<String>, results: Vec<CallResult> },
    /// Request `request_id` ended without the operation: `state` is `rejected`,
    /// `withdrawn`, `expired` or `failed` (carried out, and AWS refused); `by` as
    /// CloudTrail attests it; `reason` the rejection's reason or the failure. The step may
    /// be requested again.
    #[serde(rename = "approval.ended")]
    ApprovalEnded { step: String, request_id: String, state: String, by: Option<String>, reason: String },
}

impl StepRecord {
    /// The journal entry kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Opened(_) => "incident.opened",
            Self::Intent { .. } => "step.intent",
            Self::Outcome { .. } => "step.outcome",
            Self::Resolved { .. } => "step.resolved",
            Self::Skipped { .. } => "step.skipped",
            Self::Acknowledged { .. } => "step.acknowledged",
            Self::ApprovalRequested { .. } => "approval.requested",
            Self::ApprovalExecuted { .. } => "approval.executed",
            Self::ApprovalEnded { .. } => "approval.ended",
        }
    }

    /// The runbook step the record is about (`None` for `incident.opened`).
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::Opened(_) => None,
            Self::Intent { step, .. }
            | Self::Outcome { step, .. }
            | Self::Resolved { step, .. }
            | Self::Skipped { step, .. }
            | Self::Acknowledged { step, .. }
            | Self::ApprovalRequested { step, .. }
            | Self::ApprovalExecuted { step, .. }
            | Self::ApprovalEnded { step, .. } => Some(step),
        }
    }
}

/// A log record with the journal's time and actor (the STS ARN who wrote it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub at: DateTime<Utc>,
    pub actor: String,
    #[serde(flatten)]
    pub record: StepRecord,
}
