//! `update(state, msg) -> actions`: the only place state changes. Synchronous: nothing
//! here awaits or does IO.

use chrono::Duration as ChronoDuration;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

pub mod approvals;
pub(crate) mod feed;
pub mod incident;
pub mod scroll;

use super::keymap::{self, Command};
use super::msg::{Action, Msg};
use super::state::{Mode, State, Status, View};
use crate::domain::review::ReviewRecord;

/// The full-refresh period while the CloudTrail feed is failing.
const FALLBACK_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Apply `msg` to `state`: the actions to carry out. A new status message is stamped with
/// the time it was set (`status_since`), so the status line can say how old it is.
pub fn update(state: &mut State, msg: Msg) -> Vec<Action> {
    let before = state.status.clone();
    let actions = apply(state, msg);
    if state.status.is_some() && state.status != before {
        state.status_since = state.now;
    }
    actions
}

fn apply(state: &mut State, msg: Msg) -> Vec<Action> {
    match msg {
        Msg::Key(key) if key.kind != KeyEventKind::Release => on_key(state, key),
        Msg::Key(_) => vec![],
        Msg::Resize(w, h) => {
            state.size = (w, h);
            vec![]
        }
        Msg::PaneRows { max } => {
            state.pane_max = max;
            state.pane_scroll = state.pane_scroll.min(max);
            vec![]
        }
        Msg::ListRows { view, rows } => {
            let rows = rows.max(1);
            match view {
                View::Inventory => {
                    state.page_rows.inventory = rows;
                    keep_cursor(state);
                }
                View::Feed => {
                    state.page_rows.feed = rows;
                    feed::keep_feed_cursor(state);
                }
                View::Alerts => {
                    state.page_rows.alerts = rows;
                    feed::alert_move(state, state.feed.alert_cursor);
                }
                View::Session | View::Incident | View::Approvals => {}
            }
            vec![]
        }
        Msg::Tick(now) => {
            let minute_changed = state.assessment.at.is_none_or(|at| (now - at).num_seconds() >= 60);
            state.now = now;
            if minute_changed {
                state.reassess();
                keep_cursor(state);
                incident::on_minute(state);
            }
            // Without a working feed, changes are not seen between full refreshes: refresh
            // at least every minute then.
            let every = if state.feed.problem.is_some() {
                state.refresh_every.min(FALLBACK_REFRESH)
            } else {
                state.refresh_every
            };
            let due = match state.last_request {
                None => true,
                Some(at) => now - at >= ChronoDuration::from_std(every).unwrap_or(ChronoDuration::MAX),
            };
            if due && !state.loading {
                request_refresh(state)
            } else {
                vec![]
            }
        }
        Msg::CacheLoaded(inv) => {
            if state.inventory.is_none() {
                state.inventory = Some(inv);
                state.stale = true;
                state.reassess();
                keep_cursor(state);
            }
            vec![]
        }
        Msg::KeyPolicyLoaded { arn, summary } => {
            state.key_policies.insert(arn, summary);
            vec![]
        }
        Msg::LastReviewLoaded(r) => {
            state.last_review = r;
            state.reassess();
            vec![]
        }
        Msg::ReviewSaved(Ok(rec)) => {
            let marked = rec.items.iter().filter(|i| i.note.is_some()).count();
            state.status = Some(Status {
                text: format!("review saved to the journal: {marked} of {} items marked", rec.items.len()),
                error: false,
            });
            state.last_review = Some(rec);
            state.review_marks.clear();
            state.reassess();
            vec![]
        }
        Msg::ReviewSaved(Err(e)) => {
            state.status = Some(Status { text: format!("review NOT saved: {e}"), error: true });
            vec![]
        }
        Msg::TrailPolled(r) => feed::on_polled(state, r),
        Msg::FeedProblem(p) => {
            state.feed.problem = Some(p.clone());
            state.status = Some(Status { text: format!("feed: {p}"), error: true });
            vec![]
        }
        Msg::KeysReread { region, items, gone, problems } => {
            feed::on_keys_reread(state, &region, items, gone);
            keep_cursor(state);
            if let Some(p) = problems.first() {
                state.status = Some(Status { text: p.clone(), error: true });
            }
            vec![]
        }
        Msg::SecretsReread { region, items, gone, problems } => {
            feed::on_secrets_reread(state, &region, items, gone);
            keep_cursor(state);
            if let Some(p) = problems.first() {
                state.status = Some(Status { text: p.clone(), error: true });
            }
            vec![]
        }
        Msg::AcksLoaded(acks) => {
            state.feed.acked.extend(acks);
            vec![]
        }
        Msg::AckSaved(Ok((id, who))) => {
            state.feed.acked.insert(id, who);
            state.status = Some(Status { text: "alert acknowledged (journal)".into(), error: false });
            feed::alert_move(state, state.feed.alert_cursor);
            vec![]
        }
        Msg::IncidentLoaded { id, runbook, records, held_by } => {
            let now = state.now;
            incident::on_loaded(state, id, runbook, records, held_by, now);
            vec![]
        }
        Msg::IncidentDone(result) => {
            incident::on_done(state, result);
            vec![]
        }
        Msg::IncidentsOpen(open) => {
            state.open_incidents = open;
            vec![]
        }
        Msg::IncidentsElsewhere(n) => {
            state.incidents_elsewhere = n;
            vec![]
        }
        Msg::ApprovalsLoaded(result) => {
            approvals::on_loaded(state, result);
            vec![]
        }
        Msg::ApprovalTargetRead { arn, read } => {
            approvals::on_target(state, arn, read);
            vec![]
        }
        Msg::ApprovalDone(result) => approvals::on_done(state, result),
        Msg::AckSaved(Err(e)) => {
            state.status = Some(Status { text: format!("acknowledgement NOT saved: {e}"), error: true });
            vec![]
        }
        Msg::InventoryLoaded(mut inv) => {
            state.loading = false;
            state.stale = false;
            let problems: Vec<String> = inv.problems().cloned().collect();
            // A Region that could not be listed keeps the keys and secrets last seen there,
            // marked with when: a lost endpoint never empties the console.
            if let Some(previous) = &state.inventory {
                inv.carry_unlisted(previous);
            }
            state.inventory = Some(inv);
            state.reassess();
            keep_cursor(state);
            state.status = match problems.len() {
                0 => None,
                1 => Some(Status { text: problems[0].clone(), error: true }),
                n => Some(Status { text: format!("{n} problems; first: {}", problems[0]), error: true }),
            };
            vec![]
        }
    }
}

