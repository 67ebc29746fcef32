//! [`Op`]: one exact AWS call with its parameters, what it shows before it runs, and how
//! its response is judged.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Call;
use crate::domain::text::inert;

/// One AWS call with its parameters, as domain values. Serialised (tagged by `call`, the
/// AWS name) into the incident log as the step's intent. Key ids are ARNs (accepted by
/// every KMS call here and region-bearing); alias names carry the `alias/` prefix. Ops
/// without an ARN say their `region`. No op holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call")]
pub enum Op {
    #[serde(rename = "kms:DescribeKey")]
    DescribeKey { key_id: String, expect_key_state: Option<String> },
    #[serde(rename = "kms:ListAliases")]
    ListAliases { key_id: String, expect_aliases: Vec<String> },
    #[serde(rename = "kms:GetKeyPolicy")]
    GetKeyPolicy { key_id: String, policy_name: String },
    #[serde(rename = "kms:ListGrants")]
    ListGrants { key_id: String, expect_none: bool },
    #[serde(rename = "kms:DisableKey")]
    DisableKey { key_id: String },
    #[serde(rename = "kms:EnableKey")]
    EnableKey { key_id: String },
    #[serde(rename = "kms:CreateKey")]
    CreateKey {
        region: String,
        key_spec: String,
        key_usage: String,
        description: String,
        /// The key policy document (JSON text).
        policy: String,
        tags: BTreeMap<String, String>,
    },
    #[serde(rename = "kms:EnableKeyRotation")]
    EnableKeyRotation { key_id: String },
    #[serde(rename = "kms:UpdateAlias")]
    UpdateAlias { region: String, alias_name: String, target_key_id: String },
    #[serde(rename = "kms:RevokeGrant")]
    RevokeGrant { key_id: String, grant_id: String },
    #[serde(rename = "kms:PutKeyPolicy")]
    PutKeyPolicy {
        key_id: String,
        policy_name: String,
        /// The key policy document (JSON text).
        policy: String,
        /// What the policy does, for the operator.
        summary: String,
    },
    /// ReEncrypt the one CiphertextBlob in `input_file`, writing the new blob to `output_file`.
    #[serde(rename = "kms:ReEncrypt")]
    ReEncrypt { source_key_id: String, destination_key_id: String, input_file: String, output_file: String },
    /// All pages of events naming `resource_name`, from `start_time` to `end_time` (`None`:
    /// until the call).
    #[serde(rename = "cloudtrail:LookupEvents")]
    LookupEvents { region: String, resource_name: String, start_time: DateTime<Utc>, end_time: Option<DateTime<Utc>> },
    #[serde(rename = "sns:Publish")]
    Publish { topic_arn: String, subject: String, message: String },
    #[serde(rename = "secretsmanager:DescribeSecret")]
    DescribeSecret {
        secret_id: String,
        /// AWSCURRENT must be off this version, and no AWSPENDING anywhere.
        expect_rotated_from: Option<String>,
        /// This version must have no staging label.
        expect_unstaged: Option<String>,
    },
    /// `client_request_token` becomes the new version's id: the same attempt is idempotent
    /// and an unknown outcome is settled by looking for that version.
    #[serde(rename = "secretsmanager:RotateSecret")]
    RotateSecret { secret_id: String, client_request_token: String, rotate_immediately: bool },
    /// GetRandomPassword, then PutSecretValue of that value in the same call path: the
    /// value never leaves it (only the new version id comes back).
    #[serde(rename = "secretsmanager:GetRandomPassword+PutSecretValue")]
    GenerateAndPutSecretValue {
        secret_id: String,
        client_request_token: String,
        password_length: u32,
        exclude_punctuation: bool,
    },
    #[serde(rename = "secretsmanager:UpdateSecretVersionStage")]
    UpdateSecretVersionStage { secret_id: String, version_stage: String, remove_from_version_id: String },
}

