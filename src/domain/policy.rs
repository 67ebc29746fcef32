//! The policy file: which keys and secrets the organisation manages, who owns them, how
//! often they rotate and when lateness becomes an alert. Parsed from TOML; every error
//! names the file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::rules::{DetectionConfig, RuleId, Severity, MAX_WINDOW_SECS};

/// The default policy, built from both seed policies.
pub const DEFAULT_POLICY: &str = include_str!("../../assets/policy.toml");
pub const DEFAULT_POLICY_NAME: &str = "<embedded assets/policy.toml>";

/// A data classification level (004 §2.1: L3 Confidential, L4 Restricted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Classification {
    L1,
    L2,
    L3,
    L4,
}

impl Classification {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "L1" => Some(Self::L1),
            "L2" => Some(Self::L2),
            "L3" => Some(Self::L3),
            "L4" => Some(Self::L4),
            _ => None,
        }
    }
}

/// A whole number of days, written `"365d"`, `"52w"` or `"1y"` (365 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Days(pub i64);

impl Days {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = s.split_at(split);
        let n: i64 = n.parse().ok()?;
        let days = match unit {
            "d" => n,
            "w" => n.checked_mul(7)?,
            "y" => n.checked_mul(365)?,
            _ => return None,
        };
        (0..=36_500).contains(&days).then_some(Self(days))
    }
}

/// A short duration in whole seconds, written `"90s"`, `"5m"` or `"1h"` (detection
/// windows: at least one second, at most 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShortDuration(pub i64);

impl ShortDuration {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = s.split_at(split);
        let n: i64 = n.parse().ok()?;
        let secs = match unit {
            "s" => n,
            "m" => n.checked_mul(60)?,
            "h" => n.checked_mul(3600)?,
            _ => return None,
        };
        (1..=MAX_WINDOW_SECS).contains(&secs).then_some(Self(secs))
    }
}

/// How a rule picks its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Selector {
    /// A KMS alias (without `alias/`) or a secret name.
    Name(String),
    Arn(String),
    Tag(String, String),
    /// `default = true`: the items no other rule of its table selects. They are still
    /// reported as unmanaged drift, but judged by this rule.
    Default,
}

/// Business hours for the restricted-key rule (004 §8: off-hours access alert).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusinessHours {
    /// Minutes after midnight, local time.
    pub start_minute: u32,
    pub end_minute: u32,
    /// Where the hours are kept: an IANA zone (daylight saving time included) or a fixed
    /// offset from UTC.
    pub zone: HoursZone,
    /// ISO weekdays 1 (Monday) .. 7 (Sunday).
    pub weekdays: Vec<u32>,
}

/// The time zone of `[policy.business_hours]`: `timezone = "Europe/Oslo"` or
/// `utc_offset = "+01:00"` (exactly one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoursZone {
    /// An IANA zone: the offset follows its daylight saving time.
    Named(chrono_tz::Tz),
    /// Local time = UTC + this many minutes, all year.
    Offset(i32),
}

impl HoursZone {
    /// `t` in local time: ISO weekday (1 = Monday) and minutes after midnight; `None`
    /// when a fixed offset takes `t` out of chrono's range.
    pub fn local_weekday_minute(self, t: chrono::DateTime<chrono::Utc>) -> Option<(u32, u32)> {
        use chrono::{Datelike, Offset, TimeZone, Timelike};
        let offset_secs = match self {
            HoursZone::Named(tz) => i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()),
            HoursZone::Offset(min) => i64::from(min) * 60,
        };
        let local = t.naive_utc().checked_add_signed(chrono::Duration::seconds(offset_secs))?;
        Some((local.weekday().number_from_monday(), local.hour() * 60 + local.minute()))
    }
}

impl fmt::Display for HoursZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoursZone::Named(tz) => f.write_str(tz.name()),
            HoursZone::Offset(off) => write!(
                f,
                "UTC{}{:02}:{:02}",
                if *off < 0 { '-' } else { '+' },
                off.unsigned_abs() / 60,
                off.unsigned_abs() % 60
            ),
        }
    }
}

impl Serialize for HoursZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One rule for a KMS key or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRule {
    pub selector: Selector,
    pub owner: String,
    pub classification: Classification,
    /// `None`: the item is not rotated on a schedule (e.g. on compromise only).
    pub rotation: Option<Days>,
    /// Lateness past which an overdue rotation is an alert (004 §4.6: 7 days, JWT_SECRET 3).
    pub overdue_alert: Days,
    /// How long before a rotation is due it shows as "due soon".
    pub due_soon: Days,
    /// Where the item is expected to live; empty: anywhere.
    pub regions: Vec<String>,
    /// Principals (IAM user or role names) allowed to use the item.
    pub allowed_principals: Vec<String>,
    pub purpose: String,
}

/// Something the policy covers that keydeck cannot query (certificates, Auth0 keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalItem {
    pub name: String,
    pub owner: String,
    pub kind: String,
    /// Either an expiry date...
    pub expires: Option<chrono::NaiveDate>,
    /// ...or a last rotation with a period.
    pub last_rotated: Option<chrono::NaiveDate>,
    pub rotation: Option<Days>,
    /// Lead time before expiry/rotation at which it alerts (TLS 14 d, FINA 60 d).
    pub alert_before: Days,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub name: String,
    pub source: String,
    pub business_hours: Option<BusinessHours>,
    /// IAM users and roles that hold key permissions (004 §4.5): IAM changes to them are
    /// shown in the feed.
    pub key_roles: Vec<String>,
    pub keys: Vec<ItemRule>,
    pub secrets: Vec<ItemRule>,
    pub external: Vec<ExternalItem>,
    /// The CloudTrail detection rules (`[detections]`; defaults when absent).
    pub detections: DetectionConfig,
    /// Where incidents report and anchor (`[incident]`).
    pub incident: IncidentSettings,
    /// Who proposes and who approves each key operation (`[approvals]`, 004 §6;
    /// defaults when absent).
    pub approvals: ApprovalMatrix,
}

/// The `[incident]` section (004 §4.7 step 1 and §10: notify the Security Lead, CISO and
/// CTO; keydeck anchors each incident log outside the machine).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IncidentSettings {
    /// The KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY) that signs each incident
    /// log's chain head after every step: an alias (`alias/NAME`), key id or ARN.
    pub anchor_key: Option<String>,
    /// The SNS topic incident summaries are published to (AWS Chatbot or e-mail forwards
    /// it to #security-incident): a topic ARN, or a name in `region`.
    pub notify_topic: Option<String>,
    /// The Region of `anchor_key` and `notify_topic` when they are not ARNs, and of the
    /// dual-approval store (`keydeck approvals`); default the first selected Region.
    pub region: Option<String>,
}

impl IncidentSettings {
    /// The topic's ARN: as given, or built from its name, the region and the account.
    pub fn notify_topic_arn(&self, home_region: &str, account: &str) -> Option<String> {
        let t = self.notify_topic.as_deref()?;
        if t.starts_with("arn:") {
            return Some(t.to_owned());
        }
        let region = self.region.as_deref().unwrap_or(home_region);
        Some(format!("arn:aws:sns:{region}:{account}:{t}"))
    }

    /// The anchor key as a reference KMS resolves in the right Region: an ARN as given,
    /// else an alias ARN or key ARN in `region`.
    pub fn anchor_key_arn(&self, home_region: &str, account: &str) -> Option<String> {
        let k = self.anchor_key.as_deref()?;
        if k.starts_with("arn:") {
            return Some(k.to_owned());
        }
        let region = self.region.as_deref().unwrap_or(home_region);
        Some(match k.strip_prefix("alias/") {
            Some(a) => format!("arn:aws:kms:{region}:{account}:alias/{a}"),
            None => format!("arn:aws:kms:{region}:{account}:key/{k}"),
        })
    }
}

// ---- the approval matrix (004 §6) ---------------------------------------------------

/// The shortest and longest waiting period AWS allows for `ScheduleKeyDeletion`
/// (`PendingWindowInDays`, 7..=30; 004 §4.8 "7-30 day waiting period").
pub const AWS_DELETION_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 7..=30;

/// How long a request stays open by default (issue 11: "expires (default 24 h)").
pub const DEFAULT_REQUEST_LIFETIME_SECS: i64 = 24 * 3600;

/// The longest lifetime a policy may give a request: an approval a week after the
/// proposal approves a picture of the key that is a week old.
pub const MAX_REQUEST_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// A key operation the approval matrix governs, by its name in the policy file
/// (`[approvals.rotate-key]`, ...): the rows of 004 §6 "Access Controls for Key
/// Operations", plus cancelling a scheduled deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalOp {
    RotateKey,
    ScheduleDeletion,
    CreateKey,
    CancelDeletion,
    EmergencyDisable,
    RotateJwtSecret,
}

