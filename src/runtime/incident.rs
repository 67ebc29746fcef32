//! Carrying out an incident: open one from AWS's view of its target, run a step
//! (the engine says what; the log gets the intent, fsynced, before the first call and
//! the outcome after the last), settle an outcome left unknown by a crash by reading
//! AWS, skip, acknowledge, and anchor the log's chain head with KMS after every step.
//! A step the policy's approval matrix gives dual approval (the replacement's CreateKey,
//! 004 §6) goes through the request store of `runtime::approvals`: running it proposes a
//! request (written ahead in the log, then stored), running it again reads the request and,
//! once the approver has carried it out under their own credentials, checks what it made
//! in AWS and records the step done. The command line and the console share it.
//!
//! Failpoints for the crash test: with `KEYDECK_FAILPOINT=STEP:after-intent` (or
//! `STEP:after-calls`) the process aborts right after writing that step's intent (or
//! right after its calls answered, before the outcome is written) — exactly what a
//! SIGKILL at that moment leaves behind. An approval-gated step has
//! `STEP:after-approval-requested` (the log names the request, the store has none yet)
//! and `STEP:after-propose` (both, before the anchor).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::aws::ops::{self, region_config};
use crate::aws::{AwsContext, AwsError};
use crate::domain::approval;
use crate::domain::identity::CallerIdentity;
use crate::domain::policy::Policy;
use crate::domain::runbook::{
    Approval, CallResult, Incident, IncidentTarget, Op, Opened, Plan, Refusal, Runbook, StepInput, StepRecord, Work,
    EXPECTATION_NOT_MET,
};
use crate::domain::trail::parse_event;
use crate::incident::log::{random_suffix, Access, Holder, IncidentId, IncidentLog, LogError, SigningAlgorithm};
use crate::runtime::approvals::{self, ApprovalError};

/// The error code a call gets when the endpoint could not be reached (no AWS code).
pub const UNREACHABLE_CODE: &str = "Unreachable";

/// ReEncrypt calls in flight at once over a file of ciphertexts.
pub const REENCRYPT_CONCURRENCY: usize = 32;
/// Time between LookupEvents pages: just under CloudTrail's 2 requests/s per region.
pub const LOOKUP_GAP: Duration = Duration::from_millis(510);

/// Why an incident action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The engine refuses: each reason in the operator's words.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Refusal>),
    #[error("{0}")]
    Replay(String),
    /// Not this operator's to do (004 §6: the one who asked for an approval cannot grant it).
    #[error("{0}")]
    NotAllowed(String),
    /// The operator's input cannot be used (an unreadable or malformed file, an unknown
    /// request id): nothing was journaled.
    #[error("{0}")]
    Input(String),
    /// CloudTrail has not delivered the record the approvals store needs yet.
    #[error("{0}")]
    NotYet(String),
    #[error("no runbook {0:?} in assets/runbooks")]
    NoRunbook(String),
    #[error("{0}")]
    Io(String),
}

/// An approvals-store failure as an incident failure: AWS errors stay AWS errors (exit
/// codes), the rest in the store's words.
fn approval_error(e: ApprovalError) -> IncidentError {
    match e {
        ApprovalError::Aws(a) => IncidentError::Aws(a),
        ApprovalError::Usage(m) | ApprovalError::NotFound(m) => IncidentError::Input(m),
        ApprovalError::NotYet(m) => IncidentError::NotYet(m),
        other => IncidentError::NotAllowed(other.to_string()),
    }
}

/// The embedded runbook with this id.
pub fn runbook(id: &str) -> Result<Runbook, IncidentError> {
    Runbook::embedded()
        .map_err(|e| IncidentError::Replay(e.to_string()))?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| IncidentError::NoRunbook(id.to_owned()))
}

/// The IAM principal a key policy names for this caller: a user's ARN as it is, an
/// assumed-role session's role (`arn:aws:iam::ACCOUNT:role/NAME`).
pub fn policy_principal(identity: &CallerIdentity) -> String {
    let arn = &identity.arn;
    if let Some(rest) = arn.strip_prefix(&format!("arn:aws:sts::{}:assumed-role/", identity.account)) {
        if let Some(role) = rest.split('/').next() {
            return format!("arn:aws:iam::{}:role/{role}", identity.account);
        }
    }
    arn.clone()
}

/// What opening needs besides AWS: who, the clock, the policy's incident settings.
pub struct OpenRequest<'a> {
    /// A key reference (alias with or without `alias/`, key id, ARN) or a secret's name
    /// or ARN.
    pub target: &'a str,
    pub secret: bool,
    pub reason: &'a str,
    pub detected_at: Option<DateTime<Utc>>,
    /// The alert that triggered the incident, if any.
    pub alert: Option<&'a str>,
}

/// An open incident, held for writing by this process.
pub struct Runner {
    pub log: IncidentLog,
    pub runbook: Runbook,
    /// Who acts (the STS ARN).
    pub identity: CallerIdentity,
    /// The anchor key's ARN (alias ARN or key ARN) when the policy names one.
    pub anchor_key: Option<String>,
    /// Who may propose and approve what (the policy's `[approvals]`, 004 §6).
    pub approvals: crate::domain::policy::ApprovalMatrix,
    /// The data dir: the approvals journal of a proposal lives there.
    pub data_dir: PathBuf,
}

/// The result of running (or settling) a step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub step: String,
    /// `done`, `failed`, `acknowledged`, `skipped`, `approval_requested`,
    /// `waiting_for_approval`, `approval_ended`, `settled_done`, `settled_not_done`,
    /// `outcome_unknown`.
    pub result: String,
    /// What an approval-gated step is waiting for, in the operator's words (which request,
    /// how to approve it).
    pub detail: Option<String>,
    pub results: Vec<CallResult>,
    /// A failure in the operator's words: which call, which key, what to do.
    pub error: Option<String>,
    /// Why the log could not be anchored (the step itself stands).
    pub anchor_problem: Option<String>,
}

