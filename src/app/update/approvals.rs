//! The approvals' part of the update loop (issue 11, 004 §6): listings arriving, the
//! approvals view's cursor and keys, the approval dialog (the key alias typed to approve,
//! Cancel the default), reject / withdraw / propose prompts. Every write becomes an
//! `Action` the approvals task runs; read-only consoles refuse them here, saying why.

use crossterm::event::KeyCode;

use super::scroll;
use crate::app::approvals::{ApprovalPrompt, Section, TargetRead};
use crate::app::msg::Action;
use crate::app::state::{Mode, Selected, State, Status, View};
use crate::domain::approval::{Content, Listing};
use crate::domain::status::Status as RotationStatus;

/// Rows a PageUp/PageDown moves in the approvals view.
const PAGE: usize = 10;
/// Longest reason or typed alias accepted (characters).
const MAX_TEXT: usize = 500;

const READ_ONLY: &str = "read-only console: approvals change AWS; restart keydeck with --allow-write";

fn say(state: &mut State, text: impl Into<String>, error: bool) {
    state.status = Some(Status { text: text.into(), error });
}

/// List the store now (`r`, a feed event about a request, a transition made here).
pub fn reload(state: &mut State) -> Vec<Action> {
    state.approvals.loading = true;
    vec![Action::LoadApprovals]
}

/// A listing arrived: keep the cursor on the same request.
pub fn on_loaded(state: &mut State, result: Result<Listing, String>) {
    state.approvals.loading = false;
    match result {
        Ok(l) => {
            state.approvals.listing = Some(l);
            state.approvals.loaded_at = Some(state.now);
            state.approvals.problem = None;
            keep_cursor(state);
        }
        Err(e) => state.approvals.problem = Some(e),
    }
}

pub fn on_target(state: &mut State, arn: String, read: TargetRead) {
    state.approvals.targets.insert(arn, Some(read));
}

/// A transition finished: its line in the view and the status bar; list again.
pub fn on_done(state: &mut State, result: Result<String, String>) -> Vec<Action> {
    state.approvals.running = None;
    let (ok, line) = match result {
        Ok(l) => (true, l),
        Err(e) => (false, e),
    };
    say(state, line.clone(), !ok);
    state.approvals.outcome = Some((ok, line));
    reload(state)
}

/// The approvals view: `6` (lists the store when it never was).
pub fn show(state: &mut State) -> Vec<Action> {
    state.view = View::Approvals;
    if state.approvals.listing.is_none() && !state.approvals.loading {
        return reload(state);
    }
    vec![]
}

fn rows_len(state: &State) -> usize {
    state.approvals.listing.as_ref().map_or(0, |l| l.rows().len())
}

pub fn move_cursor(state: &mut State, m: scroll::Move) {
    let len = rows_len(state);
    let (to, _) = scroll::step(m, state.approvals.cursor, 0, PAGE, len);
    state.approvals.cursor = to;
    state.approvals.selected_id = state.approvals.selected().map(|(_, e)| e.request.id.clone());
}

fn keep_cursor(state: &mut State) {
    let a = &mut state.approvals;
    let Some(l) = &a.listing else { return };
    let rows = l.rows();
    let found = a.selected_id.as_deref().and_then(|id| rows.iter().position(|(_, e)| e.request.id == id));
    a.cursor = found.unwrap_or(a.cursor.min(rows.len().saturating_sub(1)));
    a.selected_id = rows.get(a.cursor).map(|(_, e)| e.request.id.clone());
}

/// Enter on a row: the approval dialog on a request waiting for me (its target read
/// afresh); on any other row, its state in the status line.
pub fn open_selected(state: &mut State) -> Vec<Action> {
    let Some((section, e)) = state.approvals.selected() else { return vec![] };
    let (id, arn) = (e.request.id.clone(), e.request.target_arn.clone());
    if section != Section::WaitingForMe {
        let note = e.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        let line =
            format!("request {id} ({}, {}): {}{note}", e.request.operation.name(), section.title(), e.state_label());
        say(state, line, false);
        return vec![];
    }
    state.mode = Mode::Approval(ApprovalPrompt::Approve { id, text: String::new(), refusal: None });
    state.approvals.targets.insert(arn.clone(), None);
    vec![Action::ReadApprovalTarget { arn }]
}

