//! One CloudTrail record (the `CloudTrailEvent` JSON string of LookupEvents, or one line
//! of the sandbox's `cloudtrail.jsonl`) as a plain value for the feed and the detector.
//!
//! Parsing is lenient where AWS is loose and strict where the feed depends on a field:
//! `eventID`, `eventTime` and `eventName` must be there (the feed deduplicates by id and
//! orders by time); every other field may be missing, `null` or of the wrong type and
//! then reads as empty. Field values are kept verbatim, terminal escapes included: the UI
//! makes them inert (`text::inert`) when it draws them. Never panics, whatever the input.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, value::MapAccessDeserializer, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// At most this many distinct key references are kept per record (a real record has one
/// to three; the cap only keeps a hostile record from costing the detector).
pub const MAX_KEY_REFS: usize = 32;

/// What kind of identity made the call (CloudTrail `userIdentity.type`, as the CloudTrail
/// user guide lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    IamUser,
    AssumedRole,
    /// A persistent IAM role (`Role`).
    Role,
    Root,
    /// `GetFederationToken` credentials (`arn:aws:sts::A:federated-user/NAME`).
    FederatedUser,
    /// An AWS service, or AWS itself (`AWSService`; no type with only `invokedBy`).
    AwsService,
    /// Another AWS account (`AWSAccount`): `principalId` in `accountId`.
    AwsAccount,
    /// An IAM Identity Center user (`onBehalfOf`: `userId` in `identityStoreArn`).
    IdentityCenterUser,
    /// `AssumeRoleWithSAML` (`SAMLUser`): `principalId` is the IdP qualifier and subject.
    SamlUser,
    /// `AssumeRoleWithWebIdentity` (`WebIdentityUser`): `principalId` names the provider,
    /// the application and the user.
    WebIdentityUser,
    /// A directory service (`Directory`).
    Directory,
    /// `Unknown`, a missing type or one CloudTrail adds later: the raw type is in
    /// `Principal::identity_type`.
    #[default]
    Unknown,
}

/// Who made the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub arn: String,
    /// The user name (IAM user, root's account alias, SAML subject, web identity user),
    /// the role session name (assumed role), the federated user, the Identity Center
    /// user id or the service (`invokedBy`); `""` if unknown.
    pub name: String,
    pub account: String,
    pub access_key_id: String,
    /// For assumed roles: the role's name (from the ARN, else `sessionIssuer.userName`).
    pub role: String,
    /// `userIdentity.type` as recorded.
    pub identity_type: String,
    /// `userIdentity.invokedBy`: the AWS service that called on the principal's behalf.
    pub invoked_by: String,
    /// `userIdentity.principalId`.
    #[serde(default)]
    pub principal_id: String,
    /// One name per identity, for baselines and dedupe: the ARN where there is one, else
    /// `account:ACCOUNT:PRINCIPAL-ID`, `identity-center:STORE:USER-ID`, `saml:PRINCIPAL-ID`,
    /// `web-identity:PRINCIPAL-ID`, `directory:...`, the service, or `unknown:...`.
    #[serde(default)]
    pub id: String,
    /// The principal belongs to another account than the one that recorded the event
    /// (`recipientAccountId`).
    #[serde(default)]
    pub other_account: bool,
}

impl Principal {
    /// A short label, unique per identity: `id` (the ARN where there is one), else the
    /// name, else `"unknown"`.
    pub fn label(&self) -> &str {
        if !self.id.is_empty() {
            &self.id
        } else if !self.arn.is_empty() {
            &self.arn
        } else if !self.name.is_empty() {
            &self.name
        } else {
            "unknown"
        }
    }

    /// The name an operator knows: `role/session` for assumed roles, else the name, else
    /// the label; with `(account A)` when the principal is another account's.
    pub fn short_name(&self) -> Cow<'_, str> {
        let base: Cow<'_, str> = match self.kind {
            PrincipalKind::AssumedRole if !self.role.is_empty() && !self.name.is_empty() => {
                Cow::Owned(format!("{}/{}", self.role, self.name))
            }
            PrincipalKind::IdentityCenterUser if !self.name.is_empty() => {
                Cow::Owned(format!("identity-center user {}", self.name))
            }
            _ if !self.name.is_empty() => Cow::Borrowed(&self.name),
            _ => Cow::Borrowed(self.label()),
        };
        if self.other_account && !self.account.is_empty() {
            Cow::Owned(format!("{base} (account {})", self.account))
        } else {
            base
        }
    }

    /// AWS itself: an AWS service principal (`AWSService`, or only `invokedBy`), or an
    /// identity AWS records as "AWS Internal" (KMS's automatic rotation and the deletion
    /// at the end of the waiting period). A user or role calling through a service (its
    /// own ARN with `invokedBy`) is that user or role, not AWS.
    pub fn is_aws(&self) -> bool {
        const INTERNAL: &str = "AWS Internal";
        self.kind == PrincipalKind::AwsService
            || (self.arn.is_empty()
                && [&self.identity_type, &self.invoked_by, &self.principal_id, &self.account, &self.name]
                    .iter()
                    .any(|s| s.as_str() == INTERNAL))
    }

    /// Whether a policy entry (`allowed_principals`, `except`) names this principal. An
    /// entry is an ARN, a principal's `id` (`identity-center:STORE:USER-ID`, ...) or an IAM
    /// name. An ARN matches the principal's ARN exactly, and a role ARN
    /// (`arn:aws:iam::A:role/[path/]ROLE`) also matches sessions of that role in that
    /// account. A name matches the user name, the role name of an assumed role or the role
    /// session name, or a federated user's name (ASCII case-insensitively, as IAM names are
    /// unique that way); SAML, web identity, Identity Center, directory and other accounts'
    /// principals match by their `id` only, as their names are chosen outside IAM.
    /// Beware: a session name is chosen by whoever assumes the role.
    pub fn matches(&self, entry: &str) -> bool {
        let entry = entry.trim();
        if entry.is_empty() {
            return false;
        }
        if !self.id.is_empty() && entry == self.id {
            return true;
        }
        if entry.starts_with("arn:") {
            if entry == self.arn {
                return true;
            }
            if self.kind == PrincipalKind::AssumedRole && !self.role.is_empty() {
                // arn:PARTITION:iam::ACCOUNT:role/PATH/ROLE
                let mut parts = entry.splitn(6, ':');
                let (_arn, _partition, service, _region, account, resource) =
                    (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next());
                if service == Some("iam") && account == Some(self.account.as_str()) {
                    if let Some(role_path) = resource.and_then(|r| r.strip_prefix("role/")) {
                        let role = role_path.rsplit('/').next().unwrap_or(role_path);
                        return role == self.role;
                    }
                }
            }
            return false;
        }
        let eq = |s: &str| !s.is_empty() && s.eq_ignore_ascii_case(entry);
        match self.kind {
            PrincipalKind::AssumedRole => eq(&self.role) || eq(&self.name),
            PrincipalKind::IamUser
            | PrincipalKind::Role
            | PrincipalKind::Root
            | PrincipalKind::FederatedUser
            | PrincipalKind::AwsService => eq(&self.name),
            _ => false,
        }
    }
}

/// One parsed CloudTrail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailEvent {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub event_name: String,
    /// E.g. `kms.amazonaws.com`.
    pub event_source: String,
    pub region: String,
    pub principal: Principal,
    pub source_ip: String,
    pub user_agent: String,
    pub read_only: Option<bool>,
    /// `None` when the call succeeded (an empty `errorCode` reads as `None`). A record that
    /// says it failed without an `errorCode` (Secrets Manager's `RotationFailed`, which
    /// has only an `errorMessage`; any record with an `errorMessage`) has its event name
    /// here, so it reads as failed.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Key references found in the record, distinct, in this order: `resources[].ARN`,
    /// `requestParameters` keyId / targetKeyId / aliasName / destinationKeyId /
    /// sourceKeyId, `responseElements.keyMetadata.arn` / `.keyId`, `responseElements.keyId`.
    pub key_refs: Vec<String>,
    /// `requestParameters.secretId` (or `.name`), else a secret ARN in `resources`, else
    /// `responseElements.arn`, else `additionalEventData`'s `SecretId`, `ARN` or `Name`
    /// (Secrets Manager's own events: rotation, Start/Cancel/EndSecretVersionDelete).
    pub secret_ref: Option<String>,
    /// `eventType`: `AwsApiCall`, `AwsServiceEvent` (AWS's own, e.g. KMS's automatic
    /// rotation), ...
    #[serde(default)]
    pub event_type: String,
    /// The record as received (pretty-printing is the UI's business).
    pub raw: String,
}

pub const KMS_SOURCE: &str = "kms.amazonaws.com";
pub const SECRETS_SOURCE: &str = "secretsmanager.amazonaws.com";
/// IAM is global: its events are recorded in us-east-1.
pub const IAM_SOURCE: &str = "iam.amazonaws.com";
pub const IAM_REGION: &str = "us-east-1";

impl TrailEvent {
    /// For an IAM call: the user, role or group it changes (`requestParameters.userName`,
    /// `.roleName`, `.groupName`).
    pub fn iam_subject(&self) -> Option<String> {
        if self.event_source != IAM_SOURCE {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&self.raw).ok()?;
        let p = v.get("requestParameters")?;
        ["userName", "roleName", "groupName"].iter().find_map(|k| p.get(*k)?.as_str().map(str::to_owned))
    }

    /// The call succeeded (no `errorCode`, see `error_code`).
    pub fn succeeded(&self) -> bool {
        self.error_code.is_none()
    }

    /// AWS's own activity, not an operator's: a service event (`AwsServiceEvent`), or a
    /// call by AWS itself (`Principal::is_aws`).
    pub fn by_aws(&self) -> bool {
        self.event_type == "AwsServiceEvent" || self.principal.is_aws()
    }

