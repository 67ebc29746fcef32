//! Dual-approval requests for key operations (004 §6 "Access Controls for Key
//! Operations"): one principal proposes, a different principal in the approver's role
//! approves, and the operation then runs under the approver's credentials.
//!
//! Pure: the request (its content and content hash), its states, and the decisions
//! `may_propose`, `may_approve`, `may_reject`, `may_withdraw`, `may_execute`. Who
//! proposed is never read from the request itself: the caller passes the proposer as
//! AWS attests it (the store's record of the call that created the request), and the
//! approver as STS GetCallerIdentity answers.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::policy::{ApprovalMatrix, ApprovalOp, IdentityPattern, PatternKind};
use super::runbook::{Approval, Op};

// ---- operations ---------------------------------------------------------------------

/// A key operation that goes through a request, named as in the policy's matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// `kms:RotateKeyOnDemand` (004 §6 "Rotate KMS key (manual)": dual).
    RotateKey,
    /// `kms:ScheduleKeyDeletion` with `PendingWindowInDays` (004 §6 "Schedule key
    /// deletion": dual, at least 7 days; the policy's `min_window_days..=max_window_days`).
    ScheduleDeletion { window_days: u32 },
    /// `kms:CreateKey` (004 §6 "Create new KMS key": key-admin + CISO).
    CreateKey,
    /// `kms:CancelKeyDeletion` (single control in the default matrix).
    CancelDeletion,
}

/// Does `typed` (without `alias/`) name the request's key as its approver must type it:
/// one of its aliases, or its ARN when it has none (a key an incident replaced, a replica)?
pub fn confirms(typed: &str, aliases: &[String], target_arn: &str) -> bool {
    !typed.is_empty() && if aliases.is_empty() { typed == target_arn } else { aliases.iter().any(|a| a == typed) }
}

impl Operation {
    /// Its row in the approval matrix.
    pub fn kind(&self) -> ApprovalOp {
        match self {
            Self::RotateKey => ApprovalOp::RotateKey,
            Self::ScheduleDeletion { .. } => ApprovalOp::ScheduleDeletion,
            Self::CreateKey => ApprovalOp::CreateKey,
            Self::CancelDeletion => ApprovalOp::CancelDeletion,
        }
    }

    /// The name in the policy and on the command line (`rotate-key`, ...).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The one AWS call the operation makes.
    pub fn aws_action(&self) -> &'static str {
        match self {
            Self::RotateKey => "kms:RotateKeyOnDemand",
            Self::ScheduleDeletion { .. } => "kms:ScheduleKeyDeletion",
            Self::CreateKey => "kms:CreateKey",
            Self::CancelDeletion => "kms:CancelKeyDeletion",
        }
    }

    /// From the command line: `schedule-deletion` needs a window, the others take none.
    pub fn from_name(name: &str, window_days: Option<u32>) -> Result<Self, Refusal> {
        let op =
            match (name, window_days) {
                ("rotate-key", None) => Self::RotateKey,
                ("schedule-deletion", Some(d)) => Self::ScheduleDeletion { window_days: d },
                ("schedule-deletion", None) => return Err(Refusal::BadRequest(
                    "schedule-deletion needs a waiting period: add --window-days N (days; 004 §6, the policy's bounds)"
                        .into(),
                )),
                ("create-key", None) => Self::CreateKey,
                ("cancel-deletion", None) => Self::CancelDeletion,
                ("rotate-key" | "create-key" | "cancel-deletion", Some(_)) => {
                    return Err(Refusal::BadRequest(format!("{name} takes no waiting period: drop --window-days")))
                }
                _ => {
                    return Err(Refusal::BadRequest(format!(
                        "unknown operation {name:?}: use rotate-key, schedule-deletion, create-key or cancel-deletion"
                    )))
                }
            };
        Ok(op)
    }
}

/// One AWS call with its parameters, as it will be made (`KeyId` included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// `kms:RotateKeyOnDemand`, ...
    pub action: String,
    pub parameters: Map<String, Value>,
}

/// `kms:CreateKey` parameters a request may carry, with the JSON type each takes. None
/// is secret; `Origin` (imported material, 004 §4.2) and
/// `BypassPolicyLockoutSafetyCheck` are not offered.
const CREATE_KEY_PARAMETERS: [(&str, &str); 6] = [
    ("Description", "string"),
    ("KeySpec", "string"),
    ("KeyUsage", "string"),
    ("Policy", "string"),
    ("Tags", "array"),
    ("MultiRegion", "boolean"),
];

/// The request a runbook step's approval asks for (issue 11 item 4): the step's one
/// `kms:CreateKey` as the `create-key` operation with its parameters (Description,
/// KeySpec, KeyUsage, Policy, Tags as `[{TagKey, TagValue}]`), exactly what
/// [`Request::calls`] then makes under the approver's credentials. Refused when the ops
/// are not the approval's one call (the runbook parser allows nothing else).
pub fn step_request(approval: Approval, ops: &[Op]) -> Result<(Operation, Map<String, Value>), Refusal> {
    match (approval, ops) {
        (Approval::CreateKey, [Op::CreateKey { key_spec, key_usage, description, policy, tags, .. }]) => {
            let tags: Vec<Value> =
                tags.iter().map(|(k, v)| serde_json::json!({ "TagKey": k, "TagValue": v })).collect();
            let mut p = Map::new();
            p.insert("Description".into(), Value::from(description.clone()));
            p.insert("KeySpec".into(), Value::from(key_spec.clone()));
            p.insert("KeyUsage".into(), Value::from(key_usage.clone()));
            p.insert("Policy".into(), Value::from(policy.clone()));
            p.insert("Tags".into(), Value::Array(tags));
            Ok((Operation::CreateKey, p))
        }
        (a, _) => Err(Refusal::BadRequest(format!("approval {} gates exactly one kms:CreateKey", a.name()))),
    }
}

/// The stored `request` asks for exactly what the step's `ops` would do, on `target_arn`:
/// an incident adopts a request it finds in the store only then (a request tagged with
/// the incident but asking for another key policy is not this step's).
pub fn is_step_request(request: &Request, approval: Approval, ops: &[Op], target_arn: &str) -> bool {
    step_request(approval, ops).is_ok_and(|(operation, parameters)| {
        request.operation == operation && request.parameters == parameters && request.target_arn == target_arn
    })
}

// ---- requests -----------------------------------------------------------------------

/// What a proposer asks for; [`Request::new`] checks it against the matrix and seals it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    pub id: String,
    pub operation: Operation,
    /// The KMS key ARN the operation acts on (for `create-key`: the key it replaces).
    pub target_arn: String,
    /// The call's parameters besides `KeyId` (`create-key`: KeySpec, KeyUsage, ...;
    /// `schedule-deletion`: PendingWindowInDays is filled in from the operation).
    pub parameters: Map<String, Value>,
    pub reason: String,
    /// Now, from the caller's clock (truncated to whole seconds).
    pub created: DateTime<Utc>,
}

/// A proposed key operation: everything the approver approves, sealed by its content hash.
/// The proposer is not part of it (AWS attests who proposed), nor is its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub id: String,
    pub operation: Operation,
    pub target_arn: String,
    /// The call's parameters besides `KeyId`; never a secret.
    pub parameters: Map<String, Value>,
    pub reason: String,
    pub created: DateTime<Utc>,
    /// Default `created` + 24 h (the matrix's `expires`); at or after it nobody approves.
    pub expires: DateTime<Utc>,
    /// Lowercase hex SHA-256 of [`Request::canonical_content`].
    pub content_hash: String,
}

/// The hashed content: every field of [`Request`] but the hash.
#[derive(Serialize)]
struct Hashed<'a> {
    id: &'a str,
    operation: &'a Operation,
    target_arn: &'a str,
    parameters: &'a Map<String, Value>,
    reason: &'a str,
    created: &'a DateTime<Utc>,
    expires: &'a DateTime<Utc>,
}

const MAX_REASON_CHARS: usize = 1000;

impl Request {
    /// Validate a proposal against the matrix (004 §6) and seal it: `expires` from the
    /// operation's `expires`, `content_hash` over the rest. A deletion window outside the
    /// policy's `min_window_days..=max_window_days` is refused naming the bound.
    pub fn new(n: NewRequest, matrix: &ApprovalMatrix) -> Result<Self, Refusal> {
        let created = n.created - Duration::nanoseconds(i64::from(n.created.timestamp_subsec_nanos()));
        let rule = matrix.rule(n.operation.kind());
        let mut parameters = n.parameters;
        if let Operation::ScheduleDeletion { window_days } = n.operation {
            parameters.entry("PendingWindowInDays").or_insert(Value::from(window_days));
        }
        let mut r = Self {
            id: n.id,
            operation: n.operation,
            target_arn: n.target_arn,
            parameters,
            reason: n.reason.trim().to_owned(),
            created,
            expires: created + Duration::seconds(rule.expires_secs),
            content_hash: String::new(),
        };
        r.validate(matrix)?;
        r.content_hash = r.compute_hash();
        Ok(r)
    }

    /// The content as canonical JSON: object keys sorted, no whitespace. What the hash
    /// covers: everything but the hash.
    pub fn canonical_content(&self) -> String {
        let c = Hashed {
            id: &self.id,
            operation: &self.operation,
            target_arn: &self.target_arn,
            parameters: &self.parameters,
            reason: &self.reason,
            created: &self.created,
            expires: &self.expires,
        };
        canonical_json(&serde_json::to_value(c).expect("a request serialises"))
    }

    /// The whole request (hash included) as canonical JSON, as a store keeps it.
    pub fn canonical_json(&self) -> String {
        canonical_json(&serde_json::to_value(self).expect("a request serialises"))
    }