impl Runner {
    /// Open a new incident on `req.target`: read the target from AWS (DescribeKey,
    /// ListAliases, ListResourceTags, GetKeyPolicy; or DescribeSecret) and write
    /// `incident.opened`.
    pub async fn open(
        ctx: &AwsContext,
        data_dir: &Path,
        policy: &Policy,
        identity: &CallerIdentity,
        req: &OpenRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Self, IncidentError> {
        let target = ops::describe_target(ctx, req.target, req.secret).await?;
        if let Some(open) = open_incident_on(data_dir, target.arn(), now) {
            return Err(IncidentError::NotAllowed(format!(
                "incident {open} is already open on {}: resume it (keydeck incident status {open}, or view 5 in the console: [ and ] switch incidents)",
                target.arn()
            )));
        }
        let runbook_id = match target {
            IncidentTarget::Key(_) => "kms-key-compromise",
            IncidentTarget::Secret(_) => "jwt-secret-compromise",
        };
        let runbook = runbook(runbook_id)?;
        let home = ctx.home().region.clone();
        let id = IncidentId::new(now, random_suffix());
        let mut note = req.reason.trim().to_owned();
        if let Some(a) = req.alert {
            note = format!("{note} (alert {a})");
        }
        let opened = Opened {
            incident_id: id.as_str().to_owned(),
            runbook: runbook.id.clone(),
            target,
            detected_at: req.detected_at.unwrap_or(now).min(now),
            note,
            notify_topic_arn: policy.incident.notify_topic_arn(&home, &identity.account),
        };
        let holder = Holder::this_process(&identity.arn, now);
        let log = IncidentLog::create(data_dir, opened, holder, now)?;
        let mut runner = Self {
            log,
            runbook,
            identity: identity.clone(),
            anchor_key: policy.incident.anchor_key_arn(&home, &identity.account),
            approvals: policy.approvals.clone(),
            data_dir: data_dir.to_owned(),
        };
        runner.anchor(ctx, now).await;
        Ok(runner)
    }

    /// Reopen an incident for writing (resuming where it stopped); `Ok(Err(view))` when
    /// another console holds it (read-only, with who holds it).
    pub fn resume(
        data_dir: &Path,
        id: &IncidentId,
        policy: &Policy,
        identity: &CallerIdentity,
        home_region: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Self, Box<Access>>, IncidentError> {
        let holder = Holder::this_process(&identity.arn, now);
        match IncidentLog::open(data_dir, id, holder)? {
            Access::Write(log) => {
                let runbook_id = log
                    .replay()
                    .opened()
                    .map(|o| o.runbook.clone())
                    .ok_or_else(|| IncidentError::Replay("the log has no incident.opened".into()))?;
                Ok(Ok(Self {
                    log,
                    runbook: runbook(&runbook_id)?,
                    identity: identity.clone(),
                    anchor_key: policy.incident.anchor_key_arn(home_region, &identity.account),
                    approvals: policy.approvals.clone(),
                    data_dir: data_dir.to_owned(),
                }))
            }
            other => Ok(Err(Box::new(other))),
        }
    }

    /// The engine's view of the log so far.
    pub fn incident(&self) -> Result<Incident<'_>, IncidentError> {
        Incident::replay(&self.runbook, &self.log.replay().incident_records())
            .map_err(|e| IncidentError::Replay(e.to_string()))
    }

    pub fn plan(&self, now: DateTime<Utc>) -> Result<Plan, IncidentError> {
        Ok(self.incident()?.plan(now))
    }

    fn append(&mut self, at: DateTime<Utc>, record: &StepRecord) -> Result<(), IncidentError> {
        self.log.append(at, record)?;
        Ok(())
    }

    /// Append `record` and anchor the log: why the anchor is missing, if it is.
    async fn append_anchored(
        &mut self,
        ctx: &AwsContext,
        clock: &impl Fn() -> DateTime<Utc>,
        record: &StepRecord,
    ) -> Result<Option<String>, IncidentError> {
        self.append(clock(), record)?;
        Ok(self.anchor(ctx, clock()).await)
    }

    /// Run `step` with the operator's input. An outcome left unknown by a crash is
    /// settled first (by reading AWS) and reported instead: run again to continue. A
    /// dual-approval step proposes its request, or follows the one it has (see
    /// `request_approval` and `follow_approval`).
    pub async fn run(
        &mut self,
        ctx: &AwsContext,
        step: &str,
        mut input: StepInput,
        clock: impl Fn() -> DateTime<Utc>,
    ) -> Result<StepReport, IncidentError> {
        if self.log.replay().unknown_outcomes().iter().any(|u| u.step == step) {
            return self.settle(ctx, step, &clock).await;
        }
        if input.principal_arn.is_none() {
            input.principal_arn = Some(policy_principal(&self.identity));
        }
        let work = {
            let inc = self.incident()?;
            inc.prepare(step, &input)
        };
        let work = match work {
            Ok(w) => w,
            Err(refusals) => {
                // 004 §6: the replacement's CreateKey goes through the approvals store.
                match refusals.as_slice() {
                    [Refusal::NeedsApproval { approval, ops }] => {
                        return self.request_approval(ctx, step, *approval, ops, &clock).await
                    }
                    [Refusal::WaitingForApproval { approval, request_id, ops }] => {
                        return self.follow_approval(ctx, step, *approval, request_id, ops, &clock).await
                    }
                    _ => return Err(IncidentError::Refused(refusals)),
                }
            }
        };
        let report = match work {
            Work::Acknowledge => {
                let note = input.note.clone().unwrap_or_default();
                self.append(clock(), &StepRecord::Acknowledged { step: step.to_owned(), note })?;
                StepReport {
                    step: step.to_owned(),
                    detail: None,
                    result: "acknowledged".into(),
                    results: vec![],
                    error: None,
                    anchor_problem: None,
                }
            }
            Work::Calls { attempt, ops } => {
                // A file that cannot be read, or a line that is no ciphertext, is the
                // operator's to fix: refuse before the intent, so the log holds no attempt
                // that could not have been made and no output file is started.
                for op in &ops {
                    if let Op::ReEncrypt { input_file, .. } = op {
                        check_ciphertext_file(input_file).map_err(IncidentError::Input)?;
                    }
                }
                let intent = StepRecord::Intent { step: step.to_owned(), attempt, ops: ops.clone() };
                self.append(clock(), &intent)?;
                failpoint(step, "after-intent");
                let mut results = Vec::new();
                let mut ok = true;
                for op in &ops {
                    let r = self.call(ctx, op, attempt).await;
                    let failed = r.error_code.is_some();
                    results.push(r);
                    if failed {
                        ok = false;
                        break;
                    }
                }
                failpoint(step, "after-calls");
                let error = results.iter().find_map(|r| r.error.clone());
                // The endpoint stopped answering during a call: whether it took effect is
                // unknown, exactly as after a crash. No outcome is written; the next run
                // settles the step by reading AWS instead of repeating the calls blindly.
                if results.last().is_some_and(|r| r.error_code.as_deref() == Some(UNREACHABLE_CODE)) {
                    return Ok(StepReport {
                        step: step.to_owned(),
                        detail: None,
                        result: "outcome_unknown".into(),
                        results,
                        error: error.map(|e| {
                            format!("{e} — the outcome is unknown: run the step again to settle it by reading AWS")
                        }),
                        anchor_problem: None,
                    });
                }
                let outcome = StepRecord::Outcome { step: step.to_owned(), attempt, ok, results: results.clone() };
                self.append(clock(), &outcome)?;
                StepReport {
                    step: step.to_owned(),
                    detail: None,
                    result: if ok { "done" } else { "failed" }.into(),
                    results,
                    error,
                    anchor_problem: None,
                }
            }
        };
        let anchor_problem = self.anchor(ctx, clock()).await;
        Ok(StepReport { anchor_problem, ..report })
    }

    /// Make one op; a response that fails the op's expectation becomes a failure
    /// ([`EXPECTATION_NOT_MET`]).
    async fn call(&self, ctx: &AwsContext, op: &Op, attempt: u32) -> CallResult {
        let mut r = match op {
            Op::ReEncrypt { source_key_id, destination_key_id, input_file, output_file } => {
                re_encrypt_file(ctx, source_key_id, destination_key_id, input_file, output_file, attempt).await
            }
            Op::LookupEvents { region, resource_name, start_time, end_time } => {
                let rc = region_config(ctx, Some(region));
                let end = end_time.unwrap_or_else(Utc::now);
                match ops::lookup_all(&rc, resource_name, *start_time, end, LOOKUP_GAP).await {
                    Ok((records, calls, throttled)) => {
                        let events: Vec<_> = records.iter().filter_map(|r| parse_event(r).ok()).collect();
                        let scope = crate::domain::scope::scope(&events);
                        CallResult {
                            call: op.call().name().to_owned(),
                            request_id: None,
                            fields: json!({ "Scope": scope, "Calls": calls, "Throttled": throttled }),
                            error_code: None,
                            error: None,
                        }
                    }
                    Err(e) => CallResult {
                        call: op.call().name().to_owned(),
                        request_id: None,
                        fields: Value::Null,
                        error_code: Some(e.code.clone().unwrap_or_else(|| format!("{:?}", e.kind))),
                        error: Some(e.to_string()),
                    },
                }
            }
            _ => ops::execute(ctx, op).await,
        };
        if r.error_code.is_none() {
            if let Some(why) = op.unmet_expectation(&r.fields) {
                r.error_code = Some(EXPECTATION_NOT_MET.into());
                r.error = Some(format!("{}: {why}", op.describe()));
            }
        }
        r
    }

    /// Settle `step`'s unknown outcome by reading AWS: done when every changing call's
    /// effect is visible (then nothing is called again), else not done (the next run
    /// makes a new attempt). A step without changing calls is not done: its reads are
    /// made again.
    pub async fn settle(
        &mut self,
        ctx: &AwsContext,
        step: &str,
        clock: &impl Fn() -> DateTime<Utc>,
    ) -> Result<StepReport, IncidentError> {
        let Some(u) = self.log.replay().unknown_outcomes().into_iter().find(|u| u.step == step) else {
            return Err(IncidentError::Replay(format!("step {step} has no unknown outcome")));
        };
        let mut observed = serde_json::Map::new();
        // A step of reads only (scope, verify) leaves nothing in AWS to observe: what it
        // is for is its answers, and those were lost. Not done: the next run reads again.
        let mut done = u.ops.iter().any(|op| op.call().writes());
        for (i, op) in u.ops.iter().enumerate() {
            if !op.call().writes() {
                continue;
            }
            match ops::observe(ctx, op).await? {
                Some(v) => {
                    // What CreateKey made is what later steps need (its KeyMetadata).
                    if let Some(m) = v.get("KeyMetadata") {
                        observed.insert("KeyMetadata".into(), m.clone());
                    }
                    observed.insert(format!("{i}:{}", op.call().name()), v);
                }
                None => {
                    done = false;
                    observed.insert(format!("{i}:{}", op.call().name()), Value::Null);
                }
            }
        }
        let rec = StepRecord::Resolved {
            step: step.to_owned(),
            attempt: u.attempt,
            settled_done: done,
            observed: Value::Object(observed),
        };
        let anchor_problem = self.append_anchored(ctx, clock, &rec).await?;
        Ok(StepReport {
            step: step.to_owned(),
            detail: None,
            result: if done { "settled_done" } else { "settled_not_done" }.into(),
            results: vec![],
            error: None,
            anchor_problem,
        })
    }

    /// Skip `step` with a reason (the engine decides whether it may be skipped).
    pub async fn skip(
        &mut self,
        ctx: &AwsContext,
        step: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<StepReport, IncidentError> {
        self.incident()?.may_skip(step, reason).map_err(IncidentError::Refused)?;
        self.append(now, &StepRecord::Skipped { step: step.to_owned(), reason: reason.trim().to_owned() })?;
        let anchor_problem = self.anchor(ctx, now).await;
        Ok(StepReport {
            step: step.to_owned(),
            result: "skipped".into(),
            detail: None,
            results: vec![],
            error: None,
            anchor_problem,
        })
    }

    /// The step's approval has no open request: adopt one the store already holds for
    /// this incident and step (a crash between storing it and the log, or a second run),
    /// else — when this operator holds the matrix's proposer role — write
    /// `approval.requested` with a new request id (fsynced) and then store that request.
    /// Never two requests: the store is searched first, and the id is in the log before the
    /// store has it (a re-run proposes the same id).
    async fn request_approval(
        &mut self,
        ctx: &AwsContext,
        step: &str,
        approval: Approval,
        ops: &[Op],
        clock: &impl Fn() -> DateTime<Utc>,
    ) -> Result<StepReport, IncidentError> {
        let (operation, _) =
            approval::step_request(approval, ops).map_err(|r| IncidentError::NotAllowed(r.to_string()))?;
        let incident_id = self.log.id().as_str().to_owned();
        let target_arn = self.incident()?.opened().target.arn().to_owned();
        // Requests this log has already seen end are not taken up again.
        let ended: Vec<String> = (self.log.replay().incident_records().into_iter())
            .filter_map(|r| match r.record {
                StepRecord::ApprovalEnded { request_id, .. } => Some(request_id),
                _ => None,
            })
            .collect();
        let stored = approvals::for_step(ctx, &incident_id, step).await.map_err(approval_error)?;
        let adopt = stored.iter().rev().find(|s| {
            let open = match s.state.as_str() {
                "proposed" | "approved" => true,
                "executed" => s.result.is_some(),
                _ => false,
            };
            open && !ended.contains(&s.request.id) && approval::is_step_request(&s.request, approval, ops, &target_arn)
        });
        if let Some(found) = adopt {
            let request = &found.request;
            let rec = StepRecord::ApprovalRequested {
                step: step.to_owned(),
                approval,
                ops: ops.to_vec(),
                request_id: request.id.clone(),
            };
            let anchor_problem = self.append_anchored(ctx, clock, &rec).await?;
            return Ok(StepReport {
                step: step.to_owned(),
                result: "approval_requested".into(),
                detail: Some(format!("{} (found in the store)", self.waiting_text(&request.id))),
                results: vec![],
                error: None,
                anchor_problem,
            });
        }
        self.may_propose(operation, step)?;
        let request_id = approvals::new_id(clock());
        let rec = StepRecord::ApprovalRequested {
            step: step.to_owned(),
            approval,
            ops: ops.to_vec(),
            request_id: request_id.clone(),
        };
        self.append(clock(), &rec)?;
        failpoint(step, "after-approval-requested");
        self.propose(ctx, step, approval, ops, &request_id, clock()).await?;
        failpoint(step, "after-propose");
        let anchor_problem = self.anchor(ctx, clock()).await;
        Ok(StepReport {
            step: step.to_owned(),
            result: "approval_requested".into(),
            detail: Some(self.waiting_text(&request_id)),
            results: vec![],
            error: None,
            anchor_problem,
        })
    }

    /// This operator may propose `operation` (004 §6: the matrix's proposer role), or what
    /// to do instead.
    fn may_propose(&self, operation: approval::Operation, step: &str) -> Result<(), IncidentError> {
        approval::may_propose(&operation, &self.identity.arn, &self.approvals).map_err(|_| {
            let rule = self.approvals.rule(operation.kind());
            IncidentError::NotAllowed(format!(
                "{} is proposed by a {} and approved by a {} (004 §6; the policy's [approvals.{}]), and {} is not a {}: a {} runs `keydeck --allow-write incident run {} --step {step}` on this machine",
                operation.name(),
                rule.proposer,
                rule.approver_role(),
                operation.name(),
                self.identity.arn,
                rule.proposer,
                rule.proposer,
                self.log.id().as_str(),
            ))
        })
    }

    /// Store request `request_id` for the step's ops (the log already names it).
    async fn propose(
        &self,
        ctx: &AwsContext,
        step: &str,
        approval: Approval,
        ops: &[Op],
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), IncidentError> {
        let (operation, parameters) =
            approval::step_request(approval, ops).map_err(|r| IncidentError::NotAllowed(r.to_string()))?;
        let inc = self.incident()?;
        let opened = inc.opened();
        let note: String = opened.note.chars().map(|c| if c.is_control() { ' ' } else { c }).take(600).collect();
        let reason = format!(
            "incident {}: {} for {} ({}): {note}",
            opened.incident_id,
            self.runbook.steps.iter().find(|s| s.id == step).map_or(step, |s| s.title.as_str()),
            opened.target.confirm_text(),
            opened.target.arn(),
        );
        let p = approvals::StepProposal {
            id: request_id,
            operation,
            target_arn: opened.target.arn(),
            parameters,
            reason: &reason,
            incident: &opened.incident_id,
            step,
        };
        approvals::propose_for_step(ctx, &self.data_dir, &self.approvals, &self.identity, p, now)
            .await
            .map_err(approval_error)?;
        Ok(())
    }

    /// "waiting for approval: request ID (approve with …)".
    fn waiting_text(&self, request_id: &str) -> String {
        let alias = self.incident().map(|i| i.opened().target.confirm_text().to_owned()).unwrap_or_default();
        crate::domain::runbook::StepState::waiting_text(request_id, &alias)
    }

    /// The step's request `request_id` is open in the log: read it from the store. Still
    /// proposed (or approved and being carried out): waiting. Executed: check what it made
    /// in AWS (DescribeKey, ListResourceTags) and record `approval.executed`, so the next
    /// steps use that key. Rejected, withdrawn, expired, or executed and refused by AWS:
    /// record `approval.ended` (by whom, why); running the step again requests anew. Not
    /// in the store (a crash after the log named it): propose it now, under that id.
    async fn follow_approval(
        &mut self,
        ctx: &AwsContext,
        step: &str,
        approval: Approval,
        request_id: &str,
        ops: &[Op],
        clock: &impl Fn() -> DateTime<Utc>,
    ) -> Result<StepReport, IncidentError> {
        let report = |result: &str, detail: Option<String>, error: Option<String>| StepReport {
            step: step.to_owned(),
            result: result.to_owned(),
            detail,
            results: vec![],
            error,
            anchor_problem: None,
        };
        let view = match approvals::show(ctx, request_id).await {
            Ok(v) => v,
            Err(ApprovalError::NotFound(_)) => {
                let (operation, _) =
                    approval::step_request(approval, ops).map_err(|r| IncidentError::NotAllowed(r.to_string()))?;
                self.may_propose(operation, step)?;
                self.propose(ctx, step, approval, ops, request_id, clock()).await?;
                let anchor_problem = self.anchor(ctx, clock()).await;
                let detail = Some(format!("{} (stored now: the log named it first)", self.waiting_text(request_id)));
                return Ok(StepReport { anchor_problem, ..report("approval_requested", detail, None) });
            }
            Err(e) => return Err(approval_error(e)),
        };
        let target_arn = self.incident()?.opened().target.arn().to_owned();
        if !approval::is_step_request(&view.request, approval, ops, &target_arn) {
            return Err(IncidentError::NotAllowed(format!(
                "request {request_id} in the store does not ask for this step's calls: reject or withdraw it (keydeck approvals show {request_id})"
            )));
        }
        let by = view.by.clone();
        let who = || by.clone().unwrap_or_else(|| "(CloudTrail has not said who yet)".into());
        let ended = match view.state.as_str() {
            "proposed" => {
                let detail = match &view.proposer {
                    Some(_) => self.waiting_text(request_id),
                    None => format!("{} — {}", self.waiting_text(request_id), approvals::WAITING_FOR_PROPOSER),
                };
                return Ok(report("waiting_for_approval", Some(detail), None));
            }
            "approved" | "executed" => {
                // What the approver made: the store's claim, else the key carrying the
                // incident's tags (an approver stopped between CreateKey and the store).
                let made = match &view.result {
                    Some(arn) => Some(arn.clone()),
                    None => ops::observe(ctx, &ops[0])
                        .await?
                        .and_then(|v| v.pointer("/KeyMetadata/Arn").and_then(Value::as_str).map(str::to_owned)),
                };
                match made {
                    Some(arn) => match ops::created_key(ctx, &ops[0], &arn).await? {
                        Ok(fields) => {
                            let results = vec![CallResult {
                                call: ops[0].call().name().to_owned(),
                                request_id: None,
                                fields,
                                error_code: None,
                                error: None,
                            }];
                            let rec = StepRecord::ApprovalExecuted {
                                step: step.to_owned(),
                                request_id: request_id.to_owned(),
                                approver: by.clone(),
                                results: results.clone(),
                            };
                            let anchor_problem = self.append_anchored(ctx, clock, &rec).await?;
                            let detail = format!("done — request {request_id} carried out by {}: {arn}", who());
                            return Ok(StepReport {
                                results,
                                anchor_problem,
                                ..report("done", Some(detail), None)
                            });
                        }
                        Err(why) => {
                            return Err(IncidentError::NotAllowed(format!(
                                "request {request_id} says it made {arn}, but {why}: not recorded; check `keydeck approvals show {request_id}`"
                            )))
                        }
                    },
                    None if view.state == "approved" => {
                        let detail = format!("request {request_id} approved by {}: being carried out", who());
                        return Ok(report("waiting_for_approval", Some(detail), None));
                    }
                    None => ("failed", view.note.clone().unwrap_or_else(|| "no key was made".into())),
                }
            }
            "rejected" => ("rejected", view.note.clone().unwrap_or_default()),
            "withdrawn" => ("withdrawn", "withdrawn by its proposer".to_owned()),
            "expired" => ("expired", format!("nobody approved it before {}", view.request.expires.to_rfc3339())),
            other => {
                return Err(IncidentError::NotAllowed(format!(
                    "request {request_id} is {other}: see `keydeck approvals show {request_id}`"
                )))
            }
        };
        let (state, reason) = ended;
        // Who rejected (or withdrew, or carried it out) is CloudTrail's to say.
        if by.is_none() && state != "expired" {
            return Ok(report(
                "waiting_for_approval",
                Some(format!("request {request_id} is {state}; waiting for CloudTrail to attest by whom: run again")),
                None,
            ));
        }
        let rec = StepRecord::ApprovalEnded {
            step: step.to_owned(),
            request_id: request_id.to_owned(),
            state: state.to_owned(),
            by: by.clone(),
            reason: reason.clone(),
        };
        let anchor_problem = self.append_anchored(ctx, clock, &rec).await?;
        let by_text = by.map(|b| format!(" by {b}")).unwrap_or_default();
        let error = format!("request {request_id} {state}{by_text}: {reason} — run the step again to request it anew");
        Ok(StepReport { anchor_problem, ..report("approval_ended", None, Some(error)) })
    }

    /// Sign the log's chain head with the anchor key (`kms:Sign`, MessageType DIGEST,
    /// ECDSA_SHA_256) and record it. Answers why not, when it could not (the step
    /// stands; the next anchor covers it).
    pub async fn anchor(&mut self, ctx: &AwsContext, now: DateTime<Utc>) -> Option<String> {
        let key = self.anchor_key.clone()?;
        let req = self.log.anchor_request();
        match ops::sign_digest(ctx, &key, &req.message).await {
            Ok((signature, key_arn)) => {
                match self.log.anchor(now, &req, &key_arn, SigningAlgorithm::EcdsaSha256, &signature) {
                    Ok(_) => None,
                    Err(e) => Some(format!("anchor not recorded: {e}")),
                }
            }
            Err(e) => Some(format!("log not anchored: {e}")),
        }
    }
}

fn failpoint(step: &str, at: &str) {
    if std::env::var("KEYDECK_FAILPOINT").is_ok_and(|v| v == format!("{step}:{at}")) {
        tracing::warn!("failpoint {step}:{at}: aborting");
        std::process::abort();
    }
}

/// Complete lines already in `path` (a crash can leave a partial last line: it is cut).
fn complete_lines(path: &Path) -> std::io::Result<usize> {
    keep_lines(path, usize::MAX)
}

/// Keep at most `max` complete lines of `path` (cutting a partial last line, or the lines
/// after the `max`-th) and answer how many it holds. Reads the file in blocks, so memory
/// does not grow with the file.
fn keep_lines(path: &Path, max: usize) -> std::io::Result<usize> {
    use std::io::Read;
    let mut f = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let (mut lines, mut pos, mut keep) = (0usize, 0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                if lines == max {
                    break 'read;
                }
                lines += 1;
                keep = pos + i as u64 + 1;
            }
        }
        pos += n as u64;
    }
    if keep < f.metadata()?.len() {
        f.set_len(keep)?;
        f.sync_all()?;
    }
    Ok(lines)
}