    /// The call was refused by IAM or a key policy (`AccessDenied`, `AccessDeniedException`,
    /// `UnauthorizedOperation`, ...).
    pub fn is_denied(&self) -> bool {
        self.error_code.as_deref().is_some_and(is_denied_code)
    }

    /// A failed attempt to get at a key: a denial, or an error that says the key or the
    /// ciphertext was not what the caller may use (wrong key, bad ciphertext, disabled or
    /// missing key, wrong usage, bad grant token). Throttling, validation and service
    /// errors are not access attempts and do not count.
    pub fn is_access_failure(&self) -> bool {
        match self.error_code.as_deref() {
            None => false,
            Some(c) => is_denied_code(c) || KEY_ACCESS_ERRORS.contains(&c),
        }
    }

    pub fn is_kms(&self) -> bool {
        self.event_source == KMS_SOURCE
    }

    pub fn is_secrets_manager(&self) -> bool {
        self.event_source == SECRETS_SOURCE
    }

    /// `ok`, `denied`, or the error code.
    pub fn outcome(&self) -> &str {
        match self.error_code.as_deref() {
            None => "ok",
            Some(c) if is_denied_code(c) => "denied",
            Some(c) => c,
        }
    }
}

fn is_denied_code(c: &str) -> bool {
    c.starts_with("AccessDenied") || c.starts_with("Client.UnauthorizedOperation") || c == "UnauthorizedOperation"
}

/// KMS errors that mean "this caller could not use this key" (see `is_access_failure`).
const KEY_ACCESS_ERRORS: &[&str] = &[
    "IncorrectKeyException",
    "InvalidCiphertextException",
    "InvalidKeyUsageException",
    "KMSInvalidStateException",
    "DisabledException",
    "NotFoundException",
    "InvalidGrantTokenException",
    "InvalidGrantIdException",
    "KMSInvalidSignatureException",
    "KMSInvalidMacException",
    "IncorrectKeyMaterialException",
];

/// Why a record could not be read. The reason never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TrailParseError {
    pub reason: String,
}

fn fail(reason: impl Into<String>) -> TrailParseError {
    TrailParseError { reason: reason.into() }
}

/// Parse one CloudTrail record. Unknown event names, extra fields and fields of the
/// wrong type are fine; a record that is not a JSON object, or lacks `eventID`,
/// `eventTime` (RFC 3339) or `eventName`, is an error.
pub fn parse_event(record_json: &str) -> Result<TrailEvent, TrailParseError> {
    let raw: RawRecord<'_> = serde_json::from_str(record_json).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Data => "not a CloudTrail record (expected a JSON object)",
            serde_json::error::Category::Io => "unreadable JSON",
        };
        fail(format!("{what} at line {} column {}", e.line(), e.column()))
    })?;
    let event_id = raw.event_id.0.filter(|s| !s.trim().is_empty()).ok_or_else(|| fail("no eventID"))?;
    let time = raw.event_time.0.ok_or_else(|| fail("no eventTime"))?;
    let event_time = parse_time(&time).ok_or_else(|| fail("eventTime is not an RFC 3339 time"))?;
    let event_name = raw.event_name.0.filter(|s| !s.is_empty()).ok_or_else(|| fail("no eventName"))?;
    let event_source = own(raw.event_source);

    let mut key_refs: Vec<String> = Vec::new();
    let mut push_key = |s: Option<Cow<'_, str>>| {
        if let Some(s) = s {
            if !s.is_empty() && key_refs.len() < MAX_KEY_REFS && !key_refs.iter().any(|k| *k == *s) {
                key_refs.push(s.into_owned());
            }
        }
    };
    let mut secret_from_resources = None;
    for arn in raw.resources.0 {
        if arn.contains(":secretsmanager:") {
            secret_from_resources.get_or_insert(arn);
        } else if arn.contains(":kms:") {
            push_key(Some(arn));
        }
    }
    let params = raw.request_parameters.0.unwrap_or_default();
    push_key(params.key_id.0);
    push_key(params.target_key_id.0);
    push_key(params.alias_name.0);
    push_key(params.destination_key_id.0);
    push_key(params.source_key_id.0);
    let response = raw.response_elements.0.unwrap_or_default();
    if let Some(meta) = response.key_metadata.0 {
        push_key(meta.arn.0);
        push_key(meta.key_id.0);
    }
    let is_secrets = event_source == SECRETS_SOURCE;
    if !is_secrets {
        push_key(response.key_id.0);
        push_key(raw.service_event_details.0.and_then(|d| d.key_id.0));
    }
    let additional = raw.additional_event_data.0.unwrap_or_default();
    let non_empty = |s: &Option<Cow<'_, str>>| s.as_deref().is_some_and(|s| !s.is_empty());
    let secret_ref = [
        params.secret_id.0,
        if is_secrets { params.name.0 } else { None },
        secret_from_resources,
        if is_secrets { response.arn.0 } else { None },
        additional.secret_id.0,
        if is_secrets { additional.arn.0.or(additional.arn_lower.0).or(additional.arn_mixed.0) } else { None },
        if is_secrets { additional.name.0.or(additional.name_lower.0) } else { None },
    ]
    .into_iter()
    .find(non_empty)
    .flatten()
    .map(Cow::into_owned);
    let event_type = own(raw.event_type);
    let error_message = raw.error_message.0.map(Cow::into_owned);
    let error_code = match raw.error_code.0.filter(|s| !s.is_empty()) {
        Some(c) => Some(c.into_owned()),
        // RotationFailed, TestRotationFailed: an errorMessage and no errorCode.
        None if error_message.as_deref().is_some_and(|m| !m.is_empty())
            || (event_type == "AwsServiceEvent" && event_name.ends_with("Failed")) =>
        {
            Some(event_name.clone().into_owned())
        }
        None => None,
    };
    let recipient = own(raw.recipient_account_id);

    Ok(TrailEvent {
        event_id: event_id.into_owned(),
        event_time,
        event_name: event_name.into_owned(),
        event_source,
        region: own(raw.aws_region),
        principal: principal(raw.user_identity.0.unwrap_or_default(), &recipient),
        source_ip: own(raw.source_ip),
        user_agent: own(raw.user_agent),
        read_only: raw.read_only.0,
        error_code,
        error_message,
        key_refs,
        secret_ref,
        event_type,
        raw: record_json.to_owned(),
    })
}

fn own(s: Str<'_>) -> String {
    s.0.map(Cow::into_owned).unwrap_or_default()
}

/// `2026-11-23T01:29:27Z` (CloudTrail's form) on a fast path, else any RFC 3339 time.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z'
    {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let mut n = 0u32;
            for &c in b.get(r)? {
                if !c.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(c - b'0');
            }
            Some(n)
        };
        let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
        let t = date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
        return Some(t.and_utc());
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn principal(id: RawIdentity<'_>, recipient_account: &str) -> Principal {
    let identity_type = own(id.kind);
    let arn = own(id.arn);
    let invoked_by = own(id.invoked_by);
    let user_name = own(id.user_name);
    let principal_id = own(id.principal_id);
    let kind = match identity_type.as_str() {
        "IAMUser" => PrincipalKind::IamUser,
        "AssumedRole" => PrincipalKind::AssumedRole,
        "Role" => PrincipalKind::Role,
        "Root" => PrincipalKind::Root,
        "FederatedUser" => PrincipalKind::FederatedUser,
        "AWSService" => PrincipalKind::AwsService,
        "AWSAccount" => PrincipalKind::AwsAccount,
        "IdentityCenterUser" => PrincipalKind::IdentityCenterUser,
        "SAMLUser" => PrincipalKind::SamlUser,
        "WebIdentityUser" => PrincipalKind::WebIdentityUser,
        "Directory" => PrincipalKind::Directory,
        "" if !invoked_by.is_empty() && arn.is_empty() => PrincipalKind::AwsService,
        _ => PrincipalKind::Unknown,
    };
    let (on_behalf_user, identity_store) =
        id.on_behalf_of.0.map(|o| (own(o.user_id), own(o.identity_store_arn))).unwrap_or_default();
    let identity_provider = own(id.identity_provider);
    // arn:aws:iam::A:user/path/NAME, arn:aws:sts::A:assumed-role/ROLE/SESSION, arn:aws:iam::A:root
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let last_segment = resource.rsplit('/').next().unwrap_or("");
    let mut role = String::new();
    let name = match kind {
        PrincipalKind::IamUser | PrincipalKind::Role | PrincipalKind::FederatedUser => {
            first_non_empty(&[&user_name, last_segment, &principal_id])
        }
        PrincipalKind::AssumedRole => {
            let mut parts = resource.split('/');
            if parts.next() == Some("assumed-role") {
                role = parts.next().unwrap_or("").to_owned();
            }
            if role.is_empty() {
                role = id
                    .session_context
                    .0
                    .and_then(|c| c.session_issuer.0)
                    .and_then(|i| i.user_name.0)
                    .map(Cow::into_owned)
                    .unwrap_or_default();
            }
            let session = if resource.starts_with("assumed-role/") && resource.matches('/').count() >= 2 {
                last_segment
            } else {
                ""
            };
            let from_principal_id = principal_id.split_once(':').map(|(_, s)| s).unwrap_or("");
            first_non_empty(&[session, from_principal_id, &user_name])
        }
        PrincipalKind::Root => first_non_empty(&[&user_name, "root"]),
        PrincipalKind::AwsService => first_non_empty(&[&invoked_by, &user_name, &principal_id]),
        PrincipalKind::AwsAccount => first_non_empty(&[&user_name, &principal_id, &own_ref(&id.account_id)]),
        PrincipalKind::IdentityCenterUser => first_non_empty(&[&on_behalf_user, &user_name, &principal_id]),
        PrincipalKind::SamlUser | PrincipalKind::WebIdentityUser | PrincipalKind::Directory => {
            first_non_empty(&[&user_name, &principal_id])
        }
        PrincipalKind::Unknown => first_non_empty(&[&user_name, last_segment, &invoked_by, &principal_id]),
    };
    // The account: accountId, else the ARN's, else (web identity) the provider ARN's.
    let account = id.account_id.0.map(Cow::into_owned).filter(|a| !a.is_empty()).unwrap_or_else(|| {
        [arn.as_str(), identity_provider.as_str(), identity_store.as_str()]
            .iter()
            .find_map(|a| a.strip_prefix("arn:").and_then(|r| r.split(':').nth(3)).filter(|a| !a.is_empty()))
            .unwrap_or("")
            .to_owned()
    });
    let id_key = if !arn.is_empty() {
        arn.clone()
    } else {
        let or = |a: &str, b: &str| if a.is_empty() { b.to_owned() } else { a.to_owned() };
        match kind {
            PrincipalKind::AwsService => first_non_empty(&[&invoked_by, &principal_id, "aws"]),
            PrincipalKind::AwsAccount => format!("account:{account}:{}", or(&principal_id, &user_name)),
            PrincipalKind::IdentityCenterUser => {
                let store = identity_store.rsplit('/').next().unwrap_or("");
                format!("identity-center:{}:{}", or(store, &account), or(&on_behalf_user, &principal_id))
            }
            PrincipalKind::SamlUser => format!("saml:{}", or(&principal_id, &user_name)),
            PrincipalKind::WebIdentityUser => format!("web-identity:{}", or(&principal_id, &user_name)),
            PrincipalKind::Directory => format!("directory:{}", or(&principal_id, &user_name)),
            PrincipalKind::Root => format!("root:{account}"),
            _ if !principal_id.is_empty() || !user_name.is_empty() || !account.is_empty() => {
                let who = or(&principal_id, &user_name);
                if account.is_empty() || who.is_empty() {
                    format!("unknown:{}", or(&who, &account))
                } else {
                    format!("unknown:{account}:{who}")
                }
            }
            _ => String::new(),
        }
    };
    let other_account = !account.is_empty() && !recipient_account.is_empty() && account != recipient_account;
    Principal {
        kind,
        arn,
        name,
        account,
        access_key_id: own(id.access_key_id),
        role,
        identity_type,
        invoked_by,
        principal_id,
        id: id_key,
        other_account,
    }
}

