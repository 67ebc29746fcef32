//! The feed's part of the update loop: raw CloudTrail records in, deduplicated events,
//! alerts from the detection rules, and the keys and secrets to re-read out.

use super::scroll::keep_visible;
use crate::app::feed::MAX_ALERTS;
use crate::app::msg::{Action, PollResult};
use crate::app::state::{State, Status};
use crate::domain::feed::parse_records;
use crate::domain::inventory::{KeyItem, SecretItem};
use crate::domain::trail::TrailEvent;

/// The part of the first poll's window (up to its end) that the new-reader rule judges;
/// the rest before it is the rule's baseline.
pub const BACKFILL_JUDGED_MINUTES: i64 = 60;

/// Apply one poll: dedupe, detect, and say which keys and secrets changed.
pub fn on_polled(state: &mut State, r: PollResult) -> Vec<Action> {
    let (parsed, unreadable) = parse_records(r.records.iter().map(|(_, raw)| raw.as_str()), &state.policy);
    for e in &unreadable {
        tracing::warn!(region = %r.region, "skipped a CloudTrail record: {e}");
    }
    state.feed.skipped += unreadable.len();
    state.feed.calls += r.calls;
    state.feed.throttled += r.throttled;
    state.feed.polls += 1;
    state.feed.last_poll = Some(r.finished);
    state.feed.problem = None;
    // Live tail: a cursor on the newest event follows new events; a cursor the operator
    // moved down stays on its event.
    let following = state.feed.cursor == 0;
    let new = state.feed.events.insert(parsed);
    let mut raised = Vec::new();
    if state.feed.backfilled.insert(r.region.clone()) {
        // The first poll (two hours): the new-reader rule learns from its older part and
        // judges its last hour, so the events judged never vouch for themselves.
        let judge_from = r.until - chrono::Duration::minutes(BACKFILL_JUDGED_MINUTES);
        raised = state.feed.detector.observe_backfill(&new, judge_from, &state.feed.keys);
    } else {
        for ev in &new {
            raised.extend(state.feed.detector.observe(ev, &state.feed.keys));
        }
    }
    for a in raised {
        if !state.feed.alerts.iter().any(|x| x.id == a.id) {
            state.feed.alerts.push(a);
        }
    }
    if state.feed.alerts.len() > MAX_ALERTS {
        let drop = state.feed.alerts.len() - MAX_ALERTS;
        state.feed.alerts.drain(..drop);
    }
    if following {
        feed_move(state, 0);
    } else {
        keep_feed_cursor(state);
    }
    let mut actions = changed_items(state, &new);
    // A request changed in the store: list it again (the view and the header follow).
    // Reads of the store (each console's own listings) change nothing.
    if new.iter().any(crate::domain::approval_event::changes_request) {
        actions.extend(super::approvals::reload(state));
    }
    actions
}

/// Change-driven inventory: re-read the keys and secrets that successful mutating calls
/// touched (`domain::feed::changed_items`), one action per region and service.
fn changed_items(state: &State, new: &[TrailEvent]) -> Vec<Action> {
    let Some(inv) = &state.inventory else { return vec![] };
    let changed = crate::domain::feed::changed_items(new, inv, &state.session.regions);
    let mut actions = Vec::new();
    for region in state.session.regions.iter() {
        let k: Vec<String> = changed.keys.iter().filter(|(r, _)| r == region).map(|(_, id)| id.clone()).collect();
        if !k.is_empty() {
            actions.push(Action::RereadKeys { region: region.clone(), key_ids: k });
        }
        let s: Vec<String> = changed.secrets.iter().filter(|(r, _)| r == region).map(|(_, id)| id.clone()).collect();
        if !s.is_empty() {
            actions.push(Action::RereadSecrets { region: region.clone(), secret_ids: s });
        }
    }
    actions
}

/// Replace (or add, or drop) re-read keys in the inventory and judge again.
pub fn on_keys_reread(state: &mut State, region: &str, items: Vec<KeyItem>, gone: Vec<String>) {
    let Some(inv) = state.inventory.as_mut() else { return };
    let Some(ri) = inv.regions.iter_mut().find(|r| r.region == region) else { return };
    for k in items {
        match ri.keys.iter_mut().find(|x| x.key_id == k.key_id) {
            Some(slot) => {
                // Keep the ARN the full refresh saw when the re-read could not learn it.
                let arn = if k.arn.is_empty() { slot.arn.clone() } else { k.arn.clone() };
                *slot = KeyItem { arn, ..k };
            }
            None => ri.keys.push(k),
        }
    }
    ri.keys.retain(|k| !gone.contains(&k.key_id));
    state.reassess();
}