/// Every line of `input` is a base64 CiphertextBlob ([`ops::decode_ciphertext`]). Errors:
/// the file cannot be read, is empty, or the first bad line (its number and why).
fn check_ciphertext_file(input: &str) -> Result<(), String> {
    let file = std::fs::File::open(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    let mut lines = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {input} line {}: {e}", i + 1))?;
        ops::decode_ciphertext(&line).map_err(|e| {
            format!("{input} line {}: {e}; the file holds one ciphertext per line (AWS CLI: --output text)", i + 1)
        })?;
        lines += 1;
    }
    if lines == 0 {
        return Err(format!("{input} is empty: nothing to re-encrypt"));
    }
    Ok(())
}

/// Open one of a re-encryption's output files for writing (appending unless `truncate`):
/// the operator's alone (0600, as the journal), also when it existed before.
fn open_private(path: &str, truncate: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(!truncate)
        .truncate(truncate)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// `OUTPUT.requestids` beside a re-encryption's output: line i is the request id of the
/// ReEncrypt that wrote output line i (`-` where a crash lost it).
fn request_ids_path(output: &str) -> String {
    format!("{output}.requestids")
}

/// Re-encrypt every line (one base64 CiphertextBlob each) of `input` from `source` to
/// `destination`, writing the new blobs line for line to `output` (never over the input).
/// Resumes after the lines a crashed attempt already wrote. Each item's request id goes
/// line for line to `OUTPUT.requestids` (not into the result: memory and the log record
/// stay the same size whatever the file's length); the first failure stops the file and
/// names its line.
async fn re_encrypt_file(
    ctx: &AwsContext,
    source: &str,
    destination: &str,
    input: &str,
    output: &str,
    attempt: u32,
) -> CallResult {
    let call = "kms:ReEncrypt";
    let fail = |code: &str, msg: String| CallResult {
        call: call.into(),
        request_id: None,
        fields: Value::Null,
        error_code: Some(code.into()),
        error: Some(msg),
    };
    if Path::new(input) == Path::new(output) {
        return fail("keydeck.Client", format!("{output}: the output would overwrite the input"));
    }
    let done_before = if attempt > 1 { complete_lines(Path::new(output)) } else { Ok(0) };
    let done_before = match done_before {
        Ok(n) => n,
        Err(e) => return fail("keydeck.Io", format!("{output}: {e}")),
    };
    let file = match std::fs::File::open(input) {
        Ok(f) => f,
        Err(e) => return fail("keydeck.Io", format!("{input}: {e}")),
    };
    let out = open_private(output, done_before == 0);
    let mut out = match out {
        Ok(f) => BufWriter::new(f),
        Err(e) => return fail("keydeck.Io", format!("{output}: {e}")),
    };
    // The request ids file holds exactly `done_before` lines before this attempt adds any.
    let ids_file = request_ids_path(output);
    let ids = (|| {
        let have = if done_before > 0 { keep_lines(Path::new(&ids_file), done_before)? } else { 0 };
        let f = open_private(&ids_file, have == 0)?;
        let mut w = BufWriter::new(f);
        for _ in have..done_before {
            w.write_all(b"-\n")?;
        }
        Ok::<_, std::io::Error>(w)
    })();
    let mut ids = match ids {
        Ok(w) => w,
        Err(e) => return fail("keydeck.Io", format!("{ids_file}: {e}")),
    };
    let kms = ops::ReEncrypter::new(&region_config(ctx, source.split(':').nth(3)));
    let kms = &kms;
    let lines = BufReader::new(file).lines().enumerate().skip(done_before);
    let mut results = stream::iter(lines)
        .map(|(i, line)| async move {
            match line {
                Ok(l) => (i, kms.re_encrypt_one(source, destination, &l).await),
                Err(e) => (i, Err(fail_io(call, &format!("{input} line {}: {e}", i + 1)))),
            }
        })
        .buffered(REENCRYPT_CONCURRENCY);
    let mut written = done_before;
    let mut failure: Option<(usize, CallResult)> = None;
    while let Some((i, r)) = results.next().await {
        match r {
            Ok((blob, rid)) => {
                if let Err(e) = writeln!(out, "{blob}") {
                    failure = Some((i, fail_io(call, &format!("{output}: {e}"))));
                    break;
                }
                written += 1;
                // A lost request id is not worth stopping the file for: the output stands.
                let _ = writeln!(ids, "{}", rid.as_deref().unwrap_or("-"));
                if written % 1000 == 0 {
                    let _ = ids.flush();
                    let _ = out.flush();
                }
            }
            Err(e) => {
                failure = Some((i, e));
                break;
            }
        }
    }
    drop(results);
    let _ = ids.flush().and_then(|()| ids.get_ref().sync_all());
    let synced = out.flush().and_then(|()| out.get_ref().sync_all());
    let mut fields = json!({
        "InputFile": input,
        "OutputFile": output,
        "RequestIdsFile": ids_file,
        "ResumedAfterLine": done_before,
        "ReEncrypted": written,
    });
    if let Err(e) = synced {
        return fail("keydeck.Io", format!("{output}: {e}"));
    }
    match failure {
        None => CallResult { call: call.into(), request_id: None, fields, error_code: None, error: None },
        Some((line, mut e)) => {
            if let Some(m) = fields.as_object_mut() {
                m.insert("FailedLine".into(), json!(line + 1));
            }
            e.fields = fields;
            e.error = e.error.map(|m| format!("line {} of {input}: {m}", line + 1));
            e
        }
    }
}

fn fail_io(call: &str, msg: &str) -> CallResult {
    CallResult {
        call: call.into(),
        request_id: None,
        fields: Value::Null,
        error_code: Some("keydeck.Io".into()),
        error: Some(msg.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_of_users_and_role_sessions() {
        let id = |arn: &str| CallerIdentity { arn: arn.into(), account: "123456789012".into(), user_id: "x".into() };
        assert_eq!(
            policy_principal(&id("arn:aws:sts::123456789012:assumed-role/KeyAdmin/alice")),
            "arn:aws:iam::123456789012:role/KeyAdmin"
        );
        assert_eq!(policy_principal(&id("arn:aws:iam::123456789012:user/bob")), "arn:aws:iam::123456789012:user/bob");
    }

    #[test]
    fn a_torn_output_line_is_cut_and_not_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("out");
        std::fs::write(&p, "AAA\nBBB\nCC").expect("write");
        assert_eq!(complete_lines(&p).expect("count"), 2);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "AAA\nBBB\n");
        assert_eq!(complete_lines(&dir.path().join("missing")).expect("count"), 0);
    }

    #[test]
    fn lines_past_the_output_are_cut_from_the_request_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("ids");
        std::fs::write(&p, "r1\nr2\nr3\nr4").expect("write");
        assert_eq!(keep_lines(&p, 2).expect("keep"), 2);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "r1\nr2\n");
        assert_eq!(keep_lines(&p, 5).expect("keep"), 2, "fewer lines than asked: all kept");
        assert_eq!(keep_lines(&p, 0).expect("keep"), 0);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "");
    }
}

