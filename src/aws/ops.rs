//! The incident runbook's AWS calls: each [`Op`] made as the caller, answered as the
//! [`CallResult`] the incident log records (request id, the response's non-secret members
//! under AWS's names, or the error code and message); reading AWS back to settle an
//! intent whose outcome is unknown; signing and verifying the log's chain head with a
//! KMS asymmetric key; and what an incident needs to know about its target at opening.
//!
//! Never a secret value: GetSecretValue and Decrypt are not called anywhere. The one
//! place a secret value exists is [`generate_and_put`], where Secrets Manager's
//! GetRandomPassword answer goes straight into PutSecretValue and is zeroed after.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec, Tag};
use serde_json::{json, Value};
use zeroize::Zeroize;

use super::context::{AwsContext, RegionConfig};
use super::error::AwsError;
use crate::domain::runbook::{CallResult, IncidentTarget, KeyTarget, Op, SecretTarget};

/// The region an ARN names (`arn:aws:kms:REGION:...`).
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The region an op runs in: its ARN's, else its `region`, else the home region.
pub fn op_region(op: &Op) -> Option<String> {
    let r = match op {
        Op::DescribeKey { key_id, .. }
        | Op::ListAliases { key_id, .. }
        | Op::GetKeyPolicy { key_id, .. }
        | Op::ListGrants { key_id, .. }
        | Op::DisableKey { key_id }
        | Op::EnableKey { key_id }
        | Op::EnableKeyRotation { key_id }
        | Op::RevokeGrant { key_id, .. }
        | Op::PutKeyPolicy { key_id, .. } => arn_region(key_id),
        Op::ReEncrypt { destination_key_id, .. } => arn_region(destination_key_id),
        Op::CreateKey { region, .. } | Op::UpdateAlias { region, .. } | Op::LookupEvents { region, .. } => {
            Some(region.as_str())
        }
        Op::Publish { topic_arn, .. } => arn_region(topic_arn),
        Op::DescribeSecret { secret_id, .. }
        | Op::RotateSecret { secret_id, .. }
        | Op::GenerateAndPutSecretValue { secret_id, .. }
        | Op::UpdateSecretVersionStage { secret_id, .. } => arn_region(secret_id),
    };
    r.map(str::to_owned)
}

/// The SDK config of `region` (a selected one, else the home config pointed there).
pub fn region_config(ctx: &AwsContext, region: Option<&str>) -> RegionConfig {
    match region {
        Some(r) => ctx.regions().iter().find(|rc| rc.region == r).cloned().unwrap_or_else(|| {
            let config = ctx.home().config.to_builder().region(aws_config::Region::new(r.to_owned())).build();
            RegionConfig { region: r.to_owned(), config }
        }),
        None => ctx.home().clone(),
    }
}

fn ok(call: &str, request_id: Option<&str>, fields: Value) -> CallResult {
    CallResult {
        call: call.to_owned(),
        request_id: request_id.map(str::to_owned),
        fields,
        error_code: None,
        error: None,
    }
}