impl Op {
    /// The call this op makes (its [`Call::name`] is [`CallResult::call`](super::CallResult::call)).
    pub fn call(&self) -> Call {
        match self {
            Op::DescribeKey { .. } => Call::DescribeKey,
            Op::ListAliases { .. } => Call::ListAliases,
            Op::GetKeyPolicy { .. } => Call::GetKeyPolicy,
            Op::ListGrants { .. } => Call::ListGrants,
            Op::DisableKey { .. } => Call::DisableKey,
            Op::EnableKey { .. } => Call::EnableKey,
            Op::CreateKey { .. } => Call::CreateKey,
            Op::EnableKeyRotation { .. } => Call::EnableKeyRotation,
            Op::UpdateAlias { .. } => Call::UpdateAlias,
            Op::RevokeGrant { .. } => Call::RevokeGrant,
            Op::PutKeyPolicy { .. } => Call::PutKeyPolicy,
            Op::ReEncrypt { .. } => Call::ReEncrypt,
            Op::LookupEvents { .. } => Call::LookupEvents,
            Op::Publish { .. } => Call::Publish,
            Op::DescribeSecret { .. } => Call::DescribeSecret,
            Op::RotateSecret { .. } => Call::RotateSecret,
            Op::GenerateAndPutSecretValue { .. } => Call::GenerateAndPutSecretValue,
            Op::UpdateSecretVersionStage { .. } => Call::UpdateSecretVersionStage,
        }
    }

    /// The one line shown before the call runs, e.g.
    /// `kms:DisableKey KeyId=arn:aws:kms:eu-north-1:123456789012:key/…`. Text from AWS is
    /// made inert; policies and messages are summarised (the intent JSON has them whole).
    pub fn describe(&self) -> String {
        let name = self.call().name();
        let line = match self {
            Op::DescribeKey { key_id, expect_key_state } => {
                let exp = expect_key_state.as_ref().map(|s| format!(" (expect KeyState={s})")).unwrap_or_default();
                format!("KeyId={key_id}{exp}")
            }
            Op::ListAliases { key_id, expect_aliases } if expect_aliases.is_empty() => format!("KeyId={key_id}"),
            Op::ListAliases { key_id, expect_aliases } => {
                format!("KeyId={key_id} (expect {})", expect_aliases.join(", "))
            }
            Op::GetKeyPolicy { key_id, policy_name } => format!("KeyId={key_id} PolicyName={policy_name}"),
            Op::ListGrants { key_id, expect_none } => {
                format!("KeyId={key_id}{}", if *expect_none { " (expect no grants)" } else { "" })
            }
            Op::DisableKey { key_id } | Op::EnableKey { key_id } | Op::EnableKeyRotation { key_id } => {
                format!("KeyId={key_id}")
            }
            Op::CreateKey { region, key_spec, key_usage, description, policy, tags } => {
                let tags = tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
                format!(
                    "({region}) KeySpec={key_spec} KeyUsage={key_usage} Description={description:?} Tags={tags} Policy=<{} bytes, the compromised key's>",
                    policy.len()
                )
            }
            Op::UpdateAlias { region, alias_name, target_key_id } => {
                format!("({region}) AliasName={alias_name} TargetKeyId={target_key_id}")
            }
            Op::RevokeGrant { key_id, grant_id } => format!("KeyId={key_id} GrantId={grant_id}"),
            Op::PutKeyPolicy { key_id, policy_name, policy, summary } => {
                format!("KeyId={key_id} PolicyName={policy_name} Policy=<{summary}; {} bytes>", policy.len())
            }
            Op::ReEncrypt { source_key_id, destination_key_id, input_file, output_file } => format!(
                "SourceKeyId={source_key_id} DestinationKeyId={destination_key_id} CiphertextBlob=<{input_file}> -> {output_file}"
            ),
            Op::LookupEvents { region, resource_name, start_time, end_time } => format!(
                "({region}) LookupAttributes=ResourceName={resource_name} StartTime={} EndTime={}, all pages",
                start_time.to_rfc3339_opts(SecondsFormat::Secs, true),
                end_time.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_else(|| "now".into())
            ),
            Op::Publish { topic_arn, subject, message } => {
                format!("TopicArn={topic_arn} Subject={subject:?} Message=<incident summary, {} bytes>", message.len())
            }
            Op::DescribeSecret { secret_id, expect_rotated_from, expect_unstaged } => {
                let mut s = format!("SecretId={secret_id}");
                if let Some(v) = expect_rotated_from {
                    s += &format!(" (expect AWSCURRENT off {v}, nothing pending)");
                }
                if let Some(v) = expect_unstaged {
                    s += &format!(" (expect no stage on {v})");
                }
                s
            }
            Op::RotateSecret { secret_id, client_request_token, rotate_immediately } => format!(
                "SecretId={secret_id} ClientRequestToken={client_request_token} RotateImmediately={rotate_immediately}"
            ),
            Op::GenerateAndPutSecretValue { secret_id, client_request_token, password_length, exclude_punctuation } => {
                return inert(&format!(
                    "secretsmanager:GetRandomPassword PasswordLength={password_length} ExcludePunctuation={exclude_punctuation}, \
                     then secretsmanager:PutSecretValue SecretId={secret_id} ClientRequestToken={client_request_token} \
                     (the value is never shown or logged)"
                ))
            }
            Op::UpdateSecretVersionStage { secret_id, version_stage, remove_from_version_id } => format!(
                "SecretId={secret_id} VersionStage={version_stage} RemoveFromVersionId={remove_from_version_id}"
            ),
        };
        inert(&format!("{name} {line}"))
    }