fn request_refresh(state: &mut State) -> Vec<Action> {
    state.loading = true;
    state.last_request = Some(state.now);
    vec![Action::RefreshInventory]
}

fn on_key(state: &mut State, key: KeyEvent) -> Vec<Action> {
    match state.mode.clone() {
        Mode::Help => {
            // Any key closes help; Ctrl-C still quits.
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                state.quit = true;
            }
            state.mode = Mode::Normal;
            vec![]
        }
        Mode::Prompt(p) => {
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                state.quit = true;
                return vec![];
            }
            incident::on_prompt_key(state, p, key.code)
        }
        Mode::Approval(p) => {
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                state.quit = true;
                return vec![];
            }
            approvals::on_prompt_key(state, p, key.code)
        }
        Mode::Note(mut text) => {
            match key.code {
                KeyCode::Esc => state.mode = Mode::Normal,
                KeyCode::Enter => {
                    if let Some(id) = state.selected_id.clone() {
                        let note = if text.trim().is_empty() { "reviewed".to_owned() } else { text.trim().to_owned() };
                        state.review_marks.insert(id, note);
                    }
                    state.mode = Mode::Normal;
                }
                KeyCode::Backspace => {
                    text.pop();
                    state.mode = Mode::Note(text);
                }
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => state.quit = true,
                KeyCode::Char(c) if !c.is_control() && text.chars().count() < 500 => {
                    text.push(c);
                    state.mode = Mode::Note(text);
                }
                _ => state.mode = Mode::Note(text),
            }
            vec![]
        }
        Mode::Filter => {
            let feed_view = state.view == View::Feed;
            let filter = if feed_view { &mut state.feed.filter } else { &mut state.filter };
            let mut done = false;
            match key.code {
                KeyCode::Esc => {
                    filter.clear();
                    done = true;
                }
                KeyCode::Enter => done = true,
                KeyCode::Backspace => {
                    filter.pop();
                }
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => state.quit = true,
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => filter.clear(),
                KeyCode::Char(c) if !c.is_control() && filter.chars().count() < 200 => filter.push(c),
                _ => {}
            }
            if done {
                state.mode = Mode::Normal;
            }
            if feed_view {
                feed::keep_feed_cursor(state);
            } else {
                // The selected item filtered out: the first match, not whatever row now
                // stands where it stood (`i` acts on the selection).
                let kept = state.selected_id.as_ref().is_some_and(|id| state.rows().iter().any(|r| &r.id == id));
                if !kept {
                    state.cursor = 0;
                    state.offset = 0;
                    state.selected_id = None;
                }
                keep_cursor(state);
            }
            vec![]
        }
        Mode::Palette(mut text) => match key.code {
            KeyCode::Esc => {
                state.mode = Mode::Normal;
                vec![]
            }
            KeyCode::Enter => {
                state.mode = Mode::Normal;
                run_palette(state, &text)
            }
            KeyCode::Tab => {
                if let [only] = keymap::complete(&text).as_slice() {
                    text = only.name().to_owned();
                }
                state.mode = Mode::Palette(text);
                vec![]
            }
            KeyCode::Backspace => {
                text.pop();
                state.mode = Mode::Palette(text);
                vec![]
            }
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                state.quit = true;
                vec![]
            }
            KeyCode::Char(c) if !c.is_control() => {
                text.push(c);
                state.mode = Mode::Palette(text);
                vec![]
            }
            _ => {
                state.mode = Mode::Palette(text);
                vec![]
            }
        },
        Mode::Normal => {
            if key.code == KeyCode::Esc {
                if state.view == View::Feed && !state.feed.filter.is_empty() {
                    state.feed.filter.clear();
                    feed::keep_feed_cursor(state);
                } else if state.view == View::Inventory && !state.filter.is_empty() {
                    state.filter.clear();
                    keep_cursor(state);
                } else {
                    state.status = None;
                }
                return vec![];
            }
            match keymap::lookup(&key, state.view) {
                Some(cmd) => run(state, cmd),
                None => vec![],
            }
        }
    }
}