fn failed<E, R>(call: &'static str, region: &str, resource: &str, err: SdkError<E, R>) -> CallResult
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
    SdkError<E, R>: RequestId,
{
    let request_id = err.request_id().map(str::to_owned);
    let e = AwsError::from_sdk(call, region, Some(resource), err);
    CallResult {
        call: call.to_owned(),
        request_id,
        fields: Value::Null,
        error_code: Some(e.code.clone().unwrap_or_else(|| format!("{:?}", e.kind))),
        error: Some(e.to_string()),
    }
}

fn ts(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.and_then(super::kms::to_chrono).map(|d| json!(d)).unwrap_or(Value::Null)
}

fn key_metadata(m: Option<&aws_sdk_kms::types::KeyMetadata>) -> Value {
    match m {
        None => Value::Null,
        Some(m) => json!({
            "KeyId": m.key_id(),
            "Arn": m.arn(),
            "KeyState": m.key_state().map(|s| s.as_str()),
            "KeySpec": m.key_spec().map(|s| s.as_str()),
            "KeyUsage": m.key_usage().map(|s| s.as_str()),
            "Description": m.description(),
            "Enabled": m.enabled(),
            "CreationDate": ts(m.creation_date()),
            "DeletionDate": ts(m.deletion_date()),
        }),
    }
}

/// Make one op as the caller. ReEncrypt ops go through [`re_encrypt`] (a file of
/// ciphertexts), LookupEvents through [`lookup_all`]; here they answer with what their
/// parameters are missing.
pub async fn execute(ctx: &AwsContext, op: &Op) -> CallResult {
    let region = op_region(op);
    let rc = region_config(ctx, region.as_deref());
    let r = rc.region.as_str();
    let kms = || aws_sdk_kms::Client::new(&rc.config);
    let sm = || aws_sdk_secretsmanager::Client::new(&rc.config);
    let name = op.call().name();
    match op {
        Op::DescribeKey { key_id, .. } => match kms().describe_key().key_id(key_id).send().await {
            Ok(o) => ok(name, o.request_id(), json!({ "KeyMetadata": key_metadata(o.key_metadata()) })),
            Err(e) => failed("kms:DescribeKey", r, key_id, e),
        },
        Op::ListAliases { key_id, .. } => {
            let mut aliases = Vec::new();
            let mut last_id = None;
            let mut pages = kms().list_aliases().key_id(key_id).into_paginator().send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(p) => {
                        last_id = p.request_id().map(str::to_owned);
                        aliases.extend(p.aliases().iter().map(|a| {
                            json!({"AliasName": a.alias_name(), "AliasArn": a.alias_arn(), "TargetKeyId": a.target_key_id()})
                        }));
                    }
                    Err(e) => return failed("kms:ListAliases", r, key_id, e),
                }
            }
            ok(name, last_id.as_deref(), json!({ "Aliases": aliases }))
        }
        Op::GetKeyPolicy { key_id, policy_name } => {
            match kms().get_key_policy().key_id(key_id).policy_name(policy_name).send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "PolicyName": o.policy_name(), "Policy": o.policy() })),
                Err(e) => failed("kms:GetKeyPolicy", r, key_id, e),
            }
        }
        Op::ListGrants { key_id, .. } => {
            let mut grants = Vec::new();
            let mut last_id = None;
            let mut pages = kms().list_grants().key_id(key_id).into_paginator().send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(p) => {
                        last_id = p.request_id().map(str::to_owned);
                        grants.extend(p.grants().iter().map(|g| {
                            json!({
                                "GrantId": g.grant_id(),
                                "Name": g.name(),
                                "GranteePrincipal": g.grantee_principal(),
                                "RetiringPrincipal": g.retiring_principal(),
                                "IssuingAccount": g.issuing_account(),
                                "Operations": g.operations().iter().map(|o| o.as_str()).collect::<Vec<_>>(),
                                "CreationDate": ts(g.creation_date()),
                            })
                        }));
                    }
                    Err(e) => return failed("kms:ListGrants", r, key_id, e),
                }
            }
            ok(name, last_id.as_deref(), json!({ "Grants": grants }))
        }
        Op::DisableKey { key_id } => match kms().disable_key().key_id(key_id).send().await {
            Ok(o) => ok(name, o.request_id(), Value::Null),
            Err(e) => failed("kms:DisableKey", r, key_id, e),
        },
        Op::EnableKey { key_id } => match kms().enable_key().key_id(key_id).send().await {
            Ok(o) => ok(name, o.request_id(), Value::Null),
            Err(e) => failed("kms:EnableKey", r, key_id, e),
        },
        Op::EnableKeyRotation { key_id } => match kms().enable_key_rotation().key_id(key_id).send().await {
            Ok(o) => ok(name, o.request_id(), Value::Null),
            Err(e) => failed("kms:EnableKeyRotation", r, key_id, e),
        },
        Op::CreateKey { key_spec, key_usage, description, policy, tags, .. } => {
            let mut req = kms()
                .create_key()
                .key_spec(KeySpec::from(key_spec.as_str()))
                .key_usage(KeyUsageType::from(key_usage.as_str()))
                .description(description)
                .policy(policy);
            for (k, v) in tags {
                match Tag::builder().tag_key(k).tag_value(v).build() {
                    Ok(t) => req = req.tags(t),
                    Err(e) => return client_error(name, &format!("tag {k}: {e}")),
                }
            }
            match req.send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "KeyMetadata": key_metadata(o.key_metadata()) })),
                Err(e) => failed("kms:CreateKey", r, "a new key", e),
            }
        }
        Op::UpdateAlias { alias_name, target_key_id, .. } => {
            match kms().update_alias().alias_name(alias_name).target_key_id(target_key_id).send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "AliasName": alias_name, "TargetKeyId": target_key_id })),
                Err(e) => failed("kms:UpdateAlias", r, alias_name, e),
            }
        }
        Op::RevokeGrant { key_id, grant_id } => {
            match kms().revoke_grant().key_id(key_id).grant_id(grant_id).send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "GrantId": grant_id })),
                Err(e) => failed("kms:RevokeGrant", r, key_id, e),
            }
        }
        Op::PutKeyPolicy { key_id, policy_name, policy, .. } => {
            match kms().put_key_policy().key_id(key_id).policy_name(policy_name).policy(policy).send().await {
                Ok(o) => ok(name, o.request_id(), Value::Null),
                Err(e) => failed("kms:PutKeyPolicy", r, key_id, e),
            }
        }
        Op::Publish { topic_arn, subject, message } => {
            let sns = aws_sdk_sns::Client::new(&rc.config);
            match sns.publish().topic_arn(topic_arn).subject(subject).message(message).send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "MessageId": o.message_id() })),
                Err(e) => failed("sns:Publish", r, topic_arn, e),
            }
        }
        Op::DescribeSecret { secret_id, .. } => match sm().describe_secret().secret_id(secret_id).send().await {
            Ok(o) => ok(name, o.request_id(), describe_secret_fields(&o)),
            Err(e) => failed("secretsmanager:DescribeSecret", r, secret_id, e),
        },
        Op::RotateSecret { secret_id, client_request_token, rotate_immediately } => {
            let req = sm()
                .rotate_secret()
                .secret_id(secret_id)
                .client_request_token(client_request_token)
                .rotate_immediately(*rotate_immediately);
            match req.send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "ARN": o.arn(), "VersionId": o.version_id() })),
                Err(e) => failed("secretsmanager:RotateSecret", r, secret_id, e),
            }
        }
        Op::GenerateAndPutSecretValue { secret_id, client_request_token, password_length, exclude_punctuation } => {
            generate_and_put(&rc, secret_id, client_request_token, *password_length, *exclude_punctuation).await
        }
        Op::UpdateSecretVersionStage { secret_id, version_stage, remove_from_version_id } => {
            let req = sm()
                .update_secret_version_stage()
                .secret_id(secret_id)
                .version_stage(version_stage)
                .remove_from_version_id(remove_from_version_id);
            match req.send().await {
                Ok(o) => ok(name, o.request_id(), json!({ "ARN": o.arn() })),
                Err(e) => failed("secretsmanager:UpdateSecretVersionStage", r, secret_id, e),
            }
        }
        Op::ReEncrypt { .. } => client_error(name, "a re-encryption runs over its file (re_encrypt)"),
        Op::LookupEvents { .. } => client_error(name, "a lookup reads every page (lookup_all)"),
    }
}

