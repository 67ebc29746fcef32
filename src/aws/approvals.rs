//! The dual-approval request store, in AWS itself: one Secrets Manager secret per request,
//! `keydeck/approvals/<id>` in the approvals region. The request's canonical JSON is the
//! secret's Description; its state is the version that holds `AWSCURRENT`, each state a
//! version whose id is the state's ClientRequestToken (`proposed-<id>`,
//! `approved-<id>-<principal hash>`, ...). A transition is a compare-and-swap of
//! `AWSCURRENT` (UpdateSecretVersionStage with RemoveFromVersionId = the state the caller
//! believes current, which Secrets Manager refuses when that version no longer holds the
//! label). Who proposed and who approved come from CloudTrail, never from the request.
//!
//! Never a secret value: the versions' SecretStrings are a fixed non-secret [`MARKER`],
//! written and never read (no GetSecretValue here); state is read from staging labels
//! (DescribeSecret `VersionIdsToStages`).
//!
//! Thin adapter: SDK calls and their errors only. What a request means (its JSON, the
//! state machine, the matrix) is `domain::approval`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::context::RegionConfig;
use super::error::{AwsError, AwsErrorKind};
use super::kms::to_chrono;
use crate::domain::approval::{Call, Outcome};

/// Every request's secret name starts with this.
pub const PREFIX: &str = crate::domain::inventory::APPROVALS_PREFIX;
/// The tag that marks a request's secret (`keydeck:approval = request`).
pub const TAG_APPROVAL: &str = crate::domain::inventory::APPROVAL_TAG;
pub const TAG_APPROVAL_VALUE: &str = "request";
pub const TAG_OPERATION: &str = "keydeck:operation";
pub const TAG_TARGET: &str = "keydeck:target";
/// The request's content hash, also recorded by CloudTrail in the CreateSecret record.
pub const TAG_CONTENT_HASH: &str = "keydeck:content-hash";
/// What a final state adds (a rejection's reason, an execution's outcome): a claim by
/// whoever made the transition, shown with the attested actor, never trusted for a decision.
pub const TAG_NOTE: &str = "keydeck:note";
/// The ARN of what an executed request made (kms:CreateKey: the new key), tagged before
/// the request moves to executed. A claim like the note: whoever reads it checks it in
/// AWS (an incident reads the key with DescribeKey and its tags before using it).
pub const TAG_RESULT: &str = "keydeck:result";
/// The incident and runbook step a request was proposed for (an incident's
/// replacement-key step): how a re-run finds its request instead of proposing another.
pub use crate::domain::runbook::TAG_INCIDENT;
pub const TAG_STEP: &str = "keydeck:step";
/// Secrets Manager's tag value limit.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// The SecretString of every version: not a secret, never read back.
pub const MARKER: &str = "keydeck approval state marker";
/// The staging label a new state's version carries until it is made current.
pub const PENDING_LABEL: &str = "keydeck-pending";
pub const CURRENT_LABEL: &str = "AWSCURRENT";
/// Secrets Manager's Description limit (DescriptionType, max 2048).
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
/// ClientRequestToken / VersionId length limits (32..=64).
pub const TOKEN_LEN: std::ops::RangeInclusive<usize> = 32..=64;

/// One request's secret as Secrets Manager describes it (metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub arn: String,
    pub name: String,
    /// The request id: the name without [`PREFIX`].
    pub id: String,
    /// The request's JSON as stored (not checked here).
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// The version id (state token) holding `AWSCURRENT`.
    pub current_version_token: Option<String>,
    /// Version id -> its staging labels (the versions that have labels, as AWS lists them).
    pub versions: BTreeMap<String, Vec<String>>,
    pub created: Option<DateTime<Utc>>,
}

impl StoredRequest {
    /// Why this entry cannot be a request keydeck made, if it cannot: a foreign or
    /// tampered secret under the prefix is shown as malformed, never trusted or fatal.
    pub fn problem(&self) -> Option<String> {
        if self.tags.get(TAG_APPROVAL).map(String::as_str) != Some(TAG_APPROVAL_VALUE) {
            return Some(format!("not tagged {TAG_APPROVAL} = {TAG_APPROVAL_VALUE}"));
        }
        match serde_json::from_str::<Value>(&self.description) {
            Ok(Value::Object(_)) => {}
            Ok(_) => return Some("the description is JSON but not an object".into()),
            Err(e) => return Some(format!("the description is not JSON ({e})")),
        }
        if self.current_version_token.is_none() {
            return Some("no version holds AWSCURRENT".into());
        }
        None
    }
}