    /// SHA-256 of [`Request::canonical_content`], lowercase hex.
    pub fn compute_hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_content().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Its content still hashes to its `content_hash` (004 §6: what is approved is what
    /// was proposed). The store must also compare `content_hash` with the hash AWS
    /// recorded at proposal, or a rewrite with a fresh hash passes.
    pub fn hash_matches(&self) -> bool {
        self.content_hash == self.compute_hash()
    }

    /// At or after `expires` nobody approves it (issue 11: default 24 h).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires <= now
    }

    /// The exact AWS calls approving it makes, under the approver's credentials.
    pub fn calls(&self) -> Vec<Call> {
        let mut parameters = Map::new();
        if self.operation != Operation::CreateKey {
            parameters.insert("KeyId".into(), Value::from(self.target_arn.clone()));
        }
        parameters.extend(self.parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
        vec![Call { action: self.operation.aws_action().to_owned(), parameters }]
    }

    /// Well-formed and allowed by the matrix as it is now: id, target ARN, reason,
    /// parameters, times, and the deletion window within the policy's bounds (004 §6).
    pub fn validate(&self, matrix: &ApprovalMatrix) -> Result<(), Refusal> {
        let bad = |m: String| Err(Refusal::BadRequest(m));
        if self.id.is_empty()
            || self.id.len() > 64
            || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(format!("request id {:?} must be 1 to 64 letters, digits, - or _", self.id));
        }
        if kms_key_arn(&self.target_arn).is_none() {
            return bad(format!(
                "target {:?} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)",
                self.target_arn
            ));
        }
        if self.reason.trim().is_empty() {
            return bad("a request needs a reason".into());
        }
        if self.reason.chars().count() > MAX_REASON_CHARS || self.reason.chars().any(|c| c.is_control()) {
            return bad(format!("the reason must be one line of at most {MAX_REASON_CHARS} characters"));
        }
        if self.expires <= self.created {
            return bad("a request must expire after it was created".into());
        }
        let op = self.operation.name();
        match self.operation {
            Operation::ScheduleDeletion { window_days } => {
                let w = matrix.deletion_window;
                if window_days < w.min_days {
                    return Err(Refusal::WindowTooShort { days: window_days, min: w.min_days });
                }
                if window_days > w.max_days {
                    return Err(Refusal::WindowTooLong { days: window_days, max: w.max_days });
                }
                let only_window = self.parameters.len() == 1
                    && self.parameters.get("PendingWindowInDays") == Some(&Value::from(window_days));
                if !only_window {
                    return bad(format!("{op} takes only PendingWindowInDays = {window_days}, the operation's window"));
                }
            }
            Operation::RotateKey | Operation::CancelDeletion => {
                if let Some(k) = self.parameters.keys().next() {
                    return bad(format!("{op} takes no parameters besides the key (got {k:?})"));
                }
            }
            Operation::CreateKey => {
                for (k, v) in &self.parameters {
                    let Some((_, ty)) = CREATE_KEY_PARAMETERS.iter().find(|(name, _)| name == k) else {
                        let names: Vec<&str> = CREATE_KEY_PARAMETERS.iter().map(|(n, _)| *n).collect();
                        return bad(format!("{op} takes no parameter {k:?}: use {}", names.join(", ")));
                    };
                    let ok = match *ty {
                        "string" => v.is_string(),
                        "array" => v.is_array(),
                        _ => v.is_boolean(),
                    };
                    if !ok {
                        return bad(format!("{op} parameter {k} must be a JSON {ty}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parts of a KMS key ARN: (partition, region, account, key id).
fn kms_key_arn(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let p: Vec<&str> = arn.splitn(6, ':').collect();
    let [a, partition, service, region, account, resource] = p.as_slice() else { return None };
    let key = resource.strip_prefix("key/")?;
    let ok = *a == "arn"
        && !partition.is_empty()
        && *service == "kms"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some((partition, region, account, key))
}

/// JSON with object keys sorted (by bytes) and no whitespace, whatever order the map
/// holds them in: the same content always hashes the same.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

// ---- states -------------------------------------------------------------------------

/// How a carried-out operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Outcome {
    /// AWS answered; its request ids and what the response said. `made`: the ARN of what
    /// the call created (kms:CreateKey: the new key), which the store also keeps in its
    /// `keydeck:result` tag for whoever asked (an incident's replacement-key step).
    Succeeded {
        aws_request_ids: Vec<String>,
        summary: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made: Option<String>,
    },
    /// AWS refused or the call failed: which call and the error.
    Failed { call: String, error: String },
}

impl fmt::Display for Outcome {
    /// One line: `SUMMARY (request ids: ID …)` or `CALL failed: ERROR` (the store's note).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded { aws_request_ids, summary, .. } => {
                write!(f, "{summary} (request ids: {})", aws_request_ids.join(" "))
            }
            Self::Failed { call, error } => write!(f, "{call} failed: {error}"),
        }
    }
}

/// Where a request is. `Proposed` is the only open state; the others are final but
/// `Approved`, which the approver's execution ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case", deny_unknown_fields)]
pub enum State {
    Proposed,
    /// `by`: the approver's ARN (STS GetCallerIdentity); the operation runs as them.
    Approved {
        by: String,
    },
    Rejected {
        by: String,
        reason: String,
    },
    /// By the proposer.
    Withdrawn,
    Executed {
        by: String,
        outcome: Outcome,
    },
    Expired,
}

impl State {
    /// The state as of `now`: a proposal past its `expires` is expired.
    pub fn at(&self, request: &Request, now: DateTime<Utc>) -> State {
        match self {
            Self::Proposed if request.is_expired(now) => Self::Expired,
            s => s.clone(),
        }
    }

    /// No transition leaves it.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Proposed | Self::Approved { .. })
    }

    /// One word for lists: `proposed`, `approved`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Approved { .. } => "approved",
            Self::Rejected { .. } => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Executed { .. } => "executed",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proposed => f.write_str("proposed, waiting for approval"),
            Self::Approved { by } => write!(f, "already approved by {by}"),
            Self::Rejected { by, reason } => write!(f, "rejected by {by}: {reason}"),
            Self::Withdrawn => f.write_str("withdrawn by its proposer"),
            Self::Executed { by, outcome: Outcome::Succeeded { .. } } => write!(f, "already executed by {by}"),
            Self::Executed { by, outcome: Outcome::Failed { error, .. } } => {
                write!(f, "already executed by {by}, and it failed: {error}")
            }
            Self::Expired => f.write_str("expired"),
        }
    }
}

// ---- refusals -----------------------------------------------------------------------

/// Why a proposal or a transition is refused; each names the rule (004 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "kebab-case")]
pub enum Refusal {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "a {days}-day deletion window is shorter than the policy allows: min_window_days = {min} (004 §6: \"minimum 7-day waiting period\")"
    )]
    WindowTooShort { days: u32, min: u32 },
    #[error(
        "a {days}-day deletion window is longer than the policy allows: max_window_days = {max} (AWS allows 7 to 30)"
    )]
    WindowTooLong { days: u32, max: u32 },
    #[error("{identity} is not an IAM user or role session ARN")]
    NotAnIdentity { identity: String },
    #[error("{identity} does not hold the {role} role, which {operation} needs to {act} (004 §6; [approvals.roles] in the policy)")]
    NotInRole { identity: String, role: String, operation: String, act: &'static str },
    #[error(
        "{approver} proposed this request (as {proposer}): 004 §6 needs a second person to approve; a different session of the same user or role is the same principal"
    )]
    SelfApproval { proposer: String, approver: String },
    #[error(
        "{approver} has the proposer's session name {session:?} ({proposer}): it looks like the same person in another role, and 004 §6 needs a second person"
    )]
    SamePerson { proposer: String, approver: String, session: String },
    #[error("the request expired at {expires} (requests stay open {lifetime}): propose it again")]
    Expired { expires: DateTime<Utc>, lifetime: String },
    #[error(
        "the request changed since it was proposed: its content hashes to {actual}, not {recorded} (004 §6: approve only what was proposed)"
    )]
    ContentChanged { recorded: String, actual: String },
    #[error("the request is {state}")]
    NotOpen { state: State },
    #[error("the request is not approved: {state}")]
    NotApproved { state: State },
    #[error("{who} proposed this request: the proposer withdraws it, a second person rejects it (004 §6)")]
    OwnRequest { who: String },
    #[error("only the proposer ({proposer}) may withdraw it; you are {who}")]
    NotProposer { proposer: String, who: String },
    #[error("{who} cannot carry it out: {approver} approved it, and it runs under the approver's credentials")]
    NotApprover { approver: String, who: String },
}

// ---- listing -----------------------------------------------------------------------

/// One request as read from the store: the request, its state, and who AWS says acted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    pub id: String,
    pub secret_arn: String,
    pub request: Request,
    /// `proposed`, `approved`, `rejected`, `withdrawn`, `executed`, or `expired` (proposed
    /// and past `expires`): the store's state token.
    pub state: String,
    /// The proposer as CloudTrail attests it (`None`: not delivered yet, nobody may act).
    pub proposer: Option<String>,
    /// The attested actor of the current state, when it is not `proposed`.
    pub by: Option<String>,
    /// A final state's note (a rejection's reason, an execution's outcome), as claimed.
    pub note: Option<String>,
    /// What an executed request made (`keydeck:result`: the new key's ARN), as claimed.
    pub result: Option<String>,
    /// The request compared with CloudTrail's record of its creation (never with its own
    /// hash alone).
    pub content: Content,
}

