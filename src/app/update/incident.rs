//! The incident's part of the update loop: starting one from the inventory or an alert,
//! the checklist's keys, the prompts (reason, note, file, the confirmation of a step
//! that changes AWS: the typed alias of a destructive one, `y` for another — Cancel is
//! the default), and the incident's log arriving.
//!
//! Nothing here calls AWS: a confirmed step becomes an [`Action`] that the runtime runs,
//! answering with [`crate::app::Msg::IncidentLoaded`] and `IncidentDone`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::app::msg::Action;
use crate::app::state::{IncidentState, Mode, Prompt, PromptFor, Selected, State, Status, View};
use crate::domain::runbook::{IncidentRecord, Runbook, StepKind, StepState, Work};

fn status(state: &mut State, text: impl Into<String>, error: bool) {
    state.status = Some(Status { text: text.into(), error });
}

/// Changing AWS needs `--allow-write`: say so instead of acting.
fn writable(state: &mut State, what: &str) -> bool {
    if !state.session.write_enabled {
        status(state, format!("read-only: restart with --allow-write to {what}"), true);
        return false;
    }
    true
}

/// `i`: open an incident on the selected key or secret (inventory) or on the selected
/// alert's key or secret (alerts view): ask for the reason first. An incident already
/// open on it is shown instead, without asking.
pub fn start(state: &mut State) -> Vec<Action> {
    let target = match state.view {
        View::Inventory => match state.selected() {
            Some(Selected::Key(i, k)) => Some((k.arn.clone(), i.name.clone(), false, None)),
            Some(Selected::Secret(i, s)) => Some((s.arn.clone(), i.name.clone(), true, None)),
            None => None,
        },
        View::Alerts => state.feed.alert_rows().get(state.feed.alert_cursor).and_then(|a| {
            let alert = Some(a.id.clone());
            match (&a.key, &a.secret) {
                (Some(k), _) => Some((k.clone(), k.clone(), false, alert)),
                (None, Some(s)) => Some((s.clone(), s.clone(), true, alert)),
                _ => None,
            }
        }),
        _ => None,
    };
    let open = target.as_ref().and_then(|(t, label, ..)| {
        state.open_incidents.iter().find(|o| o.is_on(t) || o.is_on(label)).map(|o| o.id.clone())
    });
    if let Some(id) = open {
        state.view = View::Incident;
        status(state, format!("incident {id} is already open on this key or secret: showing it"), false);
        return if state.incident.as_ref().is_some_and(|i| i.id == id) {
            vec![]
        } else {
            state.incident_pending = Some(id.clone());
            vec![Action::IncidentShow { id }]
        };
    }
    if !writable(state, "start an incident") {
        return vec![];
    }
    match target {
        Some((target, label, secret, alert)) => {
            state.mode = Mode::Prompt(Prompt {
                purpose: PromptFor::StartReason { target, label, secret, alert },
                text: String::new(),
            })
        }
        None => status(state, "select a key or secret (or an alert about one) to start an incident", true),
    }
    vec![]
}

/// `]` / `[`: show the next (older) or previous (newer) open incident of this data dir,
/// wrapping around; not while a step runs.
pub fn switch(state: &mut State, forward: bool) -> Vec<Action> {
    let n = state.open_incidents.len();
    let current = state.incident.as_ref().map(|i| i.id.clone());
    if let Some(r) = state.incident.as_ref().and_then(|i| i.running.clone()) {
        status(state, format!("step {r} is running: switch incidents when it is done"), true);
        return vec![];
    }
    let at = current.as_ref().and_then(|c| state.open_incidents.iter().position(|o| &o.id == c));
    let to = match at {
        Some(i) if forward => (i + 1) % n,
        Some(i) => (i + n - 1) % n,
        None => 0,
    };
    match state.open_incidents.get(to).map(|o| o.id.clone()) {
        Some(id) if Some(&id) != current.as_ref() => {
            status(state, format!("showing incident {id} ({} of {n})…", to + 1), false);
            state.incident_pending = Some(id.clone());
            vec![Action::IncidentShow { id }]
        }
        _ => {
            status(state, "no other open incident in this data dir", false);
            vec![]
        }
    }
}

/// Enter on a step: ask for what it needs (note, file, the typed alias), then run it.
pub fn run_selected(state: &mut State) -> Vec<Action> {
    let Some(inc) = &state.incident else {
        status(state, "no incident: press i on a key in the inventory (1) or on an alert (3)", true);
        return vec![];
    };
    let Some(step) = inc.selected().map(|s| s.id.clone()) else { return vec![] };
    if let Some(r) = &inc.running {
        let r = r.clone();
        status(state, format!("step {r} is running"), true);
        return vec![];
    }
    if let Some(p) = &state.incident_pending {
        let p = p.clone();
        status(state, format!("switching to incident {p}: press Enter again once it shows"), true);
        return vec![];
    }
    if let Some(h) = &inc.held_by {
        let h = h.clone();
        status(state, format!("read-only: {h} holds this incident"), true);
        return vec![];
    }
    if !writable(state, "run incident steps") {
        return vec![];
    }
    next_prompt(state, step, None, Vec::new())
}