/// `x`: reject a request waiting for me, with a reason.
pub fn reject_selected(state: &mut State) {
    let wrong = "only a request waiting for me can be rejected here (004 §6: the approver's role)";
    prompt_on_selected(state, Section::WaitingForMe, wrong, |id| ApprovalPrompt::Reject { id, text: String::new() });
}

/// `w`: withdraw a request of mine (after a confirmation).
pub fn withdraw_selected(state: &mut State) {
    let wrong = "only the proposer withdraws a request: select one under Mine";
    prompt_on_selected(state, Section::Mine, wrong, |id| ApprovalPrompt::Withdraw { id });
}

/// Open `prompt` on the selected request when it is in `section` and the console may write.
fn prompt_on_selected(state: &mut State, section: Section, wrong: &str, prompt: impl FnOnce(String) -> ApprovalPrompt) {
    match state.approvals.selected() {
        Some((s, e)) if s == section => {
            let id = e.request.id.clone();
            if state.session.write_enabled {
                state.mode = Mode::Approval(prompt(id));
            } else {
                say(state, READ_ONLY, true);
            }
        }
        Some(_) => say(state, wrong, true),
        None => {}
    }
}

/// `P` in the inventory: propose an on-demand rotation of the selected key when its
/// rotation status is Overdue or ALERT (issue 11 item 6); refused otherwise.
pub fn propose_selected(state: &mut State) {
    let target = match state.selected() {
        Some(Selected::Key(item, k)) => {
            Ok((item.judgement.status, k.arn.clone(), k.display_name().to_owned(), k.region.clone()))
        }
        Some(Selected::Secret(..)) => {
            Err("propose rotation: a secret, not a KMS key (rotate-key is kms:RotateKeyOnDemand)".to_owned())
        }
        None => Err("propose rotation: select a key first".to_owned()),
    };
    let (status, key_arn, alias, region) = match target {
        Ok(t) => t,
        Err(e) => return say(state, e, true),
    };
    if !matches!(status, RotationStatus::Overdue | RotationStatus::Alert) {
        let line = format!(
            "propose rotation: {alias} is {}, not Overdue or ALERT (use `keydeck approvals propose rotate-key` to propose anyway)",
            status.label()
        );
        return say(state, line, true);
    }
    if !state.session.write_enabled {
        return say(state, READ_ONLY, true);
    }
    state.mode = Mode::Approval(ApprovalPrompt::Propose { key_arn, alias, region, text: String::new() });
}

/// The aliases that approve request `id`'s target: the key as the dialog read it, else
/// as the inventory has it (`None`: not known yet).
pub fn expected_aliases(state: &State, arn: &str) -> Option<Vec<String>> {
    if let Some(Some(Ok(k))) = state.approvals.targets.get(arn) {
        return Some(k.aliases.clone());
    }
    let inv = state.inventory.as_ref()?;
    inv.keys().find(|k| k.arn == arn).map(|k| k.aliases.clone())
}