/// A request's content compared with CloudTrail's record of the call that created it
/// (the record that attests the proposer): what approve checks, shown wherever the
/// request is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// Not compared: the record was not read (an ended request in a listing) or
    /// CloudTrail has not delivered it yet.
    #[default]
    Unchecked,
    /// What CloudTrail recorded at proposal.
    Matches,
    /// Changed since it was proposed: approving it is refused.
    Changed,
    /// The record carries neither the description nor the content hash.
    Unverifiable,
}

impl Content {
    /// From the comparison approve makes (`check`: its refusal, if any) and the request's
    /// own hash (a request that does not hash to its own `content_hash` is changed too).
    pub fn of(request: &Request, check: Result<(), &Refusal>) -> Self {
        match check {
            Err(Refusal::ContentChanged { .. }) => Self::Changed,
            Err(_) => Self::Unverifiable,
            Ok(()) if !request.hash_matches() => Self::Changed,
            Ok(()) => Self::Matches,
        }
    }

    /// One line for `show` and the approval dialog.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unchecked => "not compared yet: CloudTrail's record of the proposal is not read or not delivered",
            Self::Matches => "matches CloudTrail's record of the proposal (CreateSecret)",
            Self::Changed => {
                "CHANGED since it was proposed (it differs from CloudTrail's record of the proposal): approval will be refused; reject it"
            }
            Self::Unverifiable => {
                "cannot be verified: CloudTrail's record of the proposal carries neither its description nor its hash"
            }
        }
    }
}

impl Listed {
    /// The word for a state column: the store's state; `attesting` while CloudTrail has
    /// not delivered the proposal's record; `changed` for an open request that differs
    /// from that record; `failed` for an executed request whose note (the executor's, as
    /// [`Outcome`] writes it) says the call failed.
    pub fn state_label(&self) -> &str {
        if self.state == "proposed" && self.proposer.is_none() {
            "attesting"
        } else if self.state == "proposed" && self.content == Content::Changed {
            "changed"
        } else if self.executed_but_failed() {
            "failed"
        } else {
            &self.state
        }
    }

    /// Executed, and the call AWS answered with an error (`CALL failed: ERROR` in the note).
    pub fn executed_but_failed(&self) -> bool {
        self.state == "executed" && self.note.as_deref().is_some_and(|n| n.contains(" failed: "))
    }

    /// The target key's region (the ARN's fourth field).
    pub fn region(&self) -> &str {
        self.request.target_arn.split(':').nth(3).unwrap_or_default()
    }
}

/// An entry under the store's prefix keydeck cannot read as a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    pub id: String,
    pub problem: String,
}

/// The store, split for one operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Listing {
    /// Open, and the operator may approve them: holds the approver role, did not propose.
    pub waiting_for_me: Vec<Listed>,
    /// Open, proposed by the operator.
    pub mine: Vec<Listed>,
    /// Open, for someone else, or not yet attested by CloudTrail.
    pub open: Vec<Listed>,
    /// Final (executed, rejected, withdrawn) and expired.
    pub history: Vec<Listed>,
    pub malformed: Vec<Malformed>,
}

impl Listing {
    /// Put `v` in its section for operator `me`: final and expired requests in the history;
    /// open ones under mine when CloudTrail attests `me` as the proposer, or, until it
    /// attests anyone, when `proposed_here` (this operator's own journal records proposing
    /// it: never the request's claim); waiting for me when attested, not mine, and `me`
    /// holds the approver role; else open for others. Only the section: every decision
    /// still rests on CloudTrail's attestation.
    pub fn place(&mut self, v: Listed, me: &str, matrix: &ApprovalMatrix, proposed_here: bool) {
        if v.state != "proposed" {
            return self.history.push(v);
        }
        let mine = match v.proposer.as_deref() {
            Some(p) => same_principal(p, me),
            None => proposed_here,
        };
        let approver = holds_role(matrix, me, matrix.rule(v.request.operation.kind()).approver_role());
        if mine {
            self.mine.push(v);
        } else if approver && v.proposer.is_some() {
            self.waiting_for_me.push(v);
        } else {
            self.open.push(v);
        }
    }
}

// ---- principals ---------------------------------------------------------------------

/// Who an STS identity is, for comparing proposers and approvers (004 §6 "dual
/// approval": two principals). IAM names are unique regardless of case, so names are
/// kept lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Principal {
    /// `arn:aws:iam::A:user/[PATH/]NAME` (user names are unique whatever the path).
    User { partition: String, account: String, name: String },
    /// A role, and every session of it: `arn:aws:iam::A:role/[PATH/]NAME`,
    /// `arn:aws:sts::A:assumed-role/NAME/SESSION`.
    Role { partition: String, account: String, name: String },
    /// `arn:aws:iam::A:root`.
    Root { partition: String, account: String },
    /// Anything else (a federated user, a service): the whole ARN.
    Other { arn: String },
}

/// The parts of an IAM or STS identity ARN.
struct Identity<'a> {
    partition: &'a str,
    account: &'a str,
    /// `user`, `role`, `assumed-role`, `root`, `federated-user`, ...
    kind: &'a str,
    /// Path segments and name (for an assumed role: the role name, then the session).
    segments: Vec<&'a str>,
}

fn identity(arn: &str) -> Option<Identity<'_>> {
    let p: Vec<&str> = arn.splitn(6, ':').collect();
    let [a, partition, service, region, account, resource] = p.as_slice() else { return None };
    if *a != "arn" || partition.is_empty() || !region.is_empty() || !matches!(*service, "iam" | "sts") {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut segments: Vec<&str> = resource.split('/').collect();
    let kind = segments.remove(0);
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    match (*service, kind, segments.len()) {
        ("iam", "user" | "role", n) if n >= 1 => {}
        ("iam", "root", 0) => {}
        ("sts", "assumed-role", 2) => {}
        ("sts", "federated-user", 1) => {}
        _ => return None,
    }
    Some(Identity { partition, account, kind, segments })
}

impl Principal {
    /// The principal behind an identity ARN; `None` when it is not an IAM or STS ARN.
    pub fn of(arn: &str) -> Option<Self> {
        let id = identity(arn)?;
        let (partition, account) = (id.partition.to_owned(), id.account.to_owned());
        Some(match id.kind {
            "user" => Self::User { partition, account, name: id.segments.last()?.to_ascii_lowercase() },
            "role" => Self::Role { partition, account, name: id.segments.last()?.to_ascii_lowercase() },
            "assumed-role" => Self::Role { partition, account, name: id.segments[0].to_ascii_lowercase() },
            "root" => Self::Root { partition, account },
            _ => Self::Other { arn: arn.to_ascii_lowercase() },
        })
    }
}

/// The two ARNs are one principal (004 §6: the approver is a second person): the same
/// IAM user (whatever the access key), or the same role whatever the session name. ARNs
/// that are not IAM or STS identities are compared whole, ignoring case.
pub fn same_principal(a: &str, b: &str) -> bool {
    match (Principal::of(a), Principal::of(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// The role-session name of an assumed-role ARN, or an IAM user's name.
fn person_name(arn: &str) -> Option<String> {
    let id = identity(arn)?;
    match id.kind {
        "user" | "assumed-role" => id.segments.last().map(|s| s.to_ascii_lowercase()),
        _ => None,
    }
}

/// `*` matches any run of characters, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The identity ARN matches a parsed pattern of `[approvals.roles]`.
pub fn matches(arn: &str, p: &IdentityPattern) -> bool {
    let Some(id) = identity(arn) else { return false };
    if id.partition != p.partition || p.account.as_deref().is_some_and(|a| a != id.account) {
        return false;
    }
    match (p.kind, id.kind) {
        (PatternKind::User, "user") => {
            let (p_path, p_name) = p.name.rsplit_once('/').map_or(("", p.name.as_str()), |(a, b)| (a, b));
            let (name, path) = id.segments.split_last().expect("a user has a name");
            path.join("/") == p_path && glob(p_name, name)
        }
        // STS drops the role's path from a session's ARN: the name decides.
        (PatternKind::Role, "role" | "assumed-role") => {
            let p_name = p.name.rsplit('/').next().unwrap_or(&p.name);
            let role = if id.kind == "role" { id.segments.last() } else { id.segments.first() };
            role.is_some_and(|r| glob(p_name, r))
        }
        (PatternKind::AssumedRole, "assumed-role") => id.segments[0] == p.name && glob(&p.session, id.segments[1]),
        _ => false,
    }
}

/// The identity ARN matches the pattern text (an invalid pattern matches nothing). IAM
/// user, role, assumed-role patterns; `*` for any account; `*` globs in the last segment.
pub fn matches_pattern(arn: &str, pattern: &str) -> bool {
    IdentityPattern::parse(pattern).is_ok_and(|p| matches(arn, &p))
}

/// The identity holds `role` in the matrix (any of its patterns matches).
pub fn holds_role(matrix: &ApprovalMatrix, arn: &str, role: &str) -> bool {
    matrix.patterns(role).iter().any(|p| matches(arn, p))
}

/// Every role the identity holds, for showing who someone is.
pub fn roles_of<'m>(matrix: &'m ApprovalMatrix, arn: &str) -> Vec<&'m str> {
    matrix.roles.iter().filter(|(_, ps)| ps.iter().any(|p| matches(arn, p))).map(|(r, _)| r.as_str()).collect()
}

// ---- decisions ----------------------------------------------------------------------

fn require_identity(arn: &str) -> Result<(), Refusal> {
    match Principal::of(arn) {
        Some(Principal::User { .. } | Principal::Role { .. }) => Ok(()),
        _ => Err(Refusal::NotAnIdentity { identity: arn.to_owned() }),
    }
}

fn require_role(
    matrix: &ApprovalMatrix,
    arn: &str,
    role: &str,
    op: ApprovalOp,
    act: &'static str,
) -> Result<(), Refusal> {
    if holds_role(matrix, arn, role) {
        return Ok(());
    }
    Err(Refusal::NotInRole { identity: arn.to_owned(), role: role.to_owned(), operation: op.as_str().to_owned(), act })
}

fn require_open(request: &Request, state: &State, now: DateTime<Utc>, matrix: &ApprovalMatrix) -> Result<(), Refusal> {
    match state.at(request, now) {
        State::Proposed => Ok(()),
        State::Expired => {
            let secs = matrix.rule(request.operation.kind()).expires_secs;
            Err(Refusal::Expired { expires: request.expires, lifetime: lifetime_text(secs) })
        }
        other => Err(Refusal::NotOpen { state: other }),
    }
}

fn lifetime_text(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 && s > 86_400 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{}m", s / 60),
    }
}