fn client_error(call: &str, message: &str) -> CallResult {
    CallResult {
        call: call.to_owned(),
        request_id: None,
        fields: Value::Null,
        error_code: Some("keydeck.Client".into()),
        error: Some(message.to_owned()),
    }
}

fn describe_secret_fields(o: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput) -> Value {
    let stages: BTreeMap<&str, Vec<&str>> = o
        .version_ids_to_stages()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect())).collect())
        .unwrap_or_default();
    json!({
        "ARN": o.arn(),
        "Name": o.name(),
        "RotationEnabled": o.rotation_enabled(),
        "RotationLambdaARN": o.rotation_lambda_arn(),
        "LastRotatedDate": ts(o.last_rotated_date()),
        "LastChangedDate": ts(o.last_changed_date()),
        "VersionIdsToStages": stages,
    })
}

/// GetRandomPassword, then PutSecretValue of that value with `token` as the new
/// version's id: the value lives only in this function and is zeroed before it returns;
/// only the new version id comes back. (004 §4.7 JWT_SECRET emergency rotation.)
pub async fn generate_and_put(
    rc: &RegionConfig,
    secret_id: &str,
    token: &str,
    length: u32,
    exclude_punctuation: bool,
) -> CallResult {
    let sm = aws_sdk_secretsmanager::Client::new(&rc.config);
    let call = "secretsmanager:GetRandomPassword+PutSecretValue";
    let gen = sm
        .get_random_password()
        .password_length(i64::from(length))
        .exclude_punctuation(exclude_punctuation)
        .require_each_included_type(true)
        .send()
        .await;
    let mut value = match gen {
        Ok(o) => match o.random_password {
            Some(v) => v,
            None => return client_error(call, "GetRandomPassword answered without a password"),
        },
        Err(e) => return failed("secretsmanager:GetRandomPassword", &rc.region, secret_id, e),
    };
    let put = sm.put_secret_value().secret_id(secret_id).client_request_token(token).secret_string(&value).send().await;
    value.zeroize();
    match put {
        Ok(o) => ok(
            call,
            o.request_id(),
            json!({ "ARN": o.arn(), "VersionId": o.version_id(), "VersionStages": o.version_stages() }),
        ),
        Err(e) => failed("secretsmanager:PutSecretValue", &rc.region, secret_id, e),
    }
}