fn run_palette(state: &mut State, text: &str) -> Vec<Action> {
    let word = text.trim();
    if word.is_empty() {
        return vec![];
    }
    let exact = keymap::Command::PALETTE.iter().copied().find(|c| c.name() == word);
    let candidates = keymap::complete(word);
    match (exact, candidates.as_slice()) {
        (Some(cmd), _) | (None, &[cmd]) => run(state, cmd),
        (None, []) => {
            let names: Vec<&str> = keymap::Command::PALETTE.iter().map(|c| c.name()).collect();
            state.status = Some(Status {
                text: format!("unknown command {:?}: try {}", crate::domain::text::inert(word), names.join(", ")),
                error: true,
            });
            vec![]
        }
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|c| c.name()).collect();
            state.status =
                Some(Status { text: format!("ambiguous command {word:?}: {}", names.join(", ")), error: true });
            vec![]
        }
    }
}

/// Rows one J/K press scrolls a pane by.
const PANE_STEP: u16 = 3;

fn run(state: &mut State, cmd: Command) -> Vec<Action> {
    use Command as C;
    // A new selection or view starts its pane at the top.
    if matches!(
        cmd,
        C::Up
            | C::Down
            | C::PageUp
            | C::PageDown
            | C::Top
            | C::Bottom
            | C::Detail
            | C::Inventory
            | C::Feed
            | C::Alerts
            | C::Session
            | C::Incident
            | C::Approvals
            | C::KeyEvents
            | C::Back
    ) {
        state.pane_scroll = 0;
    }
    let step = match cmd {
        Command::Up => Some(scroll::Move::Up),
        Command::Down => Some(scroll::Move::Down),
        Command::PageUp => Some(scroll::Move::PageUp),
        Command::PageDown => Some(scroll::Move::PageDown),
        Command::Top => Some(scroll::Move::Top),
        Command::Bottom => Some(scroll::Move::Bottom),
        _ => None,
    };
    if let Some(m) = step {
        match state.view {
            View::Feed => {
                let len = state.feed.rows().len();
                let (to, offset) = scroll::step(m, state.feed.cursor, state.feed.offset, state.page_rows.feed, len);
                state.feed.offset = offset;
                feed::feed_move(state, to);
            }
            View::Alerts => {
                let len = state.feed.alert_rows().len();
                let (to, offset) =
                    scroll::step(m, state.feed.alert_cursor, state.feed.alert_offset, state.page_rows.alerts, len);
                state.feed.alert_offset = offset;
                feed::alert_move(state, to);
            }
            View::Inventory => {
                let len = state.rows().len();
                let (to, offset) = scroll::step(m, state.cursor, state.offset, state.page_rows.inventory, len);
                state.offset = offset;
                move_to(state, to, len);
            }
            View::Incident => incident::move_cursor(state, matches!(m, scroll::Move::Down | scroll::Move::PageDown)),
            View::Approvals => approvals::move_cursor(state, m),
            View::Session => {}
        }
        return key_policy_wanted(state);
    }
    match cmd {
        Command::Quit => {
            // A step in flight: quitting leaves its outcome unknown until the next run
            // settles it from AWS. Say so once; a second q quits.
            let running = state.incident.as_ref().and_then(|i| i.running.clone());
            match running {
                Some(step) if !state.status.as_ref().is_some_and(|s| s.text.starts_with("a step is running")) => {
                    state.status = Some(Status {
                        text: format!(
                            "a step is running ({step}): q again quits anyway; its outcome is then settled from AWS when you resume"
                        ),
                        error: true,
                    });
                }
                _ => state.quit = true,
            }
        }
        Command::Help => state.mode = Mode::Help,
        Command::Palette => state.mode = Mode::Palette(String::new()),
        Command::Filter => state.mode = Mode::Filter,
        Command::Refresh => {
            if state.loading {
                state.status = Some(Status { text: "a refresh is already running".into(), error: false });
                return vec![];
            }
            return request_refresh(state);
        }
        Command::Inventory => state.view = View::Inventory,
        Command::Feed => {
            state.view = View::Feed;
            feed::keep_feed_cursor(state);
        }
        Command::Alerts => {
            state.view = View::Alerts;
            feed::alert_move(state, state.feed.alert_cursor);
        }
        Command::Session => state.view = View::Session,
        Command::Incident => state.view = View::Incident,
        Command::Approvals => return approvals::show(state),
        Command::ReloadApprovals => return approvals::reload(state),
        Command::OpenRequest => return approvals::open_selected(state),
        Command::RejectRequest => approvals::reject_selected(state),
        Command::WithdrawRequest => approvals::withdraw_selected(state),
        Command::ProposeRotation => approvals::propose_selected(state),
        Command::StartIncident => return incident::start(state),
        Command::NextIncident => return incident::switch(state, true),
        Command::PreviousIncident => return incident::switch(state, false),
        Command::RunStep => return incident::run_selected(state),
        Command::SkipStep => incident::skip_selected(state),
        Command::Freeze => feed::toggle_freeze(state),
        Command::KeyEvents => {
            if let Some(item) = state.selected_id.as_deref().and_then(|id| state.assessment.item(id)) {
                state.feed.filter = item.name.clone();
                state.feed.jumped_from = Some(item.id.clone());
                state.view = View::Feed;
                feed::keep_feed_cursor(state);
            }
        }
        Command::Back => {
            if let Some(id) = state.feed.jumped_from.take() {
                state.feed.filter.clear();
                state.view = View::Inventory;
                state.selected_id = Some(id);
                keep_cursor(state);
            }
        }
        Command::Acknowledge => {
            let target = state.feed.alert_rows().get(state.feed.alert_cursor).map(|a| (a.id.clone(), a.title.clone()));
            match target {
                Some((id, _)) if state.feed.acked.contains_key(&id) => {
                    state.status = Some(Status { text: "already acknowledged".into(), error: false });
                }
                Some((alert_id, summary)) => {
                    return vec![Action::SaveAck { alert_id, actor: state.session.identity.arn.clone(), summary }];
                }
                None => {}
            }
        }
        Command::Up | Command::Down | Command::PageUp | Command::PageDown | Command::Top | Command::Bottom => {}
        Command::ScrollDown => state.pane_scroll = state.pane_scroll.saturating_add(PANE_STEP).min(state.pane_max),
        Command::ScrollUp => state.pane_scroll = state.pane_scroll.saturating_sub(PANE_STEP),
        Command::Detail if state.view == View::Feed => {
            state.feed.detail_open = !state.feed.detail_open;
        }
        Command::Detail => {
            state.detail_open = !state.detail_open;
        }
        Command::Review => {
            state.review_mode = !state.review_mode;
            state.status = Some(Status {
                text: if state.review_mode {
                    "review mode: m marks the selected item reviewed (with a note), s saves the review, v leaves".into()
                } else {
                    "review mode off (unsaved marks are kept until you quit)".into()
                },
                error: false,
            });
        }
        Command::Mark => {
            if !state.review_mode {
                state.status = Some(Status { text: "press v for review mode first".into(), error: true });
            } else if let Some(id) = state.selected_id.clone() {
                if state.review_marks.remove(&id).is_none() {
                    state.mode = Mode::Note(String::new());
                }
            }
        }
        Command::SaveReview => {
            if !state.review_mode {
                state.status = Some(Status { text: "press v for review mode first".into(), error: true });
                return vec![];
            }
            if state.inventory.is_none() || state.stale {
                state.status =
                    Some(Status { text: "wait for the live inventory before saving a review".into(), error: true });
                return vec![];
            }
            let rec = ReviewRecord::from_assessment(
                &state.assessment,
                &state.review_marks,
                &state.session.identity.arn,
                &state.session.identity.account,
                &state.session.regions,
                state.now,
            );
            return vec![Action::SaveReview(Box::new(rec))];
        }
        Command::AwsManaged => {
            state.show_aws_managed = !state.show_aws_managed;
            keep_cursor(state);
        }
    }
    key_policy_wanted(state)
}