/// What the console's incident task is asked to do.
#[derive(Debug)]
pub enum WorkerCmd {
    /// Show the newest unfinished incident of the data dir (held for writing with
    /// `--allow-write`), and list the open ones.
    LoadLatest,
    /// `Action::IncidentShow` shows that incident the same way, letting go of the one
    /// held before.
    Act(crate::app::Action),
}

/// The console's incident task: it shows an incident by watching its log (re-read every
/// 2 s, no lock), takes the log's write lock only to carry out an action (run, skip,
/// settle, record an executed request) and lets go of it after, so whoever drives the
/// incident — this console, another one, a terminal — is never locked out by a console
/// that only shows it. Answers with `Msg::IncidentLoaded` (the log as it stands) and
/// `Msg::IncidentDone` (one line).
#[allow(clippy::too_many_arguments)]
pub async fn worker(
    ctx: AwsContext,
    write: bool,
    data_dir: PathBuf,
    policy: std::sync::Arc<Policy>,
    identity: CallerIdentity,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<WorkerCmd>,
    tx: tokio::sync::mpsc::UnboundedSender<crate::app::Msg>,
) {
    use crate::app::{Action, Msg};
    // Held only while an action runs (None between actions).
    let mut runner: Option<Runner> = None;
    // The incident on screen: re-read every 2 s to show what others write.
    let mut watching: Option<(String, usize)> = None;
    let mut every = tokio::time::interval(Duration::from_secs(2));
    let mut ticks: u64 = 0;
    let home = ctx.home().region.clone();
    let loaded = loaded_msg;
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(c) => c,
                None => break,
            },
            _ = every.tick() => {
                if let (None, Some((id, seen))) = (&runner, &mut watching) {
                    if let Some(msg) = reload(&data_dir, id, *seen) {
                        if let Msg::IncidentLoaded { records, .. } = &msg {
                            *seen = records.len();
                        }
                        let _ = tx.send(msg);
                    }
                }
                // A step waiting for its request in the approvals store (004 §6): every
                // third tick, read the request; once the approver has carried it out (or it
                // ended), take the log back and let the step record it.
                ticks += 1;
                if let (true, None, Some((id, _)), true) = (write, &runner, &watching, ticks.is_multiple_of(3)) {
                    if let Some((r, done)) = follow_request(&ctx, &data_dir, &policy, &identity, &home, id).await {
                        let _ = tx.send(loaded(&r));
                        let _ = tx.send(Msg::IncidentDone(done));
                        watching = Some((id.clone(), r.log.replay().incident_records().len()));
                    }
                }
                continue;
            }
        };
        let show = Show { ctx: &ctx, data_dir: &data_dir };
        let act = match cmd {
            WorkerCmd::LoadLatest => {
                if let Some(msg) = show.open_list(&tx).await.into_iter().next() {
                    show.watch(msg, &mut watching, &tx);
                }
                continue;
            }
            WorkerCmd::Act(Action::IncidentShow { id }) => {
                show.open_list(&tx).await;
                match show.read(&id, &runner) {
                    Ok(Some(msg)) => show.watch(msg, &mut watching, &tx),
                    Ok(None) => {
                        if let Some(r) = &runner {
                            let _ = tx.send(loaded(r));
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::IncidentDone(Err(e)));
                    }
                }
                continue;
            }
            WorkerCmd::Act(a) => a,
        };
        // The incident an action is about, held for writing (resumed if need be).
        let id = match &act {
            Action::IncidentRun { id, .. } | Action::IncidentSkip { id, .. } => Some(id.clone()),
            _ => None,
        };
        if let Some(id) = id {
            if runner.as_ref().is_none_or(|r| r.log.id().as_str() != id) {
                runner = None;
                let resumed = id.parse::<IncidentId>().map_err(|e| e.to_string()).and_then(|iid| {
                    Runner::resume(&data_dir, &iid, &policy, &identity, &home, Utc::now()).map_err(|e| e.to_string())
                });
                match resumed {
                    Ok(Ok(r)) => runner = Some(r),
                    Ok(Err(access)) => {
                        let held = match *access {
                            Access::ReadOnly { held_by: Some(h), .. } => h.to_string(),
                            _ => "another process".into(),
                        };
                        let _ = tx.send(Msg::IncidentDone(Err(format!("read-only: {held} holds incident {id}"))));
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::IncidentDone(Err(e)));
                        continue;
                    }
                }
            }
        }
        let result = match (act, runner.as_mut()) {
            (Action::IncidentStart { target, secret, reason, alert }, _) => {
                // An incident already open on this key: show it instead of a second one.
                match open_incident_on(&data_dir, &target, Utc::now()) {
                    Some(open) => {
                        if let Ok(Some(msg)) = show.read(&open, &runner) {
                            show.watch(msg, &mut watching, &tx);
                        }
                        Err(format!("incident {open} is already open on this key: showing it"))
                    }
                    None => {
                        let started =
                            start(&ctx, &data_dir, &policy, &identity, &mut runner, &target, secret, &reason, alert)
                                .await;
                        show.open_list(&tx).await;
                        started
                    }
                }
            }
            (Action::IncidentRun { step, note, confirm, files, .. }, Some(r)) => {
                let input = StepInput { note, confirm, files, principal_arn: None };
                match r.run(&ctx, &step, input, Utc::now).await {
                    Ok(rep) => describe(&rep),
                    Err(e) => Err(format!("{step}: {e}")),
                }
            }
            (Action::IncidentSkip { step, reason, .. }, Some(r)) => r
                .skip(&ctx, &step, &reason, Utc::now())
                .await
                .map(|rep| format!("{}: skipped", rep.step))
                .map_err(|e| format!("{step}: {e}")),
            _ => continue,
        };
        // The action is over: let go of the log (a proposer of the matrix may run the
        // replacement-key step from a terminal, another console may take the next step)
        // and keep watching it. The next action takes it again.
        if let Some(r) = runner.take() {
            let _ = tx.send(loaded(&r));
            watching = Some((r.log.id().as_str().to_owned(), r.log.replay().incident_records().len()));
        }
        let _ = tx.send(Msg::IncidentDone(result));
    }
}