/// The proposer may propose this (004 §6: "drop-key-admin (proposer)"): they hold the
/// operation's proposer role.
pub fn may_propose(operation: &Operation, proposer: &str, matrix: &ApprovalMatrix) -> Result<(), Refusal> {
    require_identity(proposer)?;
    let op = operation.kind();
    require_role(matrix, proposer, &matrix.rule(op).proposer, op, "propose it")
}

/// The approver may approve (004 §6 "Dual approval"). Refused, in this order, when:
/// the request is not open (already approved by X, rejected, withdrawn, executed —
/// checked first, so the loser of a race hears who won); its content does not hash to
/// its `content_hash`; it expired (`expires <= now`); the approver is the proposer
/// compared as principals (an IAM user; a role whatever the session name), or an
/// assumed-role session named as the proposer is; the approver does not hold the
/// matrix's approver role (for single control: the proposer's role, and then the
/// proposer may carry it out); the attested proposer does not hold the proposer role;
/// the request breaks the policy as it is now (e.g. a deletion window the policy no
/// longer allows).
///
/// `attested_proposer` is who AWS says created the request, never what it says itself;
/// `approver` is the approver's STS GetCallerIdentity ARN.
pub fn may_approve(
    request: &Request,
    state: &State,
    attested_proposer: &str,
    approver: &str,
    matrix: &ApprovalMatrix,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let op = request.operation.kind();
    let rule = matrix.rule(op);
    if !matches!(state, State::Proposed | State::Expired) {
        return Err(Refusal::NotOpen { state: state.clone() });
    }
    let actual = request.compute_hash();
    if actual != request.content_hash {
        return Err(Refusal::ContentChanged { recorded: request.content_hash.clone(), actual });
    }
    require_open(request, state, now, matrix)?;
    require_identity(approver)?;
    require_identity(attested_proposer)?;
    if rule.is_dual() {
        if same_principal(attested_proposer, approver) {
            return Err(Refusal::SelfApproval {
                proposer: attested_proposer.to_owned(),
                approver: approver.to_owned(),
            });
        }
        if let (Some(a), Some(b)) = (person_name(attested_proposer), person_name(approver)) {
            if a == b {
                return Err(Refusal::SamePerson {
                    proposer: attested_proposer.to_owned(),
                    approver: approver.to_owned(),
                    session: a,
                });
            }
        }
    }
    require_role(matrix, approver, rule.approver_role(), op, "approve it")?;
    require_role(matrix, attested_proposer, &rule.proposer, op, "propose it")?;
    request.validate(matrix)
}

/// The rejecter may reject (004 §6): anyone in the approver role but the proposer,
/// while the request is open.
pub fn may_reject(
    request: &Request,
    state: &State,
    attested_proposer: &str,
    rejecter: &str,
    matrix: &ApprovalMatrix,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    require_open(request, state, now, matrix)?;
    require_identity(rejecter)?;
    if same_principal(attested_proposer, rejecter) {
        return Err(Refusal::OwnRequest { who: rejecter.to_owned() });
    }
    let op = request.operation.kind();
    require_role(matrix, rejecter, matrix.rule(op).approver_role(), op, "reject it")
}

/// Only the proposer (the same principal AWS attests) withdraws, while it is open.
pub fn may_withdraw(
    request: &Request,
    state: &State,
    attested_proposer: &str,
    who: &str,
    matrix: &ApprovalMatrix,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    require_open(request, state, now, matrix)?;
    if !same_principal(attested_proposer, who) {
        return Err(Refusal::NotProposer { proposer: attested_proposer.to_owned(), who: who.to_owned() });
    }
    Ok(())
}

