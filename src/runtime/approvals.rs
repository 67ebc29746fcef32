//! Dual-approval requests end to end (issue 11): propose, approve (and carry out under
//! the approver's own credentials), reject, withdraw, read. Each transition checks the
//! matrix (`domain::approval`) against what AWS attests, moves the request in the store
//! (`aws::approvals`, a compare-and-swap of `AWSCURRENT`) and goes to the acting
//! operator's local journal (`approvals-<account>.jsonl`).
//!
//! What is trusted, and what is not:
//! * the proposer is the principal of the CreateSecret record CloudTrail delivered for the
//!   request's secret (ARN-matched), never the request's own words; until CloudTrail has
//!   delivered it (minutes in AWS, seconds in the sandbox) nobody approves, rejects or
//!   withdraws: [`ApprovalError::NotYet`], try again (no wait loop here);
//! * the content approved is the content proposed: the request's Description must be
//!   byte-for-byte the `description` CloudTrail recorded in that CreateSecret record's
//!   `requestParameters` (the sandbox records it; AWS's CreateSecret records carry the
//!   request parameters but the secret value). When a record has no description, the
//!   `keydeck:content-hash` tag *as recorded in the same CreateSecret call* is compared
//!   instead (a tag changed later with TagResource is not trusted); when it has neither,
//!   the request is refused as unverifiable. Trade-off: the Description check catches any
//!   rewrite (UpdateSecret) and needs nothing but CloudTrail; the recorded tag alone would
//!   only bind the hash, which the request also checks against its own content;
//! * the approver is STS GetCallerIdentity of whoever runs `approve`; the state tokens'
//!   suffixes are random nonces (a claim of nothing): who moved `AWSCURRENT` comes from
//!   CloudTrail (`UpdateSecretVersionStage`), and a reason or an outcome in the
//!   `keydeck:note` tag is shown as the note of that attested actor.
//!
//! Exactly once: the approval is the CAS Proposed → Approved; only its winner carries the
//! operation out, then moves Approved → Executed with the outcome. Each attempt has its own
//! token, so two `approve` runs by the same principal also race and one loses. AWS documents
//! that UpdateSecretVersionStage checks RemoveFromVersionId, not that the check and the
//! move are atomic under concurrency (the sandbox serialises them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::aws::approvals::{self as store, Attest, StoredRequest, TargetKey, TransitionError};
use crate::aws::context::RegionConfig;
use crate::aws::{AwsContext, AwsError};
use crate::domain::approval::{self, Content, NewRequest, Operation, Outcome, Refusal, Request, State};
pub use crate::domain::approval::{Listed, Listing, Malformed};
use crate::domain::approval_event::state_word;
use crate::domain::identity::CallerIdentity;
use crate::domain::policy::ApprovalMatrix;
use crate::incident::records;

/// Why a command on a request did not go through; the command line maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// Bad input: a mistyped id or alias, an unknown operation.
    #[error("{0}")]
    Usage(String),
    /// No request with this id in the store.
    #[error("{0}")]
    NotFound(String),
    /// The matrix or the request's state says no (004 §6).
    #[error("refused: {0}")]
    Refused(String),
    /// The store or the estate is not what keydeck needs: a malformed or foreign entry, a
    /// region not selected, a key deleted meanwhile.
    #[error("{0}")]
    Config(String),
    /// CloudTrail has not delivered the record keydeck needs yet: try again later.
    #[error("{0}")]
    NotYet(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The operation was carried out and AWS refused it (recorded as the outcome).
    #[error("{0}")]
    Failed(String),
}

impl From<Refusal> for ApprovalError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r.to_string())
    }
}

/// The message when CloudTrail has not yet attested the proposer.
pub const WAITING_FOR_PROPOSER: &str =
    "waiting for CloudTrail to attest the proposer (delivery takes up to a few minutes); try again";

/// Where the store is: the home region (the first selected region).
pub fn store_region(ctx: &AwsContext) -> RegionConfig {
    ctx.approvals()
}

fn journal_path(data_dir: &Path, identity: &CallerIdentity) -> PathBuf {
    records::approvals_journal_path(data_dir, &identity.account)
}