/// The watched incident `id`'s step waiting for its approvals-store request, when that
/// request has left the open states (executed, rejected, withdrawn, expired): the incident
/// resumed for writing and the step run, which records it (see `Runner::run`), with its
/// status line. `None` while the request is open (read from the store alone, no CloudTrail
/// lookup), when the log or the store cannot be read, another process holds the log, or
/// the step still waits after running (CloudTrail has not said who ended the request): the
/// next tick tries again. The store is read before the log is taken, so a proposer's
/// terminal is not locked out while the step waits.
async fn follow_request(
    ctx: &AwsContext,
    data_dir: &Path,
    policy: &Policy,
    identity: &CallerIdentity,
    home: &str,
    id: &str,
) -> Option<(Runner, Result<String, String>)> {
    let iid: IncidentId = id.parse().ok()?;
    let read = read_incident(&crate::incident::log::log_path(data_dir, &iid), Utc::now()).ok()?;
    let (step, request_id) = read.plan.steps.iter().find_map(|s| match &s.state {
        crate::domain::runbook::StepState::WaitingForApproval { request_id, .. } => {
            Some((s.id.clone(), request_id.clone()))
        }
        _ => None,
    })?;
    let (state, result) = approvals::state_of(ctx, &request_id).await.ok()?;
    let open = state == "proposed" || (state == "approved" && result.is_none());
    if open {
        return None;
    }
    let mut r = Runner::resume(data_dir, &iid, policy, identity, home, Utc::now()).ok()?.ok()?;
    let done = match r.run(ctx, &step, StepInput::default(), Utc::now).await {
        Ok(rep) => describe(&rep),
        Err(e) => Err(format!("{step}: {e}")),
    };
    // Still waiting (CloudTrail has not said who ended it yet): let go again, quietly.
    let waiting = r
        .plan(Utc::now())
        .ok()?
        .steps
        .into_iter()
        .any(|s| s.id == step && matches!(s.state, crate::domain::runbook::StepState::WaitingForApproval { .. }));
    (!waiting).then_some((r, done))
}