    /// Whether a successful response (its `fields`, AWS's response members) fails the op's
    /// expectation, and how. `None` for ops without one. Reads `KeyMetadata.KeyState`
    /// (DescribeKey), `Grants[].GrantId` (ListGrants), `Aliases[].AliasName` (ListAliases),
    /// `VersionIdsToStages` (DescribeSecret).
    pub fn unmet_expectation(&self, fields: &Value) -> Option<String> {
        match self {
            Op::DescribeKey { expect_key_state: Some(want), .. } => {
                let got = fields.pointer("/KeyMetadata/KeyState").and_then(Value::as_str).unwrap_or("unknown");
                (got != want).then(|| format!("KeyState is {got}, expected {want}"))
            }
            Op::ListGrants { expect_none: true, .. } => {
                let ids = strings_at(fields, "Grants", "GrantId");
                (!ids.is_empty()).then(|| format!("{} grant(s) remain: {}", ids.len(), ids.join(", ")))
            }
            Op::ListAliases { expect_aliases, .. } => {
                let got = strings_at(fields, "Aliases", "AliasName");
                let missing: Vec<&str> =
                    expect_aliases.iter().filter(|a| !got.contains(a)).map(String::as_str).collect();
                (!missing.is_empty()).then(|| format!("not on this key: {}", missing.join(", ")))
            }
            Op::DescribeSecret { expect_rotated_from, expect_unstaged, .. } => {
                let stages = |v: &str| -> Vec<String> {
                    fields
                        .pointer(&format!("/VersionIdsToStages/{v}"))
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default()
                };
                let pending = fields.get("VersionIdsToStages").and_then(Value::as_object).is_some_and(|m| {
                    m.values().any(|s| s.as_array().is_some_and(|a| a.iter().any(|x| x == "AWSPENDING")))
                });
                if let Some(old) = expect_rotated_from {
                    if stages(old).iter().any(|s| s == "AWSCURRENT") {
                        return Some(format!("AWSCURRENT is still on the compromised version {old}"));
                    }
                    if pending {
                        return Some("a rotation is still pending (AWSPENDING)".into());
                    }
                }
                match expect_unstaged {
                    Some(old) if !stages(old).is_empty() => {
                        Some(format!("version {old} still has {}", stages(old).join(", ")))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

pub(super) fn strings_at(fields: &Value, list: &str, member: &str) -> Vec<String> {
    fields
        .get(list)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.get(member).and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default()
}