/// Replace (or add, or drop) re-read secrets in the inventory and judge again.
pub fn on_secrets_reread(state: &mut State, region: &str, items: Vec<SecretItem>, gone: Vec<String>) {
    let Some(inv) = state.inventory.as_mut() else { return };
    let Some(ri) = inv.regions.iter_mut().find(|r| r.region == region) else { return };
    for s in items.into_iter().filter(|s| !s.is_approval_request()) {
        match ri.secrets.iter_mut().find(|x| x.arn == s.arn || x.name == s.name) {
            Some(slot) => *slot = s,
            None => ri.secrets.push(s),
        }
    }
    ri.secrets.retain(|s| !gone.contains(&s.arn) && !gone.contains(&s.name));
    state.reassess();
}

/// After the feed's rows changed (new events, filter, freeze), keep the cursor on the
/// same event and the rows on screen with it: events arriving above shift both.
pub fn keep_feed_cursor(state: &mut State) {
    let (found, clamped, id_at, len) = {
        let rows = state.feed.rows();
        let found = state.feed.selected_id.as_ref().and_then(|id| rows.iter().position(|e| &e.event_id == id));
        let clamped = state.feed.cursor.min(rows.len().saturating_sub(1));
        (found, clamped, rows.get(clamped).map(|e| e.event_id.clone()), rows.len())
    };
    match found {
        Some(i) => {
            if i > state.feed.cursor {
                state.feed.offset += i - state.feed.cursor;
            } else {
                state.feed.offset = state.feed.offset.saturating_sub(state.feed.cursor - i);
            }
            state.feed.cursor = i;
        }
        None => {
            state.feed.cursor = clamped;
            state.feed.selected_id = id_at;
        }
    }
    state.feed.offset = keep_visible(state.feed.cursor, state.feed.offset, state.page_rows.feed, len);
}

pub fn feed_move(state: &mut State, idx: usize) {
    let len = state.feed.rows().len();
    state.feed.cursor = if len == 0 { 0 } else { idx.min(len - 1) };
    state.feed.offset = keep_visible(state.feed.cursor, state.feed.offset, state.page_rows.feed, len);
    let id = state.feed.rows().get(state.feed.cursor).map(|e| e.event_id.clone());
    state.feed.selected_id = id;
}

pub fn alert_move(state: &mut State, idx: usize) {
    let len = state.feed.alert_rows().len();
    state.feed.alert_cursor = if len == 0 { 0 } else { idx.min(len - 1) };
    state.feed.alert_offset =
        keep_visible(state.feed.alert_cursor, state.feed.alert_offset, state.page_rows.alerts, len);
}