/// An incident log read without the lock, replayed against its runbook.
pub struct ReadIncident {
    pub records: Vec<crate::domain::runbook::IncidentRecord>,
    pub opened: Opened,
    pub runbook: Runbook,
    pub plan: Plan,
}

/// Read and verify the log at `path` (no lock: status, list, export and watching consoles
/// work while another process holds it) and plan it at `now`.
pub fn read_incident(path: &Path, now: DateTime<Utc>) -> Result<ReadIncident, String> {
    let view = crate::incident::log::read(path).map_err(|e| e.to_string())?;
    let records = view.replay.incident_records();
    let opened = view.replay.opened().cloned().ok_or("no incident.opened record")?;
    let runbook = runbook(&opened.runbook).map_err(|e| e.to_string())?;
    let plan = crate::domain::runbook::plan(&runbook, &records, now).map_err(|e| e.to_string())?;
    Ok(ReadIncident { records, opened, runbook, plan })
}

/// The incident's records when there are more than `seen` (another process wrote).
fn reload(data_dir: &Path, id: &str, seen: usize) -> Option<crate::app::Msg> {
    let iid: IncidentId = id.parse().ok()?;
    let read = read_incident(&crate::incident::log::log_path(data_dir, &iid), Utc::now()).ok()?;
    (read.records.len() != seen).then(|| crate::app::Msg::IncidentLoaded {
        id: id.to_owned(),
        runbook: std::sync::Arc::new(read.runbook),
        records: read.records,
        held_by: None,
    })
}