/// With the detail pane open on a key whose policy was never read, read it (once).
fn key_policy_wanted(state: &mut State) -> Vec<Action> {
    if !state.detail_open || state.view != View::Inventory {
        return vec![];
    }
    let Some(crate::app::state::Selected::Key(_, k)) = state.selected() else { return vec![] };
    if k.manager == crate::domain::inventory::KeyManager::Aws || state.key_policies.contains_key(&k.arn) {
        return vec![];
    }
    let action = Action::FetchKeyPolicy { region: k.region.clone(), key_id: k.key_id.clone(), arn: k.arn.clone() };
    let arn = k.arn.clone();
    state.key_policies.insert(arn, crate::domain::inventory::Fetched::NotFetched);
    vec![action]
}

fn move_to(state: &mut State, idx: usize, len: usize) {
    state.cursor = if len == 0 { 0 } else { idx.min(len - 1) };
    state.offset = scroll::keep_visible(state.cursor, state.offset, state.page_rows.inventory, len);
    let id = state.rows().get(state.cursor).map(|r| r.id.clone());
    state.selected_id = id;
}

/// After the rows changed (refresh, filter), put the cursor back on the same item if it
/// is still there, else clamp it.
fn keep_cursor(state: &mut State) {
    let (found, clamped, id_at_clamped, len) = {
        let rows = state.rows();
        let found = state.selected_id.as_ref().and_then(|id| rows.iter().position(|r| &r.id == id));
        let clamped = state.cursor.min(rows.len().saturating_sub(1));
        (found, clamped, rows.get(clamped).map(|r| r.id.clone()), rows.len())
    };
    match found {
        Some(i) => state.cursor = i,
        None => {
            state.cursor = clamped;
            state.selected_id = id_at_clamped;
        }
    }
    state.offset = scroll::keep_visible(state.cursor, state.offset, state.page_rows.inventory, len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::Session;
    use crate::domain::inventory::fixtures::{key, secret};
    use crate::domain::inventory::{Inventory, KeyState, RegionInventory};
    use chrono::{TimeZone, Utc};

    fn t0() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date")
    }

    fn state() -> State {
        let policy = std::sync::Arc::new(crate::domain::policy::Policy::default_policy().expect("policy"));
        State::new(Session::default(), policy, t0(), true)
    }

    fn inv(names: &[&str]) -> Inventory {
        Inventory {
            regions: vec![RegionInventory {
                region: "eu-north-1".into(),
                keys: names.iter().map(|n| key("eu-north-1", n, KeyState::Enabled)).collect(),
                secrets: vec![secret("eu-north-1", "JWT_SECRET", Some(90))],
                problems: vec![],
                unlisted: vec![],
            }],
            fetched_at: Some(t0()),
        }
    }

    fn press(s: &mut State, c: KeyCode) -> Vec<Action> {
        update(s, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    #[test]
    fn first_tick_refreshes_then_waits_for_the_period() {
        let mut s = state();
        assert_eq!(update(&mut s, Msg::Tick(t0())), vec![Action::RefreshInventory]);
        assert!(s.loading);
        assert!(update(&mut s, Msg::Tick(t0() + ChronoDuration::seconds(90))).is_empty(), "no overlap while loading");
        update(&mut s, Msg::InventoryLoaded(inv(&["a"])));
        assert!(update(&mut s, Msg::Tick(t0() + ChronoDuration::seconds(30))).is_empty());
        assert_eq!(update(&mut s, Msg::Tick(t0() + ChronoDuration::seconds(91))), vec![Action::RefreshInventory]);
    }

    #[test]
    fn manual_refresh_is_refused_while_loading() {
        let mut s = state();
        assert_eq!(press(&mut s, KeyCode::Char('r')), vec![Action::RefreshInventory]);
        assert!(press(&mut s, KeyCode::Char('r')).is_empty());
        assert!(s.status.is_some());
    }

    #[test]
    fn cursor_stays_on_the_same_item_across_refreshes() {
        let mut s = state();
        update(&mut s, Msg::InventoryLoaded(inv(&["b", "c"])));
        while s.rows()[s.cursor].name != "c" {
            press(&mut s, KeyCode::Down);
        }
        assert_eq!(s.selected_id.as_deref(), Some("arn:aws:kms:eu-north-1:123456789012:key/id-c"));
        update(&mut s, Msg::InventoryLoaded(inv(&["a", "b", "c"])));
        assert_eq!(s.rows()[s.cursor].name, "c", "same item after new rows appeared before it");
        update(&mut s, Msg::InventoryLoaded(inv(&["a"])));
        assert!(s.cursor < s.rows().len(), "gone: clamped into the new rows");
        assert_eq!(s.selected_id.as_deref(), Some(s.rows()[s.cursor].id.as_str()));
    }

    #[test]
    fn filter_mode_edits_and_escape_clears() {
        let mut s = state();
        update(&mut s, Msg::InventoryLoaded(inv(&["alpha", "beta"])));
        press(&mut s, KeyCode::Char('/'));
        for c in "bet".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        assert_eq!(s.rows().len(), 1);
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.mode, Mode::Normal);
        assert_eq!(s.filter, "bet");
        press(&mut s, KeyCode::Char('q'));
        assert!(s.quit, "q quits in normal mode even with a filter");
        let mut s2 = state();
        press(&mut s2, KeyCode::Char('/'));
        press(&mut s2, KeyCode::Char('q'));
        assert!(!s2.quit, "q is text while filtering");
        press(&mut s2, KeyCode::Esc);
        assert!(s2.filter.is_empty());
    }

    #[test]
    fn a_filter_that_hides_the_selection_selects_the_first_match() {
        let mut s = state();
        update(&mut s, Msg::InventoryLoaded(inv(&["alpha", "beta", "gamma", "kyc-a", "kyc-b"])));
        press(&mut s, KeyCode::Char('g'));
        press(&mut s, KeyCode::Down);
        assert!(s.cursor == 1 && !s.rows()[s.cursor].name.starts_with("kyc"), "the selection is elsewhere");
        press(&mut s, KeyCode::Char('/'));
        for c in "kyc".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.rows().len(), 2);
        assert_eq!(s.selected_id.as_deref(), Some(s.rows()[0].id.as_str()), "the first match, not a row number");
    }

    #[test]
    fn palette_runs_commands_and_reports_unknown_ones() {
        let mut s = state();
        press(&mut s, KeyCode::Char(':'));
        for c in "ses".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Tab);
        assert_eq!(s.mode, Mode::Palette("session".into()));
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.view, View::Session);
        press(&mut s, KeyCode::Char(':'));
        press(&mut s, KeyCode::Char('x'));
        press(&mut s, KeyCode::Enter);
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("unknown command")));
    }

    #[test]
    fn help_opens_and_any_key_closes() {
        let mut s = state();
        press(&mut s, KeyCode::Char('?'));
        assert_eq!(s.mode, Mode::Help);
        press(&mut s, KeyCode::Char('x'));
        assert_eq!(s.mode, Mode::Normal);
    }

    #[test]
    fn problems_reach_the_status_line() {
        let mut s = state();
        let mut i = inv(&["a"]);
        i.regions[0].problems.push("kms:ListKeys in eu-north-1 failed: access denied".into());
        update(&mut s, Msg::InventoryLoaded(i));
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("kms:ListKeys")));
    }

    #[test]
    fn review_mode_marks_with_a_note_and_saves_a_record() {
        let mut s = state();
        s.session.identity.arn = "arn:aws:iam::123456789012:user/key-auditor".into();
        update(&mut s, Msg::InventoryLoaded(inv(&["a", "b"])));
        press(&mut s, KeyCode::Char('m'));
        assert!(s.status.as_ref().is_some_and(|st| st.error), "marking needs review mode");
        press(&mut s, KeyCode::Char('v'));
        assert!(s.review_mode);
        press(&mut s, KeyCode::Char('m'));
        assert_eq!(s.mode, Mode::Note(String::new()));
        for c in "SEC-42".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        let id = s.selected_id.clone().expect("selected");
        assert_eq!(s.review_marks.get(&id).map(String::as_str), Some("SEC-42"));
        let actions = press(&mut s, KeyCode::Char('s'));
        let rec = match actions.as_slice() {
            [Action::SaveReview(r)] => (**r).clone(),
            other => panic!("expected SaveReview, got {other:?}"),
        };
        assert_eq!(rec.reviewer, "arn:aws:iam::123456789012:user/key-auditor");
        assert_eq!(rec.items.iter().filter(|i| i.note.is_some()).count(), 1);
        update(&mut s, Msg::ReviewSaved(Ok(rec)));
        assert!(s.review_marks.is_empty());
        assert!(s.review_changes.is_empty(), "nothing changed since the review just saved");
        update(&mut s, Msg::InventoryLoaded(inv(&["a", "b", "c"])));
        assert_eq!(s.review_changes.len(), 1, "c is new since the last review");
    }

    #[test]
    fn a_review_is_not_saved_from_a_stale_cache() {
        let mut s = state();
        update(&mut s, Msg::CacheLoaded(inv(&["a"])));
        press(&mut s, KeyCode::Char('v'));
        assert!(press(&mut s, KeyCode::Char('s')).is_empty());
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("live inventory")));
    }

    #[test]
    fn a_failing_feed_brings_back_minute_refreshes() {
        let mut s = state();
        s.refresh_every = std::time::Duration::from_secs(900);
        update(&mut s, Msg::Tick(t0()));
        update(&mut s, Msg::InventoryLoaded(inv(&["a"])));
        assert!(update(&mut s, Msg::Tick(t0() + ChronoDuration::seconds(61))).is_empty(), "the feed covers changes");
        update(&mut s, Msg::FeedProblem("cloudtrail:LookupEvents in eu-north-1 failed: access denied".into()));
        assert_eq!(update(&mut s, Msg::Tick(t0() + ChronoDuration::seconds(62))), vec![Action::RefreshInventory]);
    }
}
