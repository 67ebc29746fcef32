//! The feed: a bounded store of CloudTrail events, in event-time order, each event once.
//!
//! LookupEvents is polled with overlapping windows and CloudTrail delivers late (about 5
//! minutes on average, sometimes much later), so the same event comes back in several
//! polls and new events arrive older than ones already shown. `Feed::insert` takes each
//! poll's batch as it comes and returns exactly the events it had not seen, oldest first,
//! for the detector.
//!
//! Memory is bounded by the capacity given to `Feed::new`:
//! * at most `capacity` events are kept (the oldest by event time go first);
//! * the ids of events pushed out by the bound are remembered, at most `capacity` of
//!   them, so an overlapping poll cannot bring an evicted event back as new;
//! * so at most `2 × capacity` ids are held (`FeedStats::remembered_ids`).
//!
//! When an evicted id is finally forgotten, its event time becomes the feed's *floor*:
//! an event at or before the floor can no longer be told apart from one already seen,
//! so it is dropped and counted (`FeedStats::dropped_too_old`) rather than shown twice.
//! With the default sizes the floor is thousands of events behind the newest one,
//! hours beyond any poll overlap.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::inventory::Inventory;
use super::policy::Policy;
use super::reference::key_id_of;
use super::trail::{parse_event, TrailEvent, IAM_SOURCE};

/// What the feed holds and has turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FeedStats {
    pub capacity: usize,
    /// Events kept (≤ capacity).
    pub retained: usize,
    /// Ids of evicted events still remembered (≤ capacity).
    pub evicted_ids: usize,
    /// All ids held (≤ 2 × capacity).
    pub remembered_ids: usize,
    /// Events skipped because they were already seen.
    pub duplicates: u64,
    /// Events dropped because they were older than what the feed can still deduplicate.
    pub dropped_too_old: u64,
}

/// A bounded, deduplicating, time-ordered ring of events.
#[derive(Debug, Clone)]
pub struct Feed {
    capacity: usize,
    /// Kept events by (event time, arrival number).
    events: BTreeMap<(DateTime<Utc>, u64), TrailEvent>,
    /// Ids of events pushed out by the capacity bound, by (event time, arrival number).
    evicted: BTreeMap<(DateTime<Utc>, u64), String>,
    /// Ids of kept and evicted events.
    ids: HashSet<String>,
    floor: Option<DateTime<Utc>>,
    seq: u64,
    duplicates: u64,
    dropped_too_old: u64,
}

impl Feed {
    /// A feed keeping at most `capacity` events (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            events: BTreeMap::new(),
            evicted: BTreeMap::new(),
            ids: HashSet::new(),
            floor: None,
            seq: 0,
            duplicates: 0,
            dropped_too_old: 0,
        }
    }

    /// Insert a batch (any order; duplicates within and across batches by event id).
    /// Returns the events that were new, in event-time order, so the caller runs the
    /// detector on exactly those. A new event older than everything kept in a full feed
    /// is returned (the detector should see it) but not kept.
    pub fn insert(&mut self, mut batch: Vec<TrailEvent>) -> Vec<TrailEvent> {
        batch.sort_by(|a, b| a.event_time.cmp(&b.event_time).then_with(|| a.event_id.cmp(&b.event_id)));
        let mut fresh = Vec::new();
        for ev in batch {
            if self.ids.contains(ev.event_id.as_str()) {
                self.duplicates += 1;
                continue;
            }
            if self.floor.is_some_and(|f| ev.event_time <= f) {
                self.dropped_too_old += 1;
                continue;
            }
            self.ids.insert(ev.event_id.clone());
            self.seq += 1;
            fresh.push(ev.clone());
            self.events.insert((ev.event_time, self.seq), ev);
            while self.events.len() > self.capacity {
                let Some((at, old)) = self.events.pop_first() else { break };
                self.evicted.insert(at, old.event_id);
            }
            while self.evicted.len() > self.capacity {
                let Some(((t, _), id)) = self.evicted.pop_first() else { break };
                self.ids.remove(&id);
                self.floor = Some(self.floor.map_or(t, |f| f.max(t)));
            }
        }
        fresh
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Kept events, oldest → newest by event time (arrival order within one second).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &TrailEvent> + ExactSizeIterator {
        self.events.values()
    }

    /// The newest kept event's time.
    pub fn newest_time(&self) -> Option<DateTime<Utc>> {
        self.events.last_key_value().map(|((t, _), _)| *t)
    }

    /// The oldest kept event's time.
    pub fn oldest_time(&self) -> Option<DateTime<Utc>> {
        self.events.first_key_value().map(|((t, _), _)| *t)
    }

    /// A kept event by id.
    pub fn get(&self, event_id: &str) -> Option<&TrailEvent> {
        if !self.ids.contains(event_id) {
            return None;
        }
        self.events.values().find(|e| e.event_id == event_id)
    }

    /// Whether an event id is known (kept or recently evicted).
    pub fn has_seen(&self, event_id: &str) -> bool {
        self.ids.contains(event_id)
    }

    pub fn stats(&self) -> FeedStats {
        FeedStats {
            capacity: self.capacity,
            retained: self.events.len(),
            evicted_ids: self.evicted.len(),
            remembered_ids: self.ids.len(),
            duplicates: self.duplicates,
            dropped_too_old: self.dropped_too_old,
        }
    }
}