/// Open an incident from the console and hold it.
#[allow(clippy::too_many_arguments)]
async fn start(
    ctx: &AwsContext,
    data_dir: &Path,
    policy: &Policy,
    identity: &CallerIdentity,
    runner: &mut Option<Runner>,
    target: &str,
    secret: bool,
    reason: &str,
    alert: Option<String>,
) -> Result<String, String> {
    let req = OpenRequest { target, secret, reason, detected_at: None, alert: alert.as_deref() };
    match Runner::open(ctx, data_dir, policy, identity, &req, Utc::now()).await {
        Ok(r) => {
            let text = format!("incident {} opened", r.log.id().as_str());
            *runner = Some(r);
            Ok(text)
        }
        Err(e) => Err(format!("incident not opened: {e}")),
    }
}

/// A step's report as one status line: done, or which call failed and why.
fn describe(r: &StepReport) -> Result<String, String> {
    let anchor = r.anchor_problem.as_ref().map(|p| format!(" (warning: {p})")).unwrap_or_default();
    match (&r.error, &r.detail) {
        (None, Some(d)) => Ok(format!("{}: {d}{anchor}", r.step)),
        (None, None) => Ok(format!("{}: {}{anchor}", r.step, r.result.replace('_', " "))),
        (Some(e), _) if r.result == "approval_ended" => Err(format!("{}: {e}{anchor}", r.step)),
        (Some(e), _) => Err(format!("{} failed: {e} — fix and press Enter to retry{anchor}", r.step)),
    }
}