/// Ask for the next thing `step` needs, or run it when it has everything.
fn next_prompt(state: &mut State, step: String, note: Option<String>, files: Vec<String>) -> Vec<Action> {
    let Some(inc) = &state.incident else { return vec![] };
    let Some(meta) = inc.runbook.step(&step) else { return vec![] };
    let is_ack = meta.kind == StepKind::Ack;
    let expected = inc.confirm_text();
    let work = inc.preview(&step, note.clone(), &files, &state.session.identity.arn);
    // Refusals no input can answer (done, blocked …) are said now, before any prompt. (A
    // dual-approval step goes ahead: running it proposes its request, or reads the
    // request from the store and records what the approver made.)
    if let Some(Err(refusals)) = &work {
        use crate::domain::runbook::Refusal;
        // An attempt left without an outcome (the endpoint went away mid-call, a crash):
        // running the step settles it by reading AWS (no call that changes anything), and
        // says what it found; nothing is asked.
        if refusals.iter().any(|r| matches!(r, Refusal::OutcomeUnknown { .. })) {
            let action = run_action(state, step.clone(), None, None, Vec::new());
            status(state, format!("settling {step}: reading AWS to learn whether its calls took effect…"), false);
            return action;
        }
        let blocking: Vec<String> = refusals
            .iter()
            .filter(|r| !matches!(r, Refusal::NeedsApproval { .. } | Refusal::WaitingForApproval { .. }))
            .map(|r| r.to_string())
            .collect();
        if !blocking.is_empty() {
            status(state, format!("{step}: {}", blocking.join("; ")), true);
            return vec![];
        }
    }
    let acknowledge = matches!(work, Some(Ok(Work::Acknowledge)));
    if (meta.note || is_ack || acknowledge) && note.is_none() {
        state.mode = Mode::Prompt(Prompt { purpose: PromptFor::Note { step }, text: String::new() });
        return vec![];
    }
    if meta.file && files.is_empty() {
        state.mode = Mode::Prompt(Prompt { purpose: PromptFor::File { step, note }, text: String::new() });
        return vec![];
    }
    // Every step that changes AWS shows its calls first, Cancel the default: a destructive
    // one needs the alias typed, any other `y`. (A dual-approval step only proposes or
    // reads its request: its approver confirms the calls.)
    if !acknowledge && (meta.destructive || (meta.kind == StepKind::Action && meta.approval.is_none())) {
        let calls = match work {
            Some(Ok(Work::Calls { ops, .. })) => ops.iter().map(|o| o.describe()).collect(),
            Some(Err(refusals)) => refusals.iter().map(|r| format!("refused now: {r}")).collect(),
            _ => vec![],
        };
        let expected = meta.destructive.then_some(expected);
        state.mode = Mode::Prompt(Prompt {
            purpose: PromptFor::Confirm { step, expected, calls, note, files },
            text: String::new(),
        });
        return vec![];
    }
    run_action(state, step, note, None, files)
}

fn run_action(
    state: &mut State,
    step: String,
    note: Option<String>,
    confirm: Option<String>,
    files: Vec<String>,
) -> Vec<Action> {
    let Some(inc) = state.incident.as_mut() else { return vec![] };
    inc.running = Some(step.clone());
    let id = inc.id.clone();
    status(state, format!("running {step}…"), false);
    vec![Action::IncidentRun { id, step, note, confirm, files }]
}

/// `s`: skip the selected step (asks the reason).
pub fn skip_selected(state: &mut State) {
    if !writable(state, "skip incident steps") {
        return;
    }
    let Some(step) = state.incident.as_ref().and_then(|i| i.selected()).map(|s| s.id.clone()) else { return };
    if let Some(p) = &state.incident_pending {
        let p = p.clone();
        status(state, format!("switching to incident {p}: press s again once it shows"), true);
        return;
    }
    state.mode = Mode::Prompt(Prompt { purpose: PromptFor::SkipReason { step }, text: String::new() });
}

/// A key while a prompt is open. Esc always cancels; Enter submits (a confirmation only
/// when the typed text is exactly the expected alias). A confirmation without an alias
/// runs on `y` alone; `n`, Esc or Enter cancels it, other keys are ignored.
pub fn on_prompt_key(state: &mut State, mut p: Prompt, code: crossterm::event::KeyCode) -> Vec<Action> {
    use crossterm::event::KeyCode;
    if let PromptFor::Confirm { expected: None, .. } = &p.purpose {
        return match (code, p.purpose) {
            (KeyCode::Char('y' | 'Y'), PromptFor::Confirm { step, note, files, .. }) => {
                state.mode = Mode::Normal;
                run_action(state, step, note, None, files)
            }
            (KeyCode::Char('n' | 'N') | KeyCode::Esc | KeyCode::Enter, _) => {
                state.mode = Mode::Normal;
                status(state, "cancelled: nothing was done", false);
                vec![]
            }
            // Any other key is ignored (the dialog stays): keystrokes typed into it, an
            // alias for instance, never reach the view behind it.
            (_, purpose) => {
                state.mode = Mode::Prompt(Prompt { purpose, text: p.text });
                status(state, "y runs the step; n, Esc or Enter cancels", true);
                vec![]
            }
        };
    }
    match code {
        KeyCode::Esc => {
            state.mode = Mode::Normal;
            status(state, "cancelled", false);
            vec![]
        }
        KeyCode::Backspace => {
            p.text.pop();
            state.mode = Mode::Prompt(p);
            vec![]
        }
        KeyCode::Char(c) if !c.is_control() && p.text.chars().count() < 1000 => {
            p.text.push(c);
            state.mode = Mode::Prompt(p);
            vec![]
        }
        KeyCode::Enter => submit(state, p),
        _ => {
            state.mode = Mode::Prompt(p);
            vec![]
        }
    }
}