/// How a transition ended when it did not move `AWSCURRENT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// Another transition moved `AWSCURRENT` first: it is now on `current_token` (whose
    /// name says which state, and for an approval whose principal hash, won).
    Lost {
        current_token: String,
    },
    Aws(AwsError),
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lost { current_token } => write!(f, "the request changed meanwhile: it is now {current_token}"),
            Self::Aws(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TransitionError {}

/// What CloudTrail attests about a request's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attest<'a> {
    /// The CreateSecret call that made it (the proposer).
    Created,
    /// The UpdateSecretVersionStage call that moved `AWSCURRENT` to this state's version.
    MovedCurrentTo(&'a str),
}

impl Attest<'_> {
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::Created => "CreateSecret",
            Self::MovedCurrentTo(_) => "UpdateSecretVersionStage",
        }
    }
}

/// The principal AWS recorded for a call, from its CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// `userIdentity.arn` (an IAM user, or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub principal_arn: String,
    /// `userIdentity.sessionContext.sessionIssuer.arn` for a role session.
    pub session_issuer_arn: Option<String>,
    pub identity_type: String,
    pub event_id: String,
    pub event_time: String,
    /// The call's `requestParameters` as CloudTrail recorded them (for CreateSecret: the
    /// name, the description as proposed, the tags).
    pub request_parameters: Value,
}

/// The secret name of request `id`.
pub fn secret_name(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The state token of a new request.
pub fn proposed_token(id: &str) -> String {
    format!("proposed-{id}")
}

fn client_error(call: &'static str, rc: &RegionConfig, resource: &str, message: String) -> AwsError {
    AwsError {
        call,
        region: rc.region.clone(),
        resource: Some(resource.to_owned()),
        kind: AwsErrorKind::Client,
        code: None,
        message,
    }
}

/// A state token must be a valid Secrets Manager version id (ClientRequestToken: 32 to 64
/// characters; keydeck's are ASCII letters, digits and `-`).
fn check_token(call: &'static str, rc: &RegionConfig, resource: &str, token: &str) -> Result<(), AwsError> {
    let ok_chars = token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !TOKEN_LEN.contains(&token.len()) || !ok_chars {
        return Err(client_error(
            call,
            rc,
            resource,
            format!(
                "state token {token:?} is not a version id Secrets Manager accepts (32 to 64 ASCII letters, digits or '-')"
            ),
        ));
    }
    Ok(())
}

fn sm(rc: &RegionConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&rc.config)
}

/// Create request `id`'s secret: Description = `description_json`, tags = `tags` plus
/// `keydeck:approval = request`, one version `proposed-<id>` (the marker) holding
/// `AWSCURRENT`. Idempotent for the same id and content (the token is the version id).
/// Answers the secret's ARN and the version id.
pub async fn create(
    rc: &RegionConfig,
    id: &str,
    description_json: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(String, String), AwsError> {
    const CALL: &str = "secretsmanager:CreateSecret";
    let name = secret_name(id);
    let valid_id = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_id {
        return Err(client_error(CALL, rc, &name, format!("request id {id:?}: ASCII letters, digits and '-' only")));
    }
    let chars = description_json.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(client_error(
            CALL,
            rc,
            &name,
            format!("the request is {chars} characters; a secret's description holds at most {MAX_DESCRIPTION_CHARS}"),
        ));
    }
    let token = proposed_token(id);
    check_token(CALL, rc, &name, &token)?;
    let mut all = tags.clone();
    all.insert(TAG_APPROVAL.into(), TAG_APPROVAL_VALUE.into());
    let mut req = sm(rc)
        .create_secret()
        .name(&name)
        .description(description_json)
        .client_request_token(&token)
        .secret_string(MARKER);
    for (k, v) in &all {
        req = req.tags(Tag::builder().key(k).value(v).build());
    }
    let out = req.send().await.map_err(|e| AwsError::from_sdk(CALL, &rc.region, Some(&name), e))?;
    Ok((out.arn().unwrap_or_default().to_owned(), out.version_id().unwrap_or(&token).to_owned()))
}

