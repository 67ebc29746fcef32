//! The policy's detection rules over parsed CloudTrail events (issue 6; seed 004 §8:
//! "Decrypt operations by unexpected IAM role", "Failed KMS access attempts > 3 in 5
//! minutes", "Off-hours access to drop-national-id-key or drop-kyc-key", "Any
//! ScheduleKeyDeletion event (immediate alert)"; §4.5 roles, §6 approvals).
//!
//! Pure and synchronous: the caller feeds events (in any order, late ones too) and gets
//! alerts back. Time is the events' own `eventTime`, never the clock. Memory is bounded:
//! window state is pruned by event time and every map is capped.
//!
//! Decisions, in one place:
//! * **Failed attempts alert too.** A change rule (ScheduleKeyDeletion, DisableKey,
//!   PutKeyPolicy, CreateGrant, alias and key-material changes) fires on success and on
//!   a denied attempt ("attempt (denied)" in the title, same severity). A
//!   ScheduleKeyDeletion that failed for another reason (NotFound, invalid state) still
//!   fires ("attempt (failed: CODE)"): 004 §8 wants every ScheduleKeyDeletion event.
//! * **Which keys.** ScheduleKeyDeletion fires for any key, known or not. The other
//!   change rules fire for managed keys and for key references keydeck cannot resolve
//!   (a key created since the last inventory); keys known to be outside the policy (AWS
//!   managed, unmanaged) are silent.
//! * **Unexpected principal** covers Decrypt, Encrypt, GenerateDataKey*, ReEncrypt*,
//!   Sign, GenerateMac and DeriveSharedSecret, on keys whose rule has a non-empty
//!   `allowed_principals`, by anyone but AWS itself (`TrailEvent::by_aws`: service
//!   events, service principals, "AWS Internal"); denied attempts fire as attempts. See
//!   `Principal::matches` for how names match.
//! * **Failed calls** counts KMS calls that failed with an access error
//!   (`TrailEvent::is_access_failure`) per principal, and fires when more than
//!   `threshold` of them fall in one `window` (inclusive) around the event.
//! * **Off hours** covers every KMS call but Describe*/List*/Get* metadata reads on an L4
//!   key, outside `[policy.business_hours]` (in its time zone); without business hours
//!   it is off. AWS's own calls (automatic RotateKey, DeleteKey at the end of the
//!   waiting period, ...) never count, nor do they count as failed calls.
//! * **New secret reader.** A principal is known for a secret when the policy's
//!   `allowed_principals` for that secret names it, or after a successful read was seen
//!   (by `observe` or `learn`). A non-empty `allowed_principals` is a rule, not a
//!   baseline: a principal it excludes is never learned, and alerts again in every
//!   window. Warm-up: learn from a period before the one judged (`judge_window` for
//!   `keydeck alerts --since`, `observe_backfill` for the console's first poll), so the
//!   judged events never vouch for themselves; without it every first reader alerts once.
//! * **Bulk secret reads** counts distinct secrets read (attempts included) by one
//!   principal in one window: an application that re-reads its one secret never trips it.
//! * **Unexpected region.** Metadata reads (Describe*, List*, Get* but GetSecretValue)
//!   never count: consoles, auditors and keydeck's own inventory read every selected
//!   region. Any other KMS/Secrets Manager call on a managed key or secret whose rule
//!   lists regions fires when its region is not among them; a call on anything else
//!   fires when its region is in no rule's `regions` at all (a key created in a region
//!   the policy never mentions, a secret read there). AWS's own calls never count.
//! * **Dedupe.** Within a rule's `window` (event time, either side) one alert per rule,
//!   principal, subject (key, secret or region) and outcome (done / denied / failed);
//!   the counting rules, one per principal: a burst of denied calls raises one
//!   FailedCalls alert, a night of app traffic one off-hours alert per key an hour.
//! * **Alert ids** are `rule:event-id` of the alert's first event (for the counting
//!   rules, the earliest event in the window), so re-reading the same trail in the same
//!   order gives the same ids; when one event raises a rule twice (two keys), the second
//!   id gets `#1`.
//! * **Late events.** Window state is kept for the longest window plus
//!   `LATE_GRACE_SECS` (1 h) behind the newest event seen; an event later than that is
//!   still evaluated, against what is left. The clock is the caller's: an event dated in
//!   the future moves the detector's notion of "newest" (drop or flag such records
//!   before observing them if the machine's clock says they cannot be real).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::inventory::{Inventory, KeyManager};
use super::policy::{BusinessHours, Classification, Policy, Selector};
use super::reference::{key_forms, secret_forms, secret_name};
use super::rules::{DetectionConfig, RuleId, Severity};
use super::trail::{Principal, TrailEvent};

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable: `rule:first-event-id` (see the module docs).
    pub id: String,
    pub rule: RuleId,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    /// The events behind the alert, oldest first.
    pub event_ids: Vec<String>,
    /// The time of the triggering event.
    pub at: DateTime<Utc>,
    /// The key by alias (resolved through the `KeyIndex`), else the raw reference.
    pub key: Option<String>,
    pub secret: Option<String>,
    /// The principal's ARN, else its name.
    pub principal: String,
    pub region: String,
}

// ---- what the detector knows about keys and secrets ---------------------------------

/// A key as the detector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The display name: the first alias without `alias/`, else the key id.
    pub alias: String,
    pub region: String,
    pub classification: Option<Classification>,
    pub allowed_principals: Vec<String>,
    /// Regions the policy rule expects; empty: anywhere.
    pub expected_regions: Vec<String>,
    /// Covered by a policy rule.
    pub managed: bool,
    /// The key ARN when known (`""` for a policy rule with no key found yet).
    pub arn: String,
}

/// A secret as the detector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub region: String,
    pub classification: Option<Classification>,
    pub allowed_principals: Vec<String>,
    pub expected_regions: Vec<String>,
    pub managed: bool,
    pub arn: String,
}

/// What the detector knows about keys and secrets, built by the caller from the
/// inventory and the policy (`from_inventory`) or key by key (`insert_key`).
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    keys: Vec<KeyInfo>,
    key_refs: HashMap<String, Vec<usize>>,
    secrets: Vec<SecretInfo>,
    secret_refs: HashMap<String, Vec<usize>>,
    expected_regions: BTreeSet<String>,
}

fn pick<'a, T>(
    refs: &HashMap<String, Vec<usize>>,
    items: &'a [T],
    forms: &[Option<&str>],
    region: &str,
    region_of: impl Fn(&T) -> &str,
) -> Option<(usize, &'a T)> {
    for form in forms.iter().flatten() {
        if let Some(candidates) = refs.get(*form) {
            let best = candidates
                .iter()
                .find(|&&i| items.get(i).is_some_and(|t| region_of(t) == region))
                .or(candidates.first())
                .copied();
            if let Some(i) = best {
                return items.get(i).map(|t| (i, t));
            }
        }
    }
    None
}

impl KeyIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a key under all its references: key id, key ARN, `alias/<name>`, alias
    /// ARNs (bare alias names are derived). A managed key's expected regions join the set
    /// of regions the policy expects.
    pub fn insert_key(&mut self, refs: &[String], info: KeyInfo) {
        let idx = self.keys.len();
        if info.managed {
            self.expected_regions.extend(info.expected_regions.iter().cloned());
        }
        let arn = (!info.arn.is_empty()).then(|| info.arn.clone());
        self.keys.push(info);
        for r in refs.iter().chain(arn.as_ref()) {
            for form in key_forms(r).into_iter().flatten() {
                let list = self.key_refs.entry(form.to_owned()).or_default();
                if !list.contains(&idx) {
                    list.push(idx);
                }
            }
        }
    }

    /// Register a secret under its name and ARN.
    pub fn insert_secret(&mut self, refs: &[String], info: SecretInfo) {
        let idx = self.secrets.len();
        if info.managed {
            self.expected_regions.extend(info.expected_regions.iter().cloned());
        }
        let own = [info.name.clone(), info.arn.clone()];
        self.secrets.push(info);
        for r in refs.iter().chain(own.iter()).filter(|r| !r.is_empty()) {
            for form in secret_forms(r).into_iter().flatten() {
                let list = self.secret_refs.entry(form.to_owned()).or_default();
                if !list.contains(&idx) {
                    list.push(idx);
                }
            }
        }
    }

    /// Add regions the policy expects (rules whose items are not in the index).
    pub fn expect_regions<I: IntoIterator<Item = String>>(&mut self, regions: I) {
        self.expected_regions.extend(regions);
    }

    /// The regions any policy rule expects.
    pub fn expected_regions(&self) -> &BTreeSet<String> {
        &self.expected_regions
    }

    /// A key by key id, key ARN, alias name with or without `alias/`, or alias ARN.
    pub fn resolve(&self, key_ref: &str) -> Option<&KeyInfo> {
        self.resolve_in(key_ref, "")
    }

    /// Name keys by their aliases alone, without per-key reads (`keydeck feed`):
    /// `aliases` is one region's ListAliases as (key id, alias names without `alias/`).
    pub fn insert_aliases(&mut self, region: &str, account: &str, aliases: Vec<(String, Vec<String>)>) {
        for (id, names) in aliases {
            let arn = format!("arn:aws:kms:{region}:{account}:key/{id}");
            let mut refs = vec![id.clone(), arn.clone()];
            refs.extend(names.iter().map(|n| format!("alias/{n}")));
            let info = KeyInfo {
                alias: names.first().cloned().unwrap_or(id),
                region: region.to_owned(),
                classification: None,
                allowed_principals: vec![],
                expected_regions: vec![],
                managed: false,
                arn,
            };
            self.insert_key(&refs, info);
        }
    }

    /// What an event is about, for display and filtering: the key by alias (through the
    /// index), else the secret's name, else the IAM principal it changes (`iam:NAME`),
    /// else the raw key reference; `""` when it names none.
    pub fn subject(&self, ev: &TrailEvent) -> String {
        ev.key_refs
            .iter()
            .find_map(|r| self.resolve(r).map(|k| k.alias.clone()))
            .or_else(|| {
                ev.secret_ref.as_deref().map(|s| {
                    let name = secret_name(s);
                    match name.strip_prefix(crate::domain::inventory::APPROVALS_PREFIX) {
                        Some(id) if !id.is_empty() => format!("approval:{id}"),
                        _ => name.to_owned(),
                    }
                })
            })
            .or_else(|| ev.iam_subject().map(|who| format!("iam:{who}")))
            .or_else(|| ev.key_refs.first().cloned())
            .unwrap_or_default()
    }

    /// As `resolve`, preferring a key in `region` when an alias name is ambiguous.
    pub fn resolve_in(&self, key_ref: &str, region: &str) -> Option<&KeyInfo> {
        self.resolve_idx(key_ref, region).map(|(_, k)| k)
    }

    fn resolve_idx(&self, key_ref: &str, region: &str) -> Option<(usize, &KeyInfo)> {
        pick(&self.key_refs, &self.keys, &key_forms(key_ref), region, |k: &KeyInfo| &k.region)
    }

    /// A secret by name or ARN (full, or partial without the random suffix).
    pub fn resolve_secret(&self, secret_ref: &str) -> Option<&SecretInfo> {
        self.resolve_secret_in(secret_ref, "")
    }

    pub fn resolve_secret_in(&self, secret_ref: &str, region: &str) -> Option<&SecretInfo> {
        pick(&self.secret_refs, &self.secrets, &secret_forms(secret_ref), region, |s: &SecretInfo| &s.region)
            .map(|(_, s)| s)
    }

    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    pub fn secrets(&self) -> &[SecretInfo] {
        &self.secrets
    }

    /// Every key and secret of the inventory with its policy rule, plus the policy's
    /// named items not found (yet), so events that name them by alias still resolve.
    pub fn from_inventory(inv: &Inventory, policy: &Policy) -> Self {
        let mut ix = Self::new();
        for k in inv.keys() {
            let rule = if k.manager == KeyManager::Aws { None } else { policy.rule_for_key(k) };
            let mut parts = k.arn.split(':');
            let partition = parts.nth(1).filter(|p| !p.is_empty()).unwrap_or("aws");
            let account = parts.nth(2).unwrap_or("");
            let mut refs = vec![k.key_id.clone(), k.arn.clone()];
            for a in &k.aliases {
                refs.push(format!("alias/{a}"));
                refs.push(format!("arn:{partition}:kms:{}:{account}:alias/{a}", k.region));
            }
            ix.insert_key(
                &refs,
                KeyInfo {
                    alias: k.display_name().to_owned(),
                    region: k.region.clone(),
                    classification: rule.map(|r| r.classification),
                    allowed_principals: rule.map(|r| r.allowed_principals.clone()).unwrap_or_default(),
                    expected_regions: rule.map(|r| r.regions.clone()).unwrap_or_default(),
                    managed: rule.is_some(),
                    arn: k.arn.clone(),
                },
            );
        }
        for s in inv.secrets() {
            let rule = policy.rule_for_secret(s);
            ix.insert_secret(
                &[],
                SecretInfo {
                    name: s.name.clone(),
                    region: s.region.clone(),
                    classification: rule.map(|r| r.classification),
                    allowed_principals: rule.map(|r| r.allowed_principals.clone()).unwrap_or_default(),
                    expected_regions: rule.map(|r| r.regions.clone()).unwrap_or_default(),
                    managed: rule.is_some(),
                    arn: s.arn.clone(),
                },
            );
        }
        for r in &policy.keys {
            let (refs, alias) = match &r.selector {
                Selector::Name(n) if !inv.keys().any(|k| k.aliases.iter().any(|a| a == n)) => {
                    (vec![format!("alias/{n}")], n.clone())
                }
                Selector::Arn(a) if !inv.keys().any(|k| &k.arn == a) => (vec![a.clone()], a.clone()),
                _ => continue,
            };
            ix.insert_key(
                &refs,
                KeyInfo {
                    alias,
                    region: r.regions.first().cloned().unwrap_or_default(),
                    classification: Some(r.classification),
                    allowed_principals: r.allowed_principals.clone(),
                    expected_regions: r.regions.clone(),
                    managed: true,
                    arn: String::new(),
                },
            );
        }
        for r in &policy.secrets {
            let name = match &r.selector {
                Selector::Name(n) if !inv.secrets().any(|s| &s.name == n) => n.clone(),
                Selector::Arn(a) if !inv.secrets().any(|s| &s.arn == a) => a.clone(),
                _ => continue,
            };
            ix.insert_secret(
                &[],
                SecretInfo {
                    name,
                    region: r.regions.first().cloned().unwrap_or_default(),
                    classification: Some(r.classification),
                    allowed_principals: r.allowed_principals.clone(),
                    expected_regions: r.regions.clone(),
                    managed: true,
                    arn: String::new(),
                },
            );
        }
        ix.expect_regions(policy.keys.iter().chain(&policy.secrets).flat_map(|r| r.regions.iter().cloned()));
        ix
    }
}