fn submit(state: &mut State, p: Prompt) -> Vec<Action> {
    let text = p.text.trim().to_owned();
    state.mode = Mode::Normal;
    match p.purpose {
        PromptFor::StartReason { target, label, secret, alert } => {
            if text.is_empty() {
                status(state, "an incident needs a reason: cancelled", true);
                return vec![];
            }
            state.view = View::Incident;
            status(state, format!("opening an incident on {label}…"), false);
            vec![Action::IncidentStart { target, secret, reason: text, alert }]
        }
        PromptFor::Note { step } => {
            if text.is_empty() {
                status(state, "a note is needed: cancelled", true);
                return vec![];
            }
            next_prompt(state, step, Some(text), Vec::new())
        }
        PromptFor::File { step, note } => {
            if text.is_empty() {
                status(state, "a ciphertext file is needed: cancelled", true);
                return vec![];
            }
            next_prompt(state, step, note, text.split(',').map(|f| f.trim().to_owned()).collect())
        }
        PromptFor::SkipReason { step } => {
            if text.is_empty() {
                status(state, "a skip needs a reason: cancelled", true);
                return vec![];
            }
            let Some(id) = state.incident.as_ref().map(|i| i.id.clone()) else { return vec![] };
            vec![Action::IncidentSkip { id, step, reason: text }]
        }
        PromptFor::Confirm { step, expected: Some(expected), calls, note, files } => {
            let typed = text.trim_start_matches("alias/");
            if typed != expected {
                status(state, format!("not confirmed (type {expected} exactly; Esc cancels): nothing was done"), true);
                if !typed.is_empty() {
                    // A typo: the dialog stays, emptied, for another try.
                    state.mode = Mode::Prompt(Prompt {
                        purpose: PromptFor::Confirm { step, expected: Some(expected), calls, note, files },
                        text: String::new(),
                    });
                }
                return vec![];
            }
            run_action(state, step, note, Some(typed.to_owned()), files)
        }
        // Answered by on_prompt_key (`y` or cancel) before any text is typed.
        PromptFor::Confirm { expected: None, .. } => vec![],
    }
}

/// The incident's log as it now stands: keep the cursor on the same step.
pub fn on_loaded(
    state: &mut State,
    id: String,
    runbook: Arc<Runbook>,
    records: Vec<IncidentRecord>,
    held_by: Option<String>,
    now: DateTime<Utc>,
) {
    if state.incident_pending.as_ref().is_some_and(|p| *p == id) {
        state.incident_pending = None;
        // "showing incident … (2 of 2)…" is done: the title says which it is.
        if state.status.as_ref().is_some_and(|s| s.text.starts_with("showing incident ")) {
            state.status = None;
        }
    }
    // Another incident takes the screen: a dialog opened for a step of the one leaving
    // closes, so no keystroke meant for it runs a step of the new one.
    let switched = state.incident.as_ref().is_some_and(|i| i.id != id);
    if switched && matches!(&state.mode, Mode::Prompt(p) if p.purpose.is_incident_step()) {
        state.mode = Mode::Normal;
        status(state, "the incident on screen changed: the step's dialog closed, nothing was run", true);
    }
    let keep = state.incident.as_ref().filter(|i| i.id == id).map(|i| (i.cursor, i.running.clone()));
    let Some(mut inc) = IncidentState::new(id, runbook, records, now) else {
        status(state, "the incident log cannot be replayed against its runbook", true);
        return;
    };
    inc.held_by = held_by;
    match keep {
        Some((cursor, running)) => {
            inc.cursor = cursor.min(inc.plan.steps.len().saturating_sub(1));
            inc.running = running;
        }
        None => {
            // A new or resumed incident opens on its next step.
            let next = inc.plan.next.as_ref().map(|n| n.step.clone());
            inc.cursor = next.and_then(|n| inc.plan.steps.iter().position(|s| s.id == n)).unwrap_or(0);
        }
    }
    state.incident = Some(inc);
}

/// An incident action finished (or showing one failed).
pub fn on_done(state: &mut State, result: Result<String, String>) {
    state.incident_pending = None;
    if let Some(inc) = state.incident.as_mut() {
        let finished = inc.running.take();
        // After a success, go on to the next open step after the one just done (in
        // runbook order), so an operator working down the list is not sent back up.
        let settled = |i: usize| {
            inc.plan.steps.get(i).is_some_and(|s| matches!(s.state, StepState::Done { .. } | StepState::Skipped { .. }))
        };
        let from = finished.and_then(|f| inc.plan.steps.iter().position(|s| s.id == f)).unwrap_or(inc.cursor);
        // A step that is not finished (waiting for approval, settled not done) keeps the cursor.
        if result.is_ok() && settled(from) {
            let open = |s: &crate::domain::runbook::StepStatus| {
                !matches!(s.state, StepState::Done { .. } | StepState::Skipped { .. } | StepState::Blocked { .. })
            };
            let after = inc.plan.steps.iter().enumerate().skip(from + 1).find(|(_, s)| open(s)).map(|(i, _)| i);
            let first = inc.plan.steps.iter().position(open);
            if let Some(i) = after.or(first) {
                inc.cursor = i;
            }
        }
    }
    match result {
        Ok(text) => status(state, text, false),
        Err(e) => status(state, e, true),
    }
}

/// The clocks move: re-plan from the records (deadlines, elapsed time).
pub fn on_minute(state: &mut State) {
    let now = state.now;
    if let Some(inc) = state.incident.as_mut() {
        if let Ok(p) = crate::domain::runbook::plan(&inc.runbook, &inc.records, now) {
            inc.plan = p;
        }
    }
}