fn own_ref(s: &Str<'_>) -> String {
    s.0.as_deref().unwrap_or("").to_owned()
}

fn first_non_empty(options: &[&str]) -> String {
    options.iter().find(|s| !s.is_empty()).map(|s| (*s).to_owned()).unwrap_or_default()
}

// ---- the raw shape, read leniently -------------------------------------------------

#[derive(Deserialize, Default)]
struct RawRecord<'a> {
    #[serde(rename = "eventID", default, borrow)]
    event_id: Str<'a>,
    #[serde(rename = "eventTime", default, borrow)]
    event_time: Str<'a>,
    #[serde(rename = "eventName", default, borrow)]
    event_name: Str<'a>,
    #[serde(rename = "eventSource", default, borrow)]
    event_source: Str<'a>,
    #[serde(rename = "awsRegion", default, borrow)]
    aws_region: Str<'a>,
    #[serde(rename = "sourceIPAddress", default, borrow)]
    source_ip: Str<'a>,
    #[serde(rename = "userAgent", default, borrow)]
    user_agent: Str<'a>,
    #[serde(rename = "readOnly", default)]
    read_only: Flag,
    #[serde(rename = "errorCode", default, borrow)]
    error_code: Str<'a>,
    #[serde(rename = "errorMessage", default, borrow)]
    error_message: Str<'a>,
    #[serde(rename = "userIdentity", default, borrow)]
    user_identity: Obj<RawIdentity<'a>>,
    #[serde(rename = "requestParameters", default, borrow)]
    request_parameters: Obj<RawParams<'a>>,
    #[serde(rename = "responseElements", default, borrow)]
    response_elements: Obj<RawResponse<'a>>,
    #[serde(rename = "additionalEventData", default, borrow)]
    additional_event_data: Obj<RawAdditional<'a>>,
    #[serde(default, borrow)]
    resources: Arns<'a>,
    #[serde(rename = "eventType", default, borrow)]
    event_type: Str<'a>,
    #[serde(rename = "recipientAccountId", default, borrow)]
    recipient_account_id: Str<'a>,
    #[serde(rename = "serviceEventDetails", default, borrow)]
    service_event_details: Obj<RawServiceEventDetails<'a>>,
}

#[derive(Deserialize, Default)]
struct RawServiceEventDetails<'a> {
    #[serde(rename = "keyId", default, borrow)]
    key_id: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawIdentity<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Str<'a>,
    #[serde(rename = "principalId", default, borrow)]
    principal_id: Str<'a>,
    #[serde(default, borrow)]
    arn: Str<'a>,
    #[serde(rename = "accountId", default, borrow)]
    account_id: Str<'a>,
    #[serde(rename = "accessKeyId", default, borrow)]
    access_key_id: Str<'a>,
    #[serde(rename = "userName", default, borrow)]
    user_name: Str<'a>,
    #[serde(rename = "invokedBy", default, borrow)]
    invoked_by: Str<'a>,
    #[serde(rename = "sessionContext", default, borrow)]
    session_context: Obj<RawSessionContext<'a>>,
    #[serde(rename = "onBehalfOf", default, borrow)]
    on_behalf_of: Obj<RawOnBehalfOf<'a>>,
    #[serde(rename = "identityProvider", default, borrow)]
    identity_provider: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawOnBehalfOf<'a> {
    #[serde(rename = "userId", default, borrow)]
    user_id: Str<'a>,
    #[serde(rename = "identityStoreArn", default, borrow)]
    identity_store_arn: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawSessionContext<'a> {
    #[serde(rename = "sessionIssuer", default, borrow)]
    session_issuer: Obj<RawIssuer<'a>>,
}

#[derive(Deserialize, Default)]
struct RawIssuer<'a> {
    #[serde(rename = "userName", default, borrow)]
    user_name: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawParams<'a> {
    #[serde(rename = "keyId", default, borrow)]
    key_id: Str<'a>,
    #[serde(rename = "targetKeyId", default, borrow)]
    target_key_id: Str<'a>,
    #[serde(rename = "aliasName", default, borrow)]
    alias_name: Str<'a>,
    #[serde(rename = "destinationKeyId", default, borrow)]
    destination_key_id: Str<'a>,
    #[serde(rename = "sourceKeyId", default, borrow)]
    source_key_id: Str<'a>,
    #[serde(rename = "secretId", default, borrow)]
    secret_id: Str<'a>,
    #[serde(default, borrow)]
    name: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawResponse<'a> {
    #[serde(rename = "keyMetadata", default, borrow)]
    key_metadata: Obj<RawKeyMetadata<'a>>,
    #[serde(rename = "keyId", default, borrow)]
    key_id: Str<'a>,
    #[serde(default, borrow)]
    arn: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawKeyMetadata<'a> {
    #[serde(default, borrow)]
    arn: Str<'a>,
    #[serde(rename = "keyId", default, borrow)]
    key_id: Str<'a>,
}

#[derive(Deserialize, Default)]
struct RawAdditional<'a> {
    #[serde(rename = "SecretId", default, borrow)]
    secret_id: Str<'a>,
    #[serde(rename = "ARN", default, borrow)]
    arn: Str<'a>,
    #[serde(rename = "arn", default, borrow)]
    arn_lower: Str<'a>,
    /// Before February 2024 some Secrets Manager events spelled it `aRN`.
    #[serde(rename = "aRN", default, borrow)]
    arn_mixed: Str<'a>,
    #[serde(rename = "Name", default, borrow)]
    name: Str<'a>,
    #[serde(rename = "name", default, borrow)]
    name_lower: Str<'a>,
}

/// The `Visitor` methods of a lenient reader for the JSON types it does not read: each
/// consumes the value and yields `$none`. Kinds: `str`, `bool`, `numbers`, `empty`
/// (null / unit), `seq`, `map`.
macro_rules! lenient_visits {
    ($none:expr; $($kind:ident),* $(,)?) => { $( lenient_visits!(@ $none; $kind); )* };
    (@ $none:expr; str) => {
        fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> { Ok($none) }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Ok($none) }
    };
    (@ $none:expr; bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Ok($none) }
    };
    (@ $none:expr; numbers) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Ok($none) }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Ok($none) }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Ok($none) }
    };
    (@ $none:expr; empty) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Ok($none) }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> { Ok($none) }
    };
    (@ $none:expr; seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
    (@ $none:expr; map) => {
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

/// A string that reads any JSON value: anything but a string is `None`.
#[derive(Default)]
struct Str<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Some(Cow::Owned(v))))
            }
            lenient_visits!(Str(None); bool, numbers, empty, seq, map);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A boolean that also reads `"true"`/`"false"` (LookupEvents' own `ReadOnly` is a
/// string); anything else is `None`.
#[derive(Default)]
struct Flag(Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Flag(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Flag(match v {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                }))
            }
            lenient_visits!(Flag(None); numbers, empty, seq, map);
        }
        d.deserialize_any(V)
    }
}

/// An object of shape `T` where the record has an object; anything else is `None`.
struct Obj<T>(Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(a)).map(|t| Obj(Some(t)))
            }
            lenient_visits!(Obj(None); seq, str, bool, numbers, empty);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `resources`: the `ARN` of every element that is an object with a string `ARN`.
#[derive(Default)]
struct Arns<'a>(Vec<Cow<'a, str>>);