// ---- the detector -------------------------------------------------------------------

/// How late an event may arrive (after newer ones) and still meet its neighbours in the
/// windows: state is kept for the longest window plus this. CloudTrail delivers within
/// about 5 minutes on average.
pub const LATE_GRACE_SECS: i64 = 60 * 60;
/// Failed calls remembered per principal (the oldest go first).
pub const MAX_MARKS_PER_PRINCIPAL: usize = 256;
/// Read times remembered per principal and secret.
pub const MAX_READS_PER_SECRET: usize = 16;
/// Secrets remembered per principal for the bulk rule.
pub const MAX_SECRETS_PER_PRINCIPAL: usize = 1024;
/// Principals tracked per counting rule (those quiet longest go first).
pub const MAX_PRINCIPALS: usize = 10_000;
/// (secret, principal) pairs in the learned baseline.
pub const MAX_READERS: usize = 100_000;
/// Dedupe keys remembered.
pub const MAX_DEDUPE_KEYS: usize = 100_000;
const PRUNE_EVERY: u64 = 4096;

/// The detector's memory, for tests and the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DetectorStats {
    pub failed_principals: usize,
    pub failed_marks: usize,
    pub reading_principals: usize,
    pub read_marks: usize,
    pub known_readers: usize,
    pub dedupe_keys: usize,
}

#[derive(Debug, Clone)]
struct Mark {
    at: DateTime<Utc>,
    event_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Denied,
    Failed,
}

impl Outcome {
    fn of(ev: &TrailEvent) -> Self {
        if ev.succeeded() {
            Outcome::Done
        } else if ev.is_denied() {
            Outcome::Denied
        } else {
            Outcome::Failed
        }
    }

    fn suffix(self, ev: &TrailEvent) -> String {
        match self {
            Outcome::Done => String::new(),
            Outcome::Denied => " — attempt (denied)".to_owned(),
            Outcome::Failed => format!(" — attempt (failed: {})", ev.error_code.as_deref().unwrap_or("error")),
        }
    }

    fn code(self) -> char {
        match self {
            Outcome::Done => 'd',
            Outcome::Denied => 'x',
            Outcome::Failed => 'f',
        }
    }
}

/// The keys an event touches.
struct Touched<'k, 'e> {
    resolved: Vec<&'k KeyInfo>,
    unknown: Vec<&'e str>,
}

impl<'k, 'e> Touched<'k, 'e> {
    fn of(ev: &'e TrailEvent, keys: &'k KeyIndex) -> Self {
        let mut resolved: Vec<&'k KeyInfo> = Vec::new();
        let mut unknown = Vec::new();
        for r in &ev.key_refs {
            match keys.resolve_in(r, &ev.region) {
                Some(k) => {
                    if !resolved.iter().any(|x| std::ptr::eq(*x, k)) {
                        resolved.push(k);
                    }
                }
                None => unknown.push(r.as_str()),
            }
        }
        Self { resolved, unknown }
    }

    fn managed(&self) -> impl Iterator<Item = &'k KeyInfo> + '_ {
        self.resolved.iter().copied().filter(|k| k.managed)
    }

    /// The key to name: a managed key, else any resolved key, else the first raw ref.
    fn label(&self) -> Option<String> {
        self.managed()
            .next()
            .or(self.resolved.first().copied())
            .map(key_label)
            .or_else(|| self.unknown.first().map(|s| (*s).to_owned()))
    }
}

fn key_label(k: &KeyInfo) -> String {
    if !k.alias.is_empty() {
        k.alias.clone()
    } else {
        k.arn.clone()
    }
}

fn change_rule(event_name: &str) -> Option<RuleId> {
    Some(match event_name {
        "ScheduleKeyDeletion" => RuleId::ScheduleKeyDeletion,
        "DisableKey" => RuleId::DisableKey,
        "PutKeyPolicy" => RuleId::PutKeyPolicy,
        "CreateGrant" => RuleId::CreateGrant,
        "CreateAlias" | "UpdateAlias" | "DeleteAlias" => RuleId::AliasChange,
        "ImportKeyMaterial" | "DeleteImportedKeyMaterial" => RuleId::KeyMaterialChange,
        _ => return None,
    })
}

/// Cryptographic use of a key (the unexpected-principal rule).
pub fn is_crypto_use(event_name: &str) -> bool {
    event_name.starts_with("GenerateDataKey")
        || event_name.starts_with("ReEncrypt")
        || matches!(event_name, "Decrypt" | "Encrypt" | "Sign" | "GenerateMac" | "DeriveSharedSecret")
}

/// A metadata read that does not count as access for the off-hours rule.
fn is_metadata_read(event_name: &str) -> bool {
    event_name.starts_with("Describe") || event_name.starts_with("List") || event_name.starts_with("Get")
}

/// Whether `t` falls within business hours, in the policy's time zone (daylight saving
/// time included) or at its fixed offset.
pub fn within_business_hours(hours: &BusinessHours, t: DateTime<Utc>) -> bool {
    let Some((weekday, minute)) = hours.zone.local_weekday_minute(t) else {
        return true;
    };
    hours.weekdays.contains(&weekday) && minute >= hours.start_minute && minute < hours.end_minute
}

/// Evaluates the rules over a stream of events.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectionConfig,
    hours: Option<BusinessHours>,
    /// Principal → its failed KMS calls, oldest first.
    failed: HashMap<String, Vec<Mark>>,
    /// Principal → secret → read times (oldest first).
    reads: HashMap<String, HashMap<String, Vec<Mark>>>,
    /// Secret → principal → last successful read: the learned baseline.
    readers: HashMap<String, HashMap<String, DateTime<Utc>>>,
    reader_count: usize,
    /// Dedupe key → times alerts were raised.
    raised: HashMap<(RuleId, String), Vec<DateTime<Utc>>>,
    newest: Option<DateTime<Utc>>,
    observed: u64,
}

impl Detector {
    pub fn new(config: DetectionConfig, business_hours: Option<BusinessHours>) -> Self {
        Self {
            config,
            hours: business_hours,
            failed: HashMap::new(),
            reads: HashMap::new(),
            readers: HashMap::new(),
            reader_count: 0,
            raised: HashMap::new(),
            newest: None,
            observed: 0,
        }
    }

    /// The detector for a policy: its `[detections]` and business hours.
    pub fn for_policy(policy: &Policy) -> Self {
        Self::new(policy.detections.clone(), policy.business_hours.clone())
    }

    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    /// Learn the baseline from an event without alerting: a successful secret read makes
    /// its principal a known reader of that secret, unless the secret's non-empty
    /// `allowed_principals` excludes it (the policy's readers are a rule, not a baseline:
    /// an excluded reader is never learned) or it is AWS's own.
    pub fn learn(&mut self, ev: &TrailEvent, keys: &KeyIndex) {
        if is_secret_read(ev) && ev.succeeded() && !ev.by_aws() {
            let info = ev.secret_ref.as_deref().and_then(|s| keys.resolve_secret_in(s, &ev.region));
            if excluded_reader(info, &ev.principal) {
                return;
            }
            if let Some(secret) = canonical_secret(ev, keys) {
                self.remember_reader(&secret, ev.principal.label(), ev.event_time);
            }
        }
    }

    /// The console's first backfill: the events before `judge_from` are the baseline the
    /// new-reader rule learns from (and are judged by every other rule); the events from
    /// `judge_from` on are judged by every rule, a reader first seen there included.
    /// Events should be in event-time order.
    pub fn observe_backfill(
        &mut self,
        events: &[TrailEvent],
        judge_from: DateTime<Utc>,
        keys: &KeyIndex,
    ) -> Vec<Alert> {
        for ev in events.iter().filter(|e| e.event_time < judge_from) {
            self.learn(ev, keys);
        }
        events.iter().flat_map(|ev| self.observe(ev, keys)).collect()
    }

    /// A window judged after a baseline (`keydeck alerts --since`): learn from the events
    /// before `judge_from`, then observe only the events from `judge_from` on. Events
    /// should be in event-time order.
    pub fn judge_window(&mut self, events: &[TrailEvent], judge_from: DateTime<Utc>, keys: &KeyIndex) -> Vec<Alert> {
        let (baseline, judged): (Vec<&TrailEvent>, Vec<&TrailEvent>) =
            events.iter().partition(|e| e.event_time < judge_from);
        for ev in baseline {
            self.learn(ev, keys);
        }
        judged.into_iter().flat_map(|ev| self.observe(ev, keys)).collect()
    }

    /// Evaluate one event (events may arrive out of order and late; windows use event
    /// time, not arrival). Returns the alerts this event raises (possibly several).
    pub fn observe(&mut self, ev: &TrailEvent, keys: &KeyIndex) -> Vec<Alert> {
        self.advance(ev.event_time);
        let mut out = Vec::new();
        if ev.is_kms() {
            self.kms_rules(ev, keys, &mut out);
        } else if ev.is_secrets_manager() {
            self.secret_rules(ev, keys, &mut out);
        }
        // Distinct ids when one event raises the same rule twice (two keys).
        for i in 1..out.len() {
            if out[..i].iter().any(|a| a.id == out[i].id) {
                out[i].id = format!("{}#{i}", out[i].id);
            }
        }
        out
    }