/// An unfinished incident of the data dir on the key or secret `arn`, if any.
pub fn open_incident_on(data_dir: &Path, arn: &str, now: DateTime<Utc>) -> Option<String> {
    let ids = crate::incident::log::list(data_dir).ok()?;
    ids.iter().rev().find_map(|id| {
        let read = read_incident(&crate::incident::log::log_path(data_dir, id), now).ok()?;
        (read.opened.target.arn() == arn && read.plan.next.is_some()).then(|| id.as_str().to_owned())
    })
}

/// The incident a runner holds, as its log stands, for the console.
fn loaded_msg(r: &Runner) -> crate::app::Msg {
    crate::app::Msg::IncidentLoaded {
        id: r.log.id().as_str().to_owned(),
        runbook: std::sync::Arc::new(r.runbook.clone()),
        records: r.log.replay().incident_records(),
        held_by: None,
    }
}

/// What the console's incident task needs to show an incident.
struct Show<'a> {
    ctx: &'a AwsContext,
    data_dir: &'a Path,
}

impl Show<'_> {
    /// The incidents of the data dir that still have steps to do and whose key or secret
    /// exists here (an incident of an emulator since reset is not resumed), newest first,
    /// read without the lock; sent to the console as `Msg::IncidentsOpen`.
    async fn open_list(&self, tx: &tokio::sync::mpsc::UnboundedSender<crate::app::Msg>) -> Vec<crate::app::Msg> {
        let mut out = Vec::new();
        let mut open = Vec::new();
        let mut elsewhere = 0;
        for id in crate::incident::log::list(self.data_dir).unwrap_or_default().iter().rev() {
            let Ok(read) = read_incident(&crate::incident::log::log_path(self.data_dir, id), Utc::now()) else {
                continue;
            };
            if read.plan.next.is_none() {
                continue;
            }
            if !ops::target_exists(self.ctx, &read.opened.target).await.unwrap_or(true) {
                elsewhere += 1;
                continue;
            }
            open.push(crate::app::state::OpenIncident {
                id: id.as_str().to_owned(),
                target_arn: read.opened.target.arn().to_owned(),
                label: read.opened.target.confirm_text().to_owned(),
            });
            out.push(crate::app::Msg::IncidentLoaded {
                id: id.as_str().to_owned(),
                runbook: std::sync::Arc::new(read.runbook),
                records: read.records,
                held_by: None,
            });
        }
        let _ = tx.send(crate::app::Msg::IncidentsOpen(open));
        let _ = tx.send(crate::app::Msg::IncidentsElsewhere(elsewhere));
        out
    }

    /// Incident `id` as its log stands, read without the lock; `Ok(None)` when this
    /// console already holds it (shown again from the runner).
    fn read(&self, id: &str, runner: &Option<Runner>) -> Result<Option<crate::app::Msg>, String> {
        if runner.as_ref().is_some_and(|r| r.log.id().as_str() == id) {
            return Ok(None);
        }
        let iid: IncidentId = id.parse().map_err(|e| format!("incident {id}: {e}"))?;
        let read = read_incident(&crate::incident::log::log_path(self.data_dir, &iid), Utc::now())
            .map_err(|e| format!("incident {id} cannot be read: {e} (keydeck incident verify {id})"))?;
        Ok(Some(crate::app::Msg::IncidentLoaded {
            id: id.to_owned(),
            runbook: std::sync::Arc::new(read.runbook),
            records: read.records,
            held_by: None,
        }))
    }

    /// Show the incident `msg` carries and watch it (no lock: one is taken only to carry
    /// out an action, and let go of after it).
    fn watch(
        &self,
        msg: crate::app::Msg,
        watching: &mut Option<(String, usize)>,
        tx: &tokio::sync::mpsc::UnboundedSender<crate::app::Msg>,
    ) {
        use crate::app::Msg;
        let Msg::IncidentLoaded { id, runbook, records, .. } = msg else { return };
        *watching = Some((id.clone(), records.len()));
        let _ = tx.send(Msg::IncidentLoaded { id, runbook, records, held_by: None });
    }
}