impl ApprovalOp {
    pub const ALL: [Self; 6] = [
        Self::RotateKey,
        Self::ScheduleDeletion,
        Self::CreateKey,
        Self::CancelDeletion,
        Self::EmergencyDisable,
        Self::RotateJwtSecret,
    ];

    /// The name in the policy file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RotateKey => "rotate-key",
            Self::ScheduleDeletion => "schedule-deletion",
            Self::CreateKey => "create-key",
            Self::CancelDeletion => "cancel-deletion",
            Self::EmergencyDisable => "emergency-disable",
            Self::RotateJwtSecret => "rotate-jwt-secret",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// The policy text the default rule comes from.
    pub fn source(self) -> &'static str {
        match self {
            Self::RotateKey => {
                "004 §6 \"Rotate KMS key (manual): drop-key-admin (proposer) + CISO (approver), dual approval\""
            }
            Self::ScheduleDeletion => {
                "004 §6 \"Schedule key deletion: drop-key-admin + CISO, dual approval — minimum 7-day waiting period\""
            }
            Self::CreateKey => "004 §6 \"Create new KMS key: drop-key-admin + CISO approval\"",
            Self::CancelDeletion => {
                "issue 11: cancelling a scheduled deletion undoes a destructive step, single control"
            }
            Self::EmergencyDisable => {
                "004 §6 \"Emergency key disable: Security Lead (any one), single — immediate incident ticket\""
            }
            Self::RotateJwtSecret => {
                "004 §6 \"Rotate JWT_SECRET: Security Lead, single — with deployment coordination\""
            }
        }
    }

    fn names() -> String {
        Self::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Which kind of STS identity an [`IdentityPattern`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatternKind {
    /// `arn:aws:iam::ACCOUNT:user/[PATH/]NAME`: that IAM user.
    User,
    /// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME`: any session of that role (STS names a
    /// session `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, without the path).
    Role,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`: sessions of ROLE whose session
    /// name matches SESSION (`*` for any).
    AssumedRole,
}

/// One entry of `[approvals.roles]`: an IAM user, role or assumed-role ARN, with `*` for
/// any account and `*` globs inside the last path segment only (`user/ops-*`,
/// `assumed-role/DropKeyAdmin/*`). Validated when the policy is parsed; matched by
/// `domain::approval::matches_pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPattern {
    /// As written in the policy.
    pub text: String,
    pub kind: PatternKind,
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// `None`: any account (`*`).
    pub account: Option<String>,
    /// The user's or role's path and name (`ops/key-admin`); for an assumed role the role
    /// name. No `*` except in the last segment of a user or role.
    pub name: String,
    /// The session-name glob of an assumed role; empty otherwise.
    pub session: String,
}

impl Serialize for IdentityPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Characters IAM allows in user, role, path and role-session names (`[\w+=,.@-]`).
fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

impl IdentityPattern {
    /// Parse a pattern; the error says what a pattern looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shape = "write arn:aws:iam::ACCOUNT:user/NAME, arn:aws:iam::ACCOUNT:role/NAME or \
                     arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION (ACCOUNT may be `*`; `*` may appear in the last segment)";
        let bad = |why: &str| format!("{text:?} is not an identity pattern ({why}): {shape}");
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts.as_slice() else {
            return Err(bad("not an ARN"));
        };
        if *arn != "arn" {
            return Err(bad("not an ARN"));
        }
        if !matches!(*partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(bad("unknown partition"));
        }
        if !region.is_empty() {
            return Err(bad("IAM and STS ARNs have no Region"));
        }
        let account = match *account {
            "*" => None,
            a if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => Some(a.to_owned()),
            _ => return Err(bad("the account is 12 digits or `*`")),
        };
        let segments: Vec<&str> = resource.split('/').collect();
        let (kind, name, session) = match (*service, segments.as_slice()) {
            ("iam", ["user" | "role", rest @ ..]) if !rest.is_empty() => {
                let kind = if segments[0] == "user" { PatternKind::User } else { PatternKind::Role };
                (kind, rest.join("/"), String::new())
            }
            ("sts", ["assumed-role", role, session]) => {
                (PatternKind::AssumedRole, (*role).to_owned(), (*session).to_owned())
            }
            ("sts", ["assumed-role", ..]) => return Err(bad("an assumed-role ARN is assumed-role/ROLE/SESSION")),
            _ => return Err(bad("not an IAM user, IAM role or STS assumed-role ARN")),
        };
        let all: Vec<&str> =
            if session.is_empty() { name.split('/').collect() } else { vec![name.as_str(), session.as_str()] };
        let last = all.len() - 1;
        for (i, seg) in all.iter().enumerate() {
            if seg.is_empty() {
                return Err(bad("an empty name"));
            }
            if i < last && seg.contains('*') {
                return Err(bad("`*` only in the last segment"));
            }
            if !seg.chars().all(|c| is_iam_name_char(c) || (i == last && c == '*')) {
                return Err(bad("IAM names use letters, digits and _+=,.@-"));
            }
        }
        Ok(Self { text: text.to_owned(), kind, partition: (*partition).to_owned(), account, name, session })
    }
}

/// One operation's row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRule {
    /// The role whose members may propose (for single control: carry it out).
    pub proposer: String,
    /// The role whose members may approve; `None`: single control (004 §6 "Single").
    pub approver: Option<String>,
    /// How long a proposal stays open (`expires = "24h"`).
    pub expires_secs: i64,
}

impl ApprovalRule {
    /// Two people: a proposer and a different approver (004 §6 "Dual approval").
    pub fn is_dual(&self) -> bool {
        self.approver.is_some()
    }

    /// The role that approves: the approver, or for single control the proposer's role.
    pub fn approver_role(&self) -> &str {
        self.approver.as_deref().unwrap_or(&self.proposer)
    }
}

/// The waiting period the policy allows for `schedule-deletion`, within AWS's 7..=30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeletionWindow {
    pub min_days: u32,
    pub max_days: u32,
}

/// The `[approvals]` section: who proposes and who approves each key operation (004 §6),
/// and which STS identities hold each role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalMatrix {
    /// Role name → the identities that hold it.
    pub roles: BTreeMap<String, Vec<IdentityPattern>>,
    /// One rule for every [`ApprovalOp`].
    pub rules: BTreeMap<ApprovalOp, ApprovalRule>,
    /// `[approvals.schedule-deletion] min_window_days / max_window_days`.
    pub deletion_window: DeletionWindow,
}

impl ApprovalMatrix {
    /// The rule for `op` (every operation has one: the parser insists).
    pub fn rule(&self, op: ApprovalOp) -> &ApprovalRule {
        self.rules.get(&op).expect("the matrix has a rule for every operation")
    }

    /// The identity patterns of `role` (empty for an unknown role).
    pub fn patterns(&self, role: &str) -> &[IdentityPattern] {
        self.roles.get(role).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Default for ApprovalMatrix {
    /// 004 §6, with the sandbox's operators: the same matrix `assets/policy.toml` writes
    /// out (IAM users `key-admin` and `security-lead`, who plays the CISO; the 004 §4.5
    /// role `drop-key-admin`'s sessions), in any account.
    fn default() -> Self {
        let pats = |list: &[&str]| -> Vec<IdentityPattern> {
            list.iter().map(|p| IdentityPattern::parse(p).expect("default pattern is valid")).collect()
        };
        let roles = BTreeMap::from([
            (
                "key-admin".to_owned(),
                pats(&["arn:aws:iam::*:user/key-admin", "arn:aws:sts::*:assumed-role/drop-key-admin/*"]),
            ),
            ("ciso".to_owned(), pats(&["arn:aws:iam::*:user/security-lead"])),
            ("security-lead".to_owned(), pats(&["arn:aws:iam::*:user/security-lead"])),
        ]);
        let rule = |proposer: &str, approver: Option<&str>| ApprovalRule {
            proposer: proposer.to_owned(),
            approver: approver.map(str::to_owned),
            expires_secs: DEFAULT_REQUEST_LIFETIME_SECS,
        };
        let rules = BTreeMap::from([
            (ApprovalOp::RotateKey, rule("key-admin", Some("ciso"))),
            (ApprovalOp::ScheduleDeletion, rule("key-admin", Some("ciso"))),
            (ApprovalOp::CreateKey, rule("key-admin", Some("ciso"))),
            (ApprovalOp::CancelDeletion, rule("key-admin", None)),
            (ApprovalOp::EmergencyDisable, rule("security-lead", None)),
            (ApprovalOp::RotateJwtSecret, rule("security-lead", None)),
        ]);
        let deletion_window =
            DeletionWindow { min_days: *AWS_DELETION_WINDOW_DAYS.start(), max_days: *AWS_DELETION_WINDOW_DAYS.end() };
        Self { roles, rules, deletion_window }
    }
}

/// A request lifetime, written `"90m"`, `"24h"` or `"2d"`: at least a minute, at most
/// [`MAX_REQUEST_LIFETIME_SECS`].
pub fn parse_lifetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (60..=MAX_REQUEST_LIFETIME_SECS).contains(&secs).then_some(secs)
}

/// A policy error with its place in the file (`FILE:LINE:COLUMN: message`, 1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

// ---- raw TOML shape ----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    policy: RawHeader,
    #[serde(default)]
    keys: Vec<RawRule>,
    #[serde(default)]
    secrets: Vec<RawRule>,
    #[serde(default)]
    external: Vec<RawExternal>,
    #[serde(default)]
    detections: BTreeMap<Spanned<String>, Spanned<RawSetting>>,
    #[serde(default)]
    incident: RawIncident,
    approvals: Option<Spanned<RawApprovals>>,
}

/// `[approvals]`: `roles` and one table per operation, each a map of fields.
type RawApprovals = BTreeMap<Spanned<String>, Spanned<BTreeMap<Spanned<String>, Spanned<RawApprovalValue>>>>;

/// A value inside `[approvals]`: a role or duration, a number of days, or a list of
/// identity patterns. Which one a field takes is checked with its name.
enum RawApprovalValue {
    Str(String),
    Int(i64),
    List(Vec<Spanned<String>>),
}

impl RawApprovalValue {
    fn kind(&self) -> &'static str {
        match self {
            Self::Str(_) => "a string",
            Self::Int(_) => "a number",
            Self::List(_) => "a list",
        }
    }
}

impl<'de> Deserialize<'de> for RawApprovalValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawApprovalValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a role name, a duration such as \"24h\", a number of days, or a list of ARN patterns")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawApprovalValue::Str(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawApprovalValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawApprovalValue::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element::<Spanned<String>>()? {
                    out.push(v);
                }
                Ok(RawApprovalValue::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIncident {
    anchor_key: Option<Spanned<String>>,
    notify_topic: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
}

/// One `[detections]` entry: a severity (or "off"), or a table.
enum RawSetting {
    Severity(String),
    Table(RawRuleTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleTable {
    severity: Option<Spanned<String>>,
    threshold: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    except: Option<Vec<Spanned<String>>>,
}

impl<'de> Deserialize<'de> for RawSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a severity (\"critical\", \"high\", \"medium\", \"low\" or \"off\") or a table { severity, threshold, window, except }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawSetting::Severity(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                RawRuleTable::deserialize(MapAccessDeserializer::new(a)).map(RawSetting::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    #[serde(default)]
    source: String,
    #[serde(default = "default_due_soon")]
    due_soon: Spanned<String>,
    #[serde(default = "default_overdue_alert")]
    overdue_alert: Spanned<String>,
    business_hours: Option<Spanned<RawBusinessHours>>,
    #[serde(default)]
    key_roles: Vec<String>,
}

fn default_due_soon() -> Spanned<String> {
    Spanned::new(0..0, "30d".into())
}
fn default_overdue_alert() -> Spanned<String> {
    Spanned::new(0..0, "7d".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBusinessHours {
    start: Spanned<String>,
    end: Spanned<String>,
    timezone: Option<Spanned<String>>,
    utc_offset: Option<Spanned<String>>,
    days: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    default: Option<Spanned<bool>>,
    name: Option<Spanned<String>>,
    arn: Option<Spanned<String>>,
    tag: Option<Spanned<BTreeMap<String, String>>>,
    owner: String,
    classification: Spanned<String>,
    rotation: Option<Spanned<String>>,
    overdue_alert: Option<Spanned<String>>,
    due_soon: Option<Spanned<String>>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_principals: Vec<String>,
    #[serde(default)]
    purpose: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternal {
    name: Spanned<String>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    kind: String,
    expires: Option<Spanned<String>>,
    last_rotated: Option<Spanned<String>>,
    rotation: Option<Spanned<String>>,
    alert_before: Spanned<String>,
}

// ---- parsing and validation -------------------------------------------------------

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, column) = line_col(self.src, span.start);
        PolicyError { file: self.file.to_owned(), line, column, message: message.into() }
    }

    /// A rotation period: a duration of at least one day (a `0d` period would make every
    /// item overdue the day it rotates).
    fn period(&self, s: &Spanned<String>, what: &str) -> Result<Days, PolicyError> {
        let d = self.days(s, what)?;
        if d.0 == 0 {
            return Err(self.err(s.span(), format!("{what} {:?} is zero: give at least \"1d\"", s.get_ref())));
        }
        Ok(d)
    }

    fn days(&self, s: &Spanned<String>, what: &str) -> Result<Days, PolicyError> {
        Days::parse(s.get_ref()).ok_or_else(|| {
            self.err(
                s.span(),
                format!("bad duration {:?} for {what}: write a whole number of days, weeks or years, e.g. \"365d\", \"12w\", \"1y\"", s.get_ref()),
            )
        })
    }

    fn date(&self, s: &Spanned<String>, what: &str) -> Result<chrono::NaiveDate, PolicyError> {
        chrono::NaiveDate::parse_from_str(s.get_ref(), "%Y-%m-%d")
            .map_err(|_| self.err(s.span(), format!("bad date {:?} for {what}: write YYYY-MM-DD", s.get_ref())))
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

impl Policy {
    /// The embedded default policy.
    pub fn default_policy() -> Result<Self, PolicyError> {
        Self::parse(DEFAULT_POLICY_NAME, DEFAULT_POLICY)
    }

    /// Parse and validate a policy file's text. `file` is only used in error messages.
    pub fn parse(file: &str, src: &str) -> Result<Self, PolicyError> {
        let cx = Ctx { file, src };
        let raw: RawPolicy = toml::from_str(src).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().trim().to_owned())
        })?;
        let default_due = cx.days(&raw.policy.due_soon, "policy.due_soon")?;
        let default_alert = cx.days(&raw.policy.overdue_alert, "policy.overdue_alert")?;
        let business_hours = match &raw.policy.business_hours {
            Some(b) => Some(parse_hours(&cx, b.get_ref(), b.span())?),
            None => None,
        };
        let keys = parse_rules(&cx, &raw.keys, "keys", default_due, default_alert)?;
        let secrets = parse_rules(&cx, &raw.secrets, "secrets", default_due, default_alert)?;
        let mut external = Vec::new();
        let mut seen = BTreeMap::new();
        for x in &raw.external {
            if let Some(_prev) = seen.insert(x.name.get_ref().clone(), ()) {
                return Err(cx.err(x.name.span(), format!("duplicate external item {:?}", x.name.get_ref())));
            }
            let expires = x.expires.as_ref().map(|d| cx.date(d, "expires")).transpose()?;
            let last_rotated = x.last_rotated.as_ref().map(|d| cx.date(d, "last_rotated")).transpose()?;
            let rotation = x.rotation.as_ref().map(|d| cx.period(d, "rotation")).transpose()?;
            if expires.is_none() && (last_rotated.is_none() || rotation.is_none()) {
                return Err(cx.err(
                    x.name.span(),
                    format!("external item {:?} needs `expires`, or `last_rotated` with `rotation`", x.name.get_ref()),
                ));
            }
            external.push(ExternalItem {
                name: x.name.get_ref().clone(),
                owner: x.owner.clone(),
                kind: x.kind.clone(),
                expires,
                last_rotated,
                rotation,
                alert_before: cx.days(&x.alert_before, "alert_before")?,
            });
        }
        let detections = parse_detections(&cx, &raw.detections)?;
        let inc = &raw.incident;
        if let Some(r) = &inc.region {
            if !super::region::is_valid_region_name(r.get_ref()) {
                return Err(cx.err(r.span(), format!("[incident] region {:?} is not an AWS Region name", r.get_ref())));
            }
        }
        for (field, v) in [("anchor_key", &inc.anchor_key), ("notify_topic", &inc.notify_topic)] {
            if let Some(v) = v {
                if v.get_ref().trim().is_empty() || v.get_ref().chars().any(char::is_whitespace) {
                    return Err(
                        cx.err(v.span(), format!("[incident] {field} must be a name or an ARN, without spaces"))
                    );
                }
            }
        }
        let approvals = match &raw.approvals {
            Some(a) => parse_approvals(&cx, a)?,
            None => ApprovalMatrix::default(),
        };
        let incident = IncidentSettings {
            anchor_key: inc.anchor_key.as_ref().map(|v| v.get_ref().clone()),
            notify_topic: inc.notify_topic.as_ref().map(|v| v.get_ref().clone()),
            region: inc.region.as_ref().map(|v| v.get_ref().clone()),
        };
        Ok(Self {
            incident,
            approvals,
            name: raw.policy.name,
            source: raw.policy.source,
            key_roles: raw.policy.key_roles,
            business_hours,
            keys,
            secrets,
            external,
            detections,
        })
    }
}

fn parse_detections(
    cx: &Ctx<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<RawSetting>>,
) -> Result<DetectionConfig, PolicyError> {
    let mut cfg = DetectionConfig::default();
    let names = || RuleId::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
    for (name, setting) in raw {
        let rule = RuleId::from_name(name.get_ref()).ok_or_else(|| {
            cx.err(name.span(), format!("unknown detection rule {:?}: use one of {}", name.get_ref(), names()))
        })?;
        let what = format!("detections.{}", rule.as_str());
        let severity = |s: &str, span: Range<usize>| -> Result<Option<Severity>, PolicyError> {
            if s == "off" {
                return Ok(None);
            }
            Severity::ALL.into_iter().find(|v| v.as_str() == s).map(Some).ok_or_else(|| {
                cx.err(span, format!("unknown severity {s:?} for {what}: use critical, high, medium, low or off"))
            })
        };
        let rc = cfg.rule_mut(rule);
        match setting.get_ref() {
            RawSetting::Severity(s) => rc.severity = severity(s, setting.span())?,
            RawSetting::Table(t) => {
                if let Some(s) = &t.severity {
                    rc.severity = severity(s.get_ref(), s.span())?;
                }
                if let Some(th) = &t.threshold {
                    if !rule.is_counting() {
                        return Err(cx.err(
                            th.span(),
                            format!("{what} takes no threshold (only failed_calls and secret_read_bulk count events)"),
                        ));
                    }
                    let n = *th.get_ref();
                    rc.threshold = u32::try_from(n).ok().filter(|n| *n <= 100_000).ok_or_else(|| {
                        cx.err(
                            th.span(),
                            format!("bad threshold {n} for {what}: write a whole number from 0 to 100000"),
                        )
                    })?;
                }
                if let Some(w) = &t.window {
                    rc.window_secs = ShortDuration::parse(w.get_ref()).map(|d| d.0).ok_or_else(|| {
                        cx.err(
                            w.span(),
                            format!(
                                "bad duration {:?} for {what}.window: write seconds, minutes or hours, e.g. \"90s\", \"5m\", \"1h\" (at most 24h)",
                                w.get_ref()
                            ),
                        )
                    })?;
                }
                if let Some(except) = &t.except {
                    rc.except.clear();
                    for e in except {
                        if e.get_ref().trim().is_empty() {
                            return Err(cx.err(e.span(), format!("empty principal in {what}.except")));
                        }
                        rc.except.push(e.get_ref().trim().to_owned());
                    }
                }
            }
        }
    }
    Ok(cfg)
}

/// `[approvals]` (004 §6): every role a list of valid identity patterns, every operation
/// exactly once with known roles, the deletion window within AWS's 7..=30 days.
fn parse_approvals(cx: &Ctx<'_>, raw: &Spanned<RawApprovals>) -> Result<ApprovalMatrix, PolicyError> {
    let section = raw.span();
    let entries = raw.get_ref();
    let Some((_, raw_roles)) = entries.iter().find(|(k, _)| k.get_ref() == "roles") else {
        return Err(
            cx.err(section, "[approvals] needs `roles`: role name → list of IAM user, role or assumed-role ARNs")
        );
    };
    let mut roles = BTreeMap::new();
    for (name, value) in raw_roles.get_ref() {
        let role = name.get_ref();
        if role.is_empty() || !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(
                cx.err(name.span(), format!("bad role name {role:?} in approvals.roles: use letters, digits, - and _"))
            );
        }
        let RawApprovalValue::List(list) = value.get_ref() else {
            return Err(cx.err(
                value.span(),
                format!("approvals.roles.{role} must be a list of ARN patterns, not {}", value.get_ref().kind()),
            ));
        };
        if list.is_empty() {
            return Err(
                cx.err(value.span(), format!("approvals.roles.{role} lists no identities: nobody could act in it"))
            );
        }
        let mut patterns = Vec::new();
        for p in list {
            let pattern = IdentityPattern::parse(p.get_ref().trim())
                .map_err(|m| cx.err(p.span(), format!("approvals.roles.{role}: {m}")))?;
            patterns.push(pattern);
        }
        roles.insert(role.clone(), patterns);
    }
    let role_names = || roles.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut rules = BTreeMap::new();
    let mut window = ApprovalMatrix::default().deletion_window;
    for (key, table) in entries {
        if key.get_ref() == "roles" {
            continue;
        }
        let op = ApprovalOp::from_name(key.get_ref()).ok_or_else(|| {
            cx.err(
                key.span(),
                format!(
                    "unknown operation {:?} in [approvals]: use roles or one of {}",
                    key.get_ref(),
                    ApprovalOp::names()
                ),
            )
        })?;
        let what = format!("approvals.{}", op.as_str());
        let fields = table.get_ref();
        let field = |name: &str| fields.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v);
        let allowed: &[&str] = if op == ApprovalOp::ScheduleDeletion {
            &["proposer", "approver", "expires", "min_window_days", "max_window_days"]
        } else {
            &["proposer", "approver", "expires"]
        };
        for k in fields.keys() {
            if !allowed.contains(&k.get_ref().as_str()) {
                return Err(cx.err(
                    k.span(),
                    format!("unknown field `{}` in {what}: expected {}", k.get_ref(), allowed.join(", ")),
                ));
            }
        }
        let string = |v: &Spanned<RawApprovalValue>, f: &str| -> Result<String, PolicyError> {
            match v.get_ref() {
                RawApprovalValue::Str(s) => Ok(s.clone()),
                other => Err(cx.err(v.span(), format!("{what}.{f} must be a string, not {}", other.kind()))),
            }
        };
        let role = |v: &Spanned<RawApprovalValue>, f: &str| -> Result<String, PolicyError> {
            let r = string(v, f)?;
            if !roles.contains_key(&r) {
                return Err(cx.err(
                    v.span(),
                    format!(
                        "unknown role {r:?} for {what}.{f}: define it in [approvals.roles] (roles: {})",
                        role_names()
                    ),
                ));
            }
            Ok(r)
        };
        let proposer = match field("proposer") {
            Some(v) => role(v, "proposer")?,
            None => return Err(cx.err(key.span(), format!("{what} needs `proposer` (a role in [approvals.roles])"))),
        };
        let approver = field("approver").map(|v| role(v, "approver")).transpose()?;
        let expires_secs = match field("expires") {
            Some(v) => {
                let s = string(v, "expires")?;
                parse_lifetime(&s).ok_or_else(|| {
                    cx.err(
                        v.span(),
                        format!("bad duration {s:?} for {what}.expires: write minutes, hours or days, e.g. \"90m\", \"24h\", \"2d\" (from 1m to 7d)"),
                    )
                })?
            }
            None => DEFAULT_REQUEST_LIFETIME_SECS,
        };
        let days = |f: &str| -> Result<Option<(u32, Range<usize>)>, PolicyError> {
            let Some(v) = field(f) else { return Ok(None) };
            let RawApprovalValue::Int(n) = v.get_ref() else {
                return Err(
                    cx.err(v.span(), format!("{what}.{f} must be a whole number of days, not {}", v.get_ref().kind()))
                );
            };
            match u32::try_from(*n).ok().filter(|d| AWS_DELETION_WINDOW_DAYS.contains(d)) {
                Some(d) => Ok(Some((d, v.span()))),
                None => Err(cx.err(
                    v.span(),
                    format!("{what}.{f} = {n} is outside AWS's waiting period of 7 to 30 days (kms:ScheduleKeyDeletion PendingWindowInDays; 004 §4.8, §6)"),
                )),
            }
        };
        if op == ApprovalOp::ScheduleDeletion {
            let min = days("min_window_days")?;
            let max = days("max_window_days")?;
            window.min_days = min.as_ref().map(|m| m.0).unwrap_or(*AWS_DELETION_WINDOW_DAYS.start());
            window.max_days = max.as_ref().map(|m| m.0).unwrap_or(*AWS_DELETION_WINDOW_DAYS.end());
            if window.min_days > window.max_days {
                let span = min.map(|m| m.1).or(max.map(|m| m.1)).unwrap_or(key.span());
                return Err(cx.err(
                    span,
                    format!(
                        "{what}.min_window_days = {} is more than max_window_days = {}",
                        window.min_days, window.max_days
                    ),
                ));
            }
        }
        rules.insert(op, ApprovalRule { proposer, approver, expires_secs });
    }
    if let Some(missing) = ApprovalOp::ALL.into_iter().find(|op| !rules.contains_key(op)) {
        return Err(cx.err(
            section,
            format!(
                "[approvals] has no [approvals.{}]: the matrix names every operation ({}); default: {}",
                missing.as_str(),
                ApprovalOp::names(),
                missing.source()
            ),
        ));
    }
    Ok(ApprovalMatrix { roles, rules, deletion_window: window })
}

fn parse_hours(cx: &Ctx<'_>, b: &RawBusinessHours, table: Range<usize>) -> Result<BusinessHours, PolicyError> {
    let hm = |s: &Spanned<String>| -> Result<u32, PolicyError> {
        let bad = || cx.err(s.span(), format!("bad time {:?}: write HH:MM (24-hour)", s.get_ref()));
        let (h, m) = s.get_ref().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 24 || m > 59 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(h * 60 + m)
    };
    let start_minute = hm(&b.start)?;
    let end_minute = hm(&b.end)?;
    if end_minute <= start_minute {
        return Err(cx.err(b.end.span(), "business_hours.end must be after start"));
    }
    let zone = match (&b.timezone, &b.utc_offset) {
        (Some(tz), None) => HoursZone::Named(parse_zone(cx, tz)?),
        (None, Some(off)) => HoursZone::Offset(parse_offset(cx, off)?),
        (Some(_), Some(off)) => {
            return Err(cx.err(
                off.span(),
                "business_hours takes one of `timezone` and `utc_offset`, not both: keep `timezone` (it follows daylight saving time)",
            ))
        }
        (None, None) => {
            return Err(cx.err(
                table,
                "business_hours needs `timezone` (an IANA name such as \"Europe/Oslo\") or `utc_offset` (\"+01:00\")",
            ))
        }
    };
    let mut weekdays = Vec::new();
    for d in b.days.get_ref() {
        let n = match d.as_str() {
            "Mon" => 1,
            "Tue" => 2,
            "Wed" => 3,
            "Thu" => 4,
            "Fri" => 5,
            "Sat" => 6,
            "Sun" => 7,
            other => {
                return Err(cx.err(b.days.span(), format!("unknown weekday {other:?}: use Mon Tue Wed Thu Fri Sat Sun")))
            }
        };
        weekdays.push(n);
    }
    Ok(BusinessHours { start_minute, end_minute, zone, weekdays })
}

/// An IANA zone name, exactly as the tz database spells it.
fn parse_zone(cx: &Ctx<'_>, s: &Spanned<String>) -> Result<chrono_tz::Tz, PolicyError> {
    let name = s.get_ref().trim();
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let hint = match chrono_tz::TZ_VARIANTS.iter().find(|z| z.name().eq_ignore_ascii_case(name)) {
        Some(z) => format!("did you mean {:?}?", z.name()),
        None => "write an IANA name such as \"Europe/Oslo\", or a fixed utc_offset = \"+01:00\"".to_owned(),
    };
    Err(cx.err(s.span(), format!("unknown time zone {:?}: {hint}", s.get_ref())))
}

/// `+HH:MM` or `-HH:MM`, in minutes.
fn parse_offset(cx: &Ctx<'_>, s: &Spanned<String>) -> Result<i32, PolicyError> {
    let off = s.get_ref();
    let bad_off = || cx.err(s.span(), format!("bad utc_offset {off:?}: write +HH:MM or -HH:MM"));
    let sign = match off.chars().next() {
        Some('+') => 1,
        Some('-') => -1,
        _ => return Err(bad_off()),
    };
    let (oh, om) = off[1..].split_once(':').ok_or_else(bad_off)?;
    let (oh, om): (i32, i32) = (oh.parse().map_err(|_| bad_off())?, om.parse().map_err(|_| bad_off())?);
    if oh > 14 || om > 59 {
        return Err(bad_off());
    }
    Ok(sign * (oh * 60 + om))
}

fn parse_rules(
    cx: &Ctx<'_>,
    raw: &[RawRule],
    table: &str,
    default_due: Days,
    default_alert: Days,
) -> Result<Vec<ItemRule>, PolicyError> {
    let mut out: Vec<ItemRule> = Vec::new();
    for r in raw {
        let class_span = r.classification.span();
        let selector_count =
            usize::from(r.name.is_some()) + usize::from(r.arn.is_some()) + usize::from(r.tag.is_some());
        let is_default = r.default.as_ref().is_some_and(|d| *d.get_ref());
        if let Some(d) = r.default.as_ref().filter(|_| is_default && selector_count > 0) {
            return Err(cx.err(
                d.span(),
                format!("a default [[{table}]] rule selects the items no other rule does: drop `name`, `arn` and `tag` from it"),
            ));
        }
        let selector = match (&r.name, &r.arn, &r.tag) {
            (None, None, None) if is_default => Selector::Default,
            (Some(n), None, None) => Selector::Name(n.get_ref().trim_start_matches("alias/").to_owned()),
            (None, Some(a), None) => Selector::Arn(a.get_ref().clone()),
            (None, None, Some(t)) => {
                let mut it = t.get_ref().iter();
                match (it.next(), it.next()) {
                    (Some((k, v)), None) => Selector::Tag(k.clone(), v.clone()),
                    _ => {
                        return Err(cx.err(
                            t.span(),
                            "a tag selector names exactly one tag, e.g. tag = { classification = \"L4\" }",
                        ))
                    }
                }
            }
            _ => {
                let span = r
                    .name
                    .as_ref()
                    .map(|s| s.span())
                    .or(r.arn.as_ref().map(|s| s.span()))
                    .unwrap_or(class_span.clone());
                let what = if selector_count == 0 { "needs one of" } else { "takes only one of" };
                return Err(cx.err(span, format!("a [[{table}]] rule {what} `name`, `arn` or `tag`")));
            }
        };
        let span = r
            .name
            .as_ref()
            .map(|s| s.span())
            .or(r.arn.as_ref().map(|s| s.span()))
            .or(r.tag.as_ref().map(|s| s.span()))
            .or(r.default.as_ref().map(|s| s.span()))
            .unwrap_or(class_span.clone());
        if selector == Selector::Default && out.iter().any(|o| o.selector == selector) {
            return Err(cx.err(span, format!("a second default [[{table}]] rule: there can be only one")));
        }
        if out.iter().any(|o| o.selector == selector) {
            let what = match &selector {
                Selector::Name(n) => format!("name = {n:?}"),
                Selector::Arn(a) => format!("arn = {a:?}"),
                Selector::Tag(k, v) => format!("tag {k}={v}"),
                Selector::Default => "default".into(),
            };
            return Err(cx.err(span, format!("duplicate [[{table}]] rule for {what}: one rule per item")));
        }
        let classification = Classification::parse(r.classification.get_ref()).ok_or_else(|| {
            cx.err(class_span, format!("unknown classification {:?}: use L1, L2, L3 or L4", r.classification.get_ref()))
        })?;
        let mut regions = Vec::new();
        for reg in &r.regions {
            if !super::region::is_valid_region_name(reg.get_ref()) {
                return Err(cx.err(reg.span(), format!("unknown region {:?}", reg.get_ref())));
            }
            regions.push(reg.get_ref().clone());
        }
        out.push(ItemRule {
            selector,
            owner: r.owner.clone(),
            classification,
            rotation: r.rotation.as_ref().map(|d| cx.period(d, "rotation")).transpose()?,
            overdue_alert: r
                .overdue_alert
                .as_ref()
                .map(|d| cx.days(d, "overdue_alert"))
                .transpose()?
                .unwrap_or(default_alert),
            due_soon: r.due_soon.as_ref().map(|d| cx.days(d, "due_soon")).transpose()?.unwrap_or(default_due),
            regions,
            allowed_principals: r.allowed_principals.clone(),
            purpose: r.purpose.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[policy]\nname = \"t\"\n";

    fn parse(body: &str) -> Result<Policy, PolicyError> {
        Policy::parse("p.toml", &format!("{HEAD}{body}"))
    }

    #[test]
    fn a_default_rule_takes_no_selector_and_is_one_per_table() {
        let rule = "owner = \"o\"\nclassification = \"L3\"\nrotation = \"1y\"\n";
        let p = parse(&format!("[[keys]]\ndefault = true\n{rule}[[secrets]]\ndefault = true\n{rule}")).expect("parses");
        assert_eq!(p.keys[0].selector, Selector::Default);
        assert_eq!(p.secrets[0].selector, Selector::Default);
        let e = parse(&format!("[[keys]]\ndefault = true\nname = \"x\"\n{rule}")).expect_err("selector");
        assert!(e.message.contains("drop `name`, `arn` and `tag`"), "{e:?}");
        assert_eq!(e.line, 4);
        let e = parse(&format!("[[keys]]\ndefault = true\n{rule}[[keys]]\ndefault = true\n{rule}")).expect_err("two");
        assert!(e.message.contains("second default"), "{e:?}");
        let e = parse(&format!("[[keys]]\ndefault = false\n{rule}")).expect_err("false is no selector");
        assert!(e.message.contains("needs one of"), "{e:?}");
    }

    #[test]
    fn default_policy_parses_and_covers_the_seed_estate() {
        let p = Policy::default_policy().expect("embedded policy is valid");
        let names: Vec<&Selector> = p.keys.iter().map(|r| &r.selector).collect();
        assert!(names.contains(&&Selector::Name("drop-national-id-key".into())));
        let jwt =
            p.secrets.iter().find(|r| r.selector == Selector::Name("JWT_SECRET".into())).expect("JWT_SECRET rule");
        assert_eq!(jwt.rotation, Some(Days(90)));
        assert_eq!(jwt.overdue_alert, Days(3));
        assert!(p.external.iter().any(|x| x.alert_before == Days(60)));
        assert!(p.external.iter().any(|x| x.alert_before == Days(14)));
    }

    #[test]
    fn durations() {
        assert_eq!(Days::parse("365d"), Some(Days(365)));
        assert_eq!(Days::parse("12w"), Some(Days(84)));
        assert_eq!(Days::parse("1y"), Some(Days(365)));
        for bad in ["", "d", "365", "1.5y", "-3d", "3 months", "999999999999999999999y"] {
            assert_eq!(Days::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_zero_rotation_and_a_duplicate_rule_are_errors_in_the_policy_words() {
        let rule = "owner = \"o\"\nclassification = \"L3\"\n";
        let e = parse(&format!("[[keys]]\nname = \"k\"\n{rule}rotation = \"0d\"\n")).unwrap_err();
        assert!(e.message.contains("rotation \"0d\" is zero"), "{e}");
        let twice = format!("[[keys]]\nname = \"k\"\n{rule}[[keys]]\nname = \"k\"\n{rule}");
        let e = parse(&twice).unwrap_err();
        assert_eq!(e.message, "duplicate [[keys]] rule for name = \"k\": one rule per item", "{e}");
    }

    #[test]
    fn unknown_field_has_line_and_column() {
        let e =
            parse("[[keys]]\nname = \"k\"\nowner = \"o\"\nclassification = \"L4\"\nrotaton = \"365d\"\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("p.toml", 7), "{e}");
        assert!(e.message.contains("rotaton"), "{e}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = Policy::parse("p.toml", "[policy\nname = 1\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.column > 1, "{e}");
    }

    #[test]
    fn bad_duration_points_at_the_value() {
        let e = parse("[[keys]]\nname = \"k\"\nowner = \"o\"\nclassification = \"L4\"\nrotation = \"annual\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (7, 12), "{e}");
        assert!(e.message.contains("bad duration"), "{e}");
    }

    #[test]
    fn incident_settings_and_their_errors() {
        let p = parse("[incident]\nanchor_key = \"alias/anchor\"\nnotify_topic = \"sec\"\nregion = \"eu-west-1\"\n")
            .expect("valid");
        assert_eq!(
            p.incident.anchor_key_arn("eu-north-1", "123456789012").as_deref(),
            Some("arn:aws:kms:eu-west-1:123456789012:alias/anchor")
        );
        assert_eq!(
            p.incident.notify_topic_arn("eu-north-1", "123456789012").as_deref(),
            Some("arn:aws:sns:eu-west-1:123456789012:sec")
        );
        let e = parse("[incident]\nregion = \"mars-1\"\n").unwrap_err();
        assert!(e.message.contains("not an AWS Region"), "{e}");
        let e = parse("[incident]\nnotify_topic = \"a b\"\n").unwrap_err();
        assert!(e.message.contains("without spaces"), "{e}");
        let e = parse("[incident]\nanchor = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        let d = Policy::default_policy().expect("default");
        assert_eq!(d.incident.anchor_key.as_deref(), Some("alias/keydeck-incident-anchor"));
    }

    #[test]
    fn duplicate_and_unknown_classification() {
        let rule = "[[keys]]\nname = \"k\"\nowner = \"o\"\nclassification = \"L4\"\n";
        let e = parse(&format!("{rule}{rule}")).unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        assert_eq!(e.line, 8);
        let e = parse("[[secrets]]\nname = \"s\"\nowner = \"o\"\nclassification = \"L9\"\n").unwrap_err();
        assert!(e.message.contains("unknown classification"), "{e}");
        assert_eq!((e.line, e.column), (6, 18));
    }

    #[test]
    fn selectors_must_be_exactly_one() {
        let e = parse("[[keys]]\nowner = \"o\"\nclassification = \"L4\"\n").unwrap_err();
        assert!(e.message.contains("needs one of"), "{e}");
        let e = parse("[[keys]]\nname = \"a\"\narn = \"b\"\nowner = \"o\"\nclassification = \"L4\"\n").unwrap_err();
        assert!(e.message.contains("only one"), "{e}");
    }

    #[test]
    fn business_hours_validate() {
        let p =
            parse_hours_src("start = \"07:00\"\nend = \"18:00\"\nutc_offset = \"+01:00\"\ndays = [\"Mon\", \"Fri\"]\n")
                .unwrap();
        let b = p.business_hours.unwrap();
        assert_eq!((b.start_minute, b.end_minute, b.zone, b.weekdays), (420, 1080, HoursZone::Offset(60), vec![1, 5]));
        assert!(parse_hours_src("start = \"7\"\nend = \"18:00\"\nutc_offset = \"+01:00\"\ndays = []\n").is_err());
        assert!(parse_hours_src("start = \"07:00\"\nend = \"06:00\"\nutc_offset = \"+01:00\"\ndays = []\n").is_err());
        assert!(parse_hours_src("start = \"07:00\"\nend = \"18:00\"\nutc_offset = \"01:00\"\ndays = []\n").is_err());
        assert!(parse_hours_src("start = \"07:00\"\nend = \"18:00\"\nutc_offset = \"+01:00\"\ndays = [\"Funday\"]\n")
            .is_err());
    }

    #[test]
    fn business_hours_in_a_named_time_zone() {
        let p = parse_hours_src("start = \"07:00\"\nend = \"18:00\"\ntimezone = \"Europe/Oslo\"\ndays = [\"Mon\"]\n")
            .expect("valid");
        let b = p.business_hours.expect("hours");
        assert_eq!(b.zone, HoursZone::Named(chrono_tz::Europe::Oslo));
        assert_eq!(b.zone.to_string(), "Europe/Oslo");
        assert_eq!(serde_json::to_value(&b).expect("json")["zone"], "Europe/Oslo");
        // Daylight saving time: 2026-07-01 16:30Z is 18:30 in Oslo; 2026-01-07 16:30Z is 17:30.
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&chrono::Utc);
        assert_eq!(b.zone.local_weekday_minute(at("2026-07-01T16:30:00Z")), Some((3, 18 * 60 + 30)));
        assert_eq!(b.zone.local_weekday_minute(at("2026-01-07T16:30:00Z")), Some((3, 17 * 60 + 30)));
        assert_eq!(HoursZone::Offset(60).local_weekday_minute(at("2026-07-01T16:30:00Z")), Some((3, 17 * 60 + 30)));
        assert_eq!(HoursZone::Offset(-330).to_string(), "UTC-05:30");
        // The default policy keeps Oslo's hours in its zone, not at a fixed offset.
        let d = Policy::default_policy().expect("default");
        assert_eq!(d.business_hours.expect("hours").zone, HoursZone::Named(chrono_tz::Europe::Oslo));
    }

    #[test]
    fn business_hours_need_exactly_one_known_zone() {
        let e =
            parse_hours_src("start = \"07:00\"\nend = \"18:00\"\ntimezone = \"Europe/Olso\"\ndays = []\n").unwrap_err();
        assert_eq!((e.line, e.column), (6, 12), "{e}");
        assert!(e.message.contains("unknown time zone \"Europe/Olso\""), "{e}");
        assert!(e.message.contains("IANA"), "{e}");
        let e =
            parse_hours_src("start = \"07:00\"\nend = \"18:00\"\ntimezone = \"europe/oslo\"\ndays = []\n").unwrap_err();
        assert!(e.message.contains("did you mean \"Europe/Oslo\""), "{e}");
        for bad in ["+01:00", "", "CET+1", "Oslo"] {
            let body = format!("start = \"07:00\"\nend = \"18:00\"\ntimezone = {bad:?}\ndays = []\n");
            let e = parse_hours_src(&body).unwrap_err();
            assert!(e.message.contains("unknown time zone"), "{bad}: {e}");
        }
        let e = parse_hours_src(
            "start = \"07:00\"\nend = \"18:00\"\ntimezone = \"Europe/Oslo\"\nutc_offset = \"+01:00\"\ndays = []\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (7, 14), "{e}");
        assert!(e.message.contains("not both"), "{e}");
        let e = parse_hours_src("start = \"07:00\"\nend = \"18:00\"\ndays = []\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("needs `timezone`"), "{e}");
        let line = e.to_string();
        assert_eq!(line.lines().count(), 1, "one line: {line}");
        assert!(line.starts_with("p.toml:3:"), "{line}");
    }

    fn parse_hours_src(body: &str) -> Result<Policy, PolicyError> {
        Policy::parse("p.toml", &format!("[policy]\nname = \"t\"\n[policy.business_hours]\n{body}"))
    }

    #[test]
    fn external_items_need_a_date() {
        let e = parse("[[external]]\nname = \"TLS\"\nalert_before = \"14d\"\n").unwrap_err();
        assert!(e.message.contains("needs `expires`"), "{e}");
        let e = parse("[[external]]\nname = \"TLS\"\nexpires = \"2026-13-01\"\nalert_before = \"14d\"\n").unwrap_err();
        assert!(e.message.contains("bad date"), "{e}");
    }

    #[test]
    fn default_policy_detections_are_the_code_defaults() {
        let p = Policy::default_policy().expect("embedded policy is valid");
        assert_eq!(p.detections, DetectionConfig::default());
        assert_eq!(p.detections.failed_calls.threshold, 3);
        assert_eq!(p.detections.failed_calls.window_secs, 300);
        assert_eq!(p.detections.schedule_key_deletion.severity, Some(Severity::Critical));
    }

    #[test]
    fn detections_default_when_absent() {
        assert_eq!(parse("").expect("minimal policy").detections, DetectionConfig::default());
        assert_eq!(parse("[detections]\n").expect("empty section").detections, DetectionConfig::default());
    }

    #[test]
    fn detections_parse() {
        let p = parse(concat!(
            "[detections]\n",
            "schedule_key_deletion = \"high\"\n",
            "create_grant = \"off\"\n",
            "failed_calls = { threshold = 5, window = \"10m\" }\n",
            "secret_read_bulk = { severity = \"low\", threshold = 0, window = \"1h\" }\n",
            "off_hours_restricted = { window = \"90s\", except = [\"app-runner\", \"arn:aws:iam::1:role/r\"] }\n",
            "unexpected_region = { severity = \"off\" }\n",
        ))
        .expect("valid");
        let d = &p.detections;
        assert_eq!(d.schedule_key_deletion.severity, Some(Severity::High));
        assert_eq!(d.create_grant.severity, None);
        assert_eq!(
            (d.failed_calls.severity, d.failed_calls.threshold, d.failed_calls.window_secs),
            (Some(Severity::High), 5, 600)
        );
        assert_eq!(
            (d.secret_read_bulk.severity, d.secret_read_bulk.threshold, d.secret_read_bulk.window_secs),
            (Some(Severity::Low), 0, 3600)
        );
        assert_eq!(d.off_hours_restricted.window_secs, 90);
        assert_eq!(d.off_hours_restricted.except, ["app-runner", "arn:aws:iam::1:role/r"]);
        assert!(!d.unexpected_region.enabled());
        assert_eq!(d.disable_key, DetectionConfig::default().disable_key, "untouched rules keep their defaults");
    }

    #[test]
    fn short_durations() {
        assert_eq!(ShortDuration::parse("5m"), Some(ShortDuration(300)));
        assert_eq!(ShortDuration::parse("10m"), Some(ShortDuration(600)));
        assert_eq!(ShortDuration::parse("1h"), Some(ShortDuration(3600)));
        assert_eq!(ShortDuration::parse("90s"), Some(ShortDuration(90)));
        assert_eq!(ShortDuration::parse("24h"), Some(ShortDuration(86_400)));
        for bad in ["", "5", "m", "0m", "25h", "1d", "5 m", "5min", "-5m", "1.5h", "99999999999999999999h"] {
            assert_eq!(ShortDuration::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn detection_errors_have_line_and_column() {
        let at = |body: &str| {
            let e = parse(&format!("[detections]\n{body}")).unwrap_err();
            (e.line, e.column, e.message)
        };
        let (l, c, m) = at("disable_key = \"hgh\"\n");
        assert_eq!((l, c), (4, 15), "{m}");
        assert!(m.contains("unknown severity \"hgh\" for detections.disable_key"), "{m}");
        let (l, c, m) = at("disable_kye = \"high\"\n");
        assert_eq!((l, c), (4, 1), "{m}");
        assert!(m.contains("unknown detection rule \"disable_kye\"") && m.contains("disable_key"), "{m}");
        let (l, c, m) = at("put_key_policy = \"low\"\nfailed_calls = { threshold = 3, window = \"5 minutes\" }\n");
        assert_eq!((l, c), (5, 42), "{m}");
        assert!(m.contains("bad duration \"5 minutes\" for detections.failed_calls.window"), "{m}");
        let (l, c, m) = at("failed_calls = { window = \"2d\" }\n");
        assert_eq!((l, c), (4, 27), "{m}");
        let (l, c, m) = at("failed_calls = { severity = \"loud\" }\n");
        assert_eq!((l, c), (4, 29), "{m}");
        assert!(m.contains("unknown severity"), "{m}");
        let (l, c, m) = at("disable_key = { threshold = 2 }\n");
        assert_eq!((l, c), (4, 29), "{m}");
        assert!(m.contains("takes no threshold"), "{m}");
        let (l, _, m) = at("failed_calls = { threshold = -1 }\n");
        assert_eq!(l, 4, "{m}");
        assert!(m.contains("bad threshold -1"), "{m}");
        let (l, _, m) = at("failed_calls = { treshold = 3 }\n");
        assert_eq!(l, 4, "{m}");
        assert!(m.contains("treshold"), "{m}");
        let (l, _, m) = at("failed_calls = { threshold = \"3\" }\n");
        assert_eq!(l, 4, "{m}");
        let (l, c, m) = at("disable_key = 5\n");
        assert_eq!((l, c), (4, 15), "{m}");
        let (l, _, m) = at("create_grant = { except = [\"a\", \"  \"] }\n");
        assert_eq!(l, 4, "{m}");
        assert!(m.contains("empty principal"), "{m}");
        let (l, _, m) = at("create_grant = \"high\"\ncreate_grant = \"low\"\n");
        assert_eq!(l, 5, "duplicate key: {m}");
    }

    // ---- [approvals] -------------------------------------------------------------

    /// A complete, valid matrix in eight lines (lines 3..=10 after HEAD).
    const MATRIX: &str = r#"[approvals]
roles = { a = ["arn:aws:iam::111122223333:user/alice"], b = ["arn:aws:sts::*:assumed-role/Ciso/*"] }
rotate-key = { proposer = "a", approver = "b" }
schedule-deletion = { proposer = "a", approver = "b", min_window_days = 10, max_window_days = 20 }
create-key = { proposer = "a", approver = "b", expires = "2h" }
cancel-deletion = { proposer = "a" }
emergency-disable = { proposer = "b" }
rotate-jwt-secret = { proposer = "b" }
"#;

    #[test]
    fn approvals_parse() {
        let m = parse(MATRIX).expect("valid matrix").approvals;
        assert_eq!(m.roles.len(), 2);
        assert_eq!(m.patterns("b")[0].kind, PatternKind::AssumedRole);
        assert_eq!(m.patterns("a")[0].account.as_deref(), Some("111122223333"));
        let rot = m.rule(ApprovalOp::RotateKey);
        assert_eq!((rot.proposer.as_str(), rot.approver.as_deref(), rot.expires_secs), ("a", Some("b"), 86_400));
        assert!(rot.is_dual());
        assert_eq!(m.rule(ApprovalOp::CreateKey).expires_secs, 7200);
        assert!(!m.rule(ApprovalOp::CancelDeletion).is_dual());
        assert_eq!(m.rule(ApprovalOp::CancelDeletion).approver_role(), "a");
        assert_eq!(m.deletion_window, DeletionWindow { min_days: 10, max_days: 20 });
    }

    #[test]
    fn approvals_default_when_absent_and_as_written_in_the_default_policy() {
        assert_eq!(parse("").expect("minimal").approvals, ApprovalMatrix::default());
        let d = Policy::default_policy().expect("default").approvals;
        assert_eq!(d, ApprovalMatrix::default(), "assets/policy.toml writes out the code's defaults");
        // 004 §6 row by row.
        let who = |op| {
            let r = d.rule(op);
            (r.proposer.as_str(), r.approver.as_deref())
        };
        assert_eq!(who(ApprovalOp::RotateKey), ("key-admin", Some("ciso")));
        assert_eq!(who(ApprovalOp::ScheduleDeletion), ("key-admin", Some("ciso")));
        assert_eq!(who(ApprovalOp::CreateKey), ("key-admin", Some("ciso")));
        assert_eq!(who(ApprovalOp::CancelDeletion), ("key-admin", None));
        assert_eq!(who(ApprovalOp::EmergencyDisable), ("security-lead", None));
        assert_eq!(who(ApprovalOp::RotateJwtSecret), ("security-lead", None));
        assert_eq!(d.deletion_window, DeletionWindow { min_days: 7, max_days: 30 });
        assert!(d.rules.values().all(|r| r.expires_secs == 24 * 3600));
    }

    #[test]
    fn window_bounds_default_to_aws_when_unset() {
        let p = parse(&MATRIX.replace(", min_window_days = 10, max_window_days = 20", "")).expect("valid");
        assert_eq!(p.approvals.deletion_window, DeletionWindow { min_days: 7, max_days: 30 });
        let p = parse(&MATRIX.replace("min_window_days = 10, ", "")).expect("valid");
        assert_eq!(p.approvals.deletion_window, DeletionWindow { min_days: 7, max_days: 20 });
    }

    #[test]
    fn approvals_as_tables_like_the_default_policy() {
        let p = parse(concat!(
            "[approvals.roles]\n",
            "x = [\"arn:aws:iam::*:role/ops/KeyAdmin\"]\n",
            "[approvals.rotate-key]\nproposer = \"x\"\n",
            "[approvals.schedule-deletion]\nproposer = \"x\"\n",
            "[approvals.create-key]\nproposer = \"x\"\n",
            "[approvals.cancel-deletion]\nproposer = \"x\"\n",
            "[approvals.emergency-disable]\nproposer = \"x\"\n",
            "[approvals.rotate-jwt-secret]\nproposer = \"x\"\n",
        ))
        .expect("valid");
        let pat = &p.approvals.patterns("x")[0];
        assert_eq!((pat.kind, pat.name.as_str(), pat.account.as_deref()), (PatternKind::Role, "ops/KeyAdmin", None));
        // Without an `[approvals]` header, a missing operation points at the first `approvals`.
        let e = parse("[approvals.roles]\nx = [\"arn:aws:iam::*:user/x\"]\n[approvals.rotate-key]\nproposer = \"x\"\n")
            .unwrap_err();
        assert!(e.message.contains("has no [approvals.schedule-deletion]"), "{e}");
        assert_eq!((e.line, e.column), (3, 2), "{e}");
    }

    /// One malformed matrix: MATRIX with `line` replaced by `with`; the error's message
    /// contains `message` and points at `line:col`.
    fn rejected(replace: &str, with: &str, message: &str, line: usize, col: usize) {
        assert!(MATRIX.contains(replace), "fixture: {replace}");
        let src = MATRIX.replacen(replace, with, 1);
        let e = parse(&src).expect_err(&src);
        assert!(e.message.contains(message), "{e}\nexpected: {message}");
        assert_eq!((e.file.as_str(), e.line, e.column), ("p.toml", line, col), "{e}");
    }

    macro_rules! rejected_matrix {
        ($($name:ident: $replace:expr => $with:expr, $message:expr, $line:expr, $col:expr;)*) => {
            $(#[test] fn $name() { rejected($replace, $with, $message, $line, $col); })*
        };
    }

    rejected_matrix! {
        matrix_unknown_approver_role:
            r#"rotate-key = { proposer = "a", approver = "b" }"# => r#"rotate-key = { proposer = "a", approver = "cso" }"#,
            r#"unknown role "cso" for approvals.rotate-key.approver: define it in [approvals.roles] (roles: a, b)"#, 5, 43;
        matrix_unknown_proposer_role:
            r#"cancel-deletion = { proposer = "a" }"# => r#"cancel-deletion = { proposer = "key-admin" }"#,
            r#"unknown role "key-admin" for approvals.cancel-deletion.proposer"#, 8, 32;
        matrix_unknown_operation:
            "emergency-disable =" => "emergency-disabled =",
            r#"unknown operation "emergency-disabled" in [approvals]: use roles or one of rotate-key, schedule-deletion"#, 9, 1;
        matrix_missing_operation:
            "rotate-jwt-secret = { proposer = \"b\" }\n" => "",
            "[approvals] has no [approvals.rotate-jwt-secret]", 3, 1;
        matrix_missing_roles:
            "roles = {" => "rols = {",
            "[approvals] needs `roles`", 3, 1;
        matrix_window_below_aws:
            "min_window_days = 10" => "min_window_days = 3",
            "approvals.schedule-deletion.min_window_days = 3 is outside AWS's waiting period of 7 to 30 days", 6, 73;
        matrix_window_above_aws:
            "max_window_days = 20" => "max_window_days = 31",
            "approvals.schedule-deletion.max_window_days = 31 is outside AWS's waiting period of 7 to 30 days", 6, 95;
        matrix_window_min_above_max:
            "min_window_days = 10" => "min_window_days = 25",
            "approvals.schedule-deletion.min_window_days = 25 is more than max_window_days = 20", 6, 73;
        matrix_window_not_a_number:
            "min_window_days = 10" => "min_window_days = \"10d\"",
            "approvals.schedule-deletion.min_window_days must be a whole number of days, not a string", 6, 73;
        matrix_window_on_another_operation:
            r#"create-key = { proposer = "a", approver = "b", expires = "2h" }"# => r#"create-key = { proposer = "a", min_window_days = 7 }"#,
            "unknown field `min_window_days` in approvals.create-key: expected proposer, approver, expires", 7, 32;
        matrix_unknown_field:
            r#"rotate-key = { proposer = "a", approver = "b" }"# => r#"rotate-key = { proposer = "a", aprover = "b" }"#,
            "unknown field `aprover` in approvals.rotate-key", 5, 32;
        matrix_missing_proposer:
            r#"cancel-deletion = { proposer = "a" }"# => r#"cancel-deletion = { approver = "a" }"#,
            "approvals.cancel-deletion needs `proposer`", 8, 1;
        matrix_role_is_not_a_string:
            r#"cancel-deletion = { proposer = "a" }"# => r#"cancel-deletion = { proposer = ["a"] }"#,
            "approvals.cancel-deletion.proposer must be a string, not a list", 8, 32;
        matrix_bad_expires:
            r#"expires = "2h""# => r#"expires = "1 day""#,
            r#"bad duration "1 day" for approvals.create-key.expires"#, 7, 58;
        matrix_expires_too_long:
            r#"expires = "2h""# => r#"expires = "8d""#,
            "(from 1m to 7d)", 7, 58;
        matrix_pattern_not_an_arn:
            r#"a = ["arn:aws:iam::111122223333:user/alice"]"# => r#"a = ["alice"]"#,
            r#"approvals.roles.a: "alice" is not an identity pattern (not an ARN): write arn:aws:iam::ACCOUNT:user/NAME"#, 4, 16;
        matrix_pattern_not_iam:
            "arn:aws:iam::111122223333:user/alice" => "arn:aws:kms:eu-north-1:111122223333:key/1",
            "(IAM and STS ARNs have no Region)", 4, 16;
        matrix_pattern_wrong_service:
            "arn:aws:iam::111122223333:user/alice" => "arn:aws:ec2::111122223333:instance/i-1",
            "(not an IAM user, IAM role or STS assumed-role ARN)", 4, 16;
        matrix_pattern_bad_account:
            "arn:aws:iam::111122223333:user/alice" => "arn:aws:iam::1111:user/alice",
            "(the account is 12 digits or `*`)", 4, 16;
        matrix_pattern_wildcard_role_name:
            "assumed-role/Ciso/*" => "assumed-role/*/*",
            "(`*` only in the last segment)", 4, 62;
        matrix_pattern_assumed_role_without_session:
            "assumed-role/Ciso/*" => "assumed-role/Ciso",
            "(an assumed-role ARN is assumed-role/ROLE/SESSION)", 4, 62;
        matrix_pattern_iam_assumed_role:
            "arn:aws:sts::*:assumed-role/Ciso/*" => "arn:aws:iam::*:assumed-role/Ciso/*",
            "(not an IAM user, IAM role or STS assumed-role ARN)", 4, 62;
        matrix_pattern_bad_partition:
            "arn:aws:iam::111122223333:user/alice" => "arn:aws-mars:iam::111122223333:user/alice",
            "(unknown partition)", 4, 16;
        matrix_pattern_bad_character:
            "user/alice" => "user/al ice",
            "(IAM names use letters, digits and _+=,.@-)", 4, 16;
        matrix_pattern_root:
            "user/alice" => "root",
            "(not an IAM user, IAM role or STS assumed-role ARN)", 4, 16;
        matrix_role_lists_nobody:
            r#"a = ["arn:aws:iam::111122223333:user/alice"]"# => "a = []",
            "approvals.roles.a lists no identities", 4, 15;
        matrix_bad_role_name:
            r#"a = ["arn:aws:iam::111122223333:user/alice"]"# => r#""a b" = ["arn:aws:iam::111122223333:user/alice"]"#,
            r#"bad role name "a b" in approvals.roles"#, 4, 11;
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncø d", 6), (2, 3));
        assert_eq!(line_col("ab\ncø d", 7), (2, 4));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