    /// How much the detector holds.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            failed_principals: self.failed.len(),
            failed_marks: self.failed.values().map(Vec::len).sum(),
            reading_principals: self.reads.len(),
            read_marks: self.reads.values().flat_map(HashMap::values).map(Vec::len).sum(),
            known_readers: self.reader_count,
            dedupe_keys: self.raised.len(),
        }
    }

    fn kms_rules(&mut self, ev: &TrailEvent, keys: &KeyIndex, out: &mut Vec<Alert>) {
        let name = ev.event_name.as_str();
        let touched = Touched::of(ev, keys);
        let outcome = Outcome::of(ev);
        let who = ev.principal.label();

        if let Some(rule) = change_rule(name) {
            let in_scope = rule == RuleId::ScheduleKeyDeletion
                || touched.managed().next().is_some()
                || (touched.resolved.is_empty() && !touched.unknown.is_empty());
            let counts = outcome != Outcome::Failed || rule == RuleId::ScheduleKeyDeletion;
            if in_scope && counts {
                let key = touched.label();
                let subject = key.clone().unwrap_or_default();
                let detail = format!(
                    "{who} {name} on {} in {} ({}). {}.",
                    key.as_deref().unwrap_or("an unnamed key"),
                    ev.region,
                    outcome_text(ev),
                    rule.policy_ref()
                );
                self.emit(out, rule, ev, key, None, &subject, outcome, move || detail);
            }
        }

        // AWS's own calls (automatic rotation, the deletion at the end of the waiting
        // period, service principals) are no operator's use: not an unexpected
        // principal, not off hours, not a failed attempt.
        let operator = !ev.by_aws();
        if operator && is_crypto_use(name) {
            for k in touched.managed() {
                if k.allowed_principals.is_empty() || k.allowed_principals.iter().any(|a| ev.principal.matches(a)) {
                    continue;
                }
                let label = key_label(k);
                let detail = || {
                    format!(
                        "{who} called {name} on {label} ({}); the policy allows only {}. {}.",
                        outcome_text(ev),
                        k.allowed_principals.join(", "),
                        RuleId::UnexpectedPrincipal.policy_ref()
                    )
                };
                self.emit(out, RuleId::UnexpectedPrincipal, ev, Some(label.clone()), None, &label, outcome, detail);
            }
        }

        let restricted = |k: &KeyInfo| k.classification == Some(Classification::L4);
        if let Some(hours) = self.hours.as_ref().filter(|_| operator) {
            if touched.resolved.iter().any(|k| restricted(k))
                && !is_metadata_read(name)
                && !within_business_hours(hours, ev.event_time)
            {
                let when = describe_hours(hours);
                for k in touched.resolved.iter().copied().filter(|k| restricted(k)) {
                    let label = key_label(k);
                    let detail = || {
                        format!(
                            "{who} called {name} on the L4 key {label} at {} UTC ({}), outside business hours ({when}). {}.",
                            ev.event_time.format("%a %Y-%m-%d %H:%M"),
                            outcome_text(ev),
                            RuleId::OffHoursRestricted.policy_ref()
                        )
                    };
                    let key = Some(label.clone());
                    self.emit(out, RuleId::OffHoursRestricted, ev, key, None, &label, outcome, detail);
                }
            }
        }

        if operator && ev.is_access_failure() {
            self.failed_calls(ev, touched.label(), out);
        }

        if is_metadata_read(name) || !operator {
            return;
        }
        if touched.managed().next().is_some() {
            for k in touched.managed() {
                if k.expected_regions.is_empty() || k.expected_regions.contains(&ev.region) {
                    continue;
                }
                let label = key_label(k);
                let detail = || {
                    format!(
                        "{who} called {name} on {label} in {}; the policy expects it in {}. {}.",
                        ev.region,
                        k.expected_regions.join(", "),
                        RuleId::UnexpectedRegion.policy_ref()
                    )
                };
                let subject = format!("{label}@{}", ev.region);
                let key = Some(label.clone());
                self.emit(out, RuleId::UnexpectedRegion, ev, key, None, &subject, Outcome::Done, detail);
            }
        } else {
            self.region_wide(ev, keys, || touched.label(), None, out);
        }
    }

    fn secret_rules(&mut self, ev: &TrailEvent, keys: &KeyIndex, out: &mut Vec<Alert>) {
        if ev.by_aws() {
            return; // Secrets Manager's own rotation and deletion events are no one's reads.
        }
        let info = ev.secret_ref.as_deref().and_then(|s| keys.resolve_secret_in(s, &ev.region));
        let secret = canonical_secret(ev, keys);
        if is_secret_read(ev) {
            if let Some(secret) = &secret {
                self.new_reader(ev, secret, info, out);
                self.bulk_reads(ev, secret, out);
            }
        }
        if is_metadata_read(&ev.event_name) && !is_secret_read(ev) {
            return;
        }
        match info {
            Some(s) if s.managed => {
                if !s.expected_regions.is_empty() && !s.expected_regions.contains(&ev.region) {
                    let detail = || {
                        format!(
                            "{} called {} on the secret {} in {}; the policy expects it in {}. {}.",
                            ev.principal.label(),
                            ev.event_name,
                            s.name,
                            ev.region,
                            s.expected_regions.join(", "),
                            RuleId::UnexpectedRegion.policy_ref()
                        )
                    };
                    let subject = format!("{}@{}", s.name, ev.region);
                    let secret = Some(s.name.clone());
                    self.emit(out, RuleId::UnexpectedRegion, ev, None, secret, &subject, Outcome::Done, detail);
                }
            }
            _ => self.region_wide(ev, keys, || None, secret, out),
        }
    }

    /// A call in a region no policy rule expects.
    fn region_wide(
        &mut self,
        ev: &TrailEvent,
        keys: &KeyIndex,
        key: impl FnOnce() -> Option<String>,
        secret: Option<String>,
        out: &mut Vec<Alert>,
    ) {
        let expected = keys.expected_regions();
        if ev.region.is_empty() || expected.is_empty() || expected.contains(ev.region.as_str()) {
            return;
        }
        let detail = || {
            format!(
                "{} called {} in {}; no policy rule expects that region (policy regions: {}). {}.",
                ev.principal.label(),
                ev.event_name,
                ev.region,
                expected.iter().cloned().collect::<Vec<_>>().join(", "),
                RuleId::UnexpectedRegion.policy_ref()
            )
        };
        let subject = ev.region.clone();
        self.emit(out, RuleId::UnexpectedRegion, ev, key(), secret, &subject, Outcome::Done, detail);
    }

    fn new_reader(&mut self, ev: &TrailEvent, secret: &str, info: Option<&SecretInfo>, out: &mut Vec<Alert>) {
        let rule = RuleId::SecretReadNewPrincipal;
        if !self.active(rule, &ev.principal) {
            return;
        }
        if info.is_some_and(|s| s.allowed_principals.iter().any(|a| ev.principal.matches(a))) {
            return;
        }
        let who = ev.principal.label();
        let excluded = excluded_reader(info, &ev.principal);
        if !excluded {
            if let Some(last) = self.readers.get_mut(secret).and_then(|m| m.get_mut(who)) {
                *last = (*last).max(ev.event_time);
                return;
            }
            if ev.succeeded() {
                self.remember_reader(secret, who, ev.event_time);
            }
        }
        let detail = || {
            format!(
                "{who} read the secret {secret} in {} ({}){}{}. {}.",
                ev.region,
                outcome_text(ev),
                if excluded { "" } else { ", and was never seen reading it before" },
                match info {
                    Some(s) if !s.allowed_principals.is_empty() =>
                        format!("; the policy allows {}", s.allowed_principals.join(", ")),
                    _ => String::new(),
                },
                rule.policy_ref()
            )
        };
        self.emit(out, rule, ev, None, Some(secret.to_owned()), secret, Outcome::of(ev), detail);
    }

    fn remember_reader(&mut self, secret: &str, who: &str, at: DateTime<Utc>) {
        if self.reader_count >= MAX_READERS {
            self.evict_readers();
        }
        let m = self.readers.entry(secret.to_owned()).or_default();
        match m.get_mut(who) {
            Some(last) => *last = (*last).max(at),
            None => {
                m.insert(who.to_owned(), at);
                self.reader_count += 1;
            }
        }
    }

    /// Forget the tenth of the baseline seen longest ago.
    fn evict_readers(&mut self) {
        let mut all: Vec<DateTime<Utc>> = self.readers.values().flat_map(|m| m.values().copied()).collect();
        if all.is_empty() {
            return;
        }
        let k = (all.len() / 10).max(1).min(all.len() - 1);
        all.select_nth_unstable(k);
        let cut = all[k];
        for m in self.readers.values_mut() {
            m.retain(|_, t| *t > cut);
        }
        self.readers.retain(|_, m| !m.is_empty());
        self.reader_count = self.readers.values().map(HashMap::len).sum();
    }

    fn failed_calls(&mut self, ev: &TrailEvent, key: Option<String>, out: &mut Vec<Alert>) {
        let rule = RuleId::FailedCalls;
        if !self.active(rule, &ev.principal) {
            return;
        }
        let (threshold, window) = {
            let c = self.config.rule(rule);
            (c.threshold as usize, c.window())
        };
        let who = ev.principal.label();
        if !self.failed.contains_key(who) {
            if self.failed.len() >= MAX_PRINCIPALS {
                self.prune();
                evict_quietest(&mut self.failed, |v| v.last().map(|m| m.at));
            }
            self.failed.insert(who.to_owned(), Vec::new());
        }
        let Some(marks) = self.failed.get_mut(who) else {
            return;
        };
        let t = ev.event_time;
        if !insert_mark(marks, t, &ev.event_id) {
            return; // seen this event already
        }
        if marks.len() > MAX_MARKS_PER_PRINCIPAL {
            marks.remove(0);
        }
        let Some((start, end)) = find_cluster(marks, t, window, threshold) else {
            return;
        };
        let ids: Vec<String> = marks[start..end].iter().map(|m| m.event_id.clone()).collect();
        let (first, last) = (marks[start].at, marks[end - 1].at);
        if !self.first_in_window((rule, format!("{who}\u{1f}")), t, window) {
            return;
        }
        let detail = format!(
            "{} failed KMS calls by {who} between {} and {} UTC (more than {threshold} in {}); the latest: {} {} on {}. {}.",
            ids.len(),
            first.format("%H:%M:%S"),
            last.format("%H:%M:%S"),
            human_window(window),
            ev.event_name,
            ev.error_code.as_deref().unwrap_or("error"),
            key.as_deref().unwrap_or("no named key"),
            rule.policy_ref()
        );
        let title = format!("{}: {}", rule.title(), ev.principal.short_name());
        out.push(self.alert(rule, ev, ids, key, None, title, detail));
    }

    fn bulk_reads(&mut self, ev: &TrailEvent, secret: &str, out: &mut Vec<Alert>) {
        let rule = RuleId::SecretReadBulk;
        if !self.active(rule, &ev.principal) {
            return;
        }
        let (threshold, window) = {
            let c = self.config.rule(rule);
            (c.threshold as usize, c.window())
        };
        let who = ev.principal.label();
        if !self.reads.contains_key(who) {
            if self.reads.len() >= MAX_PRINCIPALS {
                self.prune();
                evict_quietest(&mut self.reads, |m| m.values().filter_map(|v| v.last().map(|x| x.at)).max());
            }
            self.reads.insert(who.to_owned(), HashMap::new());
        }
        let Some(by_secret) = self.reads.get_mut(who) else {
            return;
        };
        if !by_secret.contains_key(secret) {
            if by_secret.len() >= MAX_SECRETS_PER_PRINCIPAL {
                evict_quietest(by_secret, |v| v.last().map(|m| m.at));
            }
            by_secret.insert(secret.to_owned(), Vec::new());
        }
        let Some(marks) = by_secret.get_mut(secret) else {
            return;
        };
        let t = ev.event_time;
        if !insert_mark(marks, t, &ev.event_id) {
            return;
        }
        if marks.len() > MAX_READS_PER_SECRET {
            marks.remove(0);
        }
        // Only when more than `threshold` secrets were read near t can a window hold more.
        let (lo, hi) = (t - window, t + window);
        let near = |m: &Mark| m.at >= lo && m.at <= hi;
        if by_secret.values().filter(|marks| marks.iter().any(near)).count() <= threshold {
            return;
        }
        // Reads near t: (time, secret index, event id).
        let mut points: Vec<(DateTime<Utc>, usize, &str)> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (name, marks) in by_secret.iter() {
            let before = points.len();
            points.extend(marks.iter().filter(|m| near(m)).map(|m| (m.at, names.len(), m.event_id.as_str())));
            if points.len() > before {
                names.push(name);
            }
        }
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(b.2)));
        let mut counts = vec![0usize; names.len()];
        let (mut distinct, mut end) = (0usize, 0usize);
        let mut cluster = None;
        for start in 0..points.len() {
            if points[start].0 > t {
                break;
            }
            while end < points.len() && points[end].0 <= points[start].0 + window {
                if counts[points[end].1] == 0 {
                    distinct += 1;
                }
                counts[points[end].1] += 1;
                end += 1;
            }
            if distinct > threshold {
                cluster = Some((start, end));
                break;
            }
            counts[points[start].1] -= 1;
            if counts[points[start].1] == 0 {
                distinct -= 1;
            }
        }
        let Some((start, end)) = cluster else {
            return;
        };
        // One event per secret: its first read in the window.
        let mut seen = vec![false; names.len()];
        let mut ids = Vec::new();
        let mut read = Vec::new();
        for p in &points[start..end] {
            if !seen[p.1] {
                seen[p.1] = true;
                ids.push(p.2.to_owned());
                read.push(names[p.1]);
            }
        }
        read.sort_unstable();
        let detail = format!(
            "{who} read {} distinct secrets within {} (more than {threshold}): {}. {}.",
            ids.len(),
            human_window(window),
            read.join(", "),
            rule.policy_ref()
        );
        if !self.first_in_window((rule, format!("{who}\u{1f}")), t, window) {
            return;
        }
        let title = format!("{}: {} read {} secrets", rule.title(), ev.principal.short_name(), ids.len());
        out.push(self.alert(rule, ev, ids, None, Some(secret.to_owned()), title, detail));
    }

    /// A rule is on and does not except this principal.
    fn active(&self, rule: RuleId, p: &Principal) -> bool {
        let c = self.config.rule(rule);
        c.enabled() && !c.except.iter().any(|e| p.matches(e))
    }

    /// Raise a per-event alert unless deduplicated.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        out: &mut Vec<Alert>,
        rule: RuleId,
        ev: &TrailEvent,
        key: Option<String>,
        secret: Option<String>,
        subject: &str,
        outcome: Outcome,
        detail: impl FnOnce() -> String,
    ) {
        if !self.active(rule, &ev.principal) {
            return;
        }
        let dedupe = (rule, format!("{}\u{1f}{subject}\u{1f}{}", ev.principal.label(), outcome.code()));
        let window = self.config.rule(rule).window();
        if !self.first_in_window(dedupe, ev.event_time, window) {
            return;
        }
        let what = key.as_deref().or(secret.as_deref()).filter(|s| !s.is_empty()).unwrap_or(&ev.region);
        let title = format!("{}{}: {what} by {}", rule.title(), outcome.suffix(ev), ev.principal.short_name());
        out.push(self.alert(rule, ev, vec![ev.event_id.clone()], key, secret, title, detail()));
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        &self,
        rule: RuleId,
        ev: &TrailEvent,
        event_ids: Vec<String>,
        key: Option<String>,
        secret: Option<String>,
        title: String,
        detail: String,
    ) -> Alert {
        let first = event_ids.first().map(String::as_str).unwrap_or(&ev.event_id);
        Alert {
            id: format!("{}:{first}", rule.as_str()),
            rule,
            severity: self.config.rule(rule).severity.unwrap_or(Severity::Low),
            title,
            detail,
            event_ids,
            at: ev.event_time,
            key,
            secret,
            principal: ev.principal.label().to_owned(),
            region: ev.region.clone(),
        }
    }

    /// Record an alert for `key` at `t` unless one was raised within `window` of it.
    fn first_in_window(&mut self, key: (RuleId, String), t: DateTime<Utc>, window: Duration) -> bool {
        if let Some(times) = self.raised.get_mut(&key) {
            if times.iter().any(|&x| (x - t).abs() < window) {
                return false;
            }
            times.push(t);
            return true;
        }
        if self.raised.len() >= MAX_DEDUPE_KEYS {
            self.prune();
            evict_quietest(&mut self.raised, |v| v.iter().max().copied());
        }
        self.raised.insert(key, vec![t]);
        true
    }

    fn advance(&mut self, t: DateTime<Utc>) {
        if self.newest.is_none_or(|n| t > n) {
            self.newest = Some(t);
        }
        self.observed += 1;
        if self.observed.is_multiple_of(PRUNE_EVERY) {
            self.prune();
        }
    }

    /// Drop window state older than the longest window plus `LATE_GRACE_SECS` before the
    /// newest event seen.
    fn prune(&mut self) {
        let Some(newest) = self.newest else {
            return;
        };
        let horizon = newest - Duration::seconds(self.config.max_window_secs() + LATE_GRACE_SECS);
        for marks in self.failed.values_mut() {
            marks.retain(|m| m.at >= horizon);
        }
        self.failed.retain(|_, v| !v.is_empty());
        for by_secret in self.reads.values_mut() {
            for marks in by_secret.values_mut() {
                marks.retain(|m| m.at >= horizon);
            }
            by_secret.retain(|_, v| !v.is_empty());
        }
        self.reads.retain(|_, v| !v.is_empty());
        for times in self.raised.values_mut() {
            times.retain(|t| *t >= horizon);
        }
        self.raised.retain(|_, v| !v.is_empty());
    }
}