#[derive(Deserialize, Default)]
struct RawResource<'a> {
    #[serde(rename = "ARN", default, borrow)]
    arn: Str<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Arns<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Arns<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = a.next_element::<Obj<RawResource<'a>>>()? {
                    if let Some(arn) = r.0.and_then(|r| r.arn.0) {
                        if out.len() < MAX_KEY_REFS {
                            out.push(arn);
                        }
                    }
                }
                Ok(Arns(out))
            }
            lenient_visits!(Arns(Vec::new()); map, str, bool, numbers, empty);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Records for tests here and in `detect`.

    /// A minimal record in the sandbox's shape.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        id: &str,
        time: &str,
        name: &str,
        source: &str,
        region: &str,
        user: &str,
        error: Option<&str>,
        key: Option<&str>,
        secret: Option<&str>,
    ) -> String {
        let mut v = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": format!("arn:aws:iam::123456789012:user/{user}"),
                "accountId": "123456789012",
                "accessKeyId": "AKIAEXAMPLE",
                "userName": user,
            },
            "eventTime": time,
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": "127.0.0.1",
            "userAgent": "test",
            "requestParameters": serde_json::Value::Null,
            "responseElements": serde_json::Value::Null,
            "eventID": id,
            "readOnly": name.starts_with("Describe") || name.starts_with("List") || name.starts_with("Get") || name == "Decrypt",
            "eventType": "AwsApiCall",
        });
        if let Some(e) = error {
            v["errorCode"] = e.into();
            v["errorMessage"] = format!("{e} for {user}").into();
        }
        if let Some(k) = key {
            v["requestParameters"] = serde_json::json!({ "keyId": k });
        }
        if let Some(s) = secret {
            v["requestParameters"] = serde_json::json!({ "secretId": s });
        }
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // ---- records the sandbox wrote (src/sandbox/moto_sandbox.py, --traffic demo) ----

    const SANDBOX_GENERATE_DATA_KEY: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"oqlinyzdibxv6gyh743g","arn":"arn:aws:iam::123456789012:user/app-encrypt","accountId":"123456789012","accessKeyId":"AKIA_SANDBOX_NHYC3AZU","userName":"app-encrypt"},"eventTime":"2026-11-23T01:29:27Z","eventSource":"kms.amazonaws.com","eventName":"GenerateDataKey","awsRegion":"eu-north-1","sourceIPAddress":"127.0.0.1","userAgent":"Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,Z,b,e cfg/retry-mode#standard Botocore/1.43.11","requestParameters":{"keyId":"alias/drop-national-id-key","keySpec":"AES_256"},"responseElements":null,"requestID":"kDarZiC38F9W0dLs8da1ZX0ZRwXsV5IlsuG3f1oTKFQJSUl9nYMJ","eventID":"b4c97b7b-6f3b-4e57-b68b-433d11e917c7","readOnly":true,"resources":[{"accountId":"123456789012","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-north-1:123456789012:key/b7beef95-6dbd-47e9-9caf-66177f67f29d"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    const SANDBOX_DECRYPT_DENIED: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"8szftggzac7ro31e8ens","arn":"arn:aws:iam::123456789012:user/outsider","accountId":"123456789012","accessKeyId":"AKIA_SANDBOX_EFKUMHX7","userName":"outsider"},"eventTime":"2026-11-23T01:29:36Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-north-1","sourceIPAddress":"127.0.0.1","userAgent":"Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,Z,b,e cfg/retry-mode#standard Botocore/1.43.11","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::123456789012:user/outsider is not authorized to perform: kms:Decrypt because no identity-based policy allows the kms:Decrypt action","requestParameters":{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"},"responseElements":null,"requestID":"PgjDptLXDIfwPbugZ7D70MuRQZ1VwVf7djzBoQ8EbVuOcOP6T74i","eventID":"8dd387b2-b4a1-4e6d-9aa0-737472ab2ef2","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    const SANDBOX_GET_SECRET_VALUE: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"9qyu51fvjmxszofozbwn","arn":"arn:aws:iam::123456789012:user/app-runner","accountId":"123456789012","accessKeyId":"AKIA_SANDBOX_KGSSX2FW","userName":"app-runner"},"eventTime":"2026-11-23T01:29:27Z","eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","awsRegion":"eu-north-1","sourceIPAddress":"127.0.0.1","userAgent":"Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,Z,b,e cfg/retry-mode#standard Botocore/1.43.11","requestParameters":{"secretId":"JWT_SECRET"},"responseElements":null,"requestID":"ZhzSdnwWIz9RIBNRgvzip3QP0FEa1iaoxvcXlULGG4iXk0OL145s","eventID":"f33a239d-8475-4a3c-8e21-800a71caa4d7","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    const SANDBOX_STS_GET_CALLER_IDENTITY: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"2znz2b2ir3r68gam0vdm","arn":"arn:aws:iam::123456789012:user/key-admin","accountId":"123456789012","accessKeyId":"AKIA_SANDBOX_IHAU5JHY","userName":"key-admin"},"eventTime":"2026-11-23T01:30:05Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"eu-north-1","sourceIPAddress":"127.0.0.1","userAgent":"Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/b,D,N,e,Z cfg/retry-mode#legacy Botocore/1.43.11","requestParameters":null,"responseElements":null,"requestID":"FatVwoO2AcA22D0HrSl0Cbi4CchQQDSJTvUAysVLciJSqppau2Sr","eventID":"1c15b46a-9730-4ab8-b813-df6c5d0c11c0","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    const SANDBOX_SCHEDULE_KEY_DELETION: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"0mj3v0bgz7b2txez16mg","arn":"arn:aws:iam::123456789012:user/security-lead","accountId":"123456789012","accessKeyId":"AKIA_SANDBOX_NHET34BM","userName":"security-lead"},"eventTime":"2026-11-23T01:30:21Z","eventSource":"kms.amazonaws.com","eventName":"ScheduleKeyDeletion","awsRegion":"eu-west-1","sourceIPAddress":"127.0.0.1","userAgent":"Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/Z,N,e,D,b cfg/retry-mode#legacy Botocore/1.43.11","requestParameters":{"keyId":"8d9ae998-321b-4f35-9045-bf6eda807306","pendingWindowInDays":7},"responseElements":{"keyId":"arn:aws:kms:eu-west-1:123456789012:key/8d9ae998-321b-4f35-9045-bf6eda807306","keyState":"PendingDeletion","deletionDate":"Nov 30, 2026, 1:30:21 AM","pendingWindowInDays":7},"requestID":"hFH33INVond9RLkYQWwWqeSjWIlyLNDxX5ApDZAkC1xyAkcgrIqs","eventID":"4aee3c88-6b02-4e01-ac82-bfaed247d514","readOnly":false,"resources":[{"accountId":"123456789012","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-west-1:123456789012:key/8d9ae998-321b-4f35-9045-bf6eda807306"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    const SANDBOX_CREATE_ALIAS_FAILED: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"2znz2b2ir3r68gam0vdm","arn":"arn:aws:iam::123456789012:user/key-admin","accountId":"123456789012","accessKeyId":"AKIA_SANDBOX_IHAU5JHY","userName":"key-admin"},"eventTime":"2026-11-23T01:30:05Z","eventSource":"kms.amazonaws.com","eventName":"CreateAlias","awsRegion":"eu-north-1","sourceIPAddress":"127.0.0.1","userAgent":"Boto3/1.43.11","errorCode":"ValidationException","errorMessage":"Aliases must refer to keys. Not aliases","requestParameters":{"aliasName":"alias/h3-test","targetKeyId":"alias/drop-db-master-key"},"responseElements":null,"requestID":"RHaSHjVWnPN7YqFVm4xzgnceVEIzv2U1JPq5QEWxKIYOh3xWJ9lg","eventID":"9751c3f6-ecba-4370-a183-c93ddad99903","readOnly":false,"resources":[{"accountId":"123456789012","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-north-1:123456789012:key/b1bef59c-6d27-4f7f-b125-9a7376b0a15e"},{"accountId":"123456789012","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-north-1:123456789012:alias/h3-test"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    // ---- AWS's published examples ----------------------------------------------------

    /// KMS developer guide, "Decrypt with a standard symmetric encryption key" (ct-decrypt),
    /// with the `userIdentity` of the CloudTrail user guide's assumed-role example.
    const AWS_DECRYPT_ASSUMED_ROLE: &str = r#"{
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAIDPPEZS35WEXAMPLE:AssumedRoleSessionName",
            "arn": "arn:aws:sts::111122223333:assumed-role/RoleToBeAssumed/MySessionName",
            "accountId": "111122223333",
            "accessKeyId": "AKIA_DOCS_EXAMPLE_KEY",
            "sessionContext": {
                "attributes": { "mfaAuthenticated": "false", "creationDate": "2020-07-27T22:50:11Z" },
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAIDPPEZS35WEXAMPLE",
                    "arn": "arn:aws:iam::111122223333:role/RoleToBeAssumed",
                    "accountId": "111122223333",
                    "userName": "RoleToBeAssumed"
                }
            }
        },
        "eventTime": "2020-07-27T22:58:24Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "awsRegion": "us-west-2",
        "sourceIPAddress": "192.0.2.0",
        "userAgent": "AWS Internal",
        "requestParameters": {
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "keyId": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "encryptionContext": { "Department": "Engineering", "Project": "Alpha" }
        },
        "responseElements": null,
        "requestID": "12345126-30d5-4b28-98b9-9153da559963",
        "eventID": "abcde202-ba1a-467c-b4ba-f729d45ae521",
        "readOnly": true,
        "resources": [
            {
                "accountId": "111122223333",
                "type": "AWS::KMS::Key",
                "ARN": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            }
        ],
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    }"#;

    /// A Secrets Manager `GetSecretValue` entry from an EC2 instance role. AWS lists the
    /// event ("AWS CloudTrail entries for Secrets Manager") without a full record; this
    /// one is written from the CloudTrail user guide's record and `userIdentity`
    /// (AssumedRole with `sessionIssuer`) reference and a full secret ARN.
    const AWS_GET_SECRET_VALUE: &str = r#"{
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEID:i-0a1b2c3d4e5f60718",
            "arn": "arn:aws:sts::111122223333:assumed-role/ec2-app-role/i-0a1b2c3d4e5f60718",
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLEKEY",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEID",
                    "arn": "arn:aws:iam::111122223333:role/ec2-app-role",
                    "accountId": "111122223333",
                    "userName": "ec2-app-role"
                },
                "attributes": { "creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false" },
                "ec2RoleDelivery": "2.0"
            }
        },
        "eventTime": "2024-01-01T12:00:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {
            "secretId": "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/master-AbCdEf"
        },
        "responseElements": null,
        "requestID": "0b0c8a1a-497a-4758-a6fc-c046970dfb58",
        "eventID": "f1a49924-6ba3-4340-9d21-bc98f090fc09",
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
        "tlsDetails": { "tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256" }
    }"#;

    /// KMS developer guide, "DeleteKey" (ct-delete-key): KMS's own service event when the
    /// waiting period ends (no identity type, `invokedBy` only).
    const AWS_SERVICE_DELETE_KEY: &str = r#"{
        "eventVersion": "1.05",
        "userIdentity": { "accountId": "111122223333", "invokedBy": "AWS Internal" },
        "eventTime": "2020-07-31T00:07:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "DeleteKey",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "requestParameters": null,
        "responseElements": null,
        "eventID": "b25f9cda-74e1-4458-847b-4972a0bf9668",
        "readOnly": false,
        "resources": [
            {
                "accountId": "111122223333",
                "type": "AWS::KMS::Key",
                "ARN": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            }
        ],
        "eventType": "AwsServiceEvent",
        "recipientAccountId": "111122223333",
        "serviceEventDetails": { "keyId": "1234abcd-12ab-34cd-56ef-1234567890ab" }
    }"#;

    /// KMS developer guide, "ScheduleKeyDeletion" (ct-schedule-key-deletion).
    const AWS_SCHEDULE_KEY_DELETION: &str = r#"{
        "eventVersion": "1.08",
        "userIdentity": {
                "type": "IAMUser",
                "principalId": "EX_PRINCIPAL_ID",
                "arn": "arn:aws:iam::111122223333:user/Alice",
                "accountId": "111122223333",
                "accessKeyId": "EXAMPLE_KEY_ID",
                "userName": "Alice"
        },
        "eventTime": "2021-03-23T18:58:30Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "ScheduleKeyDeletion",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.0",
        "userAgent": "AWS Internal",
        "requestParameters": {
            "pendingWindowInDays": 20,
            "keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"
        },
        "responseElements": {
            "keyId": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "keyState": "PendingDeletion",
            "deletionDate": "Apr 12, 2021 18:58:30 PM"
        },
        "requestID": "ee408f36-ea01-422b-ac14-b0f147c68334",
        "eventID": "3c4226b0-1e81-48a8-a333-7fa5f3cbd118",
        "readOnly": false,
        "resources": [
            {
                "accountId": "111122223333",
                "type": "AWS::KMS::Key",
                "ARN": "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            }
        ],
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    }"#;

    fn ok(s: &str) -> TrailEvent {
        match parse_event(s) {
            Ok(e) => e,
            Err(e) => panic!("should parse: {e}"),
        }
    }

    #[test]
    fn sandbox_kms_success() {
        let e = ok(SANDBOX_GENERATE_DATA_KEY);
        assert_eq!(e.event_id, "b4c97b7b-6f3b-4e57-b68b-433d11e917c7");
        assert_eq!(e.event_time, Utc.with_ymd_and_hms(2026, 11, 23, 1, 29, 27).unwrap());
        assert_eq!((e.event_name.as_str(), e.event_source.as_str()), ("GenerateDataKey", KMS_SOURCE));
        assert_eq!(e.region, "eu-north-1");
        assert_eq!(e.principal.kind, PrincipalKind::IamUser);
        assert_eq!(e.principal.name, "app-encrypt");
        assert_eq!(e.principal.arn, "arn:aws:iam::123456789012:user/app-encrypt");
        assert_eq!(e.principal.account, "123456789012");
        assert_eq!(e.principal.access_key_id, "AKIA_SANDBOX_NHYC3AZU");
        assert_eq!(e.read_only, Some(true));
        assert!(e.succeeded() && !e.is_denied() && !e.is_access_failure());
        assert_eq!(e.outcome(), "ok");
        assert_eq!(
            e.key_refs,
            vec![
                "arn:aws:kms:eu-north-1:123456789012:key/b7beef95-6dbd-47e9-9caf-66177f67f29d".to_owned(),
                "alias/drop-national-id-key".to_owned()
            ]
        );
        assert_eq!(e.secret_ref, None);
        assert_eq!(e.raw, SANDBOX_GENERATE_DATA_KEY);
    }

    #[test]
    fn sandbox_access_denied() {
        let e = ok(SANDBOX_DECRYPT_DENIED);
        assert!(!e.succeeded() && e.is_denied() && e.is_access_failure());
        assert_eq!(e.error_code.as_deref(), Some("AccessDenied"));
        assert!(e.error_message.as_deref().is_some_and(|m| m.contains("kms:Decrypt")));
        assert_eq!(e.outcome(), "denied");
        assert!(e.key_refs.is_empty(), "a denied Decrypt without keyId names no key");
        assert_eq!(e.principal.name, "outsider");
    }

    #[test]
    fn sandbox_secret_read_and_sts() {
        let e = ok(SANDBOX_GET_SECRET_VALUE);
        assert!(e.is_secrets_manager());
        assert_eq!(e.secret_ref.as_deref(), Some("JWT_SECRET"));
        assert!(e.key_refs.is_empty());
        let s = ok(SANDBOX_STS_GET_CALLER_IDENTITY);
        assert_eq!((s.event_source.as_str(), s.event_name.as_str()), ("sts.amazonaws.com", "GetCallerIdentity"));
        assert_eq!(s.principal.name, "key-admin");
        assert!(s.key_refs.is_empty() && s.secret_ref.is_none());
    }

    #[test]
    fn sandbox_management_calls() {
        let e = ok(SANDBOX_SCHEDULE_KEY_DELETION);
        assert_eq!(e.read_only, Some(false));
        // resources, requestParameters.keyId; responseElements.keyId repeats the ARN.
        assert_eq!(
            e.key_refs,
            vec![
                "arn:aws:kms:eu-west-1:123456789012:key/8d9ae998-321b-4f35-9045-bf6eda807306".to_owned(),
                "8d9ae998-321b-4f35-9045-bf6eda807306".to_owned()
            ]
        );
        let a = ok(SANDBOX_CREATE_ALIAS_FAILED);
        assert_eq!(a.error_code.as_deref(), Some("ValidationException"));
        assert!(!a.is_access_failure(), "a validation error is not an access attempt");
        assert_eq!(a.key_refs.len(), 4, "{:?}", a.key_refs);
        assert!(a.key_refs.contains(&"alias/drop-db-master-key".to_owned()));
        assert!(a.key_refs.contains(&"arn:aws:kms:eu-north-1:123456789012:alias/h3-test".to_owned()));
    }

    #[test]
    fn aws_example_decrypt_by_assumed_role() {
        let e = ok(AWS_DECRYPT_ASSUMED_ROLE);
        assert_eq!(e.principal.kind, PrincipalKind::AssumedRole);
        assert_eq!(e.principal.role, "RoleToBeAssumed");
        assert_eq!(e.principal.name, "MySessionName");
        assert_eq!(e.principal.account, "111122223333");
        assert_eq!(e.principal.short_name(), "RoleToBeAssumed/MySessionName");
        assert_eq!(e.key_refs, vec!["arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]);
        assert!(e.principal.matches("RoleToBeAssumed"));
        assert!(e.principal.matches("roletobeassumed"), "IAM names are case-insensitive");
        assert!(e.principal.matches("MySessionName"));
        assert!(e.principal.matches("arn:aws:iam::111122223333:role/RoleToBeAssumed"));
        assert!(e.principal.matches("arn:aws:iam::111122223333:role/some/path/RoleToBeAssumed"));
        assert!(e.principal.matches("arn:aws:sts::111122223333:assumed-role/RoleToBeAssumed/MySessionName"));
        assert!(!e.principal.matches("arn:aws:iam::999999999999:role/RoleToBeAssumed"), "other account");
        assert!(!e.principal.matches("arn:aws:iam::111122223333:user/RoleToBeAssumed"));
        assert!(!e.principal.matches("OtherRole"));
        assert!(!e.principal.matches(""));
    }

    #[test]
    fn aws_example_get_secret_value() {
        let e = ok(AWS_GET_SECRET_VALUE);
        assert_eq!(e.principal.role, "ec2-app-role");
        assert_eq!(e.principal.name, "i-0a1b2c3d4e5f60718");
        assert_eq!(
            e.secret_ref.as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/master-AbCdEf")
        );
    }

    #[test]
    fn aws_example_service_event() {
        let e = ok(AWS_SERVICE_DELETE_KEY);
        assert_eq!(e.principal.kind, PrincipalKind::AwsService);
        assert_eq!(e.principal.name, "AWS Internal");
        assert_eq!(e.principal.label(), "AWS Internal");
        assert_eq!(e.principal.account, "111122223333");
        // resources, then serviceEventDetails.keyId.
        assert_eq!(
            e.key_refs,
            vec![
                "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "1234abcd-12ab-34cd-56ef-1234567890ab"
            ]
        );
        assert!(e.principal.is_aws() && e.by_aws());
        assert_eq!(e.event_type, "AwsServiceEvent");
    }

    #[test]
    fn aws_example_schedule_key_deletion() {
        let e = ok(AWS_SCHEDULE_KEY_DELETION);
        assert_eq!(
            (e.event_name.as_str(), e.read_only, e.principal.name.as_str()),
            ("ScheduleKeyDeletion", Some(false), "Alice")
        );
        assert_eq!(
            e.key_refs,
            vec![
                "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "1234abcd-12ab-34cd-56ef-1234567890ab"
            ]
        );
        assert!(e.succeeded());
    }

    #[test]
    fn identity_kinds() {
        let with_identity = |ident: &str| {
            let r = format!(
                r#"{{"eventID":"x","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt","userIdentity":{ident}}}"#
            );
            ok(&r).principal
        };
        let root =
            with_identity(r#"{"type":"Root","arn":"arn:aws:iam::123456789012:root","accountId":"123456789012"}"#);
        assert_eq!((root.kind, root.name.as_str()), (PrincipalKind::Root, "root"));
        let acct = with_identity(r#"{"type":"AWSAccount","principalId":"AIDAX","accountId":"999988887777"}"#);
        assert_eq!((acct.kind, acct.name.as_str()), (PrincipalKind::AwsAccount, "AIDAX"));
        assert_eq!(acct.label(), "account:999988887777:AIDAX");
        let fed = with_identity(
            r#"{"type":"FederatedUser","arn":"arn:aws:sts::123456789012:federated-user/bob","accountId":"123456789012"}"#,
        );
        assert_eq!(
            (fed.kind, fed.name.as_str(), fed.identity_type.as_str()),
            (PrincipalKind::FederatedUser, "bob", "FederatedUser")
        );
        let svc = with_identity(r#"{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}"#);
        assert_eq!((svc.kind, svc.name.as_str()), (PrincipalKind::AwsService, "cloudtrail.amazonaws.com"));
        let user_by_arn = with_identity(r#"{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/ops/alice"}"#);
        assert_eq!(user_by_arn.name, "alice");
        assert_eq!(user_by_arn.account, "123456789012", "account from the ARN");
        let session_from_principal_id = with_identity(r#"{"type":"AssumedRole","principalId":"AROA:sess"}"#);
        assert_eq!(session_from_principal_id.name, "sess");
        let none = with_identity("null");
        assert_eq!((none.kind, none.label()), (PrincipalKind::Unknown, "unknown"));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let cases = [
            "",
            "   ",
            "{",
            "}",
            "[]",
            "null",
            "42",
            "\"a string\"",
            "{}",
            "{\"eventID\":\"x\"}",
            "{\"eventID\":\"x\",\"eventTime\":\"2026-01-01T00:00:00Z\"}",
            "{\"eventID\":\"x\",\"eventName\":\"Decrypt\"}",
            "{\"eventID\":\"x\",\"eventName\":\"Decrypt\",\"eventTime\":\"yesterday\"}",
            "{\"eventID\":\"x\",\"eventName\":\"Decrypt\",\"eventTime\":\"2026-13-45T99:99:99Z\"}",
            "{\"eventID\":\"\",\"eventName\":\"Decrypt\",\"eventTime\":\"2026-01-01T00:00:00Z\"}",
            "{\"eventID\":7,\"eventName\":\"Decrypt\",\"eventTime\":\"2026-01-01T00:00:00Z\"}",
            "{\"eventID\":\"x\",\"eventName\":\"Decrypt\",\"eventTime\":\"2026-01-01T00:00:00Z\"} trailing",
            "{\"eventID\":\"x\",\"eventID\":\"y\",\"eventName\":\"Decrypt\",\"eventTime\":\"2026-01-01T00:00:00Z\"}",
            "{\"eventID\":\"x\",\"eventName\":\"Decrypt\",\"eventTime\":\"2026-01-01T00:00:00Z\"",
            "\u{feff}{}",
            "{\"eventID\":\"\\ud800\",\"eventName\":\"Decrypt\",\"eventTime\":\"2026-01-01T00:00:00Z\"}",
        ];
        for c in cases {
            let e = parse_event(c).expect_err(c);
            assert!(!e.reason.is_empty());
            assert!(e.reason.len() < 120, "short reason: {e}");
        }
    }

    #[test]
    fn errors_do_not_quote_the_input() {
        let e = parse_event("\"\u{1b}]0;pwned\u{7}\"").unwrap_err();
        assert!(!e.reason.contains('\u{1b}'), "{e:?}");
    }

    #[test]
    fn wrong_types_read_as_missing() {
        let r = r#"{"eventID":"x","eventTime":"2026-01-01T00:00:00.123+02:00","eventName":"Decrypt",
            "eventSource":5,"awsRegion":["eu"],"sourceIPAddress":{"a":1},"userAgent":null,"readOnly":"true",
            "errorCode":"","errorMessage":false,"userIdentity":"alice","requestParameters":[1,2,{"keyId":"k"}],
            "responseElements":"none","resources":{"ARN":"arn:aws:kms:x"},"additionalEventData":7}"#;
        let e = ok(r);
        assert_eq!(
            e.event_time,
            Utc.with_ymd_and_hms(2025, 12, 31, 22, 0, 0).unwrap() + chrono::Duration::milliseconds(123)
        );
        assert_eq!((e.event_source.as_str(), e.region.as_str(), e.source_ip.as_str()), ("", "", ""));
        assert_eq!(e.read_only, Some(true), "LookupEvents' own ReadOnly is a string");
        assert!(e.succeeded(), "an empty errorCode is no error");
        assert_eq!(e.principal.kind, PrincipalKind::Unknown);
        assert!(e.key_refs.is_empty() && e.secret_ref.is_none());

        let r = r#"{"eventID":"x","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt",
            "resources":[null, 5, "arn", {"ARN": 7}, {"type":"AWS::KMS::Key"}, {"ARN":"arn:aws:kms:eu-north-1:1:key/k"}],
            "requestParameters":{"keyId":{"nested":true},"targetKeyId":"arn:aws:kms:eu-north-1:1:key/k"},
            "responseElements":{"keyMetadata":"str","keyId":["a"]}}"#;
        let e = ok(r);
        assert_eq!(e.key_refs, vec!["arn:aws:kms:eu-north-1:1:key/k"], "distinct, only strings");
    }

    #[test]
    fn unknown_event_names_are_fine() {
        let r = fixtures::record(
            "u1",
            "2026-01-01T00:00:00Z",
            "FrobnicateKey2031",
            "kms.amazonaws.com",
            "eu-north-1",
            "alice",
            None,
            Some("alias/x"),
            None,
        );
        let e = ok(&r);
        assert_eq!(e.event_name, "FrobnicateKey2031");
        assert_eq!(e.key_refs, vec!["alias/x"]);
    }

    #[test]
    fn escape_sequences_are_kept_verbatim() {
        let r = r#"{"eventID":"e\u001b[2J","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt\u001b]0;title\u0007",
            "userIdentity":{"type":"IAMUser","userName":"mallory\u001b[31m\u202e","arn":"arn:aws:iam::1:user/m"},
            "userAgent":"\u009b31m","errorMessage":"line1\nline2"}"#;
        let e = ok(r);
        assert_eq!(e.event_id, "e\u{1b}[2J");
        assert_eq!(e.event_name, "Decrypt\u{1b}]0;title\u{7}");
        assert_eq!(e.principal.name, "mallory\u{1b}[31m\u{202e}");
        assert_eq!(e.user_agent, "\u{9b}31m");
        assert_eq!(crate::domain::text::inert(&e.principal.name), "mallory\\e[31m\\u{202e}");
    }

    #[test]
    fn one_megabyte_fields() {
        let big = "A".repeat(1 << 20);
        let r = format!(
            r#"{{"eventID":"big","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt","userAgent":"{big}",
                "requestParameters":{{"keyId":"{big}","encryptionContext":{{"x":"{big}"}}}}}}"#
        );
        let e = ok(&r);
        assert_eq!(e.user_agent.len(), 1 << 20);
        assert_eq!(e.key_refs[0].len(), 1 << 20);
        let r = format!(r#"{{"eventID":"{big}","eventTime":"2026-01-01T00:00:00Z","eventName":"{big}"}}"#);
        assert_eq!(ok(&r).event_name.len(), 1 << 20);
        // A megabyte of garbage, and of nesting.
        assert!(parse_event(&"\u{0}".repeat(1 << 20)).is_err());
        let deep = format!("{}{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
        assert!(parse_event(&deep).is_err());
        let deep_inside = format!(
            r#"{{"eventID":"d","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt","requestParameters":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let _ = parse_event(&deep_inside); // Ok or Err: never a crash
    }

    #[test]
    fn many_resources_are_capped() {
        let resources: Vec<String> =
            (0..10_000).map(|i| format!(r#"{{"ARN":"arn:aws:kms:eu-north-1:1:key/k{i}"}}"#)).collect();
        let r = format!(
            r#"{{"eventID":"m","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt","resources":[{}]}}"#,
            resources.join(",")
        );
        assert_eq!(ok(&r).key_refs.len(), MAX_KEY_REFS);
    }

    #[test]
    fn secret_refs_in_other_places() {
        let base = r#""eventID":"s","eventTime":"2026-01-01T00:00:00Z","eventSource":"secretsmanager.amazonaws.com""#;
        let e = ok(&format!(r#"{{{base},"eventName":"CreateSecret","requestParameters":{{"name":"NEW_ONE"}}}}"#));
        assert_eq!(e.secret_ref.as_deref(), Some("NEW_ONE"));
        let e = ok(&format!(
            r#"{{{base},"eventName":"RotationFailed","additionalEventData":{{"SecretId":"arn:aws:secretsmanager:eu-north-1:1:secret:X-abcdef"}}}}"#
        ));
        assert_eq!(e.secret_ref.as_deref(), Some("arn:aws:secretsmanager:eu-north-1:1:secret:X-abcdef"));
        let e = ok(&format!(
            r#"{{{base},"eventName":"DeleteSecret","resources":[{{"ARN":"arn:aws:secretsmanager:eu-north-1:1:secret:Y-abcdef"}}]}}"#
        ));
        assert_eq!(e.secret_ref.as_deref(), Some("arn:aws:secretsmanager:eu-north-1:1:secret:Y-abcdef"));
        // A KMS call's `name` parameter is no secret.
        let e = ok(
            r#"{"eventID":"k","eventTime":"2026-01-01T00:00:00Z","eventName":"CreateKey","eventSource":"kms.amazonaws.com","requestParameters":{"name":"x"},"responseElements":{"keyMetadata":{"arn":"arn:aws:kms:eu-north-1:1:key/new","keyId":"new"}}}"#,
        );
        assert_eq!(e.secret_ref, None);
        assert_eq!(e.key_refs, vec!["arn:aws:kms:eu-north-1:1:key/new", "new"]);
    }

    #[test]
    fn event_serialises_for_json_output() {
        let e = ok(SANDBOX_DECRYPT_DENIED);
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["principal"]["kind"], "iam_user");
        assert_eq!(v["error_code"], "AccessDenied");
        let back: TrailEvent = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, e);
    }

    #[test]
    fn fast_time_path_agrees_with_rfc3339() {
        for s in ["2026-11-23T01:29:27Z", "2024-02-29T23:59:59Z", "1970-01-01T00:00:00Z"] {
            assert_eq!(parse_time(s), DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)), "{s}");
        }
        for s in ["2023-02-29T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T01:29:6xZ", "+026-11-23T01:29:27Z"] {
            assert_eq!(parse_time(s), None, "{s}");
        }
    }

    // ---- every userIdentity type AWS documents ----------------------------------------

    /// A KMS Decrypt in account 123456789012 by `ident` (a `userIdentity` element as the
    /// CloudTrail and IAM user guides show it).
    fn decrypt_by(ident: &str) -> TrailEvent {
        ok(&format!(
            r#"{{"eventVersion":"1.08","userIdentity":{ident},"eventTime":"2026-07-01T10:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-north-1","requestParameters":{{"keyId":"alias/drop-national-id-key"}},"eventID":"id-{}","eventType":"AwsApiCall","recipientAccountId":"123456789012"}}"#,
            ident.len()
        ))
    }

    /// CloudTrail user guide, "CloudTrail userIdentity element": the IAM Identity Center
    /// example.
    const UI_IDENTITY_CENTER: &str = r#"{
        "type": "IdentityCenterUser",
        "accountId": "123456789012",
        "onBehalfOf": {
            "userId": "544894e8-80c1-707f-60e3-3ba6510dfac1",
            "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-9067642ac7"
        },
        "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE"
    }"#;

    #[test]
    fn identity_center_users_each_get_a_name() {
        let e = decrypt_by(UI_IDENTITY_CENTER);
        let p = &e.principal;
        assert_eq!(p.kind, PrincipalKind::IdentityCenterUser);
        assert_eq!(p.name, "544894e8-80c1-707f-60e3-3ba6510dfac1");
        assert_eq!(p.label(), "identity-center:d-9067642ac7:544894e8-80c1-707f-60e3-3ba6510dfac1");
        assert_eq!(p.short_name(), "identity-center user 544894e8-80c1-707f-60e3-3ba6510dfac1");
        assert!(!p.other_account && !p.is_aws());
        // Another user of the same identity store is another principal.
        let other = decrypt_by(&UI_IDENTITY_CENTER.replace("544894e8-80c1-707f-60e3-3ba6510dfac1", "94d00cd8-e9e6"));
        assert_ne!(other.principal.label(), p.label());
        assert_ne!(other.principal.label(), "unknown");
        // Matched by its id, never by a bare name.
        assert!(p.matches("identity-center:d-9067642ac7:544894e8-80c1-707f-60e3-3ba6510dfac1"));
        assert!(!p.matches("544894e8-80c1-707f-60e3-3ba6510dfac1"));
    }

    #[test]
    fn every_documented_identity_type_gets_a_name() {
        // (userIdentity from AWS's guides, kind, label, short name)
        let cases: &[(&str, PrincipalKind, &str, &str)] = &[
            (
                r#"{"type":"IAMUser","principalId":"AIDAJ45Q7YFFAREXAMPLE","arn":"arn:aws:iam::123456789012:user/Alice","accountId":"123456789012","accessKeyId":"","userName":"Alice"}"#,
                PrincipalKind::IamUser,
                "arn:aws:iam::123456789012:user/Alice",
                "Alice",
            ),
            (
                r#"{"type":"AssumedRole","principalId":"AROAIDPPEZS35WEXAMPLE:AssumedRoleSessionName","arn":"arn:aws:sts::123456789012:assumed-role/RoleToBeAssumed/MySessionName","accountId":"123456789012","accessKeyId":"","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAIDPPEZS35WEXAMPLE","arn":"arn:aws:iam::123456789012:role/RoleToBeAssumed","accountId":"123456789012","userName":"RoleToBeAssumed"},"attributes":{"mfaAuthenticated":"false","creationDate":"20131102T010628Z"}}}"#,
                PrincipalKind::AssumedRole,
                "arn:aws:sts::123456789012:assumed-role/RoleToBeAssumed/MySessionName",
                "RoleToBeAssumed/MySessionName",
            ),
            (
                r#"{"type":"Root","principalId":"123456789012","arn":"arn:aws:iam::123456789012:root","accountId":"123456789012","userName":"my-account-alias"}"#,
                PrincipalKind::Root,
                "arn:aws:iam::123456789012:root",
                "my-account-alias",
            ),
            (
                r#"{"type":"FederatedUser","principalId":"123456789012:bob","arn":"arn:aws:sts::123456789012:federated-user/bob","accountId":"123456789012","sessionContext":{"sessionIssuer":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/Alice","userName":"Alice"}}}"#,
                PrincipalKind::FederatedUser,
                "arn:aws:sts::123456789012:federated-user/bob",
                "bob",
            ),
            (
                // IAM user guide, the cross-account AssumeRole as the role's account logs it.
                r#"{"type":"AWSAccount","principalId":"AIDAQRSTUVWXYZEXAMPLE","accountId":"777788889999"}"#,
                PrincipalKind::AwsAccount,
                "account:777788889999:AIDAQRSTUVWXYZEXAMPLE",
                "AIDAQRSTUVWXYZEXAMPLE (account 777788889999)",
            ),
            (
                r#"{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}"#,
                PrincipalKind::AwsService,
                "cloudtrail.amazonaws.com",
                "cloudtrail.amazonaws.com",
            ),
            (
                r#"{"accountId":"123456789012","invokedBy":"AWS Internal"}"#,
                PrincipalKind::AwsService,
                "AWS Internal",
                "AWS Internal",
            ),
            (
                UI_IDENTITY_CENTER,
                PrincipalKind::IdentityCenterUser,
                "identity-center:d-9067642ac7:544894e8-80c1-707f-60e3-3ba6510dfac1",
                "identity-center user 544894e8-80c1-707f-60e3-3ba6510dfac1",
            ),
            (
                // IAM user guide, the AssumeRoleWithSAML example.
                r#"{"type":"SAMLUser","principalId":"SampleUkh1i4+ExamplexL/jEvs=:SamlExample","userName":"SamlExample","identityProvider":"bdGOnTesti4+ExamplexL/jEvs="}"#,
                PrincipalKind::SamlUser,
                "saml:SampleUkh1i4+ExamplexL/jEvs=:SamlExample",
                "SamlExample",
            ),
            (
                // IAM user guide, the AssumeRoleWithWebIdentity example.
                r#"{"type":"WebIdentityUser","principalId":"arn:aws:iam::444455556666:oidc-provider/<issuer url of OIDC provider>:<id of application>:<id of user>","userName":"<id of user>","identityProvider":"arn:aws:iam::444455556666:oidc-provider/<issuer url of OIDC provider>"}"#,
                PrincipalKind::WebIdentityUser,
                "web-identity:arn:aws:iam::444455556666:oidc-provider/<issuer url of OIDC provider>:<id of application>:<id of user>",
                "<id of user> (account 444455556666)",
            ),
            (
                // CloudTrail user guide: userIdentity of AssumeRoleWithWebIdentity.
                r#"{"type":"WebIdentityUser","principalId":"accounts.google.com:{{application-id}}.apps.googleusercontent.com:{{user-id}}","userName":"{{user-id}}","identityProvider":"accounts.google.com"}"#,
                PrincipalKind::WebIdentityUser,
                "web-identity:accounts.google.com:{{application-id}}.apps.googleusercontent.com:{{user-id}}",
                "{{user-id}}",
            ),
            (
                r#"{"type":"Directory","principalId":"S-1-5-21-EXAMPLE","userName":"jdoe","accountId":"123456789012"}"#,
                PrincipalKind::Directory,
                "directory:S-1-5-21-EXAMPLE",
                "jdoe",
            ),
            (
                r#"{"type":"Role","principalId":"AROAIDPPEZS35WEXAMPLE","arn":"arn:aws:iam::123456789012:role/RoleToBeAssumed","accountId":"123456789012","userName":"RoleToBeAssumed"}"#,
                PrincipalKind::Role,
                "arn:aws:iam::123456789012:role/RoleToBeAssumed",
                "RoleToBeAssumed",
            ),
            (
                r#"{"type":"Unknown","principalId":"Anonymous"}"#,
                PrincipalKind::Unknown,
                "unknown:Anonymous",
                "Anonymous",
            ),
            (
                r#"{"type":"Unknown","principalId":"","accountId":"123456789012","userName":""}"#,
                PrincipalKind::Unknown,
                "unknown:123456789012",
                "unknown:123456789012",
            ),
        ];
        let mut labels = std::collections::HashSet::new();
        for (ident, kind, label, short) in cases {
            let p = decrypt_by(ident).principal;
            assert_eq!(p.kind, *kind, "{ident}");
            assert_eq!(p.label(), *label, "{ident}");
            assert_eq!(p.short_name(), *short, "{ident}");
            assert!(labels.insert(p.label().to_owned()), "labels are distinct: {label}");
        }
        // Another account's IAM user names its account.
        let john = decrypt_by(
            r#"{"type":"IAMUser","principalId":"AIDAQRSTUVWXYZEXAMPLE","arn":"arn:aws:iam::777788889999:user/John","accountId":"777788889999","userName":"John"}"#,
        );
        assert!(john.principal.other_account);
        assert_eq!(john.principal.short_name(), "John (account 777788889999)");
        // A SAML subject named like an allowed IAM user is not that user.
        let saml = decrypt_by(r#"{"type":"SAMLUser","principalId":"Q=:app-runner","userName":"app-runner"}"#);
        assert!(!saml.principal.matches("app-runner"));
        assert!(saml.principal.matches("saml:Q=:app-runner"));
    }

    #[test]
    fn aws_own_calls_are_told_apart() {
        // KMS's automatic rotation (CloudTrail user guide, "AWS service events").
        let rotate = ok(
            r#"{"eventVersion":"1.08","userIdentity":{"accountId":"111122223333","invokedBy":"AWS Internal"},"eventTime":"2021-01-14T01:41:59Z","eventSource":"kms.amazonaws.com","eventName":"RotateKey","awsRegion":"us-west-2","sourceIPAddress":"AWS Internal","userAgent":"AWS Internal","requestParameters":null,"responseElements":null,"eventID":"a24b3967-ddad-417f-9b22-2332b918db06","readOnly":false,"resources":[{"accountId":"111122223333","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],"eventType":"AwsServiceEvent","recipientAccountId":"111122223333","serviceEventDetails":{"rotationType":"AUTOMATIC","keyId":"1234abcd-12ab-34cd-56ef-1234567890ab"},"eventCategory":"Management"}"#,
        );
        assert!(rotate.by_aws() && rotate.principal.is_aws() && rotate.succeeded());
        assert_eq!(rotate.key_refs[0], "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab");
        // A service principal; an "AWS Internal" principal id; a service event with a type.
        for ident in [
            r#"{"type":"AWSService","invokedBy":"kms.amazonaws.com","accountId":"123456789012"}"#,
            r#"{"type":"Unknown","principalId":"AWS Internal","accountId":"123456789012"}"#,
        ] {
            assert!(decrypt_by(ident).by_aws(), "{ident}");
        }
        // A user calling through a service (forward access) is that user.
        let fas = decrypt_by(
            r#"{"type":"AssumedRole","principalId":"AROAEXAMPLE:app","arn":"arn:aws:sts::123456789012:assumed-role/app-runner/app","accountId":"123456789012","invokedBy":"secretsmanager.amazonaws.com"}"#,
        );
        assert!(!fas.by_aws() && !fas.principal.is_aws());
        for ident in [
            UI_IDENTITY_CENTER,
            r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/AWS Internal","userName":"AWS Internal"}"#,
        ] {
            assert!(!decrypt_by(ident).by_aws(), "{ident}");
        }
    }

    // ---- Secrets Manager's own events ---------------------------------------------------

    /// Secrets Manager user guide, "Logging AWS Secrets Manager events with AWS CloudTrail":
    /// the example RotationFailed entry.
    const AWS_ROTATION_FAILED: &str = r#"{
        "eventVersion": "1.08",
        "userIdentity": { "accountId": "123456789012", "invokedBy": "secretsmanager.amazonaws.com" },
        "eventTime": "2022-09-13T02:17:48Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "RotationFailed",
        "awsRegion": "us-east-2",
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "errorMessage": "Error when executing lambda arn:aws:lambda:us-east-2:123456789012:function:SecretsManagertest-alternating-users-rotation2 during setSecret step",
        "requestParameters": null,
        "responseElements": null,
        "additionalEventData": { "SecretId": "arn:aws:secretsmanager:us-east-2:123456789012:secret:MyDatabaseSecret-a1b2c3" },
        "requestID": "Rotation-arn:aws:secretsmanager:us-east-2:123456789012:secret:MyDatabaseSecret-a1b2c3-eeb681b1-a07d-4aeb-9b61-1ee6590ec295",
        "eventID": "EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE",
        "readOnly": false,
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management"
    }"#;

    #[test]
    fn rotation_failed_reads_as_failed() {
        let e = ok(AWS_ROTATION_FAILED);
        assert!(!e.succeeded(), "RotationFailed has an errorMessage and no errorCode");
        assert_eq!(e.error_code.as_deref(), Some("RotationFailed"));
        assert_eq!(e.outcome(), "RotationFailed");
        assert!(!e.is_denied() && !e.is_access_failure());
        assert_eq!(
            e.secret_ref.as_deref(),
            Some("arn:aws:secretsmanager:us-east-2:123456789012:secret:MyDatabaseSecret-a1b2c3")
        );
        assert!(e.by_aws());
        assert_eq!(e.principal.short_name(), "secretsmanager.amazonaws.com");
        // Siblings: a failure named only by the event (TestRotationFailed, no message), and
        // a service event that succeeded.
        let bare =
            AWS_ROTATION_FAILED.replace("\"errorMessage\"", "\"x\"").replace("RotationFailed", "TestRotationFailed");
        assert_eq!(ok(&bare).error_code.as_deref(), Some("TestRotationFailed"));
        let fine =
            AWS_ROTATION_FAILED.replace("\"errorMessage\"", "\"x\"").replace("RotationFailed", "RotationSucceeded");
        assert!(ok(&fine).succeeded());
        // An errorCode still wins.
        let coded =
            AWS_ROTATION_FAILED.replace("\"errorMessage\"", "\"errorCode\": \"AccessDenied\", \"errorMessage\"");
        assert!(ok(&coded).is_denied());
    }

    #[test]
    fn secret_version_deletion_names_its_secret() {
        // The envelope of AWS's RotationFailed example with the secret where the deletion
        // events keep it: additionalEventData's SecretId, ARN (or the older aRN), or Name.
        let arn = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf";
        let with = |name: &str, additional: &str| {
            let r = AWS_ROTATION_FAILED.replace("RotationFailed", name).replace("\"errorMessage\"", "\"x\"").replace(
                r#"{ "SecretId": "arn:aws:secretsmanager:us-east-2:123456789012:secret:MyDatabaseSecret-a1b2c3" }"#,
                additional,
            );
            ok(&r)
        };
        for name in ["StartSecretVersionDelete", "CancelSecretVersionDelete", "EndSecretVersionDelete"] {
            for (additional, want) in [
                (format!(r#"{{"SecretId":"{arn}"}}"#), arn),
                (format!(r#"{{"ARN":"{arn}","Name":"JWT_SECRET"}}"#), arn),
                (format!(r#"{{"aRN":"{arn}"}}"#), arn),
                (format!(r#"{{"arn":"{arn}"}}"#), arn),
                (r#"{"Name":"JWT_SECRET"}"#.to_owned(), "JWT_SECRET"),
                (r#"{"name":"JWT_SECRET"}"#.to_owned(), "JWT_SECRET"),
            ] {
                let e = with(name, &additional);
                assert_eq!(e.secret_ref.as_deref(), Some(want), "{name} {additional}");
                assert!(e.succeeded() && e.by_aws() && e.key_refs.is_empty(), "{name}");
            }
        }
        // A KMS record's additionalEventData names no secret.
        let k = ok(
            r#"{"eventID":"k","eventTime":"2026-01-01T00:00:00Z","eventName":"Decrypt","eventSource":"kms.amazonaws.com","additionalEventData":{"ARN":"arn:aws:secretsmanager:x","Name":"n"}}"#,
        );
        assert_eq!(k.secret_ref, None);
    }

    // ---- every KMS and Secrets Manager record in AWS's guides ---------------------------

    /// One line per record of the KMS developer guide's "Examples of AWS KMS log entries"
    /// (ct-*.md) and the Secrets Manager user guide's examples, verbatim but for three
    /// documentation typos (trailing commas, a missing comma): `doc`, the expected
    /// `principal` (short name), `key` or `secret` (the subject), and the `record`.
    const AWS_EXAMPLES: &str = include_str!("testdata/aws_cloudtrail_examples.jsonl");

    #[test]
    fn every_record_in_aws_guides_parses_with_principal_and_subject() {
        let mut n = 0;
        for line in AWS_EXAMPLES.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture line");
            let doc = v["doc"].as_str().unwrap_or("?");
            let record = v["record"].to_string();
            let e = match parse_event(&record) {
                Ok(e) => e,
                Err(err) => panic!("{doc}: {err}"),
            };
            assert_eq!(e.principal.short_name(), v["principal"].as_str().unwrap_or("?"), "{doc}");
            assert_ne!(e.principal.label(), "unknown", "{doc}");
            if let Some(key) = v.get("key") {
                assert_eq!(e.key_refs.first().map(String::as_str), key.as_str(), "{doc}: {:?}", e.key_refs);
            }
            if let Some(secret) = v.get("secret") {
                assert_eq!(e.secret_ref.as_deref(), secret.as_str(), "{doc}");
            }
            let aws_own = matches!(
                e.event_name.as_str(),
                "RotateKey" | "DeleteKey" | "DeleteExpiredKeyMaterial" | "SynchronizeMultiRegionKey" | "RotationFailed"
            );
            assert_eq!(e.by_aws(), aws_own, "{doc}: {}", e.event_name);
            n += 1;
        }
        assert!(n >= 60, "{n} records");
    }
}