/// The approved operation runs under the approver's credentials (issue 11): only the
/// principal that approved it carries it out, once.
pub fn may_execute(state: &State, executor: &str) -> Result<(), Refusal> {
    match state {
        State::Approved { by } if same_principal(by, executor) => Ok(()),
        State::Approved { by } => Err(Refusal::NotApprover { approver: by.clone(), who: executor.to_owned() }),
        other => Err(Refusal::NotApproved { state: other.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approver_types_an_alias_or_for_a_key_without_one_its_arn() {
        let arn = "arn:aws:kms:eu-north-1:123456789012:key/k";
        assert!(confirms("drop-kyc-key", &["drop-kyc-key".into()], arn));
        assert!(!confirms(arn, &["drop-kyc-key".into()], arn), "a key with an alias: the alias");
        assert!(!confirms("drop-kyc", &["drop-kyc-key".into()], arn));
        assert!(confirms(arn, &[], arn), "no alias (replaced, a replica): the ARN");
        assert!(!confirms("", &[], ""), "nothing typed never confirms");
        assert!(!confirms("k", &[], arn));
    }
    use crate::domain::policy::{Policy, DEFAULT_REQUEST_LIFETIME_SECS};

    const KEY: &str = "arn:aws:kms:eu-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const KEY_ADMIN: &str = "arn:aws:iam::123456789012:user/key-admin";
    const SECURITY_LEAD: &str = "arn:aws:iam::123456789012:user/security-lead";
    const AUDITOR: &str = "arn:aws:iam::123456789012:user/key-auditor";
    const ADMIN_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/drop-key-admin/alice";
    const ADMIN_SESSION_2: &str = "arn:aws:sts::123456789012:assumed-role/drop-key-admin/bob";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn created() -> DateTime<Utc> {
        t("2026-11-23T09:10:00Z")
    }

    fn matrix() -> ApprovalMatrix {
        ApprovalMatrix::default()
    }

    fn new(operation: Operation) -> NewRequest {
        NewRequest {
            id: "req-1".into(),
            operation,
            target_arn: KEY.into(),
            parameters: Map::new(),
            reason: "annual rotation is 12 days overdue".into(),
            created: created(),
        }
    }

    #[test]
    fn a_listed_request_labels_its_state() {
        let listed = |state: &str, proposer: Option<&str>, note: Option<&str>| Listed {
            id: "req-1".into(),
            secret_arn: "arn:aws:secretsmanager:eu-north-1:1:secret:keydeck/approvals/req-1-AbC123".into(),
            request: request(Operation::RotateKey),
            state: state.into(),
            proposer: proposer.map(str::to_owned),
            by: None,
            note: note.map(str::to_owned),
            result: None,
            content: Content::Matches,
        };
        assert_eq!(listed("proposed", None, None).state_label(), "attesting");
        assert_eq!(listed("proposed", Some(KEY_ADMIN), None).state_label(), "proposed");
        let changed = Listed { content: Content::Changed, ..listed("proposed", Some(KEY_ADMIN), None) };
        assert_eq!(changed.state_label(), "changed");
        let failed = Outcome::Failed { call: "kms:CancelKeyDeletion".into(), error: "AccessDeniedException".into() };
        let l = listed("executed", Some(KEY_ADMIN), Some(&failed.to_string()));
        assert_eq!((l.state_label(), l.executed_but_failed()), ("failed", true));
        let ok =
            Outcome::Succeeded { aws_request_ids: vec!["r1".into()], summary: "rotation started".into(), made: None };
        assert_eq!(listed("executed", Some(KEY_ADMIN), Some(&ok.to_string())).state_label(), "executed");
        assert_eq!(listed("region", None, None).region(), "eu-north-1");
    }

    fn request(operation: Operation) -> Request {
        Request::new(new(operation), &matrix()).expect("valid request")
    }

    #[test]
    fn a_request_i_just_proposed_is_mine_while_cloudtrail_attests_it() {
        let listed = |state: &str, proposer: Option<&str>| Listed {
            id: "req-1".into(),
            secret_arn: String::new(),
            request: request(Operation::RotateKey),
            state: state.into(),
            proposer: proposer.map(str::to_owned),
            by: None,
            note: None,
            result: None,
            content: Content::Unchecked,
        };
        let m = matrix();
        let sections = |l: &Listing| [l.waiting_for_me.len(), l.mine.len(), l.open.len(), l.history.len()];
        let placed = |v: Listed, me: &str, here: bool| {
            let mut l = Listing::default();
            l.place(v, me, &m, here);
            sections(&l)
        };
        // Not attested yet: mine when my journal records proposing it, else open.
        assert_eq!(placed(listed("proposed", None), KEY_ADMIN, true), [0, 1, 0, 0]);
        assert_eq!(placed(listed("proposed", None), KEY_ADMIN, false), [0, 0, 1, 0]);
        assert_eq!(placed(listed("proposed", None), SECURITY_LEAD, false), [0, 0, 1, 0], "nobody approves it yet");
        // Attested: CloudTrail decides, whatever the journal says.
        assert_eq!(placed(listed("proposed", Some(KEY_ADMIN)), KEY_ADMIN, false), [0, 1, 0, 0]);
        assert_eq!(placed(listed("proposed", Some(SECURITY_LEAD)), KEY_ADMIN, true), [0, 0, 1, 0]);
        assert_eq!(placed(listed("proposed", Some(KEY_ADMIN)), SECURITY_LEAD, false), [1, 0, 0, 0]);
        assert_eq!(placed(listed("executed", None), KEY_ADMIN, true), [0, 0, 0, 1]);
    }

    fn approve(r: &Request, proposer: &str, approver: &str) -> Result<(), Refusal> {
        may_approve(r, &State::Proposed, proposer, approver, &matrix(), created() + Duration::hours(1))
    }

    /// A matrix from `[approvals]` text (the rest of the policy minimal).
    fn matrix_from(approvals: &str) -> ApprovalMatrix {
        Policy::parse("p.toml", &format!("[policy]\nname = \"t\"\n{approvals}")).expect("valid policy").approvals
    }

    // ---- an incident step's request --------------------------------------------------

    fn create_key_op(policy: &str) -> Op {
        Op::CreateKey {
            region: "eu-north-1".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            description: "KYC documents".into(),
            policy: policy.into(),
            tags: [("keydeck:incident".to_owned(), "inc-1".to_owned())].into(),
        }
    }

    #[test]
    fn an_incident_step_asks_for_exactly_its_create_key_call() {
        let op = create_key_op("{\"Statement\":[]}");
        let (operation, parameters) = step_request(Approval::CreateKey, std::slice::from_ref(&op)).unwrap();
        let mut n = new(operation);
        n.parameters = parameters;
        let r = Request::new(n, &matrix()).expect("a valid create-key request");
        let call = &r.calls()[0];
        assert_eq!(call.action, "kms:CreateKey");
        assert_eq!(call.parameters.get("KeyId"), None, "CreateKey names no key");
        assert_eq!(call.parameters["Policy"], "{\"Statement\":[]}");
        assert_eq!(call.parameters["Tags"], serde_json::json!([{"TagKey": "keydeck:incident", "TagValue": "inc-1"}]));
        assert!(is_step_request(&r, Approval::CreateKey, std::slice::from_ref(&op), KEY));
        // Another policy, another target, or another op is not this step's request.
        assert!(!is_step_request(&r, Approval::CreateKey, &[create_key_op("{}")], KEY));
        assert!(!is_step_request(
            &r,
            Approval::CreateKey,
            std::slice::from_ref(&op),
            &KEY.replace("1234abcd", "9999abcd")
        ));
        let disable = Op::DisableKey { key_id: KEY.into() };
        assert!(matches!(step_request(Approval::CreateKey, &[disable]), Err(Refusal::BadRequest(_))));
        assert!(matches!(step_request(Approval::CreateKey, &[op.clone(), op]), Err(Refusal::BadRequest(_))));
    }

    // ---- principals ---------------------------------------------------------------

    #[test]
    fn same_principal_for_users() {
        assert!(same_principal(KEY_ADMIN, KEY_ADMIN), "a second access key of the same user has the same ARN");
        assert!(same_principal(KEY_ADMIN, "arn:aws:iam::123456789012:user/Key-Admin"), "IAM names ignore case");
        assert!(
            same_principal(KEY_ADMIN, "arn:aws:iam::123456789012:user/ops/key-admin"),
            "names are unique whatever the path"
        );
        assert!(!same_principal(KEY_ADMIN, SECURITY_LEAD));
        assert!(!same_principal(KEY_ADMIN, "arn:aws:iam::999999999999:user/key-admin"), "another account");
        assert!(!same_principal(KEY_ADMIN, "arn:aws-cn:iam::123456789012:user/key-admin"), "another partition");
    }

    #[test]
    fn same_principal_for_roles_and_sessions() {
        assert!(same_principal(ADMIN_SESSION, ADMIN_SESSION_2), "another session name is the same role");
        assert!(same_principal(ADMIN_SESSION, "arn:aws:iam::123456789012:role/drop-key-admin"));
        assert!(same_principal(ADMIN_SESSION, "arn:aws:iam::123456789012:role/team/drop-key-admin"));
        assert!(!same_principal(ADMIN_SESSION, "arn:aws:sts::123456789012:assumed-role/ciso/alice"));
        assert!(!same_principal(ADMIN_SESSION, "arn:aws:sts::999999999999:assumed-role/drop-key-admin/alice"));
        assert!(
            !same_principal(KEY_ADMIN, "arn:aws:sts::123456789012:assumed-role/key-admin/x"),
            "a user is not a role"
        );
        assert!(same_principal("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"));
        assert!(!same_principal("arn:aws:iam::123456789012:root", KEY_ADMIN));
    }

    #[test]
    fn same_principal_outside_iam_compares_whole_arns() {
        assert!(same_principal("not an arn", "NOT AN ARN"));
        assert!(!same_principal("not an arn", KEY_ADMIN));
        let fed = "arn:aws:sts::123456789012:federated-user/alice";
        assert_eq!(Principal::of(fed), Some(Principal::Other { arn: fed.into() }));
        assert!(!same_principal(fed, "arn:aws:sts::123456789012:federated-user/bob"));
        assert_eq!(Principal::of("arn:aws:sts::123456789012:assumed-role/only-role"), None);
        assert_eq!(Principal::of("arn:aws:iam::12345:user/x"), None, "an account is 12 digits");
        assert_eq!(Principal::of("arn:aws:kms:eu-north-1:123456789012:key/x"), None);
    }

    #[test]
    fn user_patterns() {
        assert!(matches_pattern(KEY_ADMIN, "arn:aws:iam::123456789012:user/key-admin"));
        assert!(matches_pattern(KEY_ADMIN, "arn:aws:iam::*:user/key-admin"), "any account");
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws:iam::999999999999:user/key-admin"), "another account");
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws-cn:iam::*:user/key-admin"), "another partition");
        assert!(matches_pattern(KEY_ADMIN, "arn:aws:iam::*:user/key-*"));
        assert!(matches_pattern(KEY_ADMIN, "arn:aws:iam::*:user/*"));
        assert!(!matches_pattern(SECURITY_LEAD, "arn:aws:iam::*:user/key-*"));
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws:iam::*:user/Key-Admin"), "patterns match case-sensitively");
        assert!(matches_pattern("arn:aws:iam::123456789012:user/ops/key-admin", "arn:aws:iam::*:user/ops/key-admin"));
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws:iam::*:user/ops/key-admin"), "the path is part of a user pattern");
        assert!(!matches_pattern("arn:aws:iam::123456789012:user/ops/key-admin", "arn:aws:iam::*:user/key-admin"));
        assert!(!matches_pattern(ADMIN_SESSION, "arn:aws:iam::*:user/*"), "a session is not a user");
    }

    #[test]
    fn role_and_assumed_role_patterns() {
        assert!(
            matches_pattern(ADMIN_SESSION, "arn:aws:iam::123456789012:role/drop-key-admin"),
            "any session of the role"
        );
        assert!(matches_pattern(ADMIN_SESSION, "arn:aws:iam::*:role/team/drop-key-admin"), "STS drops the role's path");
        assert!(matches_pattern(ADMIN_SESSION, "arn:aws:iam::*:role/drop-*"));
        assert!(!matches_pattern(ADMIN_SESSION, "arn:aws:iam::*:role/ciso"));
        assert!(matches_pattern(ADMIN_SESSION, "arn:aws:sts::*:assumed-role/drop-key-admin/*"));
        assert!(matches_pattern(ADMIN_SESSION, "arn:aws:sts::123456789012:assumed-role/drop-key-admin/alice"));
        assert!(matches_pattern(ADMIN_SESSION, "arn:aws:sts::*:assumed-role/drop-key-admin/al*e"));
        assert!(!matches_pattern(ADMIN_SESSION_2, "arn:aws:sts::*:assumed-role/drop-key-admin/alice"));
        assert!(!matches_pattern(ADMIN_SESSION, "arn:aws:sts::*:assumed-role/ciso/*"));
        assert!(!matches_pattern(ADMIN_SESSION, "arn:aws:sts::999999999999:assumed-role/drop-key-admin/*"));
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws:sts::*:assumed-role/key-admin/*"), "a user is not a session");
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws:iam::*:role/key-admin"));
    }

    #[test]
    fn invalid_patterns_and_identities_match_nothing() {
        assert!(!matches_pattern(KEY_ADMIN, "key-admin"));
        assert!(!matches_pattern(KEY_ADMIN, "arn:aws:iam::*:user/*/key-admin"), "`*` outside the last segment");
        assert!(!matches_pattern(KEY_ADMIN, "*"));
        assert!(!matches_pattern("key-admin", "arn:aws:iam::*:user/*"));
        assert!(!matches_pattern("", "arn:aws:iam::*:user/*"));
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "a-b-c"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "ac"));
        assert!(!glob("a*a", "a"), "the prefix and suffix do not overlap");
        assert!(glob("*-admin", "key-admin"));
        assert!(!glob("key", "key-admin"));
    }

    #[test]
    fn roles_of_an_identity_in_the_default_matrix() {
        let m = matrix();
        assert_eq!(roles_of(&m, KEY_ADMIN), ["key-admin"]);
        assert_eq!(roles_of(&m, ADMIN_SESSION), ["key-admin"]);
        assert_eq!(roles_of(&m, SECURITY_LEAD), ["ciso", "security-lead"]);
        assert!(roles_of(&m, AUDITOR).is_empty());
        assert!(holds_role(&m, SECURITY_LEAD, "ciso"));
        assert!(!holds_role(&m, SECURITY_LEAD, "no-such-role"));
    }

    // ---- operations and requests ----------------------------------------------------

    #[test]
    fn operations_name_their_matrix_row_and_aws_call() {
        let all = [
            (Operation::RotateKey, "rotate-key", "kms:RotateKeyOnDemand"),
            (Operation::ScheduleDeletion { window_days: 7 }, "schedule-deletion", "kms:ScheduleKeyDeletion"),
            (Operation::CreateKey, "create-key", "kms:CreateKey"),
            (Operation::CancelDeletion, "cancel-deletion", "kms:CancelKeyDeletion"),
        ];
        for (op, name, action) in all {
            assert_eq!((op.name(), op.aws_action()), (name, action));
            assert_eq!(op.kind().as_str(), name);
            let window = matches!(op, Operation::ScheduleDeletion { .. }).then_some(7);
            assert_eq!(Operation::from_name(name, window), Ok(op));
        }
        assert!(Operation::from_name("schedule-deletion", None).is_err());
        assert!(Operation::from_name("rotate-key", Some(7)).is_err());
        let e = Operation::from_name("emergency-disable", None).unwrap_err().to_string();
        assert!(e.contains("unknown operation \"emergency-disable\""), "{e}");
        assert_eq!(
            serde_json::to_value(Operation::ScheduleDeletion { window_days: 9 }).unwrap(),
            serde_json::json!({"name": "schedule-deletion", "window_days": 9})
        );
    }

    #[test]
    fn a_new_request_is_sealed() {
        let mut n = new(Operation::RotateKey);
        n.created = created() + Duration::milliseconds(750);
        let r = Request::new(n, &matrix()).expect("valid");
        assert_eq!(r.created, created(), "whole seconds");
        assert_eq!(r.expires, created() + Duration::seconds(DEFAULT_REQUEST_LIFETIME_SECS));
        assert_eq!(r.content_hash.len(), 64);
        assert!(r.content_hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(r.hash_matches());
        assert_eq!(
            r.calls(),
            [Call {
                action: "kms:RotateKeyOnDemand".into(),
                parameters: Map::from_iter([("KeyId".into(), KEY.into())])
            }]
        );
    }

    #[test]
    fn the_matrix_sets_the_lifetime() {
        let mut m = matrix();
        m.rules.get_mut(&ApprovalOp::RotateKey).unwrap().expires_secs = 7200;
        let r = Request::new(new(Operation::RotateKey), &m).unwrap();
        assert_eq!(r.expires, t("2026-11-23T11:10:00Z"));
    }

    #[test]
    fn schedule_deletion_carries_its_window() {
        let r = request(Operation::ScheduleDeletion { window_days: 7 });
        assert_eq!(r.parameters.get("PendingWindowInDays"), Some(&Value::from(7)));
        let call = &r.calls()[0];
        assert_eq!(call.action, "kms:ScheduleKeyDeletion");
        assert_eq!(
            call.parameters,
            serde_json::json!({"KeyId": KEY, "PendingWindowInDays": 7}).as_object().unwrap().clone()
        );
        let mut n = new(Operation::ScheduleDeletion { window_days: 7 });
        n.parameters.insert("PendingWindowInDays".into(), 30.into());
        let e = Request::new(n, &matrix()).unwrap_err();
        assert!(e.to_string().contains("takes only PendingWindowInDays = 7"), "{e}");
    }

    #[test]
    fn a_three_day_deletion_window_is_refused_by_the_policy() {
        let e = Request::new(new(Operation::ScheduleDeletion { window_days: 3 }), &matrix()).unwrap_err();
        assert_eq!(e, Refusal::WindowTooShort { days: 3, min: 7 });
        let m = e.to_string();
        assert!(
            m.contains("a 3-day deletion window") && m.contains("min_window_days = 7") && m.contains("004 §6"),
            "{m}"
        );
        let e = Request::new(new(Operation::ScheduleDeletion { window_days: 31 }), &matrix()).unwrap_err();
        assert_eq!(e, Refusal::WindowTooLong { days: 31, max: 30 });
        assert!(e.to_string().contains("max_window_days = 30"), "{e}");
        assert!(Request::new(new(Operation::ScheduleDeletion { window_days: 30 }), &matrix()).is_ok());
    }

    #[test]
    fn the_deletion_window_follows_the_policy_bounds() {
        let mut m = matrix();
        m.deletion_window.min_days = 14;
        m.deletion_window.max_days = 21;
        let e = Request::new(new(Operation::ScheduleDeletion { window_days: 7 }), &m).unwrap_err();
        assert!(e.to_string().contains("min_window_days = 14"), "{e}");
        let e = Request::new(new(Operation::ScheduleDeletion { window_days: 22 }), &m).unwrap_err();
        assert!(e.to_string().contains("max_window_days = 21"), "{e}");
        for d in [14, 21] {
            assert!(Request::new(new(Operation::ScheduleDeletion { window_days: d }), &m).is_ok(), "{d}");
        }
    }

    #[test]
    fn create_key_parameters_are_an_allowlist() {
        let mut n = new(Operation::CreateKey);
        let params = serde_json::json!({
            "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "Description": "replacement",
            "Policy": "{}", "Tags": [{"TagKey": "keydeck:replaces", "TagValue": KEY}], "MultiRegion": false,
        });
        n.parameters = params.as_object().unwrap().clone();
        let r = Request::new(n.clone(), &matrix()).expect("valid");
        assert_eq!(r.calls()[0].parameters, r.parameters, "CreateKey names no KeyId");
        for (k, v, msg) in [
            ("Origin", Value::from("EXTERNAL"), "takes no parameter \"Origin\""),
            ("BypassPolicyLockoutSafetyCheck", Value::from(true), "takes no parameter"),
            ("KeySpec", Value::from(1), "KeySpec must be a JSON string"),
            ("Tags", Value::from("x"), "Tags must be a JSON array"),
        ] {
            let mut bad = n.clone();
            bad.parameters.insert(k.into(), v);
            let e = Request::new(bad, &matrix()).unwrap_err().to_string();
            assert!(e.contains(msg), "{k}: {e}");
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        type Edit = fn(&mut NewRequest);
        let cases: [(&str, Edit, &str); 8] = [
            (
                "params",
                |n| {
                    n.parameters.insert("KeyId".into(), "x".into());
                },
                "rotate-key takes no parameters",
            ),
            ("id", |n| n.id = "../../etc".into(), "request id"),
            ("empty id", |n| n.id = String::new(), "request id"),
            (
                "alias",
                |n| n.target_arn = "arn:aws:kms:eu-north-1:123456789012:alias/drop-kyc-key".into(),
                "not a KMS key ARN",
            ),
            ("no region", |n| n.target_arn = "arn:aws:kms::123456789012:key/abc".into(), "not a KMS key ARN"),
            ("reason", |n| n.reason = "   ".into(), "needs a reason"),
            ("newline", |n| n.reason = "a\nb".into(), "one line"),
            ("escape", |n| n.reason = "a\x1b[2Jb".into(), "one line"),
        ];
        for (what, edit, msg) in cases {
            let mut n = new(Operation::RotateKey);
            edit(&mut n);
            let e = Request::new(n, &matrix()).unwrap_err();
            assert!(matches!(e, Refusal::BadRequest(_)), "{what}: {e:?}");
            assert!(e.to_string().contains(msg), "{what}: {e}");
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_ignores_insertion_order() {
        let v = serde_json::json!({"b": 1, "a": {"d": [true, null, "x"], "c": 1.5}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":1.5,"d":[true,null,"x"]},"b":1}"#);
        let mut one = new(Operation::CreateKey);
        one.parameters.insert("KeySpec".into(), "SYMMETRIC_DEFAULT".into());
        one.parameters.insert("Description".into(), "d".into());
        let mut two = new(Operation::CreateKey);
        two.parameters.insert("Description".into(), "d".into());
        two.parameters.insert("KeySpec".into(), "SYMMETRIC_DEFAULT".into());
        let (one, two) = (Request::new(one, &matrix()).unwrap(), Request::new(two, &matrix()).unwrap());
        assert_eq!(one.content_hash, two.content_hash);
        let c = one.canonical_content();
        assert!(
            c.starts_with(r#"{"created":"2026-11-23T09:10:00Z","expires":"2026-11-24T09:10:00Z","id":"req-1","#),
            "{c}"
        );
        assert!(!c.contains("content_hash"), "the hash covers everything but itself: {c}");
        assert!(one.canonical_json().contains(&format!(r#""content_hash":"{}""#, one.content_hash)));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let r = request(Operation::ScheduleDeletion { window_days: 7 });
        let edits: [fn(&mut Request); 7] = [
            |r| r.id = "req-2".into(),
            |r| r.operation = Operation::ScheduleDeletion { window_days: 8 },
            |r| r.target_arn = r.target_arn.replace("1234abcd", "9999abcd"),
            |r| {
                r.parameters.insert("PendingWindowInDays".into(), 8.into());
            },
            |r| r.reason.push('!'),
            |r| r.created -= Duration::seconds(1),
            |r| r.expires += Duration::hours(24),
        ];
        for (i, edit) in edits.into_iter().enumerate() {
            let mut changed = r.clone();
            edit(&mut changed);
            assert!(!changed.hash_matches(), "edit {i}");
            assert_ne!(changed.compute_hash(), r.content_hash, "edit {i}");
        }
    }

    #[test]
    fn requests_round_trip_and_foreign_entries_are_refused() {
        let r = request(Operation::ScheduleDeletion { window_days: 10 });
        let back: Request = serde_json::from_str(&r.canonical_json()).expect("round trip");
        assert_eq!(back, r);
        assert!(back.hash_matches());
        let mut v = serde_json::to_value(&r).unwrap();
        v["proposer"] = "arn:aws:iam::123456789012:user/security-lead".into();
        let e = serde_json::from_value::<Request>(v).unwrap_err().to_string();
        assert!(e.contains("unknown field `proposer`"), "a request never says who proposed it: {e}");
        assert!(serde_json::from_str::<Request>(r#"{"id":"x"}"#).is_err());
        let mut v = serde_json::to_value(&r).unwrap();
        v["operation"] = serde_json::json!({"name": "delete-everything"});
        assert!(serde_json::from_value::<Request>(v).is_err());
    }

    // ---- may_propose ------------------------------------------------------------------

    #[test]
    fn only_the_proposer_role_proposes() {
        let m = matrix();
        assert_eq!(may_propose(&Operation::RotateKey, KEY_ADMIN, &m), Ok(()));
        assert_eq!(may_propose(&Operation::RotateKey, ADMIN_SESSION, &m), Ok(()));
        let e = may_propose(&Operation::RotateKey, SECURITY_LEAD, &m).unwrap_err();
        assert_eq!(
            e,
            Refusal::NotInRole {
                identity: SECURITY_LEAD.into(),
                role: "key-admin".into(),
                operation: "rotate-key".into(),
                act: "propose it"
            }
        );
        assert!(
            e.to_string().contains("does not hold the key-admin role, which rotate-key needs to propose it"),
            "{e}"
        );
        assert!(matches!(may_propose(&Operation::CreateKey, "root", &m), Err(Refusal::NotAnIdentity { .. })));
        let root = "arn:aws:iam::123456789012:root";
        assert!(matches!(may_propose(&Operation::CreateKey, root, &m), Err(Refusal::NotAnIdentity { .. })));
    }

    // ---- may_approve ------------------------------------------------------------------

    #[test]
    fn the_ciso_approves_the_key_admins_rotation() {
        let r = request(Operation::RotateKey);
        assert_eq!(approve(&r, KEY_ADMIN, SECURITY_LEAD), Ok(()));
        assert_eq!(approve(&r, ADMIN_SESSION, SECURITY_LEAD), Ok(()));
    }

    #[test]
    fn a_proposer_cannot_approve_their_own_request() {
        let r = request(Operation::RotateKey);
        let e = approve(&r, KEY_ADMIN, KEY_ADMIN).unwrap_err();
        assert_eq!(e, Refusal::SelfApproval { proposer: KEY_ADMIN.into(), approver: KEY_ADMIN.into() });
        assert!(e.to_string().contains("004 §6 needs a second person"), "{e}");
        // Another session of the same role is the same principal.
        let e = approve(&r, ADMIN_SESSION, ADMIN_SESSION_2).unwrap_err();
        assert!(matches!(e, Refusal::SelfApproval { .. }), "{e:?}");
    }

    #[test]
    fn self_approval_is_refused_even_where_the_matrix_would_let_the_role_approve() {
        // Both roles held by the same role's sessions: only the principal check stops it.
        let m = matrix_from(concat!(
            "[approvals]\n",
            "roles = { admins = [\"arn:aws:iam::*:role/Ops\"], approvers = [\"arn:aws:iam::*:role/Ops\"] }\n",
            "rotate-key = { proposer = \"admins\", approver = \"approvers\" }\n",
            "schedule-deletion = { proposer = \"admins\", approver = \"approvers\" }\n",
            "create-key = { proposer = \"admins\", approver = \"approvers\" }\n",
            "cancel-deletion = { proposer = \"admins\" }\n",
            "emergency-disable = { proposer = \"admins\" }\n",
            "rotate-jwt-secret = { proposer = \"admins\" }\n",
        ));
        let r = Request::new(new(Operation::RotateKey), &m).unwrap();
        let (alice, bob) =
            ("arn:aws:sts::123456789012:assumed-role/Ops/alice", "arn:aws:sts::123456789012:assumed-role/Ops/bob");
        let e = may_approve(&r, &State::Proposed, alice, bob, &m, created()).unwrap_err();
        assert!(matches!(e, Refusal::SelfApproval { .. }), "{e:?}");
    }

    #[test]
    fn the_same_session_name_in_another_role_is_the_same_person() {
        // IAM Identity Center: one person, two permission sets, the session name is theirs.
        let m = matrix_from(concat!(
            "[approvals]\n",
            "roles = { a = [\"arn:aws:sts::*:assumed-role/AWSReservedSSO_KeyAdmin_1/*\"], c = [\"arn:aws:sts::*:assumed-role/AWSReservedSSO_Ciso_2/*\"] }\n",
            "rotate-key = { proposer = \"a\", approver = \"c\" }\n",
            "schedule-deletion = { proposer = \"a\", approver = \"c\" }\n",
            "create-key = { proposer = \"a\", approver = \"c\" }\n",
            "cancel-deletion = { proposer = \"a\" }\n",
            "emergency-disable = { proposer = \"c\" }\n",
            "rotate-jwt-secret = { proposer = \"c\" }\n",
        ));
        let r = Request::new(new(Operation::RotateKey), &m).unwrap();
        let p = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_KeyAdmin_1/alice@example.com";
        let a = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Ciso_2/Alice@example.com";
        let e = may_approve(&r, &State::Proposed, p, a, &m, created()).unwrap_err();
        assert_eq!(
            e,
            Refusal::SamePerson { proposer: p.into(), approver: a.into(), session: "alice@example.com".into() }
        );
        let other = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Ciso_2/bob@example.com";
        assert_eq!(may_approve(&r, &State::Proposed, p, other, &m, created()), Ok(()));
        // A user and a session named after them.
        let r = request(Operation::RotateKey);
        let mut m = matrix();
        m.roles.get_mut("ciso").unwrap().push(IdentityPattern::parse("arn:aws:iam::*:role/Break-Glass").unwrap());
        let e = may_approve(
            &r,
            &State::Proposed,
            KEY_ADMIN,
            "arn:aws:sts::123456789012:assumed-role/Break-Glass/key-admin",
            &m,
            created(),
        )
        .unwrap_err();
        assert!(matches!(e, Refusal::SamePerson { .. }), "{e:?}");
    }

    #[test]
    fn the_approver_must_hold_the_approver_role() {
        let r = request(Operation::RotateKey);
        let e = approve(&r, KEY_ADMIN, AUDITOR).unwrap_err();
        assert_eq!(
            e,
            Refusal::NotInRole {
                identity: AUDITOR.into(),
                role: "ciso".into(),
                operation: "rotate-key".into(),
                act: "approve it"
            }
        );
        assert!(e.to_string().contains("004 §6"), "{e}");
        // Another key-admin is a second person, but not the CISO.
        let e = approve(&r, KEY_ADMIN, ADMIN_SESSION).unwrap_err();
        assert!(matches!(&e, Refusal::NotInRole { role, .. } if role == "ciso"), "{e:?}");
        // Same user name, other account: refused as the same person, and not a CISO anyway.
        let foreign = "arn:aws:iam::999999999999:user/security-lead";
        assert_eq!(approve(&r, KEY_ADMIN, foreign), Ok(()), "the default matrix allows any account");
        let mut m = matrix();
        m.roles.insert(
            "ciso".into(),
            vec![IdentityPattern::parse("arn:aws:iam::123456789012:user/security-lead").unwrap()],
        );
        let e = may_approve(&r, &State::Proposed, KEY_ADMIN, foreign, &m, created()).unwrap_err();
        assert!(matches!(e, Refusal::NotInRole { .. }), "{e:?}");
    }

    #[test]
    fn the_attested_proposer_must_hold_the_proposer_role() {
        let r = request(Operation::RotateKey);
        let e = approve(&r, AUDITOR, SECURITY_LEAD).unwrap_err();
        assert!(matches!(&e, Refusal::NotInRole { role, act: "propose it", .. } if role == "key-admin"), "{e:?}");
        let e = approve(&r, "somebody", SECURITY_LEAD).unwrap_err();
        assert_eq!(e, Refusal::NotAnIdentity { identity: "somebody".into() });
        let e = approve(&r, KEY_ADMIN, "arn:aws:iam::123456789012:root").unwrap_err();
        assert!(matches!(e, Refusal::NotAnIdentity { .. }), "the root user approves nothing: {e:?}");
    }

    #[test]
    fn an_expired_request_cannot_be_approved() {
        let r = request(Operation::RotateKey);
        let m = matrix();
        let just_before = r.expires - Duration::seconds(1);
        assert_eq!(may_approve(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, just_before), Ok(()));
        let e = may_approve(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, r.expires).unwrap_err();
        assert_eq!(e, Refusal::Expired { expires: r.expires, lifetime: "24h".into() });
        assert!(e.to_string().contains("expired at 2026-11-24 09:10:00 UTC"), "{e}");
        let later = r.expires + Duration::days(3);
        assert!(matches!(
            may_approve(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, later),
            Err(Refusal::Expired { .. })
        ));
        let e = may_approve(&r, &State::Expired, KEY_ADMIN, SECURITY_LEAD, &m, created()).unwrap_err();
        assert!(matches!(e, Refusal::Expired { .. }), "a stored Expired state: {e:?}");
    }

    #[test]
    fn a_request_changed_since_it_was_proposed_is_refused() {
        let r = request(Operation::ScheduleDeletion { window_days: 30 });
        let mut changed = r.clone();
        changed.operation = Operation::ScheduleDeletion { window_days: 7 };
        changed.parameters.insert("PendingWindowInDays".into(), 7.into());
        let e = approve(&changed, KEY_ADMIN, SECURITY_LEAD).unwrap_err();
        assert_eq!(e, Refusal::ContentChanged { recorded: r.content_hash.clone(), actual: changed.compute_hash() });
        assert!(e.to_string().contains("changed since it was proposed"), "{e}");
        let mut retargeted = r.clone();
        retargeted.target_arn = retargeted.target_arn.replace("eu-north-1", "eu-west-1");
        assert!(matches!(approve(&retargeted, KEY_ADMIN, SECURITY_LEAD), Err(Refusal::ContentChanged { .. })));
        // Resealed with a fresh hash it passes this check: the store compares
        // `content_hash` with the hash AWS recorded at proposal.
        let mut resealed = changed.clone();
        resealed.content_hash = resealed.compute_hash();
        assert!(resealed.hash_matches());
        assert_ne!(resealed.content_hash, r.content_hash);
        // Shown: only the comparison with CloudTrail's record says it matches.
        let refused =
            Refusal::ContentChanged { recorded: r.content_hash.clone(), actual: resealed.content_hash.clone() };
        assert_eq!(Content::of(&resealed, Err(&refused)), Content::Changed, "its own fresh hash proves nothing");
        assert_eq!(Content::of(&changed, Ok(())), Content::Changed, "not even its own hash");
        assert_eq!(Content::of(&r, Ok(())), Content::Matches);
        assert_eq!(Content::of(&r, Err(&Refusal::BadRequest("no record".into()))), Content::Unverifiable);
    }

    #[test]
    fn only_a_proposed_request_is_approved_and_the_loser_hears_who_won() {
        let r = request(Operation::RotateKey);
        let m = matrix();
        let now = created();
        let approved = State::Approved { by: SECURITY_LEAD.into() };
        let e = may_approve(&r, &approved, KEY_ADMIN, SECURITY_LEAD, &m, now).unwrap_err();
        assert_eq!(e, Refusal::NotOpen { state: approved.clone() });
        assert_eq!(e.to_string(), format!("the request is already approved by {SECURITY_LEAD}"));
        // Even once it has also expired, the approval is what the loser hears.
        let e = may_approve(&r, &approved, KEY_ADMIN, SECURITY_LEAD, &m, r.expires).unwrap_err();
        assert!(e.to_string().contains("already approved by"), "{e}");
        for (state, says) in [
            (State::Rejected { by: SECURITY_LEAD.into(), reason: "not now".into() }, "rejected by"),
            (State::Withdrawn, "withdrawn by its proposer"),
            (
                State::Executed {
                    by: SECURITY_LEAD.into(),
                    outcome: Outcome::Succeeded {
                        aws_request_ids: vec!["r-1".into()],
                        summary: "rotated".into(),
                        made: None,
                    },
                },
                "already executed by",
            ),
            (
                State::Executed {
                    by: SECURITY_LEAD.into(),
                    outcome: Outcome::Failed { call: "kms:RotateKeyOnDemand".into(), error: "AccessDenied".into() },
                },
                "it failed: AccessDenied",
            ),
        ] {
            let e = may_approve(&r, &state, KEY_ADMIN, SECURITY_LEAD, &m, now).unwrap_err();
            assert!(matches!(e, Refusal::NotOpen { .. }) && e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn approval_rechecks_the_policy_as_it_is_now() {
        let r = request(Operation::ScheduleDeletion { window_days: 7 });
        let mut m = matrix();
        m.deletion_window.min_days = 14;
        let e = may_approve(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, created()).unwrap_err();
        assert_eq!(e, Refusal::WindowTooShort { days: 7, min: 14 });
    }

    #[test]
    fn single_control_is_carried_out_by_one_person_in_the_role() {
        let r = request(Operation::CancelDeletion);
        assert_eq!(approve(&r, KEY_ADMIN, KEY_ADMIN), Ok(()), "004 §6 single: the proposer may carry it out");
        assert_eq!(approve(&r, KEY_ADMIN, ADMIN_SESSION), Ok(()));
        let e = approve(&r, KEY_ADMIN, SECURITY_LEAD).unwrap_err();
        assert!(matches!(&e, Refusal::NotInRole { role, .. } if role == "key-admin"), "{e:?}");
    }

    #[test]
    fn dual_control_for_every_dual_operation_of_the_default_matrix() {
        let m = matrix();
        for op in [Operation::RotateKey, Operation::ScheduleDeletion { window_days: 7 }, Operation::CreateKey] {
            assert!(m.rule(op.kind()).is_dual(), "{op:?}");
            let r = request(op);
            assert!(matches!(approve(&r, KEY_ADMIN, KEY_ADMIN), Err(Refusal::SelfApproval { .. })), "{op:?}");
            assert_eq!(approve(&r, KEY_ADMIN, SECURITY_LEAD), Ok(()), "{op:?}");
        }
    }

    // ---- reject, withdraw, execute ----------------------------------------------------

    #[test]
    fn rejecting_is_for_the_approver_role_but_not_the_proposer() {
        let r = request(Operation::RotateKey);
        let m = matrix();
        let now = created();
        assert_eq!(may_reject(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, now), Ok(()));
        let e = may_reject(&r, &State::Proposed, KEY_ADMIN, KEY_ADMIN, &m, now).unwrap_err();
        assert_eq!(e, Refusal::OwnRequest { who: KEY_ADMIN.into() });
        assert!(e.to_string().contains("the proposer withdraws it"), "{e}");
        let e = may_reject(&r, &State::Proposed, KEY_ADMIN, AUDITOR, &m, now).unwrap_err();
        assert!(matches!(&e, Refusal::NotInRole { act: "reject it", .. }), "{e:?}");
        let e = may_reject(&r, &State::Withdrawn, KEY_ADMIN, SECURITY_LEAD, &m, now).unwrap_err();
        assert!(matches!(e, Refusal::NotOpen { .. }), "{e:?}");
        let e = may_reject(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, r.expires).unwrap_err();
        assert!(matches!(e, Refusal::Expired { .. }), "{e:?}");
    }

    #[test]
    fn only_the_proposer_withdraws() {
        let r = request(Operation::RotateKey);
        let m = matrix();
        let now = created();
        assert_eq!(may_withdraw(&r, &State::Proposed, KEY_ADMIN, KEY_ADMIN, &m, now), Ok(()));
        assert_eq!(may_withdraw(&r, &State::Proposed, ADMIN_SESSION, ADMIN_SESSION_2, &m, now), Ok(()), "same role");
        let e = may_withdraw(&r, &State::Proposed, KEY_ADMIN, SECURITY_LEAD, &m, now).unwrap_err();
        assert_eq!(e, Refusal::NotProposer { proposer: KEY_ADMIN.into(), who: SECURITY_LEAD.into() });
        let approved = State::Approved { by: SECURITY_LEAD.into() };
        let e = may_withdraw(&r, &approved, KEY_ADMIN, KEY_ADMIN, &m, now).unwrap_err();
        assert!(e.to_string().contains("already approved by"), "{e}");
    }

    #[test]
    fn only_the_approver_carries_out_what_they_approved() {
        let approved = State::Approved { by: SECURITY_LEAD.into() };
        assert_eq!(may_execute(&approved, SECURITY_LEAD), Ok(()));
        let e = may_execute(&approved, KEY_ADMIN).unwrap_err();
        assert_eq!(e, Refusal::NotApprover { approver: SECURITY_LEAD.into(), who: KEY_ADMIN.into() });
        let by_role = State::Approved { by: ADMIN_SESSION.into() };
        assert_eq!(may_execute(&by_role, ADMIN_SESSION_2), Ok(()), "the role's credentials, another session");
        let e = may_execute(&State::Proposed, SECURITY_LEAD).unwrap_err();
        assert!(e.to_string().contains("not approved"), "{e}");
        let done = State::Executed {
            by: SECURITY_LEAD.into(),
            outcome: Outcome::Succeeded { aws_request_ids: vec![], summary: String::new(), made: None },
        };
        assert!(matches!(may_execute(&done, SECURITY_LEAD), Err(Refusal::NotApproved { .. })), "never twice");
    }

    // ---- states -----------------------------------------------------------------------

    #[test]
    fn states_serialise_and_expire() {
        let r = request(Operation::RotateKey);
        let states = [
            State::Proposed,
            State::Approved { by: SECURITY_LEAD.into() },
            State::Rejected { by: SECURITY_LEAD.into(), reason: "no".into() },
            State::Withdrawn,
            State::Executed {
                by: SECURITY_LEAD.into(),
                outcome: Outcome::Failed { call: "kms:RotateKeyOnDemand".into(), error: "e".into() },
            },
            State::Expired,
        ];
        for s in &states {
            let back: State = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
            assert_eq!(&back, s);
        }
        assert_eq!(
            serde_json::to_value(&states[1]).unwrap(),
            serde_json::json!({"state": "approved", "by": SECURITY_LEAD})
        );
        assert_eq!(State::Proposed.at(&r, r.expires), State::Expired);
        assert_eq!(State::Proposed.at(&r, created()), State::Proposed);
        assert_eq!(states[1].at(&r, r.expires), states[1], "only an open proposal expires");
        let finals: Vec<bool> = states.iter().map(State::is_final).collect();
        assert_eq!(finals, [false, false, true, true, true, true]);
        let labels: Vec<&str> = states.iter().map(State::label).collect();
        assert_eq!(labels, ["proposed", "approved", "rejected", "withdrawn", "executed", "expired"]);
    }

    #[test]
    fn refusals_serialise_for_json_output() {
        let v = serde_json::to_value(Refusal::WindowTooShort { days: 3, min: 7 }).unwrap();
        assert_eq!(v, serde_json::json!({"refusal": "window-too-short", "days": 3, "min": 7}));
    }
}