/// Remove the tenth of a map's entries whose latest activity is oldest.
fn evict_quietest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    latest: impl Fn(&V) -> Option<DateTime<Utc>>,
) {
    let mut by_age: Vec<(Option<DateTime<Utc>>, K)> = map.iter().map(|(k, v)| (latest(v), k.clone())).collect();
    let n = (by_age.len() / 10).max(1).min(by_age.len());
    if n == 0 {
        return;
    }
    by_age.select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
    for (_, k) in by_age.into_iter().take(n) {
        map.remove(&k);
    }
}

/// Insert a mark in time order; false if this event is already there.
fn insert_mark(marks: &mut Vec<Mark>, t: DateTime<Utc>, event_id: &str) -> bool {
    let at = marks.partition_point(|m| m.at <= t);
    if marks[..at].iter().rev().take_while(|m| m.at == t).any(|m| m.event_id == event_id) {
        return false;
    }
    marks.insert(at, Mark { at: t, event_id: event_id.to_owned() });
    true
}

/// In marks sorted by time, a window of length `w` containing `t` with more than
/// `threshold` marks: its index range.
fn find_cluster(marks: &[Mark], t: DateTime<Utc>, w: Duration, threshold: usize) -> Option<(usize, usize)> {
    let lo = marks.partition_point(|m| m.at < t - w);
    let hi = marks.partition_point(|m| m.at <= t + w);
    if hi.saturating_sub(lo) <= threshold {
        return None;
    }
    let mut end = lo;
    for start in lo..hi {
        if marks[start].at > t {
            break;
        }
        while end < hi && marks[end].at <= marks[start].at + w {
            end += 1;
        }
        if end - start > threshold {
            return Some((start, end));
        }
    }
    None
}

/// The secret's policy names its readers and this principal is not among them.
fn excluded_reader(info: Option<&SecretInfo>, p: &Principal) -> bool {
    info.is_some_and(|s| !s.allowed_principals.is_empty() && !s.allowed_principals.iter().any(|a| p.matches(a)))
}

fn is_secret_read(ev: &TrailEvent) -> bool {
    ev.is_secrets_manager() && ev.event_name == "GetSecretValue"
}

/// The secret an event names, by the index's name when known.
fn canonical_secret(ev: &TrailEvent, keys: &KeyIndex) -> Option<String> {
    let r = ev.secret_ref.as_deref()?;
    Some(match keys.resolve_secret_in(r, &ev.region) {
        Some(s) if !s.name.is_empty() => s.name.clone(),
        _ => secret_name(r).to_owned(),
    })
}

fn outcome_text(ev: &TrailEvent) -> String {
    match ev.error_code.as_deref() {
        None => "succeeded".to_owned(),
        Some(c) if ev.is_denied() => format!("denied: {c}"),
        Some(c) => format!("failed: {c}"),
    }
}