/// Up/Down in the checklist.
pub fn move_cursor(state: &mut State, down: bool) {
    if let Some(inc) = state.incident.as_mut() {
        let last = inc.plan.steps.len().saturating_sub(1);
        inc.cursor = if down { (inc.cursor + 1).min(last) } else { inc.cursor.saturating_sub(1) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::msg::Msg;
    use crate::app::update;
    use crate::domain::runbook::{CallResult, IncidentTarget, KeyTarget, Op, Opened, StepInput, StepRecord};
    use chrono::TimeZone;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use std::collections::BTreeMap;

    pub const KEY_ARN: &str = "arn:aws:kms:eu-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const LEAD: &str = "arn:aws:iam::123456789012:user/security-lead";

    pub fn runbook_kms() -> Runbook {
        Runbook::embedded().expect("runbooks").into_iter().find(|r| r.id == "kms-key-compromise").expect("kms runbook")
    }

    pub fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).single().expect("time")
    }

    fn rec(at: DateTime<Utc>, record: StepRecord) -> IncidentRecord {
        IncidentRecord { at, actor: LEAD.into(), record }
    }

    fn ok(call: &str, rid: &str, fields: serde_json::Value) -> CallResult {
        CallResult { call: call.into(), request_id: Some(rid.into()), fields, error_code: None, error: None }
    }

    /// An incident on drop-kyc-key at 09:10 (detected 09:00): notified, scoped, next the disable.
    pub fn records() -> Vec<IncidentRecord> {
        let opened = Opened {
            incident_id: "20261123T091000Z-a1b2c3".into(),
            runbook: "kms-key-compromise".into(),
            target: IncidentTarget::Key(KeyTarget {
                arn: KEY_ARN.into(),
                key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                region: "eu-north-1".into(),
                aliases: vec!["drop-kyc-key".into()],
                key_spec: "SYMMETRIC_DEFAULT".into(),
                key_usage: "ENCRYPT_DECRYPT".into(),
                description: "KYC documents".into(),
                tags: BTreeMap::from([("classification".into(), "L4".into())]),
                policy: "{}".into(),
            }),
            detected_at: t(9, 0, 0),
            note: "key material seen in a public repository".into(),
            notify_topic_arn: Some("arn:aws:sns:eu-north-1:123456789012:security-incident".into()),
        };
        let publish = Op::Publish {
            topic_arn: "arn:aws:sns:eu-north-1:123456789012:security-incident".into(),
            subject: "keydeck incident".into(),
            message: "summary".into(),
        };
        let scope = crate::domain::scope::Scope {
            events: 42,
            callers: vec![
                crate::domain::scope::Caller {
                    principal: "arn:aws:iam::123456789012:user/app-encrypt".into(),
                    operation: "GenerateDataKey".into(),
                    calls: 30,
                    failed: 0,
                    first: t(8, 0, 0),
                    last: t(9, 5, 0),
                    named_by: [crate::domain::scope::NamedBy::Alias].into(),
                },
                crate::domain::scope::Caller {
                    principal: "arn:aws:iam::123456789012:user/batch-export".into(),
                    operation: "Encrypt".into(),
                    calls: 7,
                    failed: 0,
                    first: t(8, 10, 0),
                    last: t(9, 1, 0),
                    named_by: [crate::domain::scope::NamedBy::KeyArn].into(),
                },
                crate::domain::scope::Caller {
                    principal: "arn:aws:iam::123456789012:user/outsider".into(),
                    operation: "Decrypt".into(),
                    calls: 5,
                    failed: 5,
                    first: t(8, 59, 0),
                    last: t(9, 0, 0),
                    named_by: [crate::domain::scope::NamedBy::Ciphertext].into(),
                },
            ],
            needs_config_change: vec!["arn:aws:iam::123456789012:user/batch-export".into()],
            principals: vec![],
            metadata_reads: 3,
        };
        let runbook = runbook_kms();
        let mut out = vec![rec(t(9, 10, 0), StepRecord::Opened(Box::new(opened)))];
        out.push(rec(
            t(9, 10, 20),
            StepRecord::Intent { step: "notify".into(), attempt: 1, ops: vec![publish.clone()] },
        ));
        out.push(rec(
            t(9, 10, 21),
            StepRecord::Outcome {
                step: "notify".into(),
                attempt: 1,
                ok: true,
                results: vec![ok("sns:Publish", "req-sns-1", serde_json::json!({"MessageId": "m-1"}))],
            },
        ));
        // The scope step's ops as the engine makes them.
        let inc = crate::domain::runbook::Incident::replay(&runbook, &out).expect("replay");
        let input = StepInput { note: None, confirm: None, files: vec![], principal_arn: Some(LEAD.into()) };
        let Ok(Work::Calls { ops, .. }) = inc.prepare("scope", &input) else { panic!("scope has calls") };
        let results: Vec<CallResult> = ops
            .iter()
            .map(|op| match op.call().name() {
                "cloudtrail:LookupEvents" => CallResult {
                    call: op.call().name().into(),
                    request_id: None,
                    fields: serde_json::json!({"Scope": scope, "Calls": 3, "Throttled": 0}),
                    error_code: None,
                    error: None,
                },
                "kms:ListAliases" => ok(
                    op.call().name(),
                    "req-la",
                    serde_json::json!({"Aliases": [{"AliasName": "alias/drop-kyc-key"}]}),
                ),
                "kms:ListGrants" => ok(op.call().name(), "req-lg", serde_json::json!({"Grants": []})),
                name => ok(name, "req-x", serde_json::Value::Null),
            })
            .collect();
        out.push(rec(t(9, 11, 0), StepRecord::Intent { step: "scope".into(), attempt: 1, ops }));
        out.push(rec(t(9, 11, 40), StepRecord::Outcome { step: "scope".into(), attempt: 1, ok: true, results }));
        out
    }

    pub fn loaded() -> Msg {
        Msg::IncidentLoaded {
            id: "20261123T091000Z-a1b2c3".into(),
            runbook: Arc::new(runbook_kms()),
            records: records(),
            held_by: None,
        }
    }

    fn state(write: bool) -> State {
        state_with(write, loaded())
    }

    fn state_with(write: bool, loaded: Msg) -> State {
        let policy = Arc::new(crate::domain::policy::Policy::default_policy().expect("policy"));
        let mut session = crate::app::state::Session { write_enabled: write, ..Default::default() };
        session.identity.arn = LEAD.into();
        let mut s = State::new(session, policy, t(9, 20, 0), false);
        update(&mut s, loaded);
        s
    }

    /// The action that runs `step` of the fixture's incident without a note or files.
    fn run(step: &str, confirm: Option<&str>) -> Action {
        Action::IncidentRun {
            id: "20261123T091000Z-a1b2c3".into(),
            step: step.into(),
            note: None,
            confirm: confirm.map(str::to_owned),
            files: vec![],
        }
    }

    fn press(s: &mut State, c: KeyCode) -> Vec<Action> {
        update(s, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    fn typed(s: &mut State, text: &str) {
        for c in text.chars() {
            press(s, KeyCode::Char(c));
        }
    }

    /// View 5 on the incident whose notify has an intent and no outcome (the endpoint
    /// went away mid-call), notify selected.
    pub fn unknown_notify() -> State {
        let mut records = records();
        let at = records.iter().position(|r| matches!(&r.record, StepRecord::Outcome { step, .. } if step == "notify"));
        records.truncate(at.expect("notify's outcome"));
        let runbook = Arc::new(runbook_kms());
        let mut s = state_with(
            true,
            Msg::IncidentLoaded { id: "20261123T091000Z-a1b2c3".into(), runbook, records, held_by: None },
        );
        press(&mut s, KeyCode::Char('5'));
        while s.incident.as_ref().and_then(|i| i.selected()).is_some_and(|x| x.id != "notify") {
            press(&mut s, KeyCode::Char('k'));
        }
        s
    }

    pub fn incident_state(write: bool) -> State {
        let mut s = state(write);
        press(&mut s, KeyCode::Char('5'));
        s
    }

    /// The incident with the key disabled: the next step is create-key (dual approval,
    /// 004 §6); with `request`, its request is proposed and waits for the approver.
    pub fn at_create_key(write: bool, request: Option<&str>) -> State {
        let mut out = records();
        let runbook = runbook_kms();
        let inc = crate::domain::runbook::Incident::replay(&runbook, &out).expect("replay");
        let input = StepInput {
            note: None,
            confirm: Some("drop-kyc-key".into()),
            files: vec![],
            principal_arn: Some(LEAD.into()),
        };
        let Ok(Work::Calls { ops, .. }) = inc.prepare("disable", &input) else { panic!("disable has calls") };
        let results = ops.iter().map(|op| ok(op.call().name(), "req-dk", serde_json::Value::Null)).collect();
        out.push(rec(t(9, 12, 0), StepRecord::Intent { step: "disable".into(), attempt: 1, ops }));
        out.push(rec(t(9, 12, 1), StepRecord::Outcome { step: "disable".into(), attempt: 1, ok: true, results }));
        if let Some(request_id) = request {
            let inc = crate::domain::runbook::Incident::replay(&runbook, &out).expect("replay");
            let input = StepInput { principal_arn: Some(LEAD.into()), ..Default::default() };
            let ops = match inc.prepare("create-key", &input) {
                Err(r) => r
                    .into_iter()
                    .find_map(|r| match r {
                        crate::domain::runbook::Refusal::NeedsApproval { ops, .. } => Some(ops),
                        _ => None,
                    })
                    .expect("create-key needs approval"),
                Ok(w) => panic!("create-key needs approval, got {w:?}"),
            };
            let approval = crate::domain::runbook::Approval::CreateKey;
            let request_id = request_id.to_owned();
            out.push(rec(
                t(9, 13, 0),
                StepRecord::ApprovalRequested { step: "create-key".into(), approval, ops, request_id },
            ));
        }
        let Msg::IncidentLoaded { id, runbook, held_by, .. } = loaded() else { unreachable!() };
        let mut s = state_with(write, Msg::IncidentLoaded { id, runbook, records: out, held_by });
        press(&mut s, KeyCode::Char('5'));
        s
    }

    #[test]
    fn a_resumed_incident_opens_on_its_next_step() {
        let s = incident_state(true);
        let inc = s.incident.as_ref().expect("incident");
        assert_eq!(inc.selected().map(|x| x.id.as_str()), Some("disable"));
        assert_eq!(inc.confirm_text(), "drop-kyc-key");
        assert_eq!(inc.scope().map(|x| x.events), Some(42));
    }

    #[test]
    fn a_destructive_step_needs_the_alias_typed_and_cancel_is_the_default() {
        let mut s = incident_state(true);
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "Enter opens the confirmation, it runs nothing");
        let Mode::Prompt(Prompt { purpose: PromptFor::Confirm { calls, expected, .. }, .. }) = &s.mode else {
            panic!("confirmation expected, got {:?}", s.mode)
        };
        assert_eq!(expected.as_deref(), Some("drop-kyc-key"));
        assert!(calls.iter().any(|c| c.contains("kms:DisableKey") && c.contains(KEY_ARN)), "{calls:?}");
        // Enter with nothing typed is Cancel.
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert_eq!(s.mode, Mode::Normal);
        // A wrong alias runs nothing; the dialog stays for another try.
        press(&mut s, KeyCode::Enter);
        typed(&mut s, "drop-kyc-ke");
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("nothing was done")));
        assert!(
            matches!(&s.mode, Mode::Prompt(Prompt { purpose: PromptFor::Confirm { .. }, text }) if text.is_empty())
        );
        // Esc cancels.
        typed(&mut s, "drop-kyc-key");
        press(&mut s, KeyCode::Esc);
        assert_eq!(s.mode, Mode::Normal);
        // The exact alias (alias/ allowed) runs it.
        press(&mut s, KeyCode::Enter);
        typed(&mut s, "alias/drop-kyc-key");
        let actions = press(&mut s, KeyCode::Enter);
        assert_eq!(actions, vec![run("disable", Some("drop-kyc-key"))]);
        assert_eq!(s.incident.as_ref().and_then(|i| i.running.clone()).as_deref(), Some("disable"));
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "one step at a time");
        press(&mut s, KeyCode::Char('q'));
        assert!(!s.quit, "q while a step runs warns first");
        assert!(s.status.as_ref().is_some_and(|st| st.text.starts_with("a step is running")));
        update(&mut s, Msg::IncidentDone(Err("disable failed: kms:DisableKey … access denied".into())));
        assert!(s.incident.as_ref().is_some_and(|i| i.running.is_none()));
        assert_eq!(
            s.incident.as_ref().and_then(|i| i.selected()).map(|x| x.id.as_str()),
            Some("disable"),
            "a failure stays put"
        );
        // After a success the cursor goes on down the list, not back to an earlier open step.
        if let Some(inc) = s.incident.as_mut() {
            inc.running = Some("disable".into());
        }
        let mut recs = records();
        let disable = Op::DisableKey { key_id: KEY_ARN.into() };
        recs.push(rec(t(9, 21, 0), StepRecord::Intent { step: "disable".into(), attempt: 1, ops: vec![disable] }));
        recs.push(rec(
            t(9, 21, 1),
            StepRecord::Outcome {
                step: "disable".into(),
                attempt: 1,
                ok: true,
                results: vec![ok("kms:DisableKey", "req-d", serde_json::Value::Null)],
            },
        ));
        update(
            &mut s,
            Msg::IncidentLoaded {
                id: "20261123T091000Z-a1b2c3".into(),
                runbook: Arc::new(runbook_kms()),
                records: recs,
                held_by: None,
            },
        );
        update(&mut s, Msg::IncidentDone(Ok("disable: done".into())));
        assert_eq!(s.incident.as_ref().and_then(|i| i.selected()).map(|x| x.id.as_str()), Some("create-key"));
    }

    /// The incident before anyone was notified: notify (sns:Publish, an action that is not
    /// destructive) is the next step.
    pub fn before_notify() -> State {
        let mut out = records();
        out.retain(|r| !matches!(&r.record, StepRecord::Intent { step, .. } | StepRecord::Outcome { step, .. } if step == "notify"));
        let Msg::IncidentLoaded { id, runbook, held_by, .. } = loaded() else { unreachable!() };
        let mut s = state_with(true, Msg::IncidentLoaded { id, runbook, records: out, held_by });
        press(&mut s, KeyCode::Char('5'));
        s
    }

    #[test]
    fn every_step_that_changes_aws_shows_its_calls_and_cancel_is_the_default() {
        let mut s = before_notify();
        assert_eq!(s.incident.as_ref().and_then(|i| i.selected()).map(|x| x.id.as_str()), Some("notify"));
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "Enter opens the confirmation, it runs nothing");
        let Mode::Prompt(Prompt { purpose: PromptFor::Confirm { calls, expected, .. }, .. }) = &s.mode else {
            panic!("confirmation expected, got {:?}", s.mode)
        };
        assert_eq!(*expected, None, "not destructive: no alias to type");
        assert!(calls.iter().any(|c| c.contains("sns:Publish")), "{calls:?}");
        // Enter is Cancel; so are n and Esc.
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert_eq!(s.mode, Mode::Normal);
        assert!(s.incident.as_ref().is_some_and(|i| i.running.is_none()));
        for cancel in [KeyCode::Char('n'), KeyCode::Esc] {
            press(&mut s, KeyCode::Enter);
            assert!(press(&mut s, cancel).is_empty());
            assert_eq!(s.mode, Mode::Normal);
        }
        // Other keys are ignored: an alias typed into the dialog never reaches the view
        // (j, k would move the cursor; Enter there would open another step).
        press(&mut s, KeyCode::Enter);
        let cursor = s.incident.as_ref().map(|i| i.cursor);
        typed(&mut s, "drop-kkk");
        assert!(matches!(&s.mode, Mode::Prompt(Prompt { purpose: PromptFor::Confirm { .. }, .. })), "{:?}", s.mode);
        assert_eq!(s.incident.as_ref().map(|i| i.cursor), cursor);
        // y runs it.
        assert_eq!(press(&mut s, KeyCode::Char('y')), vec![run("notify", None)]);
    }

    #[test]
    fn the_switching_message_goes_once_the_incident_shows() {
        let mut s = before_notify();
        update(&mut s, two_open());
        let Some(Action::IncidentShow { id }) = press(&mut s, KeyCode::Char(']')).pop() else { panic!("a switch") };
        assert!(s.status.as_ref().is_some_and(|st| st.text.starts_with("showing incident ")), "{:?}", s.status);
        let Msg::IncidentLoaded { runbook, records, .. } = loaded() else { unreachable!() };
        update(&mut s, Msg::IncidentLoaded { id, runbook, records, held_by: None });
        assert_eq!(s.status, None, "the title says which incident it is");
    }

    #[test]
    fn keys_wait_while_another_incident_is_coming_up_and_its_dialogs_close() {
        let mut s = before_notify();
        update(
            &mut s,
            Msg::IncidentsOpen(vec![
                open_incident("20261123T091000Z-a1b2c3", KEY_ARN, "drop-kyc-key"),
                open_incident(
                    "20261122T080000Z-ffffff",
                    "arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf",
                    "JWT_SECRET",
                ),
            ]),
        );
        // A confirmation is open for notify when ] asks for the other incident.
        press(&mut s, KeyCode::Enter);
        press(&mut s, KeyCode::Esc);
        assert_eq!(
            press(&mut s, KeyCode::Char(']')),
            vec![Action::IncidentShow { id: "20261122T080000Z-ffffff".into() }]
        );
        // Until it shows, Enter and s act on nothing.
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert_eq!(s.mode, Mode::Normal);
        assert!(s
            .status
            .as_ref()
            .is_some_and(|st| st.text.starts_with("switching to incident 20261122T080000Z-ffffff")));
        press(&mut s, KeyCode::Char('s'));
        assert_eq!(s.mode, Mode::Normal);
        // A dialog opened before the switch closes when the other incident arrives.
        s.incident_pending = None;
        press(&mut s, KeyCode::Enter);
        assert!(matches!(&s.mode, Mode::Prompt(_)));
        let Msg::IncidentLoaded { runbook, records, .. } = loaded() else { unreachable!() };
        update(&mut s, Msg::IncidentLoaded { id: "20261122T080000Z-ffffff".into(), runbook, records, held_by: None });
        assert_eq!(s.mode, Mode::Normal);
        assert!(s.status.as_ref().is_some_and(|st| st.text.contains("nothing was run")), "{:?}", s.status);
        assert_eq!(s.incident_pending, None);
    }

    #[test]
    fn a_step_whose_outcome_is_unknown_is_settled_on_enter_without_a_prompt() {
        let mut s = unknown_notify();
        let actions = press(&mut s, KeyCode::Enter);
        assert_eq!(actions, vec![run("notify", None)], "status: {:?}", s.status);
        assert_eq!(s.mode, Mode::Normal, "no prompt: settling only reads AWS");
        assert!(s.status.as_ref().is_some_and(|st| st.text.starts_with("settling notify")), "{:?}", s.status);
    }

    #[test]
    fn a_step_that_cannot_run_says_why_before_any_prompt() {
        let mut s = incident_state(true);
        // open is done; enable-rotation waits for create-key.
        press(&mut s, KeyCode::Char('k'));
        press(&mut s, KeyCode::Char('k'));
        press(&mut s, KeyCode::Char('k'));
        assert_eq!(s.incident.as_ref().and_then(|i| i.selected()).map(|x| x.id.as_str()), Some("open"));
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert_eq!(s.mode, Mode::Normal, "no dialog for a done step");
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("already done")), "{:?}", s.status);
    }

    #[test]
    fn a_step_waiting_for_its_approval_request_runs_to_read_the_store() {
        let runbook = runbook_kms();
        let mut records = records();
        let inc = crate::domain::runbook::Incident::replay(&runbook, &records).expect("replay");
        let refusals = inc.prepare("create-key", &StepInput::default()).unwrap_err();
        let [crate::domain::runbook::Refusal::NeedsApproval { approval, ops }] = refusals.as_slice() else {
            panic!("{refusals:?}")
        };
        let requested = StepRecord::ApprovalRequested {
            step: "create-key".into(),
            approval: *approval,
            ops: ops.clone(),
            request_id: "20261123-091200-0a1b2c3d".into(),
        };
        records.push(rec(t(9, 12, 0), requested));
        let mut s = state(true);
        update(
            &mut s,
            Msg::IncidentLoaded {
                id: "20261123T091000Z-a1b2c3".into(),
                runbook: Arc::new(runbook),
                records,
                held_by: None,
            },
        );
        press(&mut s, KeyCode::Char('5'));
        for _ in 0..10 {
            if s.incident.as_ref().and_then(|i| i.selected()).is_some_and(|x| x.id == "create-key") {
                break;
            }
            press(&mut s, KeyCode::Char('j'));
        }
        let actions = press(&mut s, KeyCode::Enter);
        assert!(
            matches!(actions.as_slice(), [Action::IncidentRun { step, .. }] if step == "create-key"),
            "Enter reads the request from the store: {actions:?} {:?}",
            s.status
        );
    }

    #[test]
    fn read_only_consoles_review_but_do_not_run() {
        let mut s = incident_state(false);
        assert!(press(&mut s, KeyCode::Enter).is_empty());
        assert_eq!(s.mode, Mode::Normal);
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("--allow-write")));
    }

    #[test]
    fn acknowledgements_ask_for_a_note_and_skips_for_a_reason() {
        let mut s = incident_state(true);
        // breach-assessment is an acknowledgement.
        while s.incident.as_ref().and_then(|i| i.selected()).map(|x| x.id.clone()).as_deref()
            != Some("breach-assessment")
        {
            press(&mut s, KeyCode::Down);
        }
        press(&mut s, KeyCode::Enter);
        assert!(matches!(&s.mode, Mode::Prompt(Prompt { purpose: PromptFor::Note { .. }, .. })));
        typed(&mut s, "DPO consulted: no personal data left the key");
        let actions = press(&mut s, KeyCode::Enter);
        assert!(
            matches!(actions.as_slice(), [Action::IncidentRun { note: Some(n), .. }] if n.starts_with("DPO")),
            "{actions:?}"
        );
        update(&mut s, Msg::IncidentDone(Ok("breach-assessment: acknowledged".into())));
        press(&mut s, KeyCode::Char('s'));
        press(&mut s, KeyCode::Enter);
        assert!(s.status.as_ref().is_some_and(|st| st.text.contains("needs a reason")), "an empty reason is refused");
        press(&mut s, KeyCode::Char('s'));
        typed(&mut s, "done by hand");
        assert!(matches!(press(&mut s, KeyCode::Enter).as_slice(), [Action::IncidentSkip { .. }]));
    }

    pub fn open_incident(id: &str, target_arn: &str, label: &str) -> crate::app::state::OpenIncident {
        crate::app::state::OpenIncident { id: id.into(), target_arn: target_arn.into(), label: label.into() }
    }

    /// The incident on drop-kyc-key and one on JWT_SECRET opened after it (newest first).
    pub fn two_open() -> Msg {
        let jwt = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf";
        Msg::IncidentsOpen(vec![
            open_incident("20261123T091500Z-d4e5f6", jwt, "JWT_SECRET"),
            open_incident("20261123T091000Z-a1b2c3", KEY_ARN, "drop-kyc-key"),
        ])
    }

    #[test]
    fn brackets_switch_between_the_open_incidents() {
        let mut s = incident_state(false);
        assert!(press(&mut s, KeyCode::Char(']')).is_empty(), "nothing listed: nothing to switch to");
        assert!(s.status.as_ref().is_some_and(|st| st.text.contains("no other open incident")), "{:?}", s.status);
        update(&mut s, two_open());
        let show = |id: &str| vec![Action::IncidentShow { id: id.into() }];
        assert_eq!(press(&mut s, KeyCode::Char(']')), show("20261123T091500Z-d4e5f6"), "wraps to the newest");
        assert_eq!(press(&mut s, KeyCode::Char('[')), show("20261123T091500Z-d4e5f6"));
        let mut three = match two_open() {
            Msg::IncidentsOpen(v) => v,
            _ => unreachable!(),
        };
        three.push(open_incident("20261123T080000Z-000000", "arn:aws:kms:eu-north-1:123456789012:key/x", "x"));
        update(&mut s, Msg::IncidentsOpen(three));
        assert_eq!(press(&mut s, KeyCode::Char(']')), show("20261123T080000Z-000000"), "older");
        assert_eq!(press(&mut s, KeyCode::Char('[')), show("20261123T091500Z-d4e5f6"), "newer");
        // Not while a step runs.
        if let Some(inc) = s.incident.as_mut() {
            inc.running = Some("disable".into());
        }
        assert!(press(&mut s, KeyCode::Char(']')).is_empty());
        assert!(s.status.as_ref().is_some_and(|st| st.error && st.text.contains("is running")), "{:?}", s.status);
        let help = crate::app::keymap::help_for(View::Incident);
        assert!(help.iter().any(|b| b.keys == "]") && help.iter().any(|b| b.keys == "["), "in the ? overlay");
    }

    #[test]
    fn i_on_a_key_with_an_open_incident_shows_it_without_asking() {
        for write in [true, false] {
            let mut s = crate::app::update::feed::tests::state();
            s.session.write_enabled = write;
            let arn = match s.selected() {
                Some(Selected::Key(_, k)) => k.arn.clone(),
                _ => panic!("a key selected"),
            };
            update(&mut s, Msg::IncidentsOpen(vec![open_incident("20261123T091000Z-a1b2c3", &arn, "some-key")]));
            let actions = press(&mut s, KeyCode::Char('i'));
            assert_eq!(actions, vec![Action::IncidentShow { id: "20261123T091000Z-a1b2c3".into() }]);
            assert_eq!(s.mode, Mode::Normal, "no reason asked");
            assert_eq!(s.view, View::Incident);
            assert!(s.status.as_ref().is_some_and(|st| st.text.contains("already open")), "{:?}", s.status);
        }
    }

    #[test]
    fn i_on_a_key_asks_the_reason_then_opens_the_incident() {
        let mut s = crate::app::update::feed::tests::state();
        s.session.write_enabled = true;
        press(&mut s, KeyCode::Char('i'));
        let Mode::Prompt(Prompt { purpose: PromptFor::StartReason { target, secret, .. }, .. }) = &s.mode else {
            panic!("{:?}", s.mode)
        };
        assert!(target.starts_with("arn:aws:kms:") && !secret);
        typed(&mut s, "leaked");
        let actions = press(&mut s, KeyCode::Enter);
        assert!(matches!(actions.as_slice(), [Action::IncidentStart { reason, .. }] if reason == "leaked"));
        assert_eq!(s.view, View::Incident);
    }
}