/// Request `id`'s secret, read with DescribeSecret (the strongly fresh read).
pub async fn get(rc: &RegionConfig, id: &str) -> Result<StoredRequest, AwsError> {
    describe(rc, &secret_name(id)).await
}

async fn describe(rc: &RegionConfig, secret_id: &str) -> Result<StoredRequest, AwsError> {
    let o = sm(rc)
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("secretsmanager:DescribeSecret", &rc.region, Some(secret_id), e))?;
    let name = o.name().unwrap_or(secret_id).to_owned();
    let versions: BTreeMap<String, Vec<String>> = o
        .version_ids_to_stages()
        .map(|m| m.iter().filter(|(_, s)| !s.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let current = versions.iter().find(|(_, s)| s.iter().any(|l| l == CURRENT_LABEL)).map(|(v, _)| v.clone());
    Ok(StoredRequest {
        arn: o.arn().unwrap_or_default().to_owned(),
        id: name.strip_prefix(PREFIX).unwrap_or(&name).to_owned(),
        name,
        description: o.description().unwrap_or_default().to_owned(),
        tags: o
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
            .collect(),
        current_version_token: current,
        versions,
        created: o.created_date().and_then(to_chrono),
    })
}

/// Every request of the approvals region: ListSecrets by name prefix (so an untagged
/// foreign secret under the prefix shows too, as malformed), then DescribeSecret for
/// each (ListSecrets may lag behind changes of the last minutes; DescribeSecret does not
/// by as much). A secret deleted between the two calls is skipped.
pub async fn list(rc: &RegionConfig) -> Result<Vec<StoredRequest>, AwsError> {
    let filter = Filter::builder().key(FilterNameStringType::Name).values(PREFIX).build();
    let mut names = Vec::new();
    let mut pages = sm(rc).list_secrets().filters(filter).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("secretsmanager:ListSecrets", &rc.region, Some(PREFIX), e))?;
        // The name filter is a case-insensitive prefix match: keep keydeck's exact prefix.
        names.extend(
            page.secret_list().iter().filter_map(|s| s.name()).filter(|n| n.starts_with(PREFIX)).map(str::to_owned),
        );
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        match describe(rc, &n).await {
            Ok(r) => out.push(r),
            Err(e) if e.kind == AwsErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// Move request `id` from state `from_token` to `to_token`: PutSecretValue (version
/// `to_token`, the marker, label `keydeck-pending`), then UpdateSecretVersionStage moving
/// `AWSCURRENT` to it from `from_token`. Secrets Manager refuses the move when
/// `from_token` no longer holds `AWSCURRENT`; then the current state is read back:
/// `Ok` when it is already `to_token` (this transition, retried), else `Lost`.
pub async fn transition(rc: &RegionConfig, id: &str, from_token: &str, to_token: &str) -> Result<(), TransitionError> {
    let name = secret_name(id);
    check_token("secretsmanager:PutSecretValue", rc, &name, to_token).map_err(TransitionError::Aws)?;
    check_token("secretsmanager:UpdateSecretVersionStage", rc, &name, from_token).map_err(TransitionError::Aws)?;
    let client = sm(rc);
    client
        .put_secret_value()
        .secret_id(&name)
        .client_request_token(to_token)
        .secret_string(MARKER)
        .version_stages(PENDING_LABEL)
        .send()
        .await
        .map_err(|e| {
            TransitionError::Aws(AwsError::from_sdk("secretsmanager:PutSecretValue", &rc.region, Some(&name), e))
        })?;
    let moved = client
        .update_secret_version_stage()
        .secret_id(&name)
        .version_stage(CURRENT_LABEL)
        .move_to_version_id(to_token)
        .remove_from_version_id(from_token)
        .send()
        .await;
    let err = match moved {
        Ok(_) => return Ok(()),
        Err(e) => AwsError::from_sdk("secretsmanager:UpdateSecretVersionStage", &rc.region, Some(&name), e),
    };
    if err.code.as_deref() != Some("InvalidParameterException") {
        return Err(TransitionError::Aws(err));
    }
    let now = describe(rc, &name).await.map_err(TransitionError::Aws)?;
    match now.current_version_token {
        Some(t) if t == to_token => Ok(()),
        Some(t) if t != from_token => Err(TransitionError::Lost { current_token: t }),
        // From still current (or nothing current): the refusal was about something else.
        _ => Err(TransitionError::Aws(err)),
    }
}

/// Tag request `id`'s secret (TagResource): the note of a final state.
pub async fn tag(rc: &RegionConfig, id: &str, key: &str, value: &str) -> Result<(), AwsError> {
    let name = secret_name(id);
    let value: String = value.chars().take(MAX_TAG_VALUE_CHARS).collect();
    sm(rc)
        .tag_resource()
        .secret_id(&name)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("secretsmanager:TagResource", &rc.region, Some(&name), e))?;
    Ok(())
}

/// A request's target key as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKey {
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
    /// Alias names without `alias/`, sorted.
    pub aliases: Vec<String>,
    /// For a multi-Region replica key: its primary's ARN (MultiRegionConfiguration).
    pub replica_of: Option<String>,
}

