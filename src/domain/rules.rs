//! The detection rules' names, severities and settings, as the policy's `[detections]`
//! section declares them (seed 004 §8). `policy` parses them; `detect` applies them.

use std::fmt;
use std::str::FromStr;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// How urgent an alert is. Ordered most severe first (`Critical < High`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// At or above `threshold` (`High.at_least(Medium)` is true).
    pub fn at_least(self, threshold: Severity) -> bool {
        self <= threshold
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"banana"` is not a severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {:?}: use critical, high, medium or low", super::text::inert(.0))]
pub struct SeverityParseError(pub String);

impl FromStr for Severity {
    type Err = SeverityParseError;
    /// `critical`, `high`, `medium`, `low` (any case), for CLI thresholds.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SeverityParseError(s.to_owned()))
    }
}

/// The detection rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    ScheduleKeyDeletion,
    DisableKey,
    PutKeyPolicy,
    CreateGrant,
    AliasChange,
    KeyMaterialChange,
    UnexpectedPrincipal,
    FailedCalls,
    OffHoursRestricted,
    SecretReadNewPrincipal,
    SecretReadBulk,
    UnexpectedRegion,
}

impl RuleId {
    pub const ALL: [RuleId; 12] = [
        RuleId::ScheduleKeyDeletion,
        RuleId::DisableKey,
        RuleId::PutKeyPolicy,
        RuleId::CreateGrant,
        RuleId::AliasChange,
        RuleId::KeyMaterialChange,
        RuleId::UnexpectedPrincipal,
        RuleId::FailedCalls,
        RuleId::OffHoursRestricted,
        RuleId::SecretReadNewPrincipal,
        RuleId::SecretReadBulk,
        RuleId::UnexpectedRegion,
    ];

    /// The rule's name in the policy's `[detections]` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::ScheduleKeyDeletion => "schedule_key_deletion",
            RuleId::DisableKey => "disable_key",
            RuleId::PutKeyPolicy => "put_key_policy",
            RuleId::CreateGrant => "create_grant",
            RuleId::AliasChange => "alias_change",
            RuleId::KeyMaterialChange => "key_material_change",
            RuleId::UnexpectedPrincipal => "unexpected_principal",
            RuleId::FailedCalls => "failed_calls",
            RuleId::OffHoursRestricted => "off_hours_restricted",
            RuleId::SecretReadNewPrincipal => "secret_read_new_principal",
            RuleId::SecretReadBulk => "secret_read_bulk",
            RuleId::UnexpectedRegion => "unexpected_region",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A human title.
    pub fn title(self) -> &'static str {
        match self {
            RuleId::ScheduleKeyDeletion => "Key deletion scheduled",
            RuleId::DisableKey => "Key disabled",
            RuleId::PutKeyPolicy => "Key policy changed",
            RuleId::CreateGrant => "Grant created",
            RuleId::AliasChange => "Alias changed",
            RuleId::KeyMaterialChange => "Key material changed",
            RuleId::UnexpectedPrincipal => "Key used by a principal the policy does not allow",
            RuleId::FailedCalls => "Repeated failed KMS calls",
            RuleId::OffHoursRestricted => "Restricted key used outside business hours",
            RuleId::SecretReadNewPrincipal => "Secret read by a new principal",
            RuleId::SecretReadBulk => "Many secrets read by one principal",
            RuleId::UnexpectedRegion => "Call in a region the policy does not expect",
        }
    }

    /// Where the rule comes from.
    pub fn policy_ref(self) -> &'static str {
        match self {
            RuleId::ScheduleKeyDeletion => {
                "004 §8: any ScheduleKeyDeletion event is an immediate alert; §6: deletion needs drop-key-admin + CISO"
            }
            RuleId::DisableKey => {
                "004 §8: key disabling is logged with actor and reason; §6: emergency disable by the Security Lead"
            }
            RuleId::PutKeyPolicy => {
                "004 §4.5: least privilege through key policies; §6: new access needs Security Lead + owner"
            }
            RuleId::CreateGrant => "004 §6: granting new service access needs Security Lead + system owner approval",
            RuleId::AliasChange => "004 §4.5: key purpose binding (an alias names what a key is for)",
            RuleId::KeyMaterialChange => "004 §4.2/§6: key material is generated in KMS and changed only with approval",
            RuleId::UnexpectedPrincipal => {
                "004 §8: Decrypt operations by unexpected IAM role; §4.5 KMS key policy roles"
            }
            RuleId::FailedCalls => "004 §8: failed KMS access attempts > 3 in 5 minutes",
            RuleId::OffHoursRestricted => "004 §8: off-hours access to restricted keys (every L4 key in the policy)",
            RuleId::SecretReadNewPrincipal => "004 §4.5: audit all access; least privilege",
            RuleId::SecretReadBulk => "004 §4.5: audit all access; least privilege",
            RuleId::UnexpectedRegion => {
                "004 §5: primary KMS in eu-north-1, backup KMS in eu-west-1 (each rule's regions)"
            }
        }
    }

    /// Rules that count events in a window (and so take a `threshold`).
    pub fn is_counting(self) -> bool {
        matches!(self, RuleId::FailedCalls | RuleId::SecretReadBulk)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The dedupe window of rules that do not count (`window` in the policy).
pub const DEFAULT_DEDUPE_SECS: i64 = 5 * 60;
/// The longest `window` the policy may set.
pub const MAX_WINDOW_SECS: i64 = 24 * 60 * 60;

/// One rule's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleConfig {
    /// `None`: the rule is off.
    pub severity: Option<Severity>,
    /// Counting rules fire at more than this many events in the window.
    pub threshold: u32,
    /// Counting rules: the window events are counted in. All rules: the dedupe window.
    pub window_secs: i64,
    /// Principals the rule ignores (same matching as `allowed_principals`).
    pub except: Vec<String>,
}

impl RuleConfig {
    fn new(severity: Severity, threshold: u32, window_secs: i64) -> Self {
        Self { severity: Some(severity), threshold, window_secs, except: Vec::new() }
    }

    /// The window, clamped to 0..=24 h.
    pub fn window(&self) -> Duration {
        Duration::seconds(self.window_secs.clamp(0, MAX_WINDOW_SECS))
    }

    pub fn enabled(&self) -> bool {
        self.severity.is_some()
    }
}

/// The `[detections]` section of the policy. `Default` is the seed policies' defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetectionConfig {
    pub schedule_key_deletion: RuleConfig,
    pub disable_key: RuleConfig,
    pub put_key_policy: RuleConfig,
    pub create_grant: RuleConfig,
    pub alias_change: RuleConfig,
    pub key_material_change: RuleConfig,
    pub unexpected_principal: RuleConfig,
    pub failed_calls: RuleConfig,
    pub off_hours_restricted: RuleConfig,
    pub secret_read_new_principal: RuleConfig,
    pub secret_read_bulk: RuleConfig,
    pub unexpected_region: RuleConfig,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        let d = DEFAULT_DEDUPE_SECS;
        Self {
            schedule_key_deletion: RuleConfig::new(Severity::Critical, 0, d),
            disable_key: RuleConfig::new(Severity::High, 0, d),
            put_key_policy: RuleConfig::new(Severity::High, 0, d),
            create_grant: RuleConfig::new(Severity::Medium, 0, d),
            alias_change: RuleConfig::new(Severity::Medium, 0, d),
            key_material_change: RuleConfig::new(Severity::High, 0, d),
            unexpected_principal: RuleConfig::new(Severity::High, 0, d),
            failed_calls: RuleConfig::new(Severity::High, 3, 5 * 60),
            off_hours_restricted: RuleConfig::new(Severity::Medium, 0, 60 * 60),
            secret_read_new_principal: RuleConfig::new(Severity::Medium, 0, d),
            secret_read_bulk: RuleConfig::new(Severity::High, 10, 10 * 60),
            unexpected_region: RuleConfig::new(Severity::Medium, 0, d),
        }
    }
}

impl DetectionConfig {
    pub fn rule(&self, id: RuleId) -> &RuleConfig {
        match id {
            RuleId::ScheduleKeyDeletion => &self.schedule_key_deletion,
            RuleId::DisableKey => &self.disable_key,
            RuleId::PutKeyPolicy => &self.put_key_policy,
            RuleId::CreateGrant => &self.create_grant,
            RuleId::AliasChange => &self.alias_change,
            RuleId::KeyMaterialChange => &self.key_material_change,
            RuleId::UnexpectedPrincipal => &self.unexpected_principal,
            RuleId::FailedCalls => &self.failed_calls,
            RuleId::OffHoursRestricted => &self.off_hours_restricted,
            RuleId::SecretReadNewPrincipal => &self.secret_read_new_principal,
            RuleId::SecretReadBulk => &self.secret_read_bulk,
            RuleId::UnexpectedRegion => &self.unexpected_region,
        }
    }

    pub fn rule_mut(&mut self, id: RuleId) -> &mut RuleConfig {
        match id {
            RuleId::ScheduleKeyDeletion => &mut self.schedule_key_deletion,
            RuleId::DisableKey => &mut self.disable_key,
            RuleId::PutKeyPolicy => &mut self.put_key_policy,
            RuleId::CreateGrant => &mut self.create_grant,
            RuleId::AliasChange => &mut self.alias_change,
            RuleId::KeyMaterialChange => &mut self.key_material_change,
            RuleId::UnexpectedPrincipal => &mut self.unexpected_principal,
            RuleId::FailedCalls => &mut self.failed_calls,
            RuleId::OffHoursRestricted => &mut self.off_hours_restricted,
            RuleId::SecretReadNewPrincipal => &mut self.secret_read_new_principal,
            RuleId::SecretReadBulk => &mut self.secret_read_bulk,
            RuleId::UnexpectedRegion => &mut self.unexpected_region,
        }
    }

    pub(crate) fn max_window_secs(&self) -> i64 {
        RuleId::ALL.into_iter().map(|r| self.rule(r).window_secs).max().unwrap_or(0).clamp(0, MAX_WINDOW_SECS)
    }
}