/// Keys while an approvals prompt is open. Esc cancels every one; Enter on nothing typed
/// cancels too (Cancel is the default).
pub fn on_prompt_key(state: &mut State, p: ApprovalPrompt, code: KeyCode) -> Vec<Action> {
    let cancel = |state: &mut State, what: &str| {
        state.mode = Mode::Normal;
        say(state, format!("{what} cancelled"), false);
        vec![]
    };
    match p {
        ApprovalPrompt::Withdraw { id } => match code {
            KeyCode::Char('y') => {
                state.mode = Mode::Normal;
                state.approvals.running = Some(id.clone());
                say(state, format!("withdrawing request {id}…"), false);
                vec![Action::ApprovalWithdraw { id }]
            }
            _ => cancel(state, "withdrawal"),
        },
        ApprovalPrompt::Approve { id, mut text, refusal } => match code {
            KeyCode::Esc => cancel(state, "approval"),
            KeyCode::Enter if text.trim().is_empty() => cancel(state, "approval"),
            KeyCode::Enter => approve_typed(state, id, text),
            KeyCode::Backspace => {
                text.pop();
                state.mode = Mode::Approval(ApprovalPrompt::Approve { id, text, refusal: None });
                vec![]
            }
            KeyCode::Char(c) if !c.is_control() && text.chars().count() < MAX_TEXT => {
                text.push(c);
                state.mode = Mode::Approval(ApprovalPrompt::Approve { id, text, refusal: None });
                vec![]
            }
            _ => {
                state.mode = Mode::Approval(ApprovalPrompt::Approve { id, text, refusal });
                vec![]
            }
        },
        ApprovalPrompt::Reject { id, text } => match edit(code, text) {
            Edit::Cancel => cancel(state, "rejection"),
            Edit::Text(text) => {
                state.mode = Mode::Approval(ApprovalPrompt::Reject { id, text });
                vec![]
            }
            Edit::Done(reason) => {
                state.mode = Mode::Normal;
                state.approvals.running = Some(id.clone());
                say(state, format!("rejecting request {id}…"), false);
                vec![Action::ApprovalReject { id, reason }]
            }
        },
        ApprovalPrompt::Propose { key_arn, alias, region, text } => match edit(code, text) {
            Edit::Cancel => cancel(state, "proposal"),
            Edit::Text(text) => {
                state.mode = Mode::Approval(ApprovalPrompt::Propose { key_arn, alias, region, text });
                vec![]
            }
            Edit::Done(reason) => {
                state.mode = Mode::Normal;
                say(state, format!("proposing rotate-key on {alias}…"), false);
                vec![Action::ApprovalPropose { key_arn, reason }]
            }
        },
    }
}

enum Edit {
    Cancel,
    Text(String),
    Done(String),
}

/// A reason line: Esc or Enter on nothing cancels, Enter on a reason is done.
fn edit(code: KeyCode, mut text: String) -> Edit {
    match code {
        KeyCode::Esc => Edit::Cancel,
        KeyCode::Enter if text.trim().is_empty() => Edit::Cancel,
        KeyCode::Enter => Edit::Done(text.trim().to_owned()),
        KeyCode::Backspace => {
            text.pop();
            Edit::Text(text)
        }
        KeyCode::Char(c) if !c.is_control() && text.chars().count() < MAX_TEXT => {
            text.push(c);
            Edit::Text(text)
        }
        _ => Edit::Text(text),
    }
}

