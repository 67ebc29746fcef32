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
    /// The Region of `anchor_key` and `notify_topic` when they are not ARNs; default the
    /// first selected Region.
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
            let rotation = x.rotation.as_ref().map(|d| cx.days(d, "rotation")).transpose()?;
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
        let incident = IncidentSettings {
            anchor_key: inc.anchor_key.as_ref().map(|v| v.get_ref().clone()),
            notify_topic: inc.notify_topic.as_ref().map(|v| v.get_ref().clone()),
            region: inc.region.as_ref().map(|v| v.get_ref().clone()),
        };
        Ok(Self {
            incident,
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
        let selector = match (&r.name, &r.arn, &r.tag) {
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
            .unwrap_or(class_span.clone());
        if out.iter().any(|o| o.selector == selector) {
            return Err(cx.err(span, format!("duplicate [[{table}]] rule for {selector:?}")));
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
            rotation: r.rotation.as_ref().map(|d| cx.days(d, "rotation")).transpose()?,
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

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncø d", 6), (2, 3));
        assert_eq!(line_col("ab\ncø d", 7), (2, 4));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