/// One line of a ciphertext file: a base64 CiphertextBlob (standard alphabet, padded, as
/// the AWS CLI prints it), surrounding whitespace ignored. Errors: the line is empty or not
/// base64 (the reason, without the line's contents).
pub fn decode_ciphertext(line: &str) -> Result<Vec<u8>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Err("empty line, not a base64 CiphertextBlob".into());
    }
    aws_smithy_types::base64::decode(line).map_err(|e| format!("not base64: {e}"))
}

/// One KMS client for the many ReEncrypt calls of a file. Every `aws_sdk_kms::Client::new`
/// builds a new HTTP client (the shared config carries none), so a client per call opened
/// a new connection — against AWS a new TLS session — for every line.
#[derive(Clone, Debug)]
pub struct ReEncrypter {
    kms: aws_sdk_kms::Client,
    region: String,
}

impl ReEncrypter {
    pub fn new(rc: &RegionConfig) -> Self {
        Self { kms: aws_sdk_kms::Client::new(&rc.config), region: rc.region.clone() }
    }

    /// ReEncrypt one base64 CiphertextBlob from `source` to `destination`. Answers the new
    /// blob (base64) and the request id, or the failure as a [`CallResult`].
    pub async fn re_encrypt_one(
        &self,
        source: &str,
        destination: &str,
        blob_b64: &str,
    ) -> Result<(String, Option<String>), CallResult> {
        let blob = decode_ciphertext(blob_b64).map_err(|e| client_error("kms:ReEncrypt", &e))?;
        let out = (self.kms.re_encrypt())
            .ciphertext_blob(Blob::new(blob))
            .source_key_id(source)
            .destination_key_id(destination)
            .send()
            .await
            .map_err(|e| failed("kms:ReEncrypt", &self.region, source, e))?;
        let rid = out.request_id().map(str::to_owned);
        let new = out.ciphertext_blob().map(|b| aws_smithy_types::base64::encode(b.as_ref())).unwrap_or_default();
        Ok((new, rid))
    }
}

/// Every page of LookupEvents for events naming `resource_name` in [start, end], paced
/// under CloudTrail's 2 requests/s per region (a page every `gap`), retrying throttled
/// calls with backoff: a long lookup is never failed by throttling. Answers the raw
/// records (CloudTrailEvent JSON), the calls made and the throttled ones.
pub async fn lookup_all(
    rc: &RegionConfig,
    resource_name: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    gap: Duration,
) -> Result<(Vec<String>, usize, usize), AwsError> {
    lookup_all_by(rc, LookupBy::ResourceName, resource_name, start, end, gap).await
}

/// Which one LookupEvents attribute a lookup filters on (CloudTrail allows one per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupBy {
    ResourceName,
    EventName,
}