/// Does an IAM event change one of the policy's key roles (or a principal a rule allows)?
/// Only those IAM events belong in the feed (IAM is read for `[policy] key_roles`).
pub fn touches_key_role(ev: &TrailEvent, policy: &Policy) -> bool {
    let Some(subject) = ev.iam_subject() else { return false };
    policy.key_roles.iter().any(|r| r == &subject)
        || policy.keys.iter().chain(policy.secrets.iter()).any(|rule| rule.allowed_principals.contains(&subject))
}

/// CloudTrail records (the `CloudTrailEvent` JSON of LookupEvents) parsed for the feed:
/// the events that belong in it, and one message per record that could not be read.
pub fn parse_records<'a>(
    records: impl IntoIterator<Item = &'a str>,
    policy: &Policy,
) -> (Vec<TrailEvent>, Vec<String>) {
    let mut events = Vec::new();
    let mut unreadable = Vec::new();
    for raw in records {
        match parse_event(raw) {
            Ok(ev) if ev.event_source == IAM_SOURCE && !touches_key_role(&ev, policy) => {}
            Ok(ev) => events.push(ev),
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    (events, unreadable)
}

/// KMS calls that change what the inventory shows about a key.
pub const KEY_CHANGES: &[&str] = &[
    "CreateKey",
    "DisableKey",
    "EnableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKeyOnDemand",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "TagResource",
    "UntagResource",
    "PutKeyPolicy",
    "UpdateKeyDescription",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "ReplicateKey",
    "UpdatePrimaryRegion",
];

/// Secrets Manager calls that change what the inventory shows about a secret.
pub const SECRET_CHANGES: &[&str] = &[
    "CreateSecret",
    "DeleteSecret",
    "RestoreSecret",
    "RotateSecret",
    "CancelRotateSecret",
    "PutSecretValue",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "TagResource",
    "UntagResource",
];

/// The keys (region, key id) and secrets (region, ARN or reference) that successful
/// mutating calls in `events` touched, in the selected `regions`: what a change-driven
/// inventory re-reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    pub keys: BTreeSet<(String, String)>,
    pub secrets: BTreeSet<(String, String)>,
}

/// See [`Changed`]. A key the inventory does not know yet is named by the key id in its
/// reference; an alias that names no known key is skipped (nothing to re-read by).
pub fn changed_items(events: &[TrailEvent], inv: &Inventory, regions: &[String]) -> Changed {
    let mut out = Changed::default();
    for ev in events.iter().filter(|e| e.succeeded() && regions.contains(&e.region)) {
        if ev.is_kms() && KEY_CHANGES.contains(&ev.event_name.as_str()) {
            for r in &ev.key_refs {
                let id = inv.find_key(&ev.region, r).map(|k| k.key_id.as_str()).or_else(|| key_id_of(r));
                if let Some(id) = id {
                    out.keys.insert((ev.region.clone(), id.to_owned()));
                }
            }
        }
        if ev.is_secrets_manager() && SECRET_CHANGES.contains(&ev.event_name.as_str()) {
            if let Some(r) = &ev.secret_ref {
                let id = inv.find_secret(&ev.region, r).map(|s| s.arn.clone()).unwrap_or_else(|| r.clone());
                out.secrets.insert((ev.region.clone(), id));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::trail::{Principal, PrincipalKind};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).single().unwrap_or_default()
    }

    fn ev(id: &str, secs: i64) -> TrailEvent {
        TrailEvent {
            event_id: id.to_owned(),
            event_time: t0() + chrono::Duration::seconds(secs),
            event_name: "Decrypt".into(),
            event_source: "kms.amazonaws.com".into(),
            region: "eu-north-1".into(),
            principal: Principal {
                kind: PrincipalKind::IamUser,
                arn: String::new(),
                name: "u".into(),
                account: String::new(),
                access_key_id: String::new(),
                role: String::new(),
                identity_type: "IAMUser".into(),
                ..Principal::default()
            },
            source_ip: String::new(),
            user_agent: String::new(),
            read_only: Some(true),
            error_code: None,
            error_message: None,
            key_refs: Vec::new(),
            secret_ref: None,
            event_type: String::new(),
            raw: String::new(),
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a TrailEvent>) -> Vec<&'a str> {
        it.map(|e| e.event_id.as_str()).collect()
    }

    #[test]
    fn overlapping_batches_are_deduplicated() {
        let mut f = Feed::new(100);
        // LookupEvents answers newest first.
        let new = f.insert(vec![ev("c", 30), ev("b", 20), ev("a", 10)]);
        assert_eq!(ids(new.iter()), ["a", "b", "c"]);
        // The next poll overlaps: b and c again, d new.
        let new = f.insert(vec![ev("d", 40), ev("c", 30), ev("b", 20)]);
        assert_eq!(ids(new.iter()), ["d"]);
        // Duplicates within one batch.
        let new = f.insert(vec![ev("e", 50), ev("e", 50), ev("d", 40)]);
        assert_eq!(ids(new.iter()), ["e"]);
        assert_eq!(f.len(), 5);
        assert_eq!(f.stats().duplicates, 4);
        assert!(f.insert(vec![]).is_empty());
    }

    #[test]
    fn late_events_land_in_order() {
        let mut f = Feed::new(100);
        f.insert(vec![ev("a", 0), ev("c", 600)]);
        // Delivered five minutes late, older than c.
        let new = f.insert(vec![ev("c", 600), ev("b", 300)]);
        assert_eq!(ids(new.iter()), ["b"]);
        assert_eq!(ids(f.iter()), ["a", "b", "c"]);
        assert_eq!(ids(f.iter().rev()), ["c", "b", "a"]);
        assert_eq!(f.newest_time(), Some(t0() + chrono::Duration::seconds(600)));
        assert_eq!(f.oldest_time(), Some(t0()));
        // Same second: arrival order.
        f.insert(vec![ev("x", 300)]);
        assert_eq!(ids(f.iter()), ["a", "b", "x", "c"]);
        assert_eq!(f.get("x").map(|e| e.event_id.as_str()), Some("x"));
        assert!(f.get("zz").is_none());
    }

    #[test]
    fn capacity_bound_drops_the_oldest_and_remembers_their_ids() {
        let mut f = Feed::new(3);
        f.insert((0..5).map(|i| ev(&format!("e{i}"), i)).collect());
        assert_eq!(ids(f.iter()), ["e2", "e3", "e4"]);
        // Evicted e0, e1 come back in an overlapping poll: not new.
        assert!(f.insert(vec![ev("e0", 0), ev("e1", 1)]).is_empty());
        // A genuinely new event older than everything kept: returned, not kept.
        let new = f.insert(vec![ev("late", 1)]);
        assert_eq!(ids(new.iter()), ["late"]);
        assert_eq!(ids(f.iter()), ["e2", "e3", "e4"]);
        assert!(f.has_seen("late"));
        let s = f.stats();
        assert_eq!((s.retained, s.evicted_ids, s.remembered_ids), (3, 3, 6));
    }

    #[test]
    fn events_older_than_the_floor_are_dropped_not_repeated() {
        let mut f = Feed::new(2);
        f.insert((0..10).map(|i| ev(&format!("e{i}"), i * 10)).collect());
        // e0.. were forgotten: their times are below the floor, so they cannot come back.
        assert!(!f.has_seen("e0"));
        assert!(f.insert(vec![ev("e0", 0), ev("new-but-ancient", 5)]).is_empty());
        assert_eq!(f.stats().dropped_too_old, 2);
        // Above the floor, new events still come in.
        assert_eq!(f.insert(vec![ev("n", 95)]).len(), 1);
    }

    #[test]
    fn zero_capacity_is_one() {
        let mut f = Feed::new(0);
        f.insert(vec![ev("a", 0), ev("b", 1)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f.capacity(), 1);
        assert!(!f.is_empty());
    }

    fn run(n: usize, capacity: usize, batch: usize) -> (FeedStats, usize) {
        let mut f = Feed::new(capacity);
        let mut fresh = 0usize;
        let mut next = 0usize;
        while next < n + batch {
            // Each poll, newest first: this poll's events but every 7th (delivered late,
            // in the next poll), the previous poll's late ones, and the previous poll's
            // last 10 again (the overlapping window).
            let this = next.min(n)..(next + batch).min(n);
            let prev = next.saturating_sub(batch).min(n)..next.min(n);
            let mut b: Vec<TrailEvent> =
                this.clone().rev().filter(|i| i % 7 != 0).map(|i| ev(&i.to_string(), i as i64)).collect();
            b.extend(prev.clone().filter(|i| i % 7 == 0).map(|i| ev(&i.to_string(), i as i64)));
            b.extend(prev.rev().take(10).map(|i| ev(&i.to_string(), i as i64)));
            fresh += f.insert(b).len();
            next += batch;
            let s = f.stats();
            assert!(s.retained <= capacity && s.evicted_ids <= capacity && s.remembered_ids <= 2 * capacity, "{s:?}");
        }
        (f.stats(), fresh)
    }

    #[test]
    fn bounds_hold_over_100k_events() {
        let (s, fresh) = run(100_000, 10_000, 50);
        assert_eq!(fresh, 100_000, "every event exactly once");
        assert_eq!((s.retained, s.evicted_ids, s.remembered_ids), (10_000, 10_000, 20_000));
        assert_eq!(s.dropped_too_old, 0);
    }

    #[test]
    #[ignore = "1M events: run with --ignored (the bench covers it in release)"]
    fn bounds_hold_over_1m_events() {
        let (s, fresh) = run(1_000_000, 10_000, 50);
        assert_eq!(fresh, 1_000_000);
        assert!(s.remembered_ids <= 20_000);
    }
}