/// Record a transition in the acting operator's journal (blocking file I/O off the workers).
async fn journal(
    data_dir: &Path,
    identity: &CallerIdentity,
    kind: &'static str,
    body: Value,
) -> Result<(), ApprovalError> {
    let path = journal_path(data_dir, identity);
    let actor = identity.arn.clone();
    tokio::task::spawn_blocking(move || records::append_one(Some(path), Utc::now(), kind, &actor, body))
        .await
        .map_err(|e| ApprovalError::Config(format!("journal: {e}")))?
        .map_err(|e| ApprovalError::Config(format!("the approvals journal: {e}")))
}

/// 16 hex characters nobody can guess or repeat (SHA-256 of time, process, counter, `salt`).
fn nonce(salt: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let d = Sha256::digest(format!("{t}/{}/{n}/{salt}", std::process::id()).as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A new request id: `YYYYMMDD-HHMMSS-xxxxxxxx` (24 characters: sortable, typeable, and
/// `proposed-<id>` is a valid version id).
pub fn new_id(now: DateTime<Utc>) -> String {
    format!("{}-{}", now.format("%Y%m%d-%H%M%S"), &nonce("id")[..8])
}

fn token(word: &str, id: &str) -> String {
    format!("{word}-{id}-{}", nonce(id))
}

/// The request an entry holds, or why it holds none.
fn parse(stored: &StoredRequest) -> Result<Request, String> {
    if let Some(p) = stored.problem() {
        return Err(p);
    }
    let r: Request =
        serde_json::from_str(&stored.description).map_err(|e| format!("the description is not a request ({e})"))?;
    if r.id != stored.id {
        return Err(format!("the request inside says id {:?}", r.id));
    }
    let token = stored.current_version_token.as_deref().unwrap_or_default();
    if state_word(token, &stored.id).is_none() {
        return Err(format!("AWSCURRENT is on {token:?}, not a state keydeck writes"));
    }
    Ok(r)
}

fn malformed(id: &str, region: &str, problem: &str) -> ApprovalError {
    ApprovalError::Config(format!(
        "request {id} in {region} is malformed or not keydeck's ({problem}): nothing was changed; remove or fix the secret {} by hand",
        store::secret_name(id)
    ))
}

/// Read request `id` from the store: the entry and the request in it.
async fn read(rc: &RegionConfig, id: &str) -> Result<(StoredRequest, Request), ApprovalError> {
    let valid = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(ApprovalError::Usage(format!("{id:?} is not a request id: see `keydeck approvals list`")));
    }
    let stored = match store::get(rc, id).await {
        Ok(s) => s,
        Err(e) if e.kind == crate::aws::AwsErrorKind::NotFound => {
            return Err(ApprovalError::NotFound(format!(
                "no request {id} in the store ({}): see `keydeck approvals list`",
                rc.region
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let request = parse(&stored).map_err(|p| malformed(id, &rc.region, &p))?;
    Ok((stored, request))
}

/// The attested proposer, or `NotYet`.
async fn proposer(rc: &RegionConfig, stored: &StoredRequest) -> Result<store::Attestation, ApprovalError> {
    let since = stored.created.unwrap_or_else(Utc::now);
    store::attested_actor(rc, &stored.arn, Attest::Created, since)
        .await?
        .ok_or_else(|| ApprovalError::NotYet(WAITING_FOR_PROPOSER.into()))
}

/// Who moved `AWSCURRENT` to `token`, as CloudTrail attests it (None: not delivered yet).
async fn mover(rc: &RegionConfig, stored: &StoredRequest, token: &str) -> Result<Option<String>, AwsError> {
    let since = stored.created.unwrap_or_else(Utc::now);
    Ok(store::attested_actor(rc, &stored.arn, Attest::MovedCurrentTo(token), since).await?.map(|a| a.principal_arn))
}

/// The content approved is the content proposed: compare with CloudTrail's record of the
/// proposal (see the module doc).
fn check_recorded_content(stored: &StoredRequest, request: &Request, att: &store::Attestation) -> Result<(), Refusal> {
    let params = &att.request_parameters;
    if let Some(recorded) = params.get("description").and_then(Value::as_str) {
        if recorded == stored.description {
            return Ok(());
        }
        let recorded_hash = serde_json::from_str::<Request>(recorded)
            .map(|r| r.content_hash)
            .unwrap_or_else(|_| "(the recorded description is not a request)".into());
        return Err(Refusal::ContentChanged { recorded: recorded_hash, actual: request.compute_hash() });
    }
    let recorded_tag = params.get("tags").and_then(Value::as_array).and_then(|tags| {
        tags.iter()
            .find(|t| t.get("key").and_then(Value::as_str) == Some(store::TAG_CONTENT_HASH))?
            .get("value")?
            .as_str()
    });
    match recorded_tag {
        Some(h) if h == request.content_hash && request.hash_matches() => Ok(()),
        Some(h) => Err(Refusal::ContentChanged { recorded: h.to_owned(), actual: request.compute_hash() }),
        None => Err(Refusal::BadRequest(
            "CloudTrail's record of the proposal carries neither its description nor its content hash: it cannot be verified"
                .into(),
        )),
    }
}

/// The target must be in a selected region (keydeck acts only where it was told to).
fn target_region(ctx: &AwsContext, request: &Request) -> Result<RegionConfig, ApprovalError> {
    let region = request.target_arn.split(':').nth(3).unwrap_or_default();
    ctx.regions().iter().find(|r| r.region == region).cloned().ok_or_else(|| {
        let selected: Vec<&str> = ctx.regions().iter().map(|r| r.region.as_str()).collect();
        ApprovalError::Config(format!(
            "request {}'s key is in {region}, which is not selected ({}): add --region {}",
            request.id,
            selected.join(","),
            [selected.join(","), region.to_owned()].join(",")
        ))
    })
}

/// The target as it is now, checked for the operation: it exists, and is in a state the
/// operation applies to.
async fn live_target(rc: &RegionConfig, request: &Request) -> Result<TargetKey, ApprovalError> {
    let key = store::target_key(rc, &request.target_arn).await?.ok_or_else(|| {
        ApprovalError::Config(format!(
            "request {}'s key {} no longer exists in {}: withdraw or reject the request",
            request.id, request.target_arn, rc.region
        ))
    })?;
    let pending = key.state == "PendingDeletion";
    let bad = match request.operation {
        Operation::CancelDeletion if !pending => Some(format!("is {}, not pending deletion", key.state)),
        Operation::RotateKey | Operation::ScheduleDeletion { .. } if pending => {
            Some("is pending deletion (deleted meanwhile)".to_owned())
        }
        _ => None,
    };
    if let Some(b) = bad {
        return Err(ApprovalError::Config(format!(
            "request {}'s key {} {b}: {} cannot run; withdraw or reject the request",
            request.id,
            request.target_arn,
            request.operation.name()
        )));
    }
    Ok(key)
}

/// What a proposal needs.
pub struct Proposal<'a> {
    pub operation: &'a str,
    pub window_days: Option<u32>,
    /// Alias (with or without `alias/`), key id or ARN.
    pub key: &'a str,
    pub reason: &'a str,
}

/// Propose: the matrix allows this principal to, the request is sealed and stored
/// (CloudTrail records who created it). Answers the new request.
pub async fn propose(
    ctx: &AwsContext,
    data_dir: &Path,
    matrix: &ApprovalMatrix,
    me: &CallerIdentity,
    p: &Proposal<'_>,
    now: DateTime<Utc>,
) -> Result<Request, ApprovalError> {
    let operation =
        Operation::from_name(p.operation, p.window_days).map_err(|r| ApprovalError::Usage(r.to_string()))?;
    approval::may_propose(&operation, &me.arn, matrix)?;
    let target = match crate::aws::ops::describe_target(ctx, p.key, false).await {
        Ok(crate::domain::runbook::IncidentTarget::Key(k)) => k,
        Ok(_) => return Err(ApprovalError::Usage(format!("--key {}: not a KMS key", p.key))),
        Err(e) if e.kind == crate::aws::AwsErrorKind::NotFound => {
            let regions: Vec<&str> = ctx.regions().iter().map(|r| r.region.as_str()).collect();
            return Err(ApprovalError::Usage(format!(
                "--key {}: no such key in the selected regions ({})",
                p.key,
                regions.join(",")
            )));
        }
        Err(e) => return Err(e.into()),
    };
    // KMS rotates a multi-Region key's material on its primary (RotateKeyOnDemand refuses a
    // replica): a rotation is proposed, and deduplicated, on the primary.
    if operation == Operation::RotateKey {
        let rc = crate::aws::ops::region_config(ctx, Some(&target.region));
        if let Some(primary) = store::target_key(&rc, &target.arn).await?.and_then(|k| k.replica_of) {
            return Err(ApprovalError::Refused(format!(
                "--key {} is a multi-Region replica: KMS rotates its primary {primary}; propose rotate-key --key {primary}",
                p.key
            )));
        }
    }
    if let Some(open) = open_request_for(&store_region(ctx), operation.name(), &target.arn, now).await? {
        return Err(ApprovalError::Refused(format!(
            "request {open} already proposes {} of {}: approve, reject or withdraw it (keydeck approvals show {open})",
            operation.name(),
            p.key
        )));
    }
    let request = Request::new(
        NewRequest {
            id: new_id(now),
            operation,
            target_arn: target.arn.clone(),
            parameters: Map::new(),
            reason: p.reason.to_owned(),
            created: now,
        },
        matrix,
    )?;
    store_request(ctx, data_dir, me, request, BTreeMap::new()).await
}

/// The id of a request still open (proposed, not expired) for `operation` on `target_arn`:
/// one open request per operation and key, so an approver never approves the same
/// operation twice by accident.
async fn open_request_for(
    rc: &RegionConfig,
    operation: &str,
    target_arn: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, ApprovalError> {
    for stored in store::list(rc).await? {
        let Ok(r) = parse(&stored) else { continue };
        let state = stored.current_version_token.as_deref().and_then(|t| state_word(t, &stored.id));
        if r.operation.name() == operation
            && r.target_arn == target_arn
            && state == Some("proposed")
            && !r.is_expired(now)
        {
            return Ok(Some(stored.id));
        }
    }
    Ok(None)
}

/// Seal and store `request` (tags: operation, target, content hash, and `extra`), and
/// journal it as proposed.
async fn store_request(
    ctx: &AwsContext,
    data_dir: &Path,
    me: &CallerIdentity,
    request: Request,
    extra: BTreeMap<String, String>,
) -> Result<Request, ApprovalError> {
    let mut tags: BTreeMap<String, String> = [
        (store::TAG_OPERATION.to_owned(), request.operation.name().to_owned()),
        (store::TAG_TARGET.to_owned(), request.target_arn.clone()),
        (store::TAG_CONTENT_HASH.to_owned(), request.content_hash.clone()),
    ]
    .into();
    tags.extend(extra);
    let rc = store_region(ctx);
    let (arn, _) = store::create(&rc, &request.id, &request.canonical_json(), &tags).await?;
    journal(data_dir, me, records::PROPOSED_KIND, json!({"id": request.id, "secret": arn, "request": request})).await?;
    Ok(request)
}

/// What an incident's approval-gated step proposes (issue 11 item 4).
pub struct StepProposal<'a> {
    /// The id the incident log already names (written ahead of the store).
    pub id: &'a str,
    pub operation: Operation,
    pub target_arn: &'a str,
    pub parameters: Map<String, Value>,
    pub reason: &'a str,
    pub incident: &'a str,
    pub step: &'a str,
}

/// Propose an incident step's request under the id its log names, tagged with the
/// incident and step ([`for_step`] finds it). The matrix decides as for any proposal:
/// `me` must hold the operation's proposer role.
pub async fn propose_for_step(
    ctx: &AwsContext,
    data_dir: &Path,
    matrix: &ApprovalMatrix,
    me: &CallerIdentity,
    p: StepProposal<'_>,
    now: DateTime<Utc>,
) -> Result<Request, ApprovalError> {
    approval::may_propose(&p.operation, &me.arn, matrix)?;
    let request = Request::new(
        NewRequest {
            id: p.id.to_owned(),
            operation: p.operation,
            target_arn: p.target_arn.to_owned(),
            parameters: p.parameters,
            reason: p.reason.to_owned(),
            created: now,
        },
        matrix,
    )?;
    let tags =
        [(store::TAG_INCIDENT.to_owned(), p.incident.to_owned()), (store::TAG_STEP.to_owned(), p.step.to_owned())];
    store_request(ctx, data_dir, me, request, tags.into()).await
}

/// A request proposed for an incident's step, as the store lists it.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub request: Request,
    /// The state word as the store holds it (`proposed` past its expiry reads `expired`).
    pub state: String,
    /// What an executed request made (`keydeck:result`), as claimed.
    pub result: Option<String>,
}

/// The well-formed requests proposed for `incident`'s `step` (its tags), oldest first. No
/// CloudTrail lookups: the caller reads the one it adopts with [`show`].
pub async fn for_step(ctx: &AwsContext, incident: &str, step: &str) -> Result<Vec<StepRequest>, ApprovalError> {
    let rc = store_region(ctx);
    let now = Utc::now();
    let mut out = Vec::new();
    for stored in store::list(&rc).await? {
        let tagged = |k: &str, v: &str| stored.tags.get(k).is_some_and(|t| t == v);
        if !tagged(store::TAG_INCIDENT, incident) || !tagged(store::TAG_STEP, step) {
            continue;
        }
        let Ok(request) = parse(&stored) else { continue };
        let token = stored.current_version_token.clone().unwrap_or_default();
        let word = state_word(&token, &stored.id).unwrap_or("malformed");
        let word = if word == "proposed" && request.is_expired(now) { "expired" } else { word };
        let result = stored.tags.get(store::TAG_RESULT).cloned();
        out.push(StepRequest { request, state: word.to_owned(), result });
    }
    out.sort_by_key(|r| r.request.created);
    Ok(out)
}

/// What `approve` did.
#[derive(Debug, Clone, Serialize)]
pub struct Executed {
    pub id: String,
    pub approver: String,
    pub proposer: String,
    pub call: String,
    pub outcome: Outcome,
}

/// Why a transition lost its race: the state that won, named with its attested actor.
async fn lost(rc: &RegionConfig, stored: &StoredRequest, current: &str) -> ApprovalError {
    let word = state_word(current, &stored.id).unwrap_or("changed");
    let by = mover(rc, stored, current).await.ok().flatten();
    ApprovalError::Refused(lost_line(&stored.id, word, by.as_deref()))
}

/// "request ID: already WORD by WHO", WHO as CloudTrail attests the move; until it has
/// delivered the record, nobody is named (it may have been you, in another run).
fn lost_line(id: &str, word: &str, by: Option<&str>) -> String {
    let by = by.map_or_else(
        || format!("someone CloudTrail has not named yet (see `keydeck approvals show {id}` later)"),
        str::to_owned,
    );
    let what = match word {
        "executed" => format!("already approved by {by} and executed"),
        w => format!("already {w} by {by}"),
    };
    format!("request {id}: {what}")
}

/// The target looked wrong (`e`): when the request itself moved meanwhile (another
/// approver won and carried it out: a scheduled deletion leaves the key pending
/// deletion), the loser hears who won, as from the CAS; else `e`.
async fn changed_meanwhile(rc: &RegionConfig, id: &str, e: ApprovalError) -> ApprovalError {
    match read(rc, id).await {
        Ok((again, _)) => {
            let current = again.current_version_token.clone().unwrap_or_default();
            match state_word(&current, id) {
                Some("proposed") => e,
                _ => lost(rc, &again, &current).await,
            }
        }
        Err(_) => e,
    }
}

/// Record in `me`'s journal, once per request, each of `expired` (requests still
/// `proposed` past their `expires`) not recorded there yet: expiry moves nothing in the
/// store (it is a fact of the clock), so each operator who meets it records it
/// (`approval.expired`, issue 11: every transition goes to the acting operator's journal).
pub async fn note_expired(data_dir: &Path, me: &CallerIdentity, expired: &[&Request]) -> Result<(), ApprovalError> {
    if expired.is_empty() {
        return Ok(());
    }
    let noted = recorded(data_dir, me, records::EXPIRED_KIND).await?;
    for r in expired.iter().filter(|r| !noted.contains_key(&r.id)) {
        let body = json!({"id": r.id, "operation": r.operation.name(), "target": r.target_arn, "expires": r.expires});
        journal(data_dir, me, records::EXPIRED_KIND, body).await?;
    }
    Ok(())
}

/// The request ids `me`'s approvals journal records with `kind`, each with its actor
/// (none when there is no journal yet). Blocking file I/O off the workers.
async fn recorded(
    data_dir: &Path,
    me: &CallerIdentity,
    kind: &'static str,
) -> Result<std::collections::HashMap<String, String>, ApprovalError> {
    let path = journal_path(data_dir, me);
    tokio::task::spawn_blocking(move || {
        if path.exists() {
            records::recorded_requests(&path, kind)
        } else {
            Ok(Default::default())
        }
    })
    .await
    .map_err(|e| ApprovalError::Config(format!("journal: {e}")))?
    .map_err(|e| ApprovalError::Config(format!("the approvals journal {}: {e}", journal_path(data_dir, me).display())))
}

/// The expired requests of a listing that concern `me`: proposed by me, or mine to approve.
pub fn expired_for_me<'l>(listing: &'l Listing, matrix: &ApprovalMatrix, me: &CallerIdentity) -> Vec<&'l Request> {
    listing
        .history
        .iter()
        .filter(|v| v.state == "expired")
        .filter(|v| {
            let mine = v.proposer.as_deref().is_some_and(|p| approval::same_principal(p, &me.arn));
            mine || approval::holds_role(matrix, &me.arn, matrix.rule(v.request.operation.kind()).approver_role())
        })
        .map(|v| &v.request)
        .collect()
}

/// Refuse a request that is not open, naming who (attested) put it where it is; an
/// expired one is also recorded in `me`'s journal ([`note_expired`]).
async fn require_proposed(
    rc: &RegionConfig,
    (data_dir, me): (&Path, &CallerIdentity),
    stored: &StoredRequest,
    request: &Request,
    matrix: &ApprovalMatrix,
    now: DateTime<Utc>,
) -> Result<String, ApprovalError> {
    let current = stored.current_version_token.clone().unwrap_or_default();
    match state_word(&current, &stored.id) {
        Some("proposed") if request.is_expired(now) => {
            note_expired(data_dir, me, &[request]).await?;
            let secs = matrix.rule(request.operation.kind()).expires_secs;
            Err(ApprovalError::Refused(format!(
                "request {}: the request expired at {} (requests stay open {}m): propose it again",
                stored.id,
                request.expires.to_rfc3339(),
                secs / 60
            )))
        }
        Some("proposed") => Ok(current),
        _ => Err(lost(rc, stored, &current).await),
    }
}

/// Approve request `id` as `me` and carry it out under `me`'s credentials. `confirm`: the
/// alias the approver typed (one of the target key's aliases).
pub async fn approve(
    ctx: &AwsContext,
    data_dir: &Path,
    matrix: &ApprovalMatrix,
    me: &CallerIdentity,
    id: &str,
    confirm: &str,
) -> Result<Executed, ApprovalError> {
    let read = read(&store_region(ctx), id).await?;
    approve_as_read(ctx, (data_dir, matrix, me), read, confirm).await
}

/// The entry of request `id` as the store holds it now, for [`approve_as_read`].
pub async fn read_entry(ctx: &AwsContext, id: &str) -> Result<(StoredRequest, Request), ApprovalError> {
    read(&store_region(ctx), id).await
}

/// [`approve`] from the entry as it was read (`read`): what an approver racing another
/// holds while the other approves and carries it out (the tests replay that exactly).
pub async fn approve_as_read(
    ctx: &AwsContext,
    (data_dir, matrix, me): (&Path, &ApprovalMatrix, &CallerIdentity),
    (stored, request): (StoredRequest, Request),
    confirm: &str,
) -> Result<Executed, ApprovalError> {
    let rc = store_region(ctx);
    let id = stored.id.as_str();
    let target_rc = target_region(ctx, &request)?;
    let now = Utc::now();
    let from = require_proposed(&rc, (data_dir, me), &stored, &request, matrix, now).await?;
    let proposal = proposer(&rc, &stored).await?;
    check_recorded_content(&stored, &request, &proposal)?;
    approval::may_approve(&request, &State::Proposed, &proposal.principal_arn, &me.arn, matrix, now)?;
    let key = match live_target(&target_rc, &request).await {
        Ok(key) => key,
        Err(e) => return Err(changed_meanwhile(&rc, id, e).await),
    };
    let typed = confirm.trim().trim_start_matches("alias/");
    if !approval::confirms(typed, &key.aliases, &request.target_arn) {
        let expected = key.aliases.first().cloned().unwrap_or_else(|| request.target_arn.clone());
        let what = if key.aliases.is_empty() { "the key's ARN (it has no alias)" } else { "the key's alias" };
        return Err(ApprovalError::Usage(format!(
            "--confirm {typed:?} is not {what}: type --confirm {expected} to approve {}",
            request.operation.name()
        )));
    }
    let approved = token("approved", id);
    match store::transition(&rc, id, &from, &approved).await {
        Ok(()) => {}
        Err(TransitionError::Lost { current_token }) => return Err(lost(&rc, &stored, &current_token).await),
        Err(TransitionError::Aws(e)) => return Err(e.into()),
    }
    journal(
        data_dir,
        me,
        "approval.approved",
        json!({"id": id, "proposer": proposal.principal_arn, "content_hash": request.content_hash, "token": approved}),
    )
    .await?;
    let state = State::Approved { by: me.arn.clone() };
    approval::may_execute(&state, &me.arn)?;
    let call = request.calls().into_iter().next().expect("a request makes one call");
    let outcome = store::execute(&target_rc, &call).await;
    // What it made is tagged before the request reads executed, so that whoever waits for
    // it (an incident's replacement-key step) finds it with the state.
    let result_tagged = match &outcome {
        Outcome::Succeeded { made: Some(made), .. } => store::tag(&rc, id, store::TAG_RESULT, made).await,
        _ => Ok(()),
    };
    let executed = token("executed", id);
    let moved = store::transition(&rc, id, &approved, &executed).await;
    let note = outcome.to_string();
    let tagged = store::tag(&rc, id, store::TAG_NOTE, &note).await;
    journal(data_dir, me, "approval.executed", json!({"id": id, "call": call, "outcome": outcome, "token": executed}))
        .await?;
    if let Err(e) = moved {
        return Err(ApprovalError::Config(format!(
            "{note}; but recording it as executed in the store failed ({e}): the request stays approved by you"
        )));
    }
    tagged?;
    result_tagged?;
    let done = Executed {
        id: id.to_owned(),
        approver: me.arn.clone(),
        proposer: proposal.principal_arn,
        call: call.action,
        outcome: outcome.clone(),
    };
    match outcome {
        Outcome::Failed { .. } => Err(ApprovalError::Failed(format!("request {id} approved; {note}"))),
        Outcome::Succeeded { .. } => Ok(done),
    }
}

/// Reject request `id` as `me` with `reason`.
pub async fn reject(
    ctx: &AwsContext,
    data_dir: &Path,
    matrix: &ApprovalMatrix,
    me: &CallerIdentity,
    id: &str,
    reason: &str,
) -> Result<(), ApprovalError> {
    if reason.trim().is_empty() {
        return Err(ApprovalError::Usage("--reason: say why".into()));
    }
    let rc = store_region(ctx);
    let (stored, request) = read(&rc, id).await?;
    let now = Utc::now();
    let from = require_proposed(&rc, (data_dir, me), &stored, &request, matrix, now).await?;
    let proposal = proposer(&rc, &stored).await?;
    approval::may_reject(&request, &State::Proposed, &proposal.principal_arn, &me.arn, matrix, now)?;
    let to = token("rejected", id);
    match store::transition(&rc, id, &from, &to).await {
        Ok(()) => {}
        Err(TransitionError::Lost { current_token }) => return Err(lost(&rc, &stored, &current_token).await),
        Err(TransitionError::Aws(e)) => return Err(e.into()),
    }
    store::tag(&rc, id, store::TAG_NOTE, reason.trim()).await?;
    journal(data_dir, me, "approval.rejected", json!({"id": id, "reason": reason.trim(), "token": to})).await
}

/// Withdraw request `id` (its attested proposer only).
pub async fn withdraw(
    ctx: &AwsContext,
    data_dir: &Path,
    matrix: &ApprovalMatrix,
    me: &CallerIdentity,
    id: &str,
) -> Result<(), ApprovalError> {
    let rc = store_region(ctx);
    let (stored, request) = read(&rc, id).await?;
    let now = Utc::now();
    let from = require_proposed(&rc, (data_dir, me), &stored, &request, matrix, now).await?;
    let proposal = proposer(&rc, &stored).await?;
    approval::may_withdraw(&request, &State::Proposed, &proposal.principal_arn, &me.arn, matrix, now)?;
    let to = token("withdrawn", id);
    match store::transition(&rc, id, &from, &to).await {
        Ok(()) => {}
        Err(TransitionError::Lost { current_token }) => return Err(lost(&rc, &stored, &current_token).await),
        Err(TransitionError::Aws(e)) => return Err(e.into()),
    }
    journal(data_dir, me, "approval.withdrawn", json!({"id": id, "token": to})).await
}

/// Request `id`'s state word (`proposed` past its expiry reads `expired`) and what it made
/// (`keydeck:result`), from the store alone: one DescribeSecret, no CloudTrail lookup (for
/// polling; [`show`] says who acted).
pub async fn state_of(ctx: &AwsContext, id: &str) -> Result<(String, Option<String>), ApprovalError> {
    let rc = store_region(ctx);
    let (stored, request) = read(&rc, id).await?;
    let token = stored.current_version_token.clone().unwrap_or_default();
    let word = state_word(&token, &stored.id).unwrap_or("malformed");
    let word = if word == "proposed" && request.is_expired(Utc::now()) { "expired" } else { word };
    Ok((word.to_owned(), stored.tags.get(store::TAG_RESULT).cloned()))
}

/// One request with its state and attested actors (CloudTrail lookups: a few seconds).
pub async fn show(ctx: &AwsContext, id: &str) -> Result<Listed, ApprovalError> {
    let rc = store_region(ctx);
    let (stored, request) = read(&rc, id).await?;
    view(&rc, &stored, request, true).await.map_err(Into::into)
}

async fn view(rc: &RegionConfig, stored: &StoredRequest, request: Request, actors: bool) -> Result<Listed, AwsError> {
    let current = stored.current_version_token.clone().unwrap_or_default();
    let word = state_word(&current, &stored.id).unwrap_or("malformed");
    let expired = word == "proposed" && request.is_expired(Utc::now());
    let since = stored.created.unwrap_or_else(Utc::now);
    let proposal = if actors || word == "proposed" {
        store::attested_actor(rc, &stored.arn, Attest::Created, since).await?
    } else {
        None
    };
    // Compared with CloudTrail's record of the proposal, as approve compares it.
    let content = proposal.as_ref().map_or(Content::Unchecked, |att| {
        Content::of(&request, check_recorded_content(stored, &request, att).as_ref().map(|_| ()))
    });
    let proposer = proposal.map(|a| a.principal_arn);
    let by = if actors && word != "proposed" { mover(rc, stored, &current).await? } else { None };
    Ok(Listed {
        id: stored.id.clone(),
        secret_arn: stored.arn.clone(),
        request,
        state: if expired { "expired".into() } else { word.into() },
        proposer,
        by,
        note: stored.tags.get(store::TAG_NOTE).cloned(),
        result: stored.tags.get(store::TAG_RESULT).cloned(),
        content,
    })
}

/// List the store. Open requests get their attested proposer (one CloudTrail lookup
/// each); final ones only their state.
/// A request CloudTrail has not attested yet goes under Mine when `me`'s own journal
/// (`data_dir`) records proposing it: the section only, never a decision (withdraw still
/// waits for CloudTrail).
pub async fn list(
    ctx: &AwsContext,
    data_dir: &Path,
    matrix: &ApprovalMatrix,
    me: &CallerIdentity,
) -> Result<Listing, ApprovalError> {
    let rc = store_region(ctx);
    let proposed_here = recorded(data_dir, me, records::PROPOSED_KIND).await?;
    let mut out = Listing::default();
    for stored in store::list(&rc).await? {
        let request = match parse(&stored) {
            Ok(r) => r,
            Err(problem) => {
                out.malformed.push(Malformed { id: stored.id.clone(), problem });
                continue;
            }
        };
        let v = view(&rc, &stored, request, false).await?;
        let here = proposed_here.get(&v.id).is_some_and(|actor| approval::same_principal(actor, &me.arn));
        out.place(v, &me.arn, matrix, here);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_race_names_only_whom_cloudtrail_attests() {
        let id = "20261129-101500-0badcafe";
        let lead = "arn:aws:iam::123456789012:user/security-lead";
        assert_eq!(lost_line(id, "approved", Some(lead)), format!("request {id}: already approved by {lead}"));
        assert_eq!(
            lost_line(id, "executed", Some(lead)),
            format!("request {id}: already approved by {lead} and executed")
        );
        let line = lost_line(id, "withdrawn", None);
        assert!(line.starts_with(&format!("request {id}: already withdrawn by someone CloudTrail has not named yet")));
        assert!(!line.contains("another operator"), "it may have been you: {line}");
    }

    #[test]
    fn ids_and_tokens_are_valid_version_ids() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T10:15:00Z").expect("t").with_timezone(&Utc);
        let id = new_id(now);
        assert_eq!(id.len(), 24);
        assert!(id.starts_with("20261129-101500-"));
        for t in [store::proposed_token(&id), token("approved", &id), token("withdrawn", &id)] {
            assert!(store::TOKEN_LEN.contains(&t.len()), "{t}");
        }
        assert_ne!(token("approved", &id), token("approved", &id), "each attempt its own token");
        assert_eq!(state_word(&token("executed", &id), &id), Some("executed"));
        assert_eq!(state_word(&store::proposed_token(&id), &id), Some("proposed"));
        assert_eq!(state_word("approved-other-id-0000", &id), None);
        assert_eq!(state_word("garbage", &id), None);
    }
}
