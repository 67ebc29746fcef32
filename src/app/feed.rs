//! The feed's part of the console's state: deduplicated CloudTrail events, the detector
//! and its alerts, acknowledgements, and the feed and alerts views' cursors. Model only:
//! `update::feed` changes it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::detect::{Alert, Detector, KeyIndex};
use crate::domain::feed::Feed;
use crate::domain::policy::Policy;
use crate::domain::rules::Severity;
use crate::domain::trail::TrailEvent;

/// Events kept in memory (older ones drop off; the alerts they raised stay).
pub const DEFAULT_FEED_CAPACITY: usize = 5_000;
/// Alerts kept in memory.
pub const MAX_ALERTS: usize = 1_000;

pub struct FeedState {
    pub events: Feed,
    pub detector: Detector,
    pub keys: KeyIndex,
    /// Alerts raised, oldest first.
    pub alerts: Vec<Alert>,
    /// Acknowledged alert ids → who acknowledged them.
    pub acked: HashMap<String, String>,
    /// While frozen, the view shows this snapshot; events and alerts keep flowing.
    pub frozen: Option<Vec<TrailEvent>>,
    pub filter: String,
    pub cursor: usize,
    /// The feed table's first row on screen.
    pub offset: usize,
    pub selected_id: Option<String>,
    pub alert_cursor: usize,
    /// The alerts table's first row on screen.
    pub alert_offset: usize,
    pub detail_open: bool,
    /// The last poll problem (not throttling: that is retried silently).
    pub problem: Option<String>,
    pub calls: usize,
    pub throttled: usize,
    pub polls: usize,
    /// Records that could not be parsed (shown as a count, never a crash).
    pub skipped: usize,
    pub last_poll: Option<DateTime<Utc>>,
    /// The inventory item the operator jumped from (`e`), to go back to (`b`).
    pub jumped_from: Option<String>,
    /// Regions whose first poll (the backfill) has been seen: the detector learns the
    /// baseline from a backfill before judging it.
    pub backfilled: std::collections::HashSet<String>,
}

impl std::fmt::Debug for FeedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedState").field("events", &self.events.len()).field("alerts", &self.alerts.len()).finish()
    }
}

impl FeedState {
    pub fn new(capacity: usize, policy: &Policy) -> Self {
        Self {
            events: Feed::new(capacity),
            detector: Detector::new(policy.detections.clone(), policy.business_hours.clone()),
            keys: KeyIndex::new(),
            alerts: Vec::new(),
            acked: HashMap::new(),
            frozen: None,
            filter: String::new(),
            cursor: 0,
            offset: 0,
            selected_id: None,
            alert_cursor: 0,
            alert_offset: 0,
            detail_open: false,
            problem: None,
            calls: 0,
            throttled: 0,
            polls: 0,
            skipped: 0,
            last_poll: None,
            jumped_from: None,
            backfilled: std::collections::HashSet::new(),
        }
    }

    /// The key alias (or secret name) an event is about, for display and filtering.
    pub fn subject(&self, ev: &TrailEvent) -> String {
        self.keys.subject(ev)
    }

    /// The events the feed view shows, newest first, filtered.
    pub fn rows(&self) -> Vec<&TrailEvent> {
        let source: Box<dyn Iterator<Item = &TrailEvent>> = match &self.frozen {
            Some(snap) => Box::new(snap.iter().rev()),
            None => Box::new(self.events.iter().rev()),
        };
        source.filter(|e| self.matches(e)).collect()
    }

    fn matches(&self, e: &TrailEvent) -> bool {
        if self.filter.trim().is_empty() {
            return true;
        }
        let subject = self.subject(e);
        let label = crate::domain::approval_event::event_label(e);
        let fields = [
            e.event_name.as_str(),
            label.as_ref(),
            e.principal.name.as_str(),
            e.principal.arn.as_str(),
            subject.as_str(),
            e.outcome(),
            e.region.as_str(),
            e.source_ip.as_str(),
            e.event_source.as_str(),
        ];
        crate::domain::filter::matches(&self.filter, fields.into_iter().chain(e.key_refs.iter().map(String::as_str)))
    }

    /// Unacknowledged alerts, most severe then newest first.
    pub fn open_alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.alerts.iter().filter(|a| !self.acked.contains_key(&a.id)).collect();
        v.sort_by(|a, b| a.severity.cmp(&b.severity).then(b.at.cmp(&a.at)));
        v
    }

    /// All alerts for the alerts view: unacknowledged first, then by severity, newest first.
    pub fn alert_rows(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.alerts.iter().collect();
        v.sort_by(|a, b| {
            self.acked
                .contains_key(&a.id)
                .cmp(&self.acked.contains_key(&b.id))
                .then(a.severity.cmp(&b.severity))
                .then(b.at.cmp(&a.at))
        });
        v
    }

    /// The most severe alert an event took part in.
    pub fn severity_of(&self, event_id: &str) -> Option<Severity> {
        self.alerts.iter().filter(|a| a.event_ids.iter().any(|e| e == event_id)).map(|a| a.severity).min()
    }
}