/// The key `arn` (DescribeKey, ListAliases); `None` when KMS no longer knows it.
pub async fn target_key(rc: &RegionConfig, arn: &str) -> Result<Option<TargetKey>, AwsError> {
    let kms = aws_sdk_kms::Client::new(&rc.config);
    let d = match kms.describe_key().key_id(arn).send().await {
        Ok(d) => d,
        Err(e) => {
            let err = AwsError::from_sdk("kms:DescribeKey", &rc.region, Some(arn), e);
            return if err.kind == AwsErrorKind::NotFound { Ok(None) } else { Err(err) };
        }
    };
    let Some(m) = d.key_metadata() else { return Ok(None) };
    let mut aliases = Vec::new();
    let mut pages = kms.list_aliases().key_id(m.key_id()).into_paginator().send();
    while let Some(page) = pages.next().await {
        let p = page.map_err(|e| AwsError::from_sdk("kms:ListAliases", &rc.region, Some(arn), e))?;
        aliases.extend(
            p.aliases().iter().filter_map(|a| a.alias_name()).map(|n| n.trim_start_matches("alias/").to_owned()),
        );
    }
    aliases.sort();
    let mr = m.multi_region_configuration();
    let replica = mr.and_then(|c| c.multi_region_key_type()).is_some_and(|t| t.as_str() == "REPLICA");
    let primary = mr.and_then(|c| c.primary_key()).and_then(|p| p.arn()).map(str::to_owned);
    Ok(Some(TargetKey {
        arn: m.arn().unwrap_or(arn).to_owned(),
        state: m.key_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        aliases,
        replica_of: primary.filter(|_| replica),
    }))
}