/// Toggle the frozen snapshot.
pub fn toggle_freeze(state: &mut State) {
    state.feed.frozen = match state.feed.frozen.take() {
        Some(_) => None,
        None => Some(state.feed.events.iter().cloned().collect()),
    };
    state.status = Some(Status {
        text: if state.feed.frozen.is_some() {
            "feed frozen: the view stops moving; events and alerts keep arriving (f to unfreeze)".into()
        } else {
            "feed live".into()
        },
        error: false,
    });
    keep_feed_cursor(state);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::msg::Msg;
    use crate::app::state::{Session, View};
    use crate::app::update;
    use crate::domain::inventory::fixtures::key;
    use crate::domain::inventory::{Inventory, KeyState, RegionInventory};
    use crate::domain::policy::Policy;
    use crate::domain::rules::Severity;
    use crate::domain::trail::fixtures::record;
    use chrono::{DateTime, TimeZone, Utc};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("date")
    }

    /// A console with the demo's keys, identity and regions.
    pub fn state() -> State {
        let policy = std::sync::Arc::new(Policy::default_policy().expect("policy"));
        let session = Session {
            identity: crate::domain::identity::CallerIdentity {
                arn: "arn:aws:iam::123456789012:user/security-lead".into(),
                account: "123456789012".into(),
                user_id: "AIDA".into(),
            },
            regions: vec!["eu-north-1".into(), "eu-west-1".into()],
            ..Default::default()
        };
        let mut s = State::new(session, policy, now(), false);
        let inv = Inventory {
            regions: vec![
                RegionInventory {
                    region: "eu-north-1".into(),
                    keys: vec![
                        key("eu-north-1", "drop-kyc-key", KeyState::Enabled),
                        key("eu-north-1", "drop-national-id-key", KeyState::Enabled),
                    ],
                    ..Default::default()
                },
                RegionInventory { region: "eu-west-1".into(), ..Default::default() },
            ],
            fetched_at: Some(now()),
        };
        update(&mut s, Msg::InventoryLoaded(inv));
        s
    }

    pub const KYC: &str = "arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key";

    pub fn ev(id: &str, secs: i64, name: &str, user: &str, error: Option<&str>) -> (String, String) {
        let t = (now() + chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        (id.to_owned(), record(id, &t, name, "kms.amazonaws.com", "eu-north-1", user, error, Some(KYC), None))
    }

    pub fn poll(records: Vec<(String, String)>) -> Msg {
        Msg::TrailPolled(PollResult {
            region: "eu-north-1".into(),
            records,
            calls: 2,
            throttled: 0,
            until: now(),
            finished: now(),
        })
    }

    fn press(s: &mut State, c: KeyCode) -> Vec<Action> {
        update(s, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    #[test]
    fn overlapping_polls_show_each_event_once_in_time_order() {
        let mut s = state();
        update(
            &mut s,
            poll(vec![ev("e2", 20, "Decrypt", "app-runner", None), ev("e1", 10, "Decrypt", "app-runner", None)]),
        );
        // The next poll overlaps, and a late event (e0) arrives with an older time.
        update(
            &mut s,
            poll(vec![ev("e2", 20, "Decrypt", "app-runner", None), ev("e0", 5, "Decrypt", "app-runner", None)]),
        );
        let ids: Vec<&str> = s.feed.rows().iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, vec!["e2", "e1", "e0"], "newest first, each once");
        assert_eq!(s.feed.subject(s.feed.rows()[0]), "drop-kyc-key", "key named by alias through the inventory");
        assert_eq!(s.feed.calls, 4);
    }

    #[test]
    fn unreadable_records_are_skipped_and_counted() {
        let mut s = state();
        update(
            &mut s,
            poll(vec![
                ("x".into(), "{not json".into()),
                ("y".into(), "[]".into()),
                ev("e1", 1, "Decrypt", "app-runner", None),
            ]),
        );
        assert_eq!(s.feed.skipped, 2);
        assert_eq!(s.feed.rows().len(), 1);
    }

    #[test]
    fn schedule_key_deletion_alerts_and_rereads_the_key() {
        let mut s = state();
        // The first poll of a region is the backfill; the second is live.
        update(&mut s, poll(vec![ev("b0", 0, "DescribeKey", "key-auditor", None)]));
        let actions = update(&mut s, poll(vec![ev("d1", 30, "ScheduleKeyDeletion", "security-lead", None)]));
        assert_eq!(
            actions,
            vec![Action::RereadKeys { region: "eu-north-1".into(), key_ids: vec!["id-drop-kyc-key".into()] }]
        );
        let open = s.feed.open_alerts();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].severity, Severity::Critical);
        assert_eq!(open[0].key.as_deref(), Some("drop-kyc-key"));
        assert_eq!(s.feed.severity_of("d1"), Some(Severity::Critical));
    }

    fn secret_read(id: &str, secs: i64, user: &str, secret: &str) -> (String, String) {
        let t = (now() + chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let r = record(
            id,
            &t,
            "GetSecretValue",
            "secretsmanager.amazonaws.com",
            "eu-north-1",
            user,
            None,
            None,
            Some(secret),
        );
        (id.to_owned(), r)
    }

    #[test]
    fn the_first_backfill_learns_readers_from_before_the_part_it_judges() {
        let mut s = state();
        // The first poll ends at now(): its last hour is judged against the part before.
        update(
            &mut s,
            poll(vec![
                secret_read("r0", -90 * 60, "reporting", "SOME_SECRET"),
                secret_read("r1", -10 * 60, "reporting", "SOME_SECRET"),
                secret_read("r2", -5 * 60, "newcomer", "SOME_SECRET"),
                // JWT_SECRET allows app-runner only: an outsider alerts, baseline or not.
                secret_read("r3", -80 * 60, "outsider", "JWT_SECRET"),
            ]),
        );
        let mut fired: Vec<&str> = s.feed.alerts.iter().map(|a| a.event_ids[0].as_str()).collect();
        fired.sort_unstable();
        assert_eq!(fired, ["r2", "r3"]);
        // Live: the outsider is still not a known reader.
        update(&mut s, poll(vec![secret_read("r4", 30 * 60, "outsider", "JWT_SECRET")]));
        assert!(s.feed.alerts.iter().any(|a| a.event_ids[0] == "r4"));
    }

    #[test]
    fn failed_or_read_only_calls_do_not_reread() {
        let mut s = state();
        update(&mut s, poll(vec![]));
        let actions = update(
            &mut s,
            poll(vec![
                ev("a", 1, "DisableKey", "outsider", Some("AccessDenied")),
                ev("b", 2, "DescribeKey", "key-admin", None),
            ]),
        );
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn reread_replaces_the_key_and_judges_again() {
        let mut s = state();
        let mut k = key("eu-north-1", "drop-kyc-key", KeyState::Disabled);
        k.arn = String::new();
        update(&mut s, Msg::KeysReread { region: "eu-north-1".into(), items: vec![k], gone: vec![], problems: vec![] });
        let item = s.assessment.item(KYC).expect("same ARN kept");
        assert_eq!(item.state, "Disabled");
        update(
            &mut s,
            Msg::KeysReread {
                region: "eu-north-1".into(),
                items: vec![],
                gone: vec!["id-drop-kyc-key".into()],
                problems: vec![],
            },
        );
        assert!(s.assessment.item(KYC).is_none(), "a key that no longer exists leaves the inventory");
    }

    #[test]
    fn freeze_stops_the_view_not_the_alerts() {
        let mut s = state();
        update(&mut s, poll(vec![ev("e1", 1, "Decrypt", "app-runner", None)]));
        press(&mut s, KeyCode::Char('2'));
        assert_eq!(s.view, View::Feed);
        press(&mut s, KeyCode::Char('f'));
        update(&mut s, poll(vec![ev("d1", 30, "ScheduleKeyDeletion", "security-lead", None)]));
        assert_eq!(s.feed.rows().len(), 1, "frozen view");
        assert_eq!(s.feed.open_alerts().len(), 1, "alerts still fire");
        press(&mut s, KeyCode::Char('f'));
        assert_eq!(s.feed.rows().len(), 2);
    }

    #[test]
    fn jump_from_a_key_to_its_events_and_back() {
        let mut s = state();
        update(&mut s, poll(vec![ev("e1", 1, "Decrypt", "app-runner", None)]));
        while s.rows()[s.cursor].name != "drop-kyc-key" {
            press(&mut s, KeyCode::Down);
        }
        press(&mut s, KeyCode::Char('e'));
        assert_eq!((s.view, s.feed.filter.as_str()), (View::Feed, "drop-kyc-key"));
        assert_eq!(s.feed.rows().len(), 1);
        press(&mut s, KeyCode::Char('b'));
        assert_eq!(s.view, View::Inventory);
        assert_eq!(s.rows()[s.cursor].name, "drop-kyc-key");
        assert!(s.feed.filter.is_empty());
    }

    #[test]
    fn acknowledging_goes_through_the_journal() {
        let mut s = state();
        update(&mut s, poll(vec![]));
        update(&mut s, poll(vec![ev("d1", 30, "ScheduleKeyDeletion", "security-lead", None)]));
        press(&mut s, KeyCode::Char('3'));
        let actions = press(&mut s, KeyCode::Char('x'));
        let (alert_id, actor) = match actions.as_slice() {
            [Action::SaveAck { alert_id, actor, .. }] => (alert_id.clone(), actor.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(actor, "arn:aws:iam::123456789012:user/security-lead");
        assert_eq!(s.feed.open_alerts().len(), 1, "not acknowledged until the journal says so");
        update(&mut s, Msg::AckSaved(Ok((alert_id, actor))));
        assert!(s.feed.open_alerts().is_empty());
        assert!(press(&mut s, KeyCode::Char('x')).is_empty(), "already acknowledged");
    }

    fn iam(id: &str, name: &str, user: &str) -> (String, String) {
        let raw = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/security-lead", "userName": "security-lead", "accountId": "123456789012"},
            "eventTime": "2026-11-23T12:00:05Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "127.0.0.1",
            "requestParameters": {"userName": user, "status": "Inactive"},
            "eventID": id,
        });
        (id.to_owned(), raw.to_string())
    }

    #[test]
    fn iam_events_show_only_when_they_touch_a_key_role() {
        let mut s = state();
        update(
            &mut s,
            poll(vec![iam("i1", "UpdateAccessKey", "app-runner"), iam("i2", "UpdateAccessKey", "outsider")]),
        );
        let rows = s.feed.rows();
        assert_eq!(rows.len(), 1, "only the key role's change");
        assert_eq!(s.feed.subject(rows[0]), "iam:app-runner");
    }

    #[test]
    fn the_top_follows_new_events_a_moved_cursor_stays() {
        let mut s = state();
        update(
            &mut s,
            poll(vec![ev("e1", 1, "Decrypt", "app-runner", None), ev("e2", 2, "Decrypt", "app-runner", None)]),
        );
        press(&mut s, KeyCode::Char('2'));
        assert_eq!(s.feed.selected_id.as_deref(), Some("e2"));
        update(&mut s, poll(vec![ev("e3", 3, "Decrypt", "app-runner", None)]));
        assert_eq!((s.feed.cursor, s.feed.selected_id.as_deref()), (0, Some("e3")), "following the tail");
        press(&mut s, KeyCode::Down);
        assert_eq!(s.feed.selected_id.as_deref(), Some("e2"));
        update(&mut s, poll(vec![ev("e4", 4, "Decrypt", "app-runner", None)]));
        assert_eq!(s.feed.selected_id.as_deref(), Some("e2"), "an event being read does not move away");
        assert_eq!(s.feed.cursor, 2);
    }
}