/// As [`lookup_all`], filtering on `by` = `value`.
pub async fn lookup_all_by(
    rc: &RegionConfig,
    by: LookupBy,
    resource_name: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    gap: Duration,
) -> Result<(Vec<String>, usize, usize), AwsError> {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let key = match by {
        LookupBy::ResourceName => LookupAttributeKey::ResourceName,
        LookupBy::EventName => LookupAttributeKey::EventName,
    };
    let conf = aws_sdk_cloudtrail::config::Builder::from(&rc.config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_cloudtrail::Client::from_conf(conf);
    let attr =
        LookupAttribute::builder().attribute_key(key).attribute_value(resource_name).build().map_err(|e| AwsError {
            call: "cloudtrail:LookupEvents",
            region: rc.region.clone(),
            resource: Some(resource_name.to_owned()),
            kind: super::error::AwsErrorKind::Client,
            code: None,
            message: e.to_string(),
        })?;
    let smithy = |t: chrono::DateTime<chrono::Utc>| aws_smithy_types::DateTime::from_secs(t.timestamp());
    let (mut records, mut calls, mut throttled) = (Vec::new(), 0usize, 0usize);
    let mut token: Option<String> = None;
    let mut last: Option<tokio::time::Instant> = None;
    let mut backoff = gap;
    loop {
        if let Some(at) = last {
            tokio::time::sleep_until(at + gap).await;
        }
        last = Some(tokio::time::Instant::now());
        calls += 1;
        let mut req = client
            .lookup_events()
            .lookup_attributes(attr.clone())
            .start_time(smithy(start))
            .end_time(smithy(end))
            .max_results(50);
        if let Some(t) = &token {
            req = req.next_token(t);
        }
        match req.send().await {
            Ok(out) => {
                backoff = gap;
                records.extend(out.events().iter().filter_map(|e| e.cloud_trail_event().map(str::to_owned)));
                token = out.next_token().map(str::to_owned);
                if token.is_none() {
                    return Ok((records, calls, throttled));
                }
            }
            Err(e) => {
                let err = AwsError::from_sdk("cloudtrail:LookupEvents", &rc.region, Some(resource_name), e);
                if err.kind != super::error::AwsErrorKind::Throttled || throttled >= 50 {
                    return Err(err);
                }
                throttled += 1;
                backoff = (backoff * 2).min(Duration::from_secs(8));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Read AWS to settle an op whose outcome is unknown (the process stopped between the
/// intent and the answer): `Some(observed)` in AWS's shapes when its effect is visible,
/// `None` when it is not. Reads only: DescribeKey, ListAliases, ListGrants, GetKeyPolicy,
/// ListKeys + ListResourceTags (a key created with the incident's tags), DescribeSecret —
/// never GetSecretValue.
pub async fn observe(ctx: &AwsContext, op: &Op) -> Result<Option<Value>, AwsError> {
    let rc = region_config(ctx, op_region(op).as_deref());
    let r = rc.region.clone();
    let kms = aws_sdk_kms::Client::new(&rc.config);
    let describe = |key_id: String| {
        let kms = kms.clone();
        let r = r.clone();
        async move {
            kms.describe_key()
                .key_id(&key_id)
                .send()
                .await
                .map(|o| key_metadata(o.key_metadata()))
                .map_err(|e| AwsError::from_sdk("kms:DescribeKey", &r, Some(&key_id), e))
        }
    };
    let state_is = |m: &Value, want: &str| m.get("KeyState").and_then(Value::as_str) == Some(want);
    match op {
        Op::DisableKey { key_id } => {
            let m = describe(key_id.clone()).await?;
            Ok(state_is(&m, "Disabled").then(|| json!({ "KeyMetadata": m })))
        }
        Op::EnableKey { key_id } => {
            let m = describe(key_id.clone()).await?;
            Ok(state_is(&m, "Enabled").then(|| json!({ "KeyMetadata": m })))
        }
        Op::EnableKeyRotation { key_id } => {
            let o = kms
                .get_key_rotation_status()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("kms:GetKeyRotationStatus", &r, Some(key_id), e))?;
            Ok(o.key_rotation_enabled().then(|| json!({ "KeyRotationEnabled": true })))
        }
        Op::UpdateAlias { alias_name, target_key_id, .. } => {
            let target_id = target_key_id.rsplit('/').next().unwrap_or(target_key_id);
            let mut pages = kms.list_aliases().into_paginator().send();
            while let Some(page) = pages.next().await {
                let p = page.map_err(|e| AwsError::from_sdk("kms:ListAliases", &r, Some(alias_name), e))?;
                for a in p.aliases() {
                    if a.alias_name() == Some(alias_name.as_str()) {
                        let on = a.target_key_id() == Some(target_id);
                        return Ok(on.then(|| json!({ "AliasName": alias_name, "TargetKeyId": a.target_key_id() })));
                    }
                }
            }
            Ok(None)
        }
        Op::RevokeGrant { key_id, grant_id } => {
            let mut pages = kms.list_grants().key_id(key_id).into_paginator().send();
            while let Some(page) = pages.next().await {
                let p = page.map_err(|e| AwsError::from_sdk("kms:ListGrants", &r, Some(key_id), e))?;
                if p.grants().iter().any(|g| g.grant_id() == Some(grant_id.as_str())) {
                    return Ok(None);
                }
            }
            Ok(Some(json!({ "GrantId": grant_id, "Revoked": true })))
        }
        Op::PutKeyPolicy { key_id, policy_name, policy, .. } => {
            let o = kms
                .get_key_policy()
                .key_id(key_id)
                .policy_name(policy_name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("kms:GetKeyPolicy", &r, Some(key_id), e))?;
            let same = |a: &str, b: &str| {
                serde_json::from_str::<Value>(a)
                    .ok()
                    .zip(serde_json::from_str::<Value>(b).ok())
                    .is_some_and(|(x, y)| x == y)
            };
            Ok(o.policy().is_some_and(|p| same(p, policy)).then(|| json!({ "Policy": "as intended" })))
        }
        Op::CreateKey { tags, .. } => {
            // The replacement carries the incident's tags: find a key with all of them.
            let mut pages = kms.list_keys().into_paginator().send();
            while let Some(page) = pages.next().await {
                let p = page.map_err(|e| AwsError::from_sdk("kms:ListKeys", &r, None, e))?;
                for k in p.keys() {
                    let Some(id) = k.key_id() else { continue };
                    let Ok(t) = kms.list_resource_tags().key_id(id).send().await else { continue };
                    let have: BTreeMap<&str, &str> = t.tags().iter().map(|t| (t.tag_key(), t.tag_value())).collect();
                    if tags.iter().all(|(k, v)| have.get(k.as_str()) == Some(&v.as_str())) {
                        let m = describe(id.to_owned()).await?;
                        return Ok(Some(json!({ "KeyMetadata": m })));
                    }
                }
            }
            Ok(None)
        }
        Op::RotateSecret { secret_id, client_request_token, .. }
        | Op::GenerateAndPutSecretValue { secret_id, client_request_token, .. } => {
            let sm = aws_sdk_secretsmanager::Client::new(&rc.config);
            let o = sm
                .describe_secret()
                .secret_id(secret_id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("secretsmanager:DescribeSecret", &r, Some(secret_id), e))?;
            let fields = describe_secret_fields(&o);
            let has = fields.pointer(&format!("/VersionIdsToStages/{client_request_token}")).is_some();
            Ok(has.then(|| {
                let mut f = fields.clone();
                if let Some(m) = f.as_object_mut() {
                    m.insert("VersionId".into(), json!(client_request_token));
                }
                f
            }))
        }
        Op::UpdateSecretVersionStage { secret_id, version_stage, remove_from_version_id } => {
            let sm = aws_sdk_secretsmanager::Client::new(&rc.config);
            let o = sm
                .describe_secret()
                .secret_id(secret_id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("secretsmanager:DescribeSecret", &r, Some(secret_id), e))?;
            let fields = describe_secret_fields(&o);
            let still = fields
                .pointer(&format!("/VersionIdsToStages/{remove_from_version_id}"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|s| s == version_stage.as_str()));
            Ok((!still).then_some(fields))
        }
        // Reads and publishing change nothing that must not happen twice: the caller makes
        // them again. A re-encryption resumes from its output file.
        _ => Ok(None),
    }
}

/// Check that the key `arn`, made by someone else's call (an approver carrying out an
/// incident's kms:CreateKey request), is what the kms:CreateKey `op` asked for: it exists
/// in the op's region, carries every tag the op set (`keydeck:incident` and
/// `keydeck:replaces` among them), and has the op's KeySpec. Reads only (DescribeKey,
/// ListResourceTags). Answers `Ok({"KeyMetadata": ...})`, or `Err(why not)` in words.
pub async fn created_key(ctx: &AwsContext, op: &Op, arn: &str) -> Result<Result<Value, String>, AwsError> {
    let Op::CreateKey { region, key_spec, tags, .. } = op else {
        return Ok(Err(format!("{} is not kms:CreateKey", op.call().name())));
    };
    if arn_region(arn) != Some(region.as_str()) {
        return Ok(Err(format!("{arn} is not in {region}, where the replacement was requested")));
    }
    let rc = region_config(ctx, Some(region));
    let kms = aws_sdk_kms::Client::new(&rc.config);
    let m = match kms.describe_key().key_id(arn).send().await {
        Ok(o) => key_metadata(o.key_metadata()),
        Err(e) => {
            let e = AwsError::from_sdk("kms:DescribeKey", &rc.region, Some(arn), e);
            return match e.kind {
                super::error::AwsErrorKind::NotFound => Ok(Err(format!("kms:DescribeKey finds no key {arn}"))),
                _ => Err(e),
            };
        }
    };
    let t = kms
        .list_resource_tags()
        .key_id(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("kms:ListResourceTags", &rc.region, Some(arn), e))?;
    let have: BTreeMap<&str, &str> = t.tags().iter().map(|t| (t.tag_key(), t.tag_value())).collect();
    if let Some((k, v)) = tags.iter().find(|(k, v)| have.get(k.as_str()) != Some(&v.as_str())) {
        return Ok(Err(format!("{arn} does not carry the tag {k}={v} the request set")));
    }
    let spec = m.get("KeySpec").and_then(Value::as_str).unwrap_or_default();
    if spec != key_spec {
        return Ok(Err(format!("{arn} is a {spec} key, not the requested {key_spec}")));
    }
    Ok(Ok(json!({ "KeyMetadata": m })))
}

/// Sign a 32-byte digest (the incident log's chain head) with a KMS asymmetric key:
/// `kms:Sign`, MessageType DIGEST, ECDSA_SHA_256. Answers the signature bytes and the
/// key's ARN as KMS names it.
pub async fn sign_digest(ctx: &AwsContext, key_id: &str, digest: &[u8]) -> Result<(Vec<u8>, String), AwsError> {
    let rc = region_config(ctx, arn_region(key_id));
    let o = aws_sdk_kms::Client::new(&rc.config)
        .sign()
        .key_id(key_id)
        .message(Blob::new(digest.to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("kms:Sign", &rc.region, Some(key_id), e))?;
    let sig = o.signature().map(|b| b.as_ref().to_vec()).unwrap_or_default();
    Ok((sig, o.key_id().unwrap_or(key_id).to_owned()))
}

/// Check a signature over a 32-byte digest with `kms:Verify` (MessageType DIGEST).
/// `Ok(false)` when KMS says the signature is invalid (KMSInvalidSignatureException).
pub async fn verify_digest(
    ctx: &AwsContext,
    key_id: &str,
    algorithm: &str,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool, AwsError> {
    let rc = region_config(ctx, arn_region(key_id));
    let res = aws_sdk_kms::Client::new(&rc.config)
        .verify()
        .key_id(key_id)
        .message(Blob::new(digest.to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::from(algorithm))
        .signature(Blob::new(signature.to_vec()))
        .send()
        .await;
    match res {
        Ok(o) => Ok(o.signature_valid()),
        Err(e) if e.code() == Some("KMSInvalidSignatureException") => Ok(false),
        Err(e) => Err(AwsError::from_sdk("kms:Verify", &rc.region, Some(key_id), e)),
    }
}

/// What an incident records about its target at opening: a key's ARN, aliases, spec,
/// usage, description, tags and key policy (the replacement copies them); a secret's
/// ARN, rotation and the version holding AWSCURRENT. `reference` is an alias (with or
/// without `alias/`), key id or ARN; or a secret's name or ARN.
pub async fn describe_target(ctx: &AwsContext, reference: &str, secret: bool) -> Result<IncidentTarget, AwsError> {
    if secret {
        let rc = region_config(ctx, arn_region(reference));
        let o = aws_sdk_secretsmanager::Client::new(&rc.config)
            .describe_secret()
            .secret_id(reference)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("secretsmanager:DescribeSecret", &rc.region, Some(reference), e))?;
        let current = o
            .version_ids_to_stages()
            .and_then(|m| m.iter().find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT")).map(|(v, _)| v.clone()))
            .unwrap_or_default();
        let arn = o.arn().unwrap_or(reference).to_owned();
        return Ok(IncidentTarget::Secret(SecretTarget {
            region: arn_region(&arn).unwrap_or(&rc.region).to_owned(),
            name: o.name().unwrap_or(reference).to_owned(),
            arn,
            // RotateSecret rotates only through a rotation function (Lambda): a secret
            // marked RotationEnabled without one cannot rotate, and its new version would
            // have no value. Secrets Manager user guide, "Rotate secrets".
            rotation_enabled: o.rotation_enabled().unwrap_or(false)
                && o.rotation_lambda_arn().is_some_and(|a| !a.trim().is_empty()),
            current_version_id: current,
        }));
    }
    // A key id is a UUID (or `mrk-` + hex for a multi-Region key); anything else that is
    // not an ARN or `alias/…` is an alias name.
    let is_key_id = |r: &str| {
        let uuid = r.len() == 36 && r.chars().all(|c| c.is_ascii_hexdigit() || c == '-') && r.matches('-').count() == 4;
        uuid || r.strip_prefix("mrk-").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let key_ref = if reference.starts_with("arn:") || reference.starts_with("alias/") || is_key_id(reference) {
        reference.to_owned()
    } else {
        format!("alias/{reference}")
    };
    // An alias or key id names a key in one region: the first selected region that has it.
    let candidates: Vec<RegionConfig> = match arn_region(&key_ref) {
        Some(r) => vec![region_config(ctx, Some(r))],
        None => ctx.regions().to_vec(),
    };
    let mut last_err = None;
    for rc in candidates {
        let kms = aws_sdk_kms::Client::new(&rc.config);
        let d = match kms.describe_key().key_id(&key_ref).send().await {
            Ok(d) => d,
            Err(e) => {
                let err = AwsError::from_sdk("kms:DescribeKey", &rc.region, Some(&key_ref), e);
                if err.kind == super::error::AwsErrorKind::NotFound {
                    last_err = Some(err);
                    continue;
                }
                return Err(err);
            }
        };
        let Some(m) = d.key_metadata() else { continue };
        let arn = m.arn().unwrap_or_default().to_owned();
        let key_id = m.key_id().to_owned();
        let r = rc.region.as_str();
        let mut aliases: Vec<String> = Vec::new();
        let mut pages = kms.list_aliases().key_id(&key_id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let p = page.map_err(|e| AwsError::from_sdk("kms:ListAliases", r, Some(&arn), e))?;
            aliases.extend(
                p.aliases().iter().filter_map(|a| a.alias_name()).map(|n| n.trim_start_matches("alias/").to_owned()),
            );
        }
        aliases.sort();
        let tags = kms
            .list_resource_tags()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("kms:ListResourceTags", r, Some(&arn), e))?
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
            .collect();
        let policy = kms
            .get_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("kms:GetKeyPolicy", r, Some(&arn), e))?
            .policy()
            .unwrap_or_default()
            .to_owned();
        return Ok(IncidentTarget::Key(KeyTarget {
            arn,
            key_id,
            region: rc.region.clone(),
            aliases,
            key_spec: m.key_spec().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            key_usage: m.key_usage().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            description: m.description().unwrap_or_default().to_owned(),
            tags,
            policy,
        }));
    }
    Err(last_err.unwrap_or_else(|| AwsError {
        call: "kms:DescribeKey",
        region: ctx.home().region.clone(),
        resource: Some(key_ref.clone()),
        kind: super::error::AwsErrorKind::NotFound,
        code: None,
        message: "no selected region has this key".into(),
    }))
}

/// Whether an incident's target still exists here (DescribeKey / DescribeSecret): an
/// incident of another account, endpoint or an emulator since reset is not resumed.
pub async fn target_exists(ctx: &AwsContext, target: &IncidentTarget) -> Result<bool, AwsError> {
    let rc = region_config(ctx, Some(target.region()));
    let found = match target {
        IncidentTarget::Key(k) => match aws_sdk_kms::Client::new(&rc.config).describe_key().key_id(&k.arn).send().await
        {
            Ok(_) => true,
            Err(e) => {
                let err = AwsError::from_sdk("kms:DescribeKey", &rc.region, Some(&k.arn), e);
                if err.kind != super::error::AwsErrorKind::NotFound {
                    return Err(err);
                }
                false
            }
        },
        IncidentTarget::Secret(s) => {
            match aws_sdk_secretsmanager::Client::new(&rc.config).describe_secret().secret_id(&s.arn).send().await {
                Ok(_) => true,
                Err(e) => {
                    let err = AwsError::from_sdk("secretsmanager:DescribeSecret", &rc.region, Some(&s.arn), e);
                    if err.kind != super::error::AwsErrorKind::NotFound {
                        return Err(err);
                    }
                    false
                }
            }
        }
    };
    Ok(found)
}