/// Make an approved request's one call as the caller (the approver): IAM decides,
/// CloudTrail attributes it. The outcome carries AWS's request id.
pub async fn execute(rc: &RegionConfig, call: &Call) -> Outcome {
    use aws_sdk_kms::operation::RequestId;
    let kms = aws_sdk_kms::Client::new(&rc.config);
    let p = &call.parameters;
    let key = p.get("KeyId").and_then(Value::as_str).unwrap_or_default().to_owned();
    let fail = |e: AwsError| Outcome::Failed { call: call.action.clone(), error: e.to_string() };
    let r = rc.region.as_str();
    match call.action.as_str() {
        "kms:RotateKeyOnDemand" => match kms.rotate_key_on_demand().key_id(&key).send().await {
            Ok(o) => Outcome::Succeeded {
                aws_request_ids: o.request_id().map(str::to_owned).into_iter().collect(),
                made: None,
                summary: format!("on-demand rotation of {} started", o.key_id().unwrap_or(&key)),
            },
            Err(e) => fail(AwsError::from_sdk("kms:RotateKeyOnDemand", r, Some(&key), e)),
        },
        "kms:ScheduleKeyDeletion" => {
            let days = p.get("PendingWindowInDays").and_then(Value::as_i64).and_then(|d| i32::try_from(d).ok());
            match kms.schedule_key_deletion().key_id(&key).set_pending_window_in_days(days).send().await {
                Ok(o) => Outcome::Succeeded {
                    aws_request_ids: o.request_id().map(str::to_owned).into_iter().collect(),
                    made: None,
                    summary: format!(
                        "{} deletion scheduled for {}",
                        o.key_id().unwrap_or(&key),
                        o.deletion_date().and_then(to_chrono).map(|d| d.to_rfc3339()).unwrap_or_default()
                    ),
                },
                Err(e) => fail(AwsError::from_sdk("kms:ScheduleKeyDeletion", r, Some(&key), e)),
            }
        }
        "kms:CancelKeyDeletion" => match kms.cancel_key_deletion().key_id(&key).send().await {
            Ok(o) => Outcome::Succeeded {
                aws_request_ids: o.request_id().map(str::to_owned).into_iter().collect(),
                made: None,
                summary: format!("deletion of {} cancelled (the key is Disabled)", o.key_id().unwrap_or(&key)),
            },
            Err(e) => fail(AwsError::from_sdk("kms:CancelKeyDeletion", r, Some(&key), e)),
        },
        "kms:CreateKey" => {
            use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag as KmsTag};
            let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
            let mut req = kms
                .create_key()
                .set_description(s("Description"))
                .set_key_spec(s("KeySpec").map(|v| KeySpec::from(v.as_str())))
                .set_key_usage(s("KeyUsage").map(|v| KeyUsageType::from(v.as_str())))
                .set_policy(s("Policy"))
                .set_multi_region(p.get("MultiRegion").and_then(Value::as_bool));
            for t in p.get("Tags").and_then(Value::as_array).into_iter().flatten() {
                let (Some(k), Some(v)) =
                    (t.get("TagKey").and_then(Value::as_str), t.get("TagValue").and_then(Value::as_str))
                else {
                    continue;
                };
                if let Ok(tag) = KmsTag::builder().tag_key(k).tag_value(v).build() {
                    req = req.tags(tag);
                }
            }
            match req.send().await {
                Ok(o) => Outcome::Succeeded {
                    aws_request_ids: o.request_id().map(str::to_owned).into_iter().collect(),
                    summary: format!("created {}", o.key_metadata().and_then(|m| m.arn()).unwrap_or("a key")),
                    made: o.key_metadata().and_then(|m| m.arn()).map(str::to_owned),
                },
                Err(e) => fail(AwsError::from_sdk("kms:CreateKey", r, None, e)),
            }
        }
        other => Outcome::Failed { call: other.to_owned(), error: format!("{other} is not an approval operation") },
    }
}

/// Who made the call `what` on the request secret `secret_arn`, as CloudTrail recorded it
/// (LookupEvents by EventName in the secret's region, from `since`, every page, paced
/// under 2 requests/s and backing off when throttled). `None`: not delivered yet
/// (CloudTrail delivers minutes late): ask again later, never trust the request instead.
/// A CreateSecret record must name this secret's ARN (a deleted and re-created name has
/// another); a move must be the successful one to `MovedCurrentTo`'s version.
pub async fn attested_actor(
    rc: &RegionConfig,
    secret_arn: &str,
    what: Attest<'_>,
    since: DateTime<Utc>,
) -> Result<Option<Attestation>, AwsError> {
    let (start, end) = (since - chrono::Duration::minutes(5), Utc::now() + chrono::Duration::minutes(1));
    let (records, _, _) = super::ops::lookup_all_by(
        rc,
        super::ops::LookupBy::EventName,
        what.event_name(),
        start,
        end,
        Duration::from_millis(550),
    )
    .await?;
    // Newest first: the last match is the oldest, the call that made the state.
    Ok(records
        .iter()
        .rev()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .find_map(|rec| attestation(&rec, secret_arn, &what)))
}