/// Enter with an alias typed: refused (the dialog stays, saying why) when read-only, when
/// the request is no longer waiting for me, when the key's aliases are not known yet, or
/// when the text is not one of them; else the approval runs.
fn approve_typed(state: &mut State, id: String, text: String) -> Vec<Action> {
    let typed = text.trim().trim_start_matches("alias/").to_owned();
    let entry = state
        .approvals
        .listing
        .as_ref()
        .and_then(|l| l.find(&id))
        .map(|(s, e)| (s, e.request.target_arn.clone(), e.content));
    let refusal = match &entry {
        _ if !state.session.write_enabled => Some(READ_ONLY.to_owned()),
        None => Some(format!("request {id} is no longer in the store's listing")),
        Some((s, _, _)) if *s != Section::WaitingForMe => Some(format!("request {id} is no longer waiting for me")),
        Some((_, _, Content::Changed)) => Some(format!(
            "request {id} changed since it was proposed (CloudTrail's record of the proposal differs): reject it with x"
        )),
        Some((_, arn, _)) => match expected_aliases(state, arn) {
            None => Some("the key's aliases are still being read: try again in a moment".to_owned()),
            // A key without an alias (one an incident replaced, a replica) is typed as its ARN.
            Some(a) if !crate::domain::approval::confirms(&typed, &a, arn) => Some(match a.first() {
                Some(alias) => format!("{typed:?} is not the key's alias: type {alias} to approve"),
                None => format!("{typed:?} is not the key's ARN (it has no alias): type {arn} to approve"),
            }),
            Some(_) => None,
        },
    };
    if let Some(r) = refusal {
        state.mode = Mode::Approval(ApprovalPrompt::Approve { id, text, refusal: Some(r) });
        return vec![];
    }
    state.mode = Mode::Normal;
    state.approvals.running = Some(id.clone());
    say(state, format!("approving request {id}…"), false);
    vec![Action::ApprovalApprove { id, confirm: typed }]
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::approvals::fixtures::{listing, SECURITY_LEAD};
    use crate::app::msg::Msg;
    use crate::app::state::Session;
    use crate::app::update::update;
    use crate::domain::inventory::fixtures::key;
    use crate::domain::inventory::{Inventory, KeyState, RegionInventory};

    const WAITING: &str = "20261123-085500-a1b2c3d4";
    const MINE: &str = "20261123-084000-77aa88bb";

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date")
    }

    fn state(write: bool) -> State {
        let policy = std::sync::Arc::new(crate::domain::policy::Policy::default_policy().expect("policy"));
        let mut session = Session { write_enabled: write, ..Session::default() };
        session.identity.arn = SECURITY_LEAD.into();
        let mut s = State::new(session, policy, now(), false);
        let mut overdue = key("eu-north-1", "drop-kyc-key", KeyState::Enabled);
        overdue.created = Some(now() - chrono::Duration::days(800));
        let mut fresh = key("eu-north-1", "drop-field-hmac-key", KeyState::Enabled);
        fresh.created = Some(now() - chrono::Duration::days(3));
        let inv = Inventory {
            regions: vec![RegionInventory {
                region: "eu-north-1".into(),
                keys: vec![overdue, fresh],
                secrets: vec![],
                problems: vec![],
                unlisted: vec![],
            }],
            fetched_at: Some(now()),
        };
        update(&mut s, Msg::InventoryLoaded(inv));
        update(&mut s, Msg::ApprovalsLoaded(Ok(listing(now()))));
        s
    }

    fn press(s: &mut State, c: KeyCode) -> Vec<Action> {
        update(s, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    fn typed(s: &mut State, text: &str) {
        for c in text.chars() {
            assert!(press(s, KeyCode::Char(c)).is_empty());
        }
    }

    /// `6`, then Enter on the first row (waiting for me): the dialog, and its target read.
    fn open_dialog(s: &mut State) {
        press(s, KeyCode::Char('6'));
        assert_eq!(s.view, View::Approvals);
        let arn = "arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key".to_owned();
        assert_eq!(press(s, KeyCode::Enter), vec![Action::ReadApprovalTarget { arn }]);
        assert!(matches!(&s.mode, Mode::Approval(ApprovalPrompt::Approve { id, .. }) if id == WAITING));
    }

    fn refusal(s: &State) -> Option<String> {
        match &s.mode {
            Mode::Approval(ApprovalPrompt::Approve { refusal, .. }) => refusal.clone(),
            other => panic!("the dialog closed: {other:?}"),
        }
    }

    #[test]
    fn cancel_is_the_default_of_the_approval_dialog() {
        let mut s = state(true);
        open_dialog(&mut s);
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "Enter on nothing typed approves nothing");
        assert_eq!(s.mode, Mode::Normal);
        open_dialog(&mut s);
        typed(&mut s, "drop-kyc-key");
        assert!(press(&mut s, KeyCode::Esc).is_empty(), "Esc cancels even with the alias typed");
        assert_eq!(s.mode, Mode::Normal);
        assert!(s.status.as_ref().is_some_and(|st| st.text == "approval cancelled"));
    }

    #[test]
    fn a_key_without_an_alias_is_approved_by_its_arn() {
        let mut s = state(true);
        let arn = s.approvals.listing.as_ref().and_then(|l| l.find(WAITING)).map(|(_, e)| e.request.target_arn.clone());
        let arn = arn.expect("the waiting request's key");
        if let Some(inv) = s.inventory.as_mut() {
            for r in &mut inv.regions {
                r.keys.iter_mut().filter(|k| k.arn == arn).for_each(|k| k.aliases.clear());
            }
        }
        s.approvals.targets.remove(&arn);
        open_dialog(&mut s);
        typed(&mut s, "drop-kyc-key");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let r = refusal(&s).expect("refused");
        assert!(r.contains("is not the key's ARN (it has no alias): type arn:aws:kms:"), "{r}");
        for _ in 0.."drop-kyc-key".len() {
            press(&mut s, KeyCode::Backspace);
        }
        typed(&mut s, &arn);
        assert_eq!(press(&mut s, KeyCode::Enter), vec![Action::ApprovalApprove { id: WAITING.into(), confirm: arn }]);
    }

    #[test]
    fn a_mistyped_alias_is_refused_and_the_right_one_approves() {
        let mut s = state(true);
        open_dialog(&mut s);
        typed(&mut s, "drop-kyc-ke");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        let r = refusal(&s).expect("refused");
        assert!(r.contains("\"drop-kyc-ke\" is not the key's alias: type drop-kyc-key"), "{r}");
        // Another key's alias is a mismatch too.
        press(&mut s, KeyCode::Backspace);
        for _ in 0..11 {
            press(&mut s, KeyCode::Backspace);
        }
        typed(&mut s, "drop-field-hmac-key");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert!(refusal(&s).is_some());
        for _ in 0.."drop-field-hmac-key".len() {
            press(&mut s, KeyCode::Backspace);
        }
        typed(&mut s, "alias/drop-kyc-key");
        assert_eq!(
            press(&mut s, KeyCode::Enter),
            vec![Action::ApprovalApprove { id: WAITING.into(), confirm: "drop-kyc-key".into() }]
        );
        assert_eq!(s.mode, Mode::Normal);
        assert_eq!(s.approvals.running.as_deref(), Some(WAITING));
    }

    #[test]
    fn a_request_changed_since_it_was_proposed_is_refused_in_the_dialog() {
        let mut s = state(true);
        let mut l = listing(now());
        l.waiting_for_me[0].content = Content::Changed;
        update(&mut s, Msg::ApprovalsLoaded(Ok(l)));
        open_dialog(&mut s);
        typed(&mut s, "drop-kyc-key");
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "nothing runs");
        let r = refusal(&s).expect("refused");
        assert!(r.contains("changed since it was proposed") && r.contains("reject it"), "{r}");
    }

    #[test]
    fn a_read_only_console_refuses_every_write_and_says_why() {
        let mut s = state(false);
        open_dialog(&mut s);
        typed(&mut s, "drop-kyc-key");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert!(refusal(&s).is_some_and(|r| r.contains("--allow-write")));
        press(&mut s, KeyCode::Esc);
        assert!(press(&mut s, KeyCode::Char('x')).is_empty(), "reject");
        assert_eq!(s.mode, Mode::Normal);
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("--allow-write")));
        press(&mut s, KeyCode::Char('1'));
        press(&mut s, KeyCode::Char('P'));
        assert_eq!(s.mode, Mode::Normal, "propose");
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("--allow-write")));
    }

    #[test]
    fn reject_needs_a_reason_and_withdraw_a_yes() {
        let mut s = state(true);
        press(&mut s, KeyCode::Char('6'));
        press(&mut s, KeyCode::Char('x'));
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "no reason: cancelled");
        assert_eq!(s.mode, Mode::Normal);
        press(&mut s, KeyCode::Char('x'));
        typed(&mut s, "not in the change window");
        assert_eq!(
            press(&mut s, KeyCode::Enter),
            vec![Action::ApprovalReject { id: WAITING.into(), reason: "not in the change window".into() }]
        );
        // `w` on a request waiting for me is not mine to withdraw.
        press(&mut s, KeyCode::Char('w'));
        assert_eq!(s.mode, Mode::Normal);
        press(&mut s, KeyCode::Down);
        assert_eq!(s.approvals.selected_id.as_deref(), Some(MINE));
        press(&mut s, KeyCode::Char('w'));
        assert!(press(&mut s, KeyCode::Char('n')).is_empty(), "anything but y cancels");
        assert_eq!(s.mode, Mode::Normal);
        press(&mut s, KeyCode::Char('w'));
        assert_eq!(press(&mut s, KeyCode::Char('y')), vec![Action::ApprovalWithdraw { id: MINE.into() }]);
    }

    #[test]
    fn propose_rotation_only_on_an_overdue_or_alert_key() {
        let mut s = state(true);
        let row = |s: &State, name: &str| s.rows().iter().position(|r| r.name == name).expect("row");
        while s.cursor != row(&s, "drop-field-hmac-key") {
            press(&mut s, KeyCode::Down);
        }
        press(&mut s, KeyCode::Char('P'));
        assert_eq!(s.mode, Mode::Normal);
        assert!(
            s.status.as_ref().is_some_and(|st| st.error && st.text.contains("not Overdue or ALERT")),
            "{:?}",
            s.status
        );
        while s.cursor != row(&s, "drop-kyc-key") {
            press(&mut s, KeyCode::Up);
        }
        assert!(s
            .assessment
            .item(s.selected_id.as_deref().unwrap_or_default())
            .is_some_and(|i| matches!(i.judgement.status, RotationStatus::Overdue | RotationStatus::Alert)));
        press(&mut s, KeyCode::Char('P'));
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "no reason: cancelled");
        press(&mut s, KeyCode::Char('P'));
        typed(&mut s, "800 days old");
        let key_arn = "arn:aws:kms:eu-north-1:123456789012:key/id-drop-kyc-key".to_owned();
        assert_eq!(
            press(&mut s, KeyCode::Enter),
            vec![Action::ApprovalPropose { key_arn, reason: "800 days old".into() }]
        );
    }

    #[test]
    fn outcomes_and_problems_are_one_line_and_list_again() {
        let mut s = state(true);
        let again = update(&mut s, Msg::ApprovalDone(Err("refused: request x: already approved by y".into())));
        assert_eq!(again, vec![Action::LoadApprovals]);
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("already approved by")));
        update(&mut s, Msg::ApprovalsLoaded(Err("approvals: listing the request store failed: denied".into())));
        assert!(s.approvals.listing.is_some(), "the last listing stays on screen");
        assert!(s.approvals.problem.as_deref().is_some_and(|p| p.contains("denied")));
        assert_eq!(press(&mut s, KeyCode::Char('6')), vec![]);
        assert_eq!(press(&mut s, KeyCode::Char('r')), vec![Action::LoadApprovals], "r lists again in the view");
        press(&mut s, KeyCode::Char('1'));
        assert_eq!(press(&mut s, KeyCode::Char('r')), vec![Action::RefreshInventory], "r elsewhere: the inventory");
    }

    #[test]
    fn the_cursor_stays_on_its_request_across_listings() {
        let mut s = state(true);
        press(&mut s, KeyCode::Char('6'));
        press(&mut s, KeyCode::Down);
        assert_eq!(s.approvals.selected_id.as_deref(), Some(MINE));
        let mut l = listing(now());
        l.waiting_for_me.clear();
        update(&mut s, Msg::ApprovalsLoaded(Ok(l)));
        assert_eq!(s.approvals.cursor, 0);
        assert_eq!(s.approvals.selected_id.as_deref(), Some(MINE));
    }

    #[test]
    fn a_feed_event_on_a_request_lists_the_store_again() {
        use crate::app::update::feed::tests::{now, poll, state};
        use crate::domain::trail::fixtures::record;
        let mut s = state();
        let t = now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let name = "keydeck/approvals/20261123-120000-a1b2c3d4";
        let sm = "secretsmanager.amazonaws.com";
        let other = record("e1", &t, "DescribeSecret", sm, "eu-north-1", "key-admin", None, None, Some("JWT_SECRET"));
        assert!(!update(&mut s, poll(vec![("e1".into(), other)])).contains(&Action::LoadApprovals));
        // A console's own listing reads the request: that changes nothing.
        let read = record("e0", &t, "DescribeSecret", sm, "eu-north-1", "key-admin", None, None, Some(name));
        assert!(!update(&mut s, poll(vec![("e0".into(), read)])).contains(&Action::LoadApprovals));
        let moved =
            record("e2", &t, "UpdateSecretVersionStage", sm, "eu-north-1", "security-lead", None, None, Some(name));
        assert!(update(&mut s, poll(vec![("e2".into(), moved)])).contains(&Action::LoadApprovals));
    }
}