fn human_window(w: Duration) -> String {
    let s = w.num_seconds();
    if s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn describe_hours(h: &BusinessHours) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let days: Vec<&str> = h.weekdays.iter().filter_map(|d| DAYS.get((*d as usize).wrapping_sub(1)).copied()).collect();
    format!(
        "{} {:02}:{:02}-{:02}:{:02} {}",
        days.join(" "),
        h.start_minute / 60,
        h.start_minute % 60,
        h.end_minute / 60,
        h.end_minute % 60,
        h.zone
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixtures::{key, secret};
    use crate::domain::inventory::{KeyState, RegionInventory};
    use crate::domain::policy::HoursZone;
    use crate::domain::trail::{fixtures::record, parse_event, KMS_SOURCE, SECRETS_SOURCE};

    const ACCOUNT: &str = "123456789012";

    fn hours() -> BusinessHours {
        // 07:00-18:00 UTC+01:00, Mon-Fri (the default policy's).
        BusinessHours {
            start_minute: 420,
            end_minute: 1080,
            zone: HoursZone::Offset(60),
            weekdays: vec![1, 2, 3, 4, 5],
        }
    }

    /// Index: drop-kyc-key (L4, app-encrypt/app-runner, eu-north-1), drop-backup-key (L4,
    /// eu-west-1), trove-s3 (L3, no allowed list), an unmanaged key, an AWS-managed key.
    fn index() -> KeyIndex {
        let mut ix = KeyIndex::new();
        let mut add = |alias: &str, region: &str, class: Option<Classification>, allowed: &[&str], managed: bool| {
            let id = format!("id-{alias}");
            let arn = format!("arn:aws:kms:{region}:{ACCOUNT}:key/{id}");
            ix.insert_key(
                &[id, arn.clone(), format!("alias/{alias}"), format!("arn:aws:kms:{region}:{ACCOUNT}:alias/{alias}")],
                KeyInfo {
                    alias: alias.into(),
                    region: region.into(),
                    classification: class,
                    allowed_principals: allowed.iter().map(|s| s.to_string()).collect(),
                    expected_regions: if managed { vec![region.into()] } else { vec![] },
                    managed,
                    arn,
                },
            );
        };
        add("drop-kyc-key", "eu-north-1", Some(Classification::L4), &["app-encrypt", "app-runner"], true);
        add("drop-backup-key", "eu-west-1", Some(Classification::L4), &["app-runner"], true);
        add("trove-s3", "eu-west-1", Some(Classification::L3), &[], true);
        add("scratch", "eu-north-1", None, &[], false);
        add("aws/ebs", "eu-north-1", None, &[], false);
        ix.insert_secret(
            &[],
            SecretInfo {
                name: "JWT_SECRET".into(),
                region: "eu-north-1".into(),
                classification: Some(Classification::L3),
                allowed_principals: vec!["app-runner".into()],
                expected_regions: vec!["eu-north-1".into()],
                managed: true,
                arn: format!("arn:aws:secretsmanager:eu-north-1:{ACCOUNT}:secret:JWT_SECRET-AbCdEf"),
            },
        );
        ix
    }

    fn det() -> Detector {
        Detector::new(DetectionConfig::default(), Some(hours()))
    }

    /// A weekday inside business hours: Tue 2026-11-24 10:MM:SS UTC (11:MM local).
    fn day(min: u32, sec: u32) -> String {
        format!("2026-11-24T10:{min:02}:{sec:02}Z")
    }

    #[allow(clippy::too_many_arguments)]
    fn ev_full(
        id: &str,
        time: &str,
        name: &str,
        region: &str,
        user: &str,
        error: Option<&str>,
        key: Option<&str>,
        secret: Option<&str>,
    ) -> TrailEvent {
        let src = if secret.is_some() || name.contains("Secret") { SECRETS_SOURCE } else { KMS_SOURCE };
        let r = record(id, time, name, src, region, user, error, key, secret);
        match parse_event(&r) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    fn kms(id: &str, time: &str, name: &str, user: &str, error: Option<&str>, key: Option<&str>) -> TrailEvent {
        ev_full(id, time, name, "eu-north-1", user, error, key, None)
    }

    fn read(id: &str, time: &str, user: &str, secret: &str) -> TrailEvent {
        ev_full(id, time, "GetSecretValue", "eu-north-1", user, None, None, Some(secret))
    }

    #[test]
    fn approval_requests_have_their_own_subject() {
        let ix = index();
        let arn = format!("arn:aws:secretsmanager:eu-north-1:{ACCOUNT}:secret:keydeck/approvals/r-42-AbC123");
        for (name, secret) in [
            ("UpdateSecretVersionStage", arn.as_str()),
            ("PutSecretValue", "keydeck/approvals/r-42"),
            ("DescribeSecret", arn.as_str()),
        ] {
            let e =
                ev_full("a1", "2026-11-23T10:00:00Z", name, "eu-north-1", "security-lead", None, None, Some(secret));
            assert_eq!(ix.subject(&e), "approval:r-42", "{name} {secret}");
        }
        let jwt =
            ev_full("a2", "2026-11-23T10:00:00Z", "PutSecretValue", "eu-north-1", "x", None, None, Some("JWT_SECRET"));
        assert_eq!(ix.subject(&jwt), "JWT_SECRET");
        let bare = ev_full(
            "a3",
            "2026-11-23T10:00:00Z",
            "DescribeSecret",
            "eu-north-1",
            "x",
            None,
            None,
            Some("keydeck/approvals/"),
        );
        assert_eq!(ix.subject(&bare), "keydeck/approvals/");
    }

    fn rules(alerts: &[Alert]) -> Vec<RuleId> {
        alerts.iter().map(|a| a.rule).collect()
    }

    #[test]
    fn severity_order_parse_and_serde() {
        assert!(Severity::Critical < Severity::High && Severity::High < Severity::Low);
        assert!(Severity::High.at_least(Severity::Medium));
        assert!(!Severity::Low.at_least(Severity::Medium));
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert_eq!(" critical ".parse::<Severity>(), Ok(Severity::Critical));
        assert!("urgent".parse::<Severity>().unwrap_err().to_string().contains("use critical"));
        assert_eq!(serde_json::to_string(&Severity::Medium).unwrap(), "\"medium\"");
        assert_eq!(serde_json::to_string(&RuleId::OffHoursRestricted).unwrap(), "\"off_hours_restricted\"");
        for r in RuleId::ALL {
            assert_eq!(RuleId::from_name(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
            assert!(!r.title().is_empty() && r.policy_ref().starts_with("004"));
        }
    }

    #[test]
    fn key_index_resolves_every_form() {
        let ix = index();
        for r in [
            "id-drop-kyc-key",
            "arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key",
            "alias/drop-kyc-key",
            "drop-kyc-key",
            "arn:aws:kms:eu-north-1:123456789012:alias/drop-kyc-key",
        ] {
            assert_eq!(ix.resolve(r).map(|k| k.alias.as_str()), Some("drop-kyc-key"), "{r}");
        }
        assert!(ix.resolve("alias/nope").is_none() && ix.resolve("").is_none() && ix.resolve("arn:").is_none());
        let s = |r: &str| ix.resolve_secret(r).map(|s| s.name.clone());
        assert_eq!(s("JWT_SECRET").as_deref(), Some("JWT_SECRET"));
        assert_eq!(
            s("arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf").as_deref(),
            Some("JWT_SECRET")
        );
        assert_eq!(
            s("arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET").as_deref(),
            Some("JWT_SECRET")
        );
        assert_eq!(s("OTHER"), None);
        assert_eq!(ix.expected_regions().iter().map(String::as_str).collect::<Vec<_>>(), ["eu-north-1", "eu-west-1"]);
    }

    #[test]
    fn key_index_prefers_the_events_region_for_aliases() {
        let mut ix = KeyIndex::new();
        for region in ["eu-north-1", "eu-west-1"] {
            ix.insert_key(
                &["alias/same".into()],
                KeyInfo {
                    alias: "same".into(),
                    region: region.into(),
                    classification: None,
                    allowed_principals: vec![],
                    expected_regions: vec![],
                    managed: false,
                    arn: format!("arn:aws:kms:{region}:1:key/k"),
                },
            );
        }
        assert_eq!(ix.resolve_in("alias/same", "eu-west-1").map(|k| k.region.as_str()), Some("eu-west-1"));
        assert_eq!(ix.resolve_in("same", "eu-north-1").map(|k| k.region.as_str()), Some("eu-north-1"));
    }

    #[test]
    fn key_index_from_inventory_and_policy() {
        let policy = Policy::default_policy().expect("default policy");
        let mut kyc = key("eu-north-1", "drop-kyc-key", KeyState::Enabled);
        kyc.aliases.push("kyc-extra".into());
        let mut aws = key("eu-north-1", "aws/ebs", KeyState::Enabled);
        aws.manager = KeyManager::Aws;
        let inv = Inventory {
            regions: vec![RegionInventory {
                region: "eu-north-1".into(),
                keys: vec![kyc, aws, key("eu-north-1", "mystery", KeyState::Enabled)],
                secrets: vec![secret("eu-north-1", "JWT_SECRET", Some(90))],
                problems: vec![],
                unlisted: vec![],
            }],
            fetched_at: None,
        };
        let ix = KeyIndex::from_inventory(&inv, &policy);
        let k = ix.resolve("arn:aws:kms:eu-north-1:123456789012:alias/kyc-extra").expect("alias ARN");
        assert_eq!((k.alias.as_str(), k.managed, k.classification), ("drop-kyc-key", true, Some(Classification::L4)));
        assert_eq!(k.allowed_principals, ["app-encrypt", "app-runner"]);
        assert!(!ix.resolve("alias/aws/ebs").expect("aws key").managed);
        assert!(!ix.resolve("mystery").expect("unmanaged key").managed);
        // In the policy, not in the inventory: still resolves by alias.
        let n = ix.resolve("alias/drop-national-id-key").expect("policy-only key");
        assert!(n.managed && n.arn.is_empty());
        let s = ix
            .resolve_secret("arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf")
            .expect("secret");
        assert_eq!(s.allowed_principals, ["app-runner"]);
        assert!(ix.resolve_secret("DATABASE_URL").expect("policy-only secret").managed);
        assert!(ix.expected_regions().contains("eu-west-1"));
    }

    // ---- change rules ---------------------------------------------------------------

    #[test]
    fn schedule_key_deletion_fires_for_any_key_and_for_attempts() {
        let ix = index();
        let mut d = det();
        let a = d
            .observe(&kms("s1", &day(0, 0), "ScheduleKeyDeletion", "key-admin", None, Some("alias/drop-kyc-key")), &ix);
        assert_eq!(rules(&a), [RuleId::ScheduleKeyDeletion]);
        let a0 = &a[0];
        assert_eq!(a0.severity, Severity::Critical);
        assert_eq!(a0.id, "schedule_key_deletion:s1");
        assert_eq!(a0.key.as_deref(), Some("drop-kyc-key"));
        assert_eq!(a0.principal, "arn:aws:iam::123456789012:user/key-admin");
        assert_eq!(a0.event_ids, ["s1"]);
        assert!(a0.title.starts_with("Key deletion scheduled: drop-kyc-key by key-admin"), "{}", a0.title);
        assert!(a0.detail.contains("004 §8"), "{}", a0.detail);
        // Denied: an attempt, same severity.
        let a = d.observe(
            &kms("s2", &day(0, 5), "ScheduleKeyDeletion", "outsider", Some("AccessDenied"), Some("alias/drop-kyc-key")),
            &ix,
        );
        assert_eq!(rules(&a), [RuleId::ScheduleKeyDeletion]);
        assert!(a[0].title.contains("attempt (denied)"), "{}", a[0].title);
        assert_eq!(a[0].severity, Severity::Critical);
        // Failed for another reason, on an unmanaged key, on an unknown key: still alerts.
        let a = d.observe(
            &kms("s3", &day(0, 6), "ScheduleKeyDeletion", "bob", Some("NotFoundException"), Some("alias/gone")),
            &ix,
        );
        assert!(a[0].title.contains("attempt (failed: NotFoundException)"), "{}", a[0].title);
        assert_eq!(a[0].key.as_deref(), Some("alias/gone"));
        assert_eq!(
            rules(&d.observe(&kms("s4", &day(0, 7), "ScheduleKeyDeletion", "bob", None, Some("scratch")), &ix)),
            [RuleId::ScheduleKeyDeletion]
        );
        // Near miss: CancelKeyDeletion and DescribeKey are no deletion.
        assert!(d
            .observe(&kms("s5", &day(0, 8), "CancelKeyDeletion", "bob", None, Some("alias/drop-kyc-key")), &ix)
            .is_empty());
        assert!(d
            .observe(&kms("s6", &day(0, 9), "DescribeKey", "bob", None, Some("alias/drop-kyc-key")), &ix)
            .is_empty());
    }

    #[test]
    fn each_change_rule_fires_on_managed_keys_and_not_on_unmanaged_ones() {
        let cases = [
            ("DisableKey", RuleId::DisableKey, Severity::High),
            ("PutKeyPolicy", RuleId::PutKeyPolicy, Severity::High),
            ("CreateGrant", RuleId::CreateGrant, Severity::Medium),
            ("UpdateAlias", RuleId::AliasChange, Severity::Medium),
            ("DeleteAlias", RuleId::AliasChange, Severity::Medium),
            ("CreateAlias", RuleId::AliasChange, Severity::Medium),
            ("ImportKeyMaterial", RuleId::KeyMaterialChange, Severity::High),
            ("DeleteImportedKeyMaterial", RuleId::KeyMaterialChange, Severity::High),
        ];
        let ix = index();
        for (i, (name, rule, sev)) in cases.into_iter().enumerate() {
            let mut d = det();
            let a =
                d.observe(&kms(&format!("c{i}"), &day(1, 0), name, "key-admin", None, Some("alias/drop-kyc-key")), &ix);
            assert_eq!(rules(&a), [rule], "{name}");
            assert_eq!(a[0].severity, sev, "{name}");
            let denied = d.observe(
                &kms(&format!("d{i}"), &day(1, 1), name, "outsider", Some("AccessDenied"), Some("drop-kyc-key")),
                &ix,
            );
            assert_eq!(rules(&denied), [rule], "{name} denied");
            assert!(denied[0].title.contains("attempt (denied)"));
            // Unknown key: alerts (it may be new since the inventory).
            assert_eq!(
                rules(&d.observe(&kms(&format!("u{i}"), &day(1, 2), name, "key-admin", None, Some("id-unknown")), &ix)),
                [rule],
                "{name} unknown"
            );
            // Near misses: an unmanaged key, an AWS-managed key, a non-access failure.
            assert!(
                d.observe(&kms(&format!("n{i}"), &day(1, 3), name, "key-admin", None, Some("alias/scratch")), &ix)
                    .is_empty(),
                "{name}"
            );
            assert!(
                d.observe(&kms(&format!("a{i}"), &day(1, 4), name, "key-admin", None, Some("alias/aws/ebs")), &ix)
                    .is_empty(),
                "{name}"
            );
            assert!(
                d.observe(
                    &kms(
                        &format!("v{i}"),
                        &day(1, 5),
                        name,
                        "key-admin",
                        Some("ValidationException"),
                        Some("alias/drop-kyc-key")
                    ),
                    &ix
                )
                .is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn alias_change_on_a_managed_target() {
        // CreateAlias of a new alias pointing at a managed key: the target resolves.
        let ix = index();
        let r = r#"{"eventID":"ca","eventTime":"2026-11-24T10:00:00Z","eventName":"CreateAlias","eventSource":"kms.amazonaws.com","awsRegion":"eu-north-1",
            "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/key-admin","userName":"key-admin"},
            "requestParameters":{"aliasName":"alias/new-name","targetKeyId":"id-drop-kyc-key"}}"#;
        let a = det().observe(&parse_event(r).unwrap(), &ix);
        assert_eq!(rules(&a), [RuleId::AliasChange]);
        assert_eq!(a[0].key.as_deref(), Some("drop-kyc-key"));
        // New alias on an unmanaged key: silent.
        let r = r.replace("id-drop-kyc-key", "id-scratch");
        assert!(det().observe(&parse_event(&r).unwrap(), &ix).is_empty());
    }

    // ---- unexpected principal --------------------------------------------------------

    #[test]
    fn unexpected_principal() {
        let ix = index();
        let mut d = det();
        let a = d.observe(&kms("p1", &day(2, 0), "Decrypt", "outsider", None, Some("alias/drop-kyc-key")), &ix);
        assert_eq!(rules(&a), [RuleId::UnexpectedPrincipal]);
        assert_eq!(a[0].severity, Severity::High);
        assert!(a[0].detail.contains("app-encrypt, app-runner"), "{}", a[0].detail);
        for (i, op) in
            ["GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Encrypt", "ReEncrypt", "Sign", "GenerateMac"]
                .iter()
                .enumerate()
        {
            let a = det()
                .observe(&kms(&format!("o{i}"), &day(2, 1), op, "compliance-decrypt", None, Some("drop-kyc-key")), &ix);
            assert_eq!(rules(&a), [RuleId::UnexpectedPrincipal], "{op}");
        }
        // Near misses: an allowed principal; a metadata call; a key with no allowed list;
        // an unmanaged key; an AWS service.
        let mut d = det();
        assert!(d
            .observe(&kms("q1", &day(2, 2), "Decrypt", "app-runner", None, Some("alias/drop-kyc-key")), &ix)
            .is_empty());
        assert!(d
            .observe(&kms("q2", &day(2, 3), "DescribeKey", "outsider", None, Some("alias/drop-kyc-key")), &ix)
            .is_empty());
        assert!(d
            .observe(
                &kms(
                    "q3",
                    &day(2, 4),
                    "Decrypt",
                    "outsider",
                    None,
                    Some("arn:aws:kms:eu-west-1:123456789012:key/id-trove-s3")
                ),
                &ix
            )
            .iter()
            .all(|a| a.rule != RuleId::UnexpectedPrincipal));
        assert!(d.observe(&kms("q4", &day(2, 5), "Decrypt", "outsider", None, Some("scratch")), &ix).is_empty());
        let svc = r#"{"eventID":"q5","eventTime":"2026-11-24T10:02:06Z","eventName":"Decrypt","eventSource":"kms.amazonaws.com","awsRegion":"eu-north-1",
            "userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"},"requestParameters":{"keyId":"alias/drop-kyc-key"}}"#;
        assert!(d.observe(&parse_event(svc).unwrap(), &ix).is_empty());
    }

    #[test]
    fn assumed_roles_match_by_role_and_session() {
        let ix = index();
        let with = |arn: &str| {
            let r = format!(
                r#"{{"eventID":"r-{arn}","eventTime":"2026-11-24T10:03:00Z","eventName":"Decrypt","eventSource":"kms.amazonaws.com","awsRegion":"eu-north-1",
                "userIdentity":{{"type":"AssumedRole","arn":"{arn}","accountId":"123456789012"}},"requestParameters":{{"keyId":"alias/drop-kyc-key"}}}}"#
            );
            det().observe(&parse_event(&r).unwrap(), &ix)
        };
        assert!(with("arn:aws:sts::123456789012:assumed-role/app-runner/i-0abc").is_empty(), "role name");
        assert!(with("arn:aws:sts::123456789012:assumed-role/deploy/app-encrypt").is_empty(), "session name");
        assert_eq!(rules(&with("arn:aws:sts::123456789012:assumed-role/deploy/ci")), [RuleId::UnexpectedPrincipal]);
    }

    #[test]
    fn denied_use_by_an_unexpected_principal_is_an_attempt() {
        let ix = index();
        let a = det().observe(
            &kms("x1", &day(3, 0), "Decrypt", "outsider", Some("AccessDenied"), Some("alias/drop-kyc-key")),
            &ix,
        );
        assert_eq!(rules(&a), [RuleId::UnexpectedPrincipal]);
        assert!(a[0].title.contains("attempt (denied)"));
    }

    // ---- failed calls ----------------------------------------------------------------

    fn denied(id: &str, time: &str) -> TrailEvent {
        kms(id, time, "Decrypt", "outsider", Some("AccessDenied"), None)
    }

    #[test]
    fn failed_calls_more_than_three_in_five_minutes() {
        let ix = index();
        // 3 in 5 minutes: silent.
        let mut d = det();
        for (i, m) in [0, 1, 2].into_iter().enumerate() {
            assert!(d.observe(&denied(&format!("f{i}"), &day(m, 0)), &ix).is_empty());
        }
        // The 4th within 5 minutes: fires once, naming all four events.
        let a = d.observe(&denied("f3", &day(4, 59)), &ix);
        assert_eq!(rules(&a), [RuleId::FailedCalls]);
        assert_eq!(a[0].event_ids, ["f0", "f1", "f2", "f3"]);
        assert_eq!(a[0].id, "failed_calls:f0");
        assert_eq!(a[0].severity, Severity::High);
        assert_eq!(a[0].principal, "arn:aws:iam::123456789012:user/outsider");
        // A 5th and 6th in the same burst: deduplicated.
        assert!(d.observe(&denied("f4", &day(5, 0)), &ix).is_empty());
        assert!(d.observe(&denied("f5", &day(5, 30)), &ix).is_empty());

        // 4 spread over 6 minutes: silent.
        let mut d = det();
        for (i, m) in [0, 2, 4, 6].into_iter().enumerate() {
            assert!(d.observe(&denied(&format!("g{i}"), &day(m, 0)), &ix).is_empty(), "g{i}");
        }
        // Exactly 5 minutes between the first and the 4th counts (inclusive).
        let mut d = det();
        for (i, t) in [day(0, 0), day(1, 0), day(2, 0)].iter().enumerate() {
            d.observe(&denied(&format!("h{i}"), t), &ix);
        }
        assert_eq!(rules(&d.observe(&denied("h3", &day(5, 0)), &ix)), [RuleId::FailedCalls]);
        // One second more: silent.
        let mut d = det();
        for (i, t) in [day(0, 0), day(1, 0), day(2, 0)].iter().enumerate() {
            d.observe(&denied(&format!("k{i}"), t), &ix);
        }
        assert!(d.observe(&denied("k3", &day(5, 1)), &ix).is_empty());
    }

    #[test]
    fn failed_calls_are_per_principal_and_only_access_failures() {
        let ix = index();
        let mut d = det();
        for (i, user) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            assert!(d
                .observe(&kms(&format!("p{i}"), &day(0, i as u32), "Decrypt", user, Some("AccessDenied"), None), &ix)
                .is_empty());
        }
        for i in 0..6 {
            let e = kms(&format!("t{i}"), &day(1, i), "Decrypt", "busy", Some("ThrottlingException"), None);
            assert!(d.observe(&e, &ix).is_empty(), "throttling is no access attempt");
        }
        let codes =
            ["IncorrectKeyException", "InvalidCiphertextException", "DisabledException", "AccessDeniedException"];
        let mut got = Vec::new();
        for (i, c) in codes.iter().enumerate() {
            got.extend(d.observe(&kms(&format!("z{i}"), &day(2, i as u32), "Decrypt", "prober", Some(c), None), &ix));
        }
        assert_eq!(rules(&got), [RuleId::FailedCalls]);
        // Secrets Manager denials are not KMS calls.
        let mut d = det();
        for i in 0..6 {
            let e = ev_full(
                &format!("sm{i}"),
                &day(3, i),
                "ListSecrets",
                "eu-north-1",
                "outsider",
                Some("AccessDenied"),
                None,
                None,
            );
            assert!(d.observe(&e, &ix).is_empty());
        }
    }

    #[test]
    fn failed_calls_out_of_order_and_late() {
        let ix = index();
        // The burst arrives newest first, the oldest one last and late.
        let mut d = det();
        assert!(d.observe(&denied("l3", &day(4, 0)), &ix).is_empty());
        assert!(d.observe(&denied("l2", &day(3, 0)), &ix).is_empty());
        assert!(d.observe(&denied("l1", &day(2, 0)), &ix).is_empty());
        // Unrelated later traffic in between moves the detector's clock on.
        assert!(d
            .observe(&kms("n1", &day(20, 0), "Decrypt", "app-runner", None, Some("alias/drop-kyc-key")), &ix)
            .is_empty());
        let a = d.observe(&denied("l0", &day(0, 30)), &ix);
        assert_eq!(rules(&a), [RuleId::FailedCalls]);
        assert_eq!(a[0].event_ids, ["l0", "l1", "l2", "l3"], "oldest first");
        assert_eq!(a[0].id, "failed_calls:l0", "same id as in arrival order");
        assert_eq!(
            a[0].at,
            DateTime::parse_from_rfc3339(&day(0, 30)).unwrap().with_timezone(&Utc),
            "the triggering event"
        );
        // The same event again (an overlapping poll the feed did not filter): ignored.
        assert!(d.observe(&denied("l0", &day(0, 30)), &ix).is_empty());
        // A late event that completes a window spread the other way: 0, 6 and then 2,4 late.
        let mut d = det();
        for (id, m) in [("m0", 0), ("m3", 6), ("m1", 2)] {
            assert!(d.observe(&denied(id, &day(m, 0)), &ix).is_empty());
        }
        assert!(d.observe(&denied("m2", &day(4, 0)), &ix).is_empty(), "0,2,4,6: no 5-minute window holds 4");
        assert_eq!(rules(&d.observe(&denied("m4", &day(5, 0)), &ix)), [RuleId::FailedCalls], "0,2,4,5");
    }

    #[test]
    fn failed_calls_again_after_the_window() {
        let ix = index();
        let mut d = det();
        let mut all = Vec::new();
        for i in 0..40u32 {
            // A denial every 30 s for 20 minutes.
            let t = format!("2026-11-24T10:{:02}:{:02}Z", i / 2, (i % 2) * 30);
            all.extend(d.observe(&denied(&format!("b{i}"), &t), &ix));
        }
        assert!((3..=5).contains(&all.len()), "about one alert per 5-minute window, got {}", all.len());
    }

    // ---- off hours -------------------------------------------------------------------

    #[test]
    fn off_hours_use_of_an_l4_key() {
        let ix = index();
        // Tue 2026-11-24 05:30 UTC = 06:30 local: before 07:00.
        let a = det().observe(
            &kms("o1", "2026-11-24T05:30:00Z", "Decrypt", "app-runner", None, Some("alias/drop-kyc-key")),
            &ix,
        );
        assert_eq!(rules(&a), [RuleId::OffHoursRestricted]);
        assert_eq!(a[0].severity, Severity::Medium);
        assert!(a[0].detail.contains("Mon Tue Wed Thu Fri 07:00-18:00 UTC+01:00"), "{}", a[0].detail);
        // Saturday noon.
        assert_eq!(
            rules(
                &det().observe(
                    &kms("o2", "2026-11-28T11:00:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key")),
                    &ix
                )
            ),
            [RuleId::OffHoursRestricted]
        );
        // 17:00 UTC = 18:00 local: the end is exclusive.
        assert_eq!(
            rules(
                &det().observe(
                    &kms("o3", "2026-11-24T17:00:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key")),
                    &ix
                )
            ),
            [RuleId::OffHoursRestricted]
        );
        // Near misses: 06:00 UTC = 07:00 local; 16:59 UTC; an L3 key at night; metadata at night.
        assert!(det()
            .observe(&kms("o4", "2026-11-24T06:00:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key")), &ix)
            .is_empty());
        assert!(det()
            .observe(&kms("o5", "2026-11-24T16:59:59Z", "Decrypt", "app-runner", None, Some("drop-kyc-key")), &ix)
            .is_empty());
        let l3 = ev_full(
            "o6",
            "2026-11-24T02:00:00Z",
            "Decrypt",
            "eu-west-1",
            "app-runner",
            None,
            Some("alias/trove-s3"),
            None,
        );
        assert!(det().observe(&l3, &ix).is_empty());
        assert!(det()
            .observe(&kms("o7", "2026-11-24T02:00:00Z", "DescribeKey", "auditor", None, Some("drop-kyc-key")), &ix)
            .is_empty());
        // No business hours in the policy: off.
        let mut d = Detector::new(DetectionConfig::default(), None);
        assert!(d
            .observe(&kms("o8", "2026-11-24T02:00:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key")), &ix)
            .is_empty());
    }

    /// The default policy (business hours 07:00-18:00 Mon-Fri in Europe/Oslo) over its
    /// own keys, none in the inventory yet.
    fn default_policy_detector() -> (Detector, KeyIndex) {
        let policy = Policy::default_policy().expect("default policy");
        let inv = Inventory { regions: vec![], fetched_at: None };
        (Detector::for_policy(&policy), KeyIndex::from_inventory(&inv, &policy))
    }

    fn off_hours_at(t: &str) -> Vec<RuleId> {
        let (mut d, ix) = default_policy_detector();
        let e = kms("tz", t, "Decrypt", "app-runner", None, Some("alias/drop-national-id-key"));
        rules(&d.observe(&e, &ix))
    }

    #[test]
    fn off_hours_follow_oslo_summer_time() {
        // Wed 2026-07-01 16:30Z is 18:30 in Oslo (CEST, UTC+2): after hours.
        assert_eq!(off_hours_at("2026-07-01T16:30:00Z"), [RuleId::OffHoursRestricted]);
        // 05:30Z is 07:30 in Oslo: within hours (at +01:00 it read as 06:30).
        assert!(off_hours_at("2026-07-01T05:30:00Z").is_empty());
        // The edges in summer: 05:00Z = 07:00 (in), 04:59Z (out), 15:59Z = 17:59 (in), 16:00Z = 18:00 (out).
        assert!(off_hours_at("2026-07-01T05:00:00Z").is_empty());
        assert_eq!(off_hours_at("2026-07-01T04:59:00Z"), [RuleId::OffHoursRestricted]);
        assert!(off_hours_at("2026-07-01T15:59:00Z").is_empty());
        assert_eq!(off_hours_at("2026-07-01T16:00:00Z"), [RuleId::OffHoursRestricted]);
        // The weekday is Oslo's: Fri 2026-07-03 22:30Z is Saturday 00:30 in Oslo.
        assert_eq!(off_hours_at("2026-07-03T22:30:00Z"), [RuleId::OffHoursRestricted]);
        // Mon 2026-07-06 05:30Z is Monday 07:30 in Oslo, though Sunday ended 22:00Z.
        assert!(off_hours_at("2026-07-06T05:30:00Z").is_empty());
        // The detail names the zone.
        let (mut d, ix) = default_policy_detector();
        let a = d.observe(
            &kms("tz", "2026-07-01T16:30:00Z", "Decrypt", "app-runner", None, Some("alias/drop-national-id-key")),
            &ix,
        );
        assert!(a[0].detail.contains("07:00-18:00 Europe/Oslo"), "{}", a[0].detail);
    }

    #[test]
    fn off_hours_follow_oslo_winter_time() {
        // Wed 2026-01-07: Oslo is UTC+1. 17:30Z = 18:30 (out), 06:30Z = 07:30 (in).
        assert_eq!(off_hours_at("2026-01-07T17:30:00Z"), [RuleId::OffHoursRestricted]);
        assert!(off_hours_at("2026-01-07T06:30:00Z").is_empty());
        // The summer instants read an hour earlier in winter: 16:30Z = 17:30 (in), 05:30Z = 06:30 (out).
        assert!(off_hours_at("2026-01-07T16:30:00Z").is_empty());
        assert_eq!(off_hours_at("2026-01-07T05:30:00Z"), [RuleId::OffHoursRestricted]);
        // Around the changes: Mon 2026-03-30 (CEST since Sunday 01:00Z) 05:30Z = 07:30 (in);
        // Mon 2026-10-26 (CET since Sunday 01:00Z) 05:30Z = 06:30 (out), 16:30Z = 17:30 (in).
        assert!(off_hours_at("2026-03-30T05:30:00Z").is_empty());
        assert_eq!(off_hours_at("2026-10-26T05:30:00Z"), [RuleId::OffHoursRestricted]);
        assert!(off_hours_at("2026-10-26T16:30:00Z").is_empty());
    }

    #[test]
    fn off_hours_at_a_fixed_offset_stay_fixed() {
        // utc_offset = "+01:00" all year: 16:30Z in July is 17:30 (in), 05:30Z is 06:30 (out).
        let ix = index();
        let summer_evening = kms("f1", "2026-07-01T16:30:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key"));
        assert!(det().observe(&summer_evening, &ix).is_empty());
        let summer_morning = kms("f2", "2026-07-01T05:30:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key"));
        assert_eq!(rules(&det().observe(&summer_morning, &ix)), [RuleId::OffHoursRestricted]);
    }

    /// A record from AWS's guides (`trail`'s fixture file), by event name.
    fn aws_example(event_name: &str) -> String {
        include_str!("testdata/aws_cloudtrail_examples.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["record"]["eventName"] == event_name)
            .map(|v| v["record"].to_string())
            .unwrap_or_else(|| panic!("no AWS example of {event_name}"))
    }

    /// AWS's examples' key (us-west-2, 111122223333) as an L4 key that only app-runner
    /// may use, with Oslo's business hours.
    fn aws_example_key() -> (Detector, KeyIndex) {
        let mut ix = KeyIndex::new();
        let arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        ix.insert_key(
            &["1234abcd-12ab-34cd-56ef-1234567890ab".into(), "alias/drop-national-id-key".into()],
            KeyInfo {
                alias: "drop-national-id-key".into(),
                region: "us-west-2".into(),
                classification: Some(Classification::L4),
                allowed_principals: vec!["app-runner".into()],
                expected_regions: vec!["us-west-2".into()],
                managed: true,
                arn: arn.into(),
            },
        );
        let oslo = BusinessHours {
            start_minute: 420,
            end_minute: 1080,
            zone: HoursZone::Named(chrono_tz::Europe::Oslo),
            weekdays: vec![1, 2, 3, 4, 5],
        };
        (Detector::new(DetectionConfig::default(), Some(oslo)), ix)
    }

    fn parsed(record: &str) -> TrailEvent {
        match parse_event(record) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn aws_own_calls_are_not_operator_activity() {
        let (mut d, ix) = aws_example_key();
        // KMS's automatic rotation (Thu 2021-01-14 02:41 in Oslo) and the deletion at the
        // end of the waiting period (Fri 2020-07-31 02:07), as AWS records them.
        for name in ["RotateKey", "DeleteKey", "DeleteExpiredKeyMaterial", "SynchronizeMultiRegionKey"] {
            let e = parsed(&aws_example(name));
            assert!(e.key_refs.iter().any(|k| ix.resolve(k).is_some()), "{name} names the key");
            assert!(d.observe(&e, &ix).is_empty(), "{name}");
        }
        // Siblings: an AWS service principal decrypting at night; "AWS Internal" failing
        // again and again.
        let night = "2026-07-01T23:00:00Z";
        let by = |id: &str, ident: &str, error: &str| {
            parsed(&format!(
                r#"{{"eventID":"{id}","eventTime":"{night}","eventName":"Decrypt","eventSource":"kms.amazonaws.com","awsRegion":"us-west-2","userIdentity":{ident},"requestParameters":{{"keyId":"alias/drop-national-id-key"}},"eventType":"AwsApiCall","recipientAccountId":"111122223333"{error}}}"#
            ))
        };
        let service = by("s1", r#"{"type":"AWSService","invokedBy":"kms.amazonaws.com"}"#, "");
        assert!(d.observe(&service, &ix).is_empty());
        for i in 0..6 {
            let e = by(
                &format!("f{i}"),
                r#"{"accountId":"111122223333","invokedBy":"AWS Internal"}"#,
                r#","errorCode":"AccessDenied""#,
            );
            assert!(d.observe(&e, &ix).is_empty(), "AWS's failures are no access attempts");
        }
        // The same calls by an operator still alert: a rotation on demand at night, and a
        // role decrypting through Secrets Manager (its own ARN, invokedBy the service).
        let manual = aws_example("RotateKey").replace(
            r#""userIdentity":{"accountId":"111122223333","invokedBy":"AWS Internal"}"#,
            r#""userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/Alice","accountId":"111122223333","userName":"Alice"}"#,
        ).replace("AwsServiceEvent", "AwsApiCall");
        let a = d.observe(&parsed(&manual), &ix);
        assert_eq!(rules(&a), [RuleId::OffHoursRestricted]);
        let fas = by(
            "v1",
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/reporting/x","accountId":"111122223333","invokedBy":"secretsmanager.amazonaws.com"}"#,
            "",
        );
        assert_eq!(rules(&d.observe(&fas, &ix)), [RuleId::UnexpectedPrincipal, RuleId::OffHoursRestricted]);
    }

    #[test]
    fn off_hours_dedupes_per_principal_and_key() {
        let ix = index();
        let mut d = det();
        let mut n = 0;
        for i in 0..120u32 {
            // Every minute from 02:00 to 03:59 UTC.
            let t = format!("2026-11-24T{:02}:{:02}:00Z", 2 + i / 60, i % 60);
            n += d.observe(&kms(&format!("w{i}"), &t, "Decrypt", "app-runner", None, Some("drop-kyc-key")), &ix).len();
        }
        assert_eq!(n, 2, "one per hour");
        // Another principal alerts separately.
        assert_eq!(
            d.observe(
                &kms("w-other", "2026-11-24T03:30:00Z", "GenerateDataKey", "app-encrypt", None, Some("drop-kyc-key")),
                &ix
            )
            .len(),
            1
        );
    }

    #[test]
    fn except_silences_a_principal() {
        let ix = index();
        let mut cfg = DetectionConfig::default();
        cfg.off_hours_restricted.except = vec!["app-runner".into()];
        let mut d = Detector::new(cfg, Some(hours()));
        assert!(d
            .observe(&kms("e1", "2026-11-24T02:00:00Z", "Decrypt", "app-runner", None, Some("drop-kyc-key")), &ix)
            .is_empty());
        assert_eq!(
            rules(&d.observe(
                &kms("e2", "2026-11-24T02:00:00Z", "Decrypt", "app-encrypt", None, Some("drop-kyc-key")),
                &ix
            )),
            [RuleId::OffHoursRestricted]
        );
    }

    // ---- secrets ---------------------------------------------------------------------

    #[test]
    fn new_secret_reader() {
        let ix = index();
        let mut d = det();
        // The policy's allowed reader is known from the start.
        assert!(d.observe(&read("r1", &day(0, 0), "app-runner", "JWT_SECRET"), &ix).is_empty());
        // A principal the policy does not allow: alerts, and again after the dedupe window
        // (it is never learned).
        let a = d.observe(&read("r2", &day(0, 1), "developer", "JWT_SECRET"), &ix);
        assert_eq!(rules(&a), [RuleId::SecretReadNewPrincipal]);
        assert_eq!(a[0].secret.as_deref(), Some("JWT_SECRET"));
        assert_eq!(a[0].severity, Severity::Medium);
        assert_eq!(rules(&d.observe(&read("r3", &day(30, 0), "developer", "JWT_SECRET"), &ix)).len(), 1);
        // Same principal, by ARN this time: the same secret, within the dedupe window.
        let arn = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf";
        assert!(d.observe(&read("r4", &day(31, 0), "developer", arn), &ix).is_empty());
        // A secret without allowed readers: the first read alerts once, then known.
        assert_eq!(rules(&d.observe(&read("r6", &day(33, 0), "reporting", "DATABASE_URL"), &ix)).len(), 1);
        assert!(d.observe(&read("r7", &day(50, 0), "reporting", "DATABASE_URL"), &ix).is_empty());
        // An unknown secret: its first reader is new too.
        assert_eq!(
            rules(&d.observe(&read("r5", &day(32, 0), "developer", "OTHER"), &ix)),
            [RuleId::SecretReadNewPrincipal]
        );
    }

    #[test]
    fn warm_up_learns_backfill_readers() {
        let ix = index();
        // The console's first poll: the part before judge_from is the baseline.
        let backfill = vec![
            read("b1", &day(0, 0), "reporting", "OTHER"),
            read("b2", &day(40, 0), "reporting", "OTHER"),
            read("b3", &day(41, 0), "newcomer", "OTHER"),
        ];
        let mut d = det();
        let a = d.observe_backfill(&backfill, parse_time(&day(30, 0)), &ix);
        assert_eq!(rules(&a), [RuleId::SecretReadNewPrincipal], "only the reader first seen after the baseline");
        assert_eq!(a[0].event_ids, ["b3"]);
        assert!(d.observe(&read("b4", &day(45, 0), "reporting", "OTHER"), &ix).is_empty());
        // A denied read does not make the principal known.
        let mut d = det();
        let denied =
            ev_full("b5", &day(7, 0), "GetSecretValue", "eu-north-1", "x", Some("AccessDenied"), None, Some("OTHER"));
        d.learn(&denied, &ix);
        let a = d.observe(&denied, &ix);
        assert_eq!(rules(&a), [RuleId::SecretReadNewPrincipal]);
        assert!(a[0].title.contains("attempt (denied)"));
    }

    fn parse_time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn allowed_readers_are_a_rule_not_a_baseline() {
        let ix = index();
        // JWT_SECRET allows app-runner only. An outsider who read it in the baseline is not
        // learned, and one who reads it in the judged window alerts.
        let trail = vec![
            read("j0", "2026-11-24T08:00:00Z", "outsider", "JWT_SECRET"),
            read("j1", "2026-11-24T09:00:00Z", "app-runner", "JWT_SECRET"),
            read("j2", "2026-11-24T10:05:00Z", "outsider", "JWT_SECRET"),
            read("j3", "2026-11-24T10:06:00Z", "app-runner", "JWT_SECRET"),
        ];
        let judge_from = parse_time("2026-11-24T10:00:00Z");
        let a = det().judge_window(&trail, judge_from, &ix);
        assert_eq!(rules(&a), [RuleId::SecretReadNewPrincipal]);
        assert_eq!(a[0].event_ids, ["j2"]);
        assert!(a[0].detail.contains("the policy allows app-runner"), "{}", a[0].detail);
        // The console's first backfill likewise: the outsider alerts even in the baseline.
        let a = det().observe_backfill(&trail, judge_from, &ix);
        assert_eq!(a.iter().map(|a| a.event_ids[0].as_str()).collect::<Vec<_>>(), ["j0", "j2"]);
        // Learning never makes the outsider known: every window alerts again, and an ARN
        // or a later read changes nothing.
        let mut d = det();
        for e in &trail {
            d.learn(e, &ix);
        }
        let arn = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf";
        assert_eq!(rules(&d.observe(&read("k1", "2026-11-24T12:00:00Z", "outsider", arn), &ix)).len(), 1);
        assert!(d.observe(&read("k2", "2026-11-24T12:02:00Z", "outsider", "JWT_SECRET"), &ix).is_empty(), "deduped");
        assert_eq!(rules(&d.observe(&read("k3", "2026-11-24T14:00:00Z", "outsider", "JWT_SECRET"), &ix)).len(), 1);
        assert_eq!(d.stats().known_readers, 1, "app-runner only");
        // A secret without allowed readers still learns its baseline from before the window.
        let other = vec![
            read("o0", "2026-11-24T08:00:00Z", "reporting", "OTHER"),
            read("o1", "2026-11-24T10:01:00Z", "reporting", "OTHER"),
            read("o2", "2026-11-24T10:02:00Z", "newcomer", "OTHER"),
        ];
        let a = det().judge_window(&other, judge_from, &ix);
        assert_eq!(a.iter().map(|a| a.event_ids[0].as_str()).collect::<Vec<_>>(), ["o2"]);
        // Nothing before the window is judged by any rule.
        let old_deletion = kms("z0", "2026-11-24T08:30:00Z", "ScheduleKeyDeletion", "x", None, Some("drop-kyc-key"));
        assert!(det().judge_window(std::slice::from_ref(&old_deletion), judge_from, &ix).is_empty());
        assert_eq!(rules(&det().observe_backfill(&[old_deletion], judge_from, &ix)), [RuleId::ScheduleKeyDeletion]);
    }

    #[test]
    fn bulk_secret_reads() {
        let ix = index();
        let mut cfg = DetectionConfig::default();
        cfg.secret_read_new_principal.severity = None;
        // 10 distinct secrets in 10 minutes: silent; the 11th: fires.
        let mut d = Detector::new(cfg.clone(), Some(hours()));
        for i in 0..10u32 {
            assert!(d.observe(&read(&format!("s{i}"), &day(i, 0), "scraper", &format!("S{i}")), &ix).is_empty());
        }
        let a = d.observe(&read("s10", &day(9, 59), "scraper", "S10"), &ix);
        assert_eq!(rules(&a), [RuleId::SecretReadBulk]);
        assert_eq!(a[0].event_ids.len(), 11);
        assert_eq!(a[0].severity, Severity::High);
        assert!(a[0].detail.contains("S10"), "{}", a[0].detail);
        assert!(d.observe(&read("s11", &day(10, 0), "scraper", "S11"), &ix).is_empty(), "deduplicated");
        // Near misses: one secret read 100 times; 11 secrets spread over 20 minutes.
        let mut d = Detector::new(cfg.clone(), Some(hours()));
        for i in 0..100u32 {
            assert!(d.observe(&read(&format!("j{i}"), &day(i % 10, i / 10), "app", "JWT_SECRET"), &ix).is_empty());
        }
        let mut d = Detector::new(cfg.clone(), Some(hours()));
        for i in 0..11u32 {
            assert!(d.observe(&read(&format!("q{i}"), &day(i * 2, 0), "slow", &format!("S{i}")), &ix).is_empty());
        }
        // Out of order: the first read of the 11 arrives last.
        let mut d = Detector::new(cfg, Some(hours()));
        for i in (1..11u32).rev() {
            assert!(d.observe(&read(&format!("o{i}"), &day(i, 0), "scraper", &format!("S{i}")), &ix).is_empty());
        }
        let a = d.observe(&read("o0", &day(0, 0), "scraper", "S0"), &ix);
        assert_eq!(rules(&a), [RuleId::SecretReadBulk]);
        assert_eq!(a[0].id, "secret_read_bulk:o0");
    }

    // ---- regions ---------------------------------------------------------------------

    #[test]
    fn unexpected_region() {
        let ix = index();
        // A managed key used where its rule does not expect it (a replica, say).
        let e = ev_full("g1", &day(0, 0), "Decrypt", "us-east-1", "app-runner", None, Some("alias/drop-kyc-key"), None);
        let a = det().observe(&e, &ix);
        assert_eq!(rules(&a), [RuleId::UnexpectedRegion]);
        assert!(a[0].detail.contains("expects it in eu-north-1"), "{}", a[0].detail);
        // A key created in a region no rule expects.
        let r = r#"{"eventID":"g2","eventTime":"2026-11-24T10:00:00Z","eventName":"CreateKey","eventSource":"kms.amazonaws.com","awsRegion":"ap-south-1",
            "readOnly":false,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/key-admin","userName":"key-admin"},
            "responseElements":{"keyMetadata":{"arn":"arn:aws:kms:ap-south-1:123456789012:key/new","keyId":"new"}}}"#;
        let a = det().observe(&parse_event(r).unwrap(), &ix);
        assert_eq!(rules(&a), [RuleId::UnexpectedRegion]);
        assert_eq!(a[0].region, "ap-south-1");
        // A secret read elsewhere.
        let e = ev_full("g3", &day(0, 0), "GetSecretValue", "us-west-2", "app-runner", None, None, Some("JWT_SECRET"));
        assert_eq!(rules(&det().observe(&e, &ix)), [RuleId::UnexpectedRegion]);
        // Near misses: expected regions; a list call in another region; an unmanaged key
        // in a region some rule expects; STS anywhere.
        assert!(det()
            .observe(&kms("h1", &day(0, 0), "Decrypt", "app-runner", None, Some("drop-kyc-key")), &ix)
            .is_empty());
        let list = ev_full("h2", &day(0, 0), "ListKeys", "ap-south-1", "auditor", None, None, None);
        assert!(det().observe(&list, &ix).is_empty());
        let describe =
            ev_full("h2b", &day(0, 0), "DescribeKey", "us-east-1", "keydeck", None, Some("drop-kyc-key"), None);
        assert!(det().observe(&describe, &ix).is_empty(), "metadata reads never count");
        let secret_meta =
            ev_full("h2c", &day(0, 0), "DescribeSecret", "us-east-1", "x", None, None, Some("JWT_SECRET"));
        assert!(det().observe(&secret_meta, &ix).is_empty());
        let scratch =
            ev_full("h3", &day(0, 0), "Encrypt", "eu-west-1", "dev", None, Some("arn:aws:kms:eu-west-1:1:key/x"), None);
        assert!(det().observe(&scratch, &ix).is_empty());
        let sts = record("h4", &day(0, 0), "AssumeRole", "sts.amazonaws.com", "us-east-1", "dev", None, None, None);
        assert!(det().observe(&parse_event(&sts).unwrap(), &ix).is_empty());
    }

    // ---- general ---------------------------------------------------------------------

    #[test]
    fn rules_can_be_turned_off() {
        let ix = index();
        let mut cfg = DetectionConfig::default();
        for r in RuleId::ALL {
            cfg.rule_mut(r).severity = None;
        }
        let mut d = Detector::new(cfg, Some(hours()));
        let mut n = 0;
        for i in 0..10u32 {
            n += d
                .observe(
                    &kms(
                        &format!("x{i}"),
                        "2026-11-24T02:00:00Z",
                        "ScheduleKeyDeletion",
                        "outsider",
                        Some("AccessDenied"),
                        Some("drop-kyc-key"),
                    ),
                    &ix,
                )
                .len();
            n += d
                .observe(
                    &kms(&format!("y{i}"), "2026-11-24T02:00:00Z", "Decrypt", "outsider", None, Some("drop-kyc-key")),
                    &ix,
                )
                .len();
        }
        assert_eq!(n, 0);
        assert_eq!(d.stats(), DetectorStats::default(), "off rules keep no state");
    }

    #[test]
    fn severity_comes_from_the_config() {
        let ix = index();
        let mut cfg = DetectionConfig::default();
        cfg.schedule_key_deletion.severity = Some(Severity::Low);
        let mut d = Detector::new(cfg, None);
        let a = d.observe(&kms("s", &day(0, 0), "ScheduleKeyDeletion", "a", None, Some("drop-kyc-key")), &ix);
        assert_eq!(a[0].severity, Severity::Low);
    }

    #[test]
    fn one_event_can_raise_several_alerts_with_distinct_ids() {
        let ix = index();
        // Outsider decrypting with the L4 kyc key at night in an unexpected region.
        let e = ev_full(
            "m1",
            "2026-11-24T02:00:00Z",
            "Decrypt",
            "us-east-1",
            "outsider",
            None,
            Some("alias/drop-kyc-key"),
            None,
        );
        let a = det().observe(&e, &ix);
        let mut got = rules(&a);
        got.sort();
        assert_eq!(got, [RuleId::UnexpectedPrincipal, RuleId::OffHoursRestricted, RuleId::UnexpectedRegion]);
        // ReEncrypt between two managed keys: one unexpected-principal alert per key.
        let r = r#"{"eventID":"re","eventTime":"2026-11-24T10:00:00Z","eventName":"ReEncrypt","eventSource":"kms.amazonaws.com","awsRegion":"eu-north-1",
            "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/outsider","userName":"outsider"},
            "requestParameters":{"sourceKeyId":"alias/drop-kyc-key","destinationKeyId":"arn:aws:kms:eu-west-1:123456789012:key/id-drop-backup-key"}}"#;
        let a = det().observe(&parse_event(r).unwrap(), &ix);
        let up: Vec<&Alert> = a.iter().filter(|a| a.rule == RuleId::UnexpectedPrincipal).collect();
        assert_eq!(up.len(), 2);
        assert_ne!(up[0].id, up[1].id);
    }

    #[test]
    fn unknown_and_missing_key_refs_never_panic() {
        let ix = index();
        let mut d = det();
        for (i, k) in ["", "alias/", "arn:", "arn:aws:kms:::key/", "arn:aws:kms:eu-north-1:1:alias/", "\u{1b}[2J", "ø"]
            .iter()
            .enumerate()
        {
            for name in ["Decrypt", "ScheduleKeyDeletion", "DisableKey", "CreateAlias"] {
                let _ = d.observe(&kms(&format!("u{i}{name}"), &day(0, 0), name, "x", None, Some(k)), &ix);
            }
        }
        // An empty index: only key-independent rules can fire.
        let empty = KeyIndex::new();
        let mut d = det();
        assert!(d.observe(&kms("e1", &day(0, 0), "Decrypt", "x", None, Some("alias/drop-kyc-key")), &empty).is_empty());
        assert_eq!(
            rules(&d.observe(&kms("e2", &day(0, 0), "DisableKey", "x", None, Some("k")), &empty)),
            [RuleId::DisableKey]
        );
    }

    #[test]
    fn hostile_settings_never_panic() {
        let ix = index();
        let mut cfg = DetectionConfig::default();
        for r in RuleId::ALL {
            let c = cfg.rule_mut(r);
            c.window_secs = i64::MAX;
            c.threshold = u32::MAX;
        }
        cfg.failed_calls.window_secs = i64::MIN;
        let odd = BusinessHours {
            start_minute: 2000,
            end_minute: 0,
            zone: HoursZone::Offset(i32::MIN),
            weekdays: vec![0, 9],
        };
        let mut d = Detector::new(cfg, Some(odd));
        for (i, t) in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-24T02:00:00Z"].iter().enumerate() {
            for name in ["Decrypt", "ScheduleKeyDeletion", "GetSecretValue"] {
                let e = ev_full(
                    &format!("{i}{name}"),
                    t,
                    name,
                    "eu-north-1",
                    "x",
                    Some("AccessDenied"),
                    Some("drop-kyc-key"),
                    None,
                );
                let _ = d.observe(&e, &ix);
            }
        }
        let west =
            BusinessHours { start_minute: 540, end_minute: 1020, zone: HoursZone::Offset(-300), weekdays: vec![1] };
        // Mon 2026-11-23 13:59 UTC = 08:59 in UTC-05:00: before 09:00; 14:00 is within.
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(!within_business_hours(&west, at("2026-11-23T13:59:00Z")));
        assert!(within_business_hours(&west, at("2026-11-23T14:00:00Z")));
        assert!(describe_hours(&west).ends_with("UTC-05:00"), "{}", describe_hours(&west));
        // A named zone at the ends of chrono's range.
        let oslo = BusinessHours { zone: HoursZone::Named(chrono_tz::Europe::Oslo), ..west };
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let _ = within_business_hours(&oslo, t);
        }
    }

    #[test]
    fn alerts_serialise() {
        let ix = index();
        let a =
            det().observe(&kms("j1", &day(0, 0), "ScheduleKeyDeletion", "key-admin", None, Some("drop-kyc-key")), &ix);
        let v = serde_json::to_value(&a[0]).expect("json");
        assert_eq!(v["rule"], "schedule_key_deletion");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["key"], "drop-kyc-key");
    }

    #[test]
    fn memory_stays_bounded() {
        let ix = index();
        let mut d = det();
        let denial = kms("d", &day(0, 0), "Decrypt", "p", Some("AccessDenied"), None);
        let reading = read("r", &day(0, 0), "q", "S");
        let start = denial.event_time;
        // 200,000 events over 200,000 seconds (~55 h): denials by 50,000 principals,
        // reads of 1,999 secrets by 30,000 principals.
        for i in 0..200_000u32 {
            let mut e = if i % 2 == 0 { denial.clone() } else { reading.clone() };
            e.event_id = i.to_string();
            e.event_time = start + Duration::seconds(i64::from(i));
            if i % 2 == 0 {
                e.principal.arn = format!("arn:aws:iam::1:user/p{}", i % 50_000);
            } else {
                e.principal.arn = format!("arn:aws:iam::1:user/q{}", i % 30_000);
                e.secret_ref = Some(format!("S{}", i % 1_999));
            }
            let _ = d.observe(&e, &ix);
        }
        let s = d.stats();
        assert!(s.failed_principals <= MAX_PRINCIPALS, "{s:?}");
        assert!(s.failed_marks <= MAX_PRINCIPALS * MAX_MARKS_PER_PRINCIPAL, "{s:?}");
        assert!(s.reading_principals <= MAX_PRINCIPALS, "{s:?}");
        assert!(s.known_readers <= MAX_READERS, "{s:?}");
        assert!(s.dedupe_keys <= MAX_DEDUPE_KEYS, "{s:?}");
        // Time pruning: only the last (longest window + grace) of state is held.
        let horizon = (d.config().max_window_secs() + LATE_GRACE_SECS) as usize;
        assert!(s.failed_marks <= (horizon + PRUNE_EVERY as usize) / 2 + 1, "{s:?}");
        assert!(s.read_marks <= (horizon + PRUNE_EVERY as usize) / 2 + 1, "{s:?}");
        eprintln!("{s:?}");
    }
}