/// The attestation in one CloudTrail record, when it is the call `what` on `secret_arn`.
fn attestation(rec: &Value, secret_arn: &str, what: &Attest<'_>) -> Option<Attestation> {
    let s = |p: &str| rec.pointer(p).and_then(Value::as_str);
    if s("/eventSource") != Some("secretsmanager.amazonaws.com")
        || s("/eventName") != Some(what.event_name())
        || rec.get("errorCode").is_some_and(|c| !c.is_null())
    {
        return None;
    }
    let name = secret_arn.rsplit_once(":secret:").map(|(_, n)| n).unwrap_or(secret_arn);
    // The ARN without Secrets Manager's random 6-character suffix.
    let name = match name.rsplit_once('-') {
        Some((n, suffix)) if suffix.len() == 6 => n,
        _ => name,
    };
    let names_it = |v: Option<&str>| v.is_some_and(|v| v == secret_arn || v == name);
    let matches = match what {
        Attest::Created => {
            // Since February 2024 "arn"; before, some records said "aRN".
            let arn = s("/responseElements/arn").or_else(|| s("/responseElements/aRN"));
            match arn {
                Some(a) => a == secret_arn,
                None => s("/requestParameters/name") == Some(name),
            }
        }
        Attest::MovedCurrentTo(version) => {
            names_it(s("/requestParameters/secretId"))
                && s("/requestParameters/versionStage") == Some(CURRENT_LABEL)
                && s("/requestParameters/moveToVersionId") == Some(version)
        }
    };
    if !matches {
        return None;
    }
    Some(Attestation {
        principal_arn: s("/userIdentity/arn")?.to_owned(),
        session_issuer_arn: s("/userIdentity/sessionContext/sessionIssuer/arn").map(str::to_owned),
        identity_type: s("/userIdentity/type").unwrap_or_default().to_owned(),
        event_id: s("/eventID").unwrap_or_default().to_owned(),
        event_time: s("/eventTime").unwrap_or_default().to_owned(),
        request_parameters: rec.get("requestParameters").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:keydeck/approvals/r1-AbC123";

    fn rec(name: &str, params: Value, response: Value) -> Value {
        json!({
            "eventSource": "secretsmanager.amazonaws.com", "eventName": name, "eventID": "e1",
            "eventTime": "2026-11-29T10:00:00Z",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/key-admin"},
            "requestParameters": params, "responseElements": response,
        })
    }

    #[test]
    fn creation_is_attested_by_the_secrets_arn_not_its_name() {
        let ok = rec("CreateSecret", json!({"name": "keydeck/approvals/r1"}), json!({"arn": ARN}));
        let a = attestation(&ok, ARN, &Attest::Created).expect("attested");
        assert_eq!(a.principal_arn, "arn:aws:iam::123456789012:user/key-admin");
        // The same name created earlier (then deleted) is another secret.
        let older = rec(
            "CreateSecret",
            json!({"name": "keydeck/approvals/r1"}),
            json!({"arn": format!("{}-XyZ789", &ARN[..ARN.len() - 7])}),
        );
        assert!(attestation(&older, ARN, &Attest::Created).is_none());
        let mut failed = ok.clone();
        failed["errorCode"] = json!("AccessDenied");
        assert!(attestation(&failed, ARN, &Attest::Created).is_none());
    }

    #[test]
    fn a_move_is_attested_only_for_its_version_and_success() {
        let v = "approved-r1-0123456789abcdef0123456789";
        let ok = rec(
            "UpdateSecretVersionStage",
            json!({"secretId": "keydeck/approvals/r1", "versionStage": "AWSCURRENT", "moveToVersionId": v}),
            json!({"arn": ARN}),
        );
        assert!(attestation(&ok, ARN, &Attest::MovedCurrentTo(v)).is_some());
        assert!(attestation(&ok, ARN, &Attest::MovedCurrentTo("approved-r1-other-principal-hash-xx")).is_none());
        assert!(attestation(&ok, ARN, &Attest::Created).is_none());
    }

    #[test]
    fn foreign_or_tampered_entries_are_malformed() {
        let mut r = StoredRequest {
            arn: ARN.into(),
            name: "keydeck/approvals/r1".into(),
            id: "r1".into(),
            description: "{\"id\":\"r1\"}".into(),
            tags: [(TAG_APPROVAL.to_owned(), TAG_APPROVAL_VALUE.to_owned())].into(),
            current_version_token: Some(proposed_token("r1")),
            versions: BTreeMap::new(),
            created: None,
        };
        assert_eq!(r.problem(), None);
        r.description = "not json".into();
        assert!(r.problem().is_some_and(|p| p.contains("not JSON")));
        r.description = "{}".into();
        r.tags.clear();
        assert!(r.problem().is_some_and(|p| p.contains("not tagged")));
    }
}
