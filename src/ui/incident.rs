//! The incident view: the checklist with each step's state, the clocks (time to the
//! one-hour containment target, the 72-hour notification deadline, the post-mortem),
//! the selected step's explanation and the exact calls the next step will make, the
//! scope report once it ran, and the log as it grows.
//!
//! ```text
//! ┌ Incident ID — kms-key-compromise on drop-kyc-key ─ containment 0:41:12 left ─┐
//! │ ✓ open            Open the incident                 done 09:43:35            │
//! │ ▶ scope           Identify scope                    pending                   │
//! ├ scope — 004 §4.7 step 2 ──────────────────────────────────────────────────────┤
//! │ explanation · will call kms:ListAliases KeyId=… · scope report                │
//! ├ Log ───────────────────────────────────────────────────────────────────────────┤
//! │ 09:43:35 security-lead  incident.opened …                                      │
//! └────────────────────────────────────────────────────────────────────────────────┘
//! ```

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::short_principal;
use crate::app::state::{IncidentState, State};
use crate::domain::runbook::{StepKind, StepRecord, StepState, Work};
use crate::domain::text::{hms, inert};

/// Returns how far the step panel can scroll (J/K).
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) -> u16 {
    let Some(inc) = &state.incident else {
        let mut text = vec![
            Line::from(Span::styled("No incident open.", theme.title())),
            Line::from(""),
            Line::from(
                "During a compromise: select the key or secret in the inventory (1), or the alert (3), \
                 and press i. Every step calls AWS as you and is written to a local, hash-chained log \
                 before and after; destructive steps ask for the key alias. Needs --allow-write.",
            ),
            Line::from(""),
            Line::from(Span::styled(
                "From a script: keydeck --allow-write incident start --key ALIAS --reason TEXT",
                theme.dim(),
            )),
        ];
        if state.incidents_elsewhere > 0 {
            let n = state.incidents_elsewhere;
            text.push(Line::from(""));
            text.push(Line::from(Span::styled(
                format!(
                    "{n} unfinished incident{} in this data dir {} about a key or secret not found with these \
                     credentials and Regions (another account or Region, or a sandbox seeded again): \
                     keydeck incident list",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "is" } else { "are" }
                ),
                theme.error(),
            )));
        }
        let block = Block::default().borders(Borders::ALL).title(Span::styled(" Incident ", theme.title()));
        frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: true }), area);
        return 0;
    };
    // The clocks first, then the checklist, giving rows (down to three steps) to the
    // selected step's detail when it needs them: at 80×24 its commands stay readable.
    let log_h = if area.height >= 30 { 6 } else { 4 };
    let (detail_lines, detail_title) = step_lines(state, inc, theme);
    let detail_need = detail_lines
        .iter()
        .map(|l| super::widgets::wrapped_rows(l, area.width.saturating_sub(2)))
        .fold(2u16, u16::saturating_add);
    let steps_full = (inc.plan.steps.len() as u16 + 2).min((area.height.saturating_sub(1) * 45 / 100).max(5));
    let steps_h = steps_full.min(area.height.saturating_sub(1 + log_h).saturating_sub(detail_need).max(5));
    let [clocks_area, list, detail, log] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(steps_h),
        Constraint::Min(4),
        Constraint::Length(log_h),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(clocks(state, inc, clocks_area.width, theme)), clocks_area);
    checklist(frame, list, state, inc, theme);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(detail_title, theme.title()));
    let pane = super::widgets::scrolled_pane(frame, detail, detail_lines, block, state.pane_scroll, theme);
    log_pane(frame, log, inc, theme);
    pane
}

/// Elapsed time and each clock's time left (004 §10: contain within 1 hour; 72 hours to
/// notify the authority; post-mortem within 48 hours), the fullest form that fits
/// `width`: then `contain` for `containment`; then without `left` (a bare time is the time
/// left; `met` and `OVERDUE` say otherwise); then without the elapsed time.
fn clocks(state: &State, inc: &IncidentState, width: u16, theme: &Theme) -> Line<'static> {
    super::widgets::fullest(width, 3, |level| clocks_line(state, inc, level, theme))
}

fn clocks_line(state: &State, inc: &IncidentState, level: u8, theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    if level < 3 {
        spans.push(Span::styled(
            format!("elapsed {}", hms((state.now - inc.plan.opened_at).num_seconds())),
            theme.dim(),
        ));
    }
    for d in &inc.plan.deadlines {
        let left = (d.due - state.now).num_seconds();
        let name = match d.name.as_str() {
            "breach-notification" => "72h notice",
            "containment" if level >= 1 => "contain",
            other => other,
        };
        let sep = if spans.is_empty() { "" } else { " · " };
        let (text, style) = match d.met_at {
            Some(at) => (format!("{sep}{name} met {}", at.format("%H:%M")), theme.dim()),
            None if left < 0 => (format!("{sep}{name} OVERDUE {}", hms(-left)), theme.error()),
            None if level >= 2 => (format!("{sep}{name} {}", hms(left)), theme.key()),
            None => (format!("{sep}{name} {} left", hms(left)), theme.key()),
        };
        spans.push(Span::styled(text, style));
    }
    if let Some(h) = &inc.held_by {
        spans.push(Span::styled(format!(" · READ-ONLY: {} holds it", inert(h)), theme.error()));
    }
    Line::from(spans)
}

/// The incident, and which of this data dir's open incidents it is when there are more
/// (`[` / `]` switch).
fn title(state: &State, inc: &IncidentState) -> String {
    let open = &state.open_incidents;
    // First, so that 80 columns still show it.
    let which = match open.iter().position(|o| o.id == inc.id) {
        Some(i) if open.len() > 1 => format!("{} of {} ([ ] switch): ", i + 1, open.len()),
        None if !open.is_empty() => format!("(open: {}, [ ] switch) ", open.len()),
        _ => String::new(),
    };
    // The key or secret before the id: at 80 columns the id is what gets cut.
    format!(" Incident {which}on {} — {} · {} ", inert(&inc.confirm_text()), inc.plan.runbook, inc.id)
}

fn mark(s: &StepState) -> &'static str {
    match s {
        StepState::Done { .. } => "✓",
        StepState::Skipped { .. } => "–",
        StepState::Failed { .. } => "✗",
        StepState::Unknown { .. } => "?",
        StepState::WaitingForApproval { .. } => "…",
        StepState::ApprovalEnded { .. } => "▶",
        StepState::Blocked { .. } => " ",
        StepState::Pending => "▶",
    }
}

fn state_text(s: &StepState) -> String {
    match s {
        StepState::Pending => "pending".into(),
        StepState::Blocked { by } => format!("waits for {}", by.join(", ")),
        StepState::WaitingForApproval { .. } | StepState::ApprovalEnded { .. } => s.approval_text().unwrap_or_default(),
        StepState::Unknown { attempt } => format!("OUTCOME UNKNOWN (attempt {attempt}): Enter settles it"),
        StepState::Done { at } => format!("done {}", at.format("%H:%M:%S")),
        StepState::Failed { attempt, error, .. } => format!("FAILED (attempt {attempt}): {}", inert(error)),
        StepState::Skipped { reason } => format!("skipped: {}", inert(reason)),
    }
}

fn checklist(frame: &mut Frame, area: Rect, state: &State, inc: &IncidentState, theme: &Theme) {
    let rows: Vec<Row> = inc
        .plan
        .steps
        .iter()
        .map(|s| {
            let running = inc.running.as_deref() == Some(s.id.as_str());
            let st = if running { "running…".to_owned() } else { state_text(&s.state) };
            let style = match s.state {
                StepState::Failed { .. } | StepState::Unknown { .. } => theme.error(),
                StepState::Done { .. } | StepState::Skipped { .. } => theme.dim(),
                _ => Style::default(),
            };
            Row::new(vec![
                Cell::from(if running { "⟳" } else { mark(&s.state) }),
                Cell::from(s.id.clone()),
                Cell::from(inert(&s.title)),
                Cell::from(st),
            ])
            .style(style)
        })
        .collect();
    let widths = [Constraint::Length(1), Constraint::Length(17), Constraint::Percentage(45), Constraint::Min(20)];
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title(state, inc), theme.title()));
    let table = Table::new(rows, widths).block(block).row_highlight_style(theme.selected());
    let mut ts = ratatui::widgets::TableState::default().with_selected(Some(inc.cursor));
    frame.render_stateful_widget(table, area, &mut ts);
    let page = usize::from(area.height.saturating_sub(2));
    super::widgets::more_marks(frame, area, (inc.plan.steps.len(), ts.offset(), page), theme);
}

/// The selected step's panel: for a dual-approval step (004 §6) who proposes and who
/// approves, with the exact commands; else the calls Enter will make. Then its
/// explanation and flags, and its scope report once it ran. Returns the lines and the
/// panel's title.
fn step_lines<'a>(state: &State, inc: &'a IncidentState, theme: &Theme) -> (Vec<Line<'a>>, String) {
    let Some(sel) = inc.selected() else { return (Vec::new(), String::new()) };
    let meta = inc.runbook.step(&sel.id);
    let mut lines: Vec<Line> = Vec::new();
    let next = inc.plan.next.as_ref().filter(|n| n.step == sel.id);
    let approval = meta.and_then(|m| m.approval);
    if let Some(approval) = approval {
        approval_lines(state, inc, sel, approval, &mut lines, theme);
    }
    // What Enter on the selected step does: the plan's next step shows its work (the calls
    // of an unknown outcome included); another step its work once it may run.
    let preview = inc.preview_work(&sel.id, &state.session.identity.arn);
    let runnable = matches!(sel.state, StepState::Pending | StepState::Failed { .. });
    let work = match next {
        Some(n) => Some(n.work.clone()),
        None if runnable => preview.clone(),
        None => None,
    };
    if let Some(work) = &work {
        match work {
            Ok(Work::Calls { ops, .. }) => {
                lines.push(Line::from(Span::styled(
                    if approval.is_some() { "The request asks for:" } else { "Enter will call:" },
                    theme.dim(),
                )));
                for op in ops {
                    lines.push(Line::from(format!("  {}", op.describe())));
                }
            }
            Ok(Work::Acknowledge) => {
                lines.push(Line::from(Span::styled("Enter records an acknowledgement with your note", theme.dim())))
            }
            Err(r) => lines.push(Line::from(Span::styled(format!("before it can run: {r}"), theme.dim()))),
        }
    }
    if let Some(m) = meta {
        let mut flags = Vec::new();
        // Nothing to do (no grant to revoke): Enter only records an acknowledgement, with a
        // note; what the step will ask follows what it will do, not the runbook's flags.
        let acknowledging = matches!(work.as_ref().or(preview.as_ref()), Some(Ok(Work::Acknowledge)));
        // An attempt without an outcome: Enter only reads AWS to settle it.
        let unknown = matches!(sel.state, StepState::Unknown { .. });
        if unknown {
            flags.push("outcome unknown: Enter settles it by reading AWS (no call that changes anything)");
        } else if m.destructive && !acknowledging {
            flags.push("destructive: type the key alias or secret name to confirm");
        } else if m.kind == StepKind::Action && m.approval.is_none() && !acknowledging {
            flags.push("changes AWS: Enter shows the calls, y runs them");
        }
        if m.note || acknowledging {
            flags.push("needs a note");
        }
        if m.file {
            flags.push("needs a ciphertext file");
        }
        lines.push(Line::from(Span::styled(inert(&m.explain), Style::default())));
        if !flags.is_empty() {
            lines.push(Line::from(Span::styled(flags.join(" · "), theme.key())));
        }
    }
    if let Some(sc) = inc.scope_of(&sel.id) {
        {
            let head = if sel.id == "verify" {
                let ok_calls: usize = sc.callers.iter().map(|c| c.calls - c.failed).sum();
                format!(
                    "Calls on the old key since the disable: {} ({} succeeded{}); by principal:",
                    sc.events - sc.metadata_reads,
                    ok_calls,
                    if ok_calls > 0 { " — CHECK THEM" } else { "" }
                )
            } else {
                format!(
                    "Scope: {} events ({} metadata reads); callers that name the key by id or ARN need a configuration change",
                    sc.events, sc.metadata_reads
                )
            };
            lines.push(Line::from(Span::styled(head, theme.title())));
            for c in sc.callers.iter().take(12) {
                let named: Vec<&str> = c
                    .named_by
                    .iter()
                    .map(|n| match n {
                        crate::domain::scope::NamedBy::Alias => "alias",
                        crate::domain::scope::NamedBy::KeyId => "KEY ID",
                        crate::domain::scope::NamedBy::KeyArn => "KEY ARN",
                        crate::domain::scope::NamedBy::Ciphertext => "ciphertext",
                    })
                    .collect();
                lines.push(Line::from(format!(
                    "  {:<22} {:<18} {:>5} calls {:>4} failed  by {}",
                    inert(short_principal(&c.principal)),
                    inert(&c.operation),
                    c.calls,
                    c.failed,
                    named.join(",")
                )));
            }
        }
    }
    let src = meta.map(|m| inert(&m.source)).unwrap_or_default();
    (lines, format!(" {} — {src} ", sel.id))
}

/// Who proposes and who approves a dual-approval step (the policy's `[approvals]`
/// matrix, 004 §6), and the command each of them runs: the proposer runs the step, the
/// approver approves the request by its id once it exists.
fn approval_lines(
    state: &State,
    inc: &IncidentState,
    sel: &crate::domain::runbook::StepStatus,
    approval: crate::domain::runbook::Approval,
    lines: &mut Vec<Line<'_>>,
    theme: &Theme,
) {
    use crate::domain::policy::ApprovalOp;
    let op = approval.name();
    let (proposer, approver) = match ApprovalOp::from_name(op) {
        Some(o) => {
            let rule = state.policy.approvals.rule(o);
            (rule.proposer.clone(), rule.approver_role().to_owned())
        }
        None => ("proposer".to_owned(), "approver".to_owned()),
    };
    lines.push(Line::from(Span::styled(
        format!(
            "Dual approval (004 §6, [approvals.{op}]): a {} proposes, a {} approves; it runs as the approver.",
            inert(&proposer),
            inert(&approver)
        ),
        theme.key(),
    )));
    let propose = format!("keydeck --allow-write incident run {} --step {}", inert(&inc.id), inert(&sel.id));
    let (request, confirm) = match &sel.state {
        StepState::WaitingForApproval { request_id, confirm } => (Some(inert(request_id)), inert(confirm)),
        _ => (None, inert(&inc.confirm_text())),
    };
    match &request {
        Some(id) => lines.push(Line::from(format!("1. Proposed: request {id}."))),
        None => {
            if let Some(ended) = sel.state.approval_text() {
                lines.push(Line::from(Span::styled(ended, theme.error())));
            }
            lines.push(Line::from(format!("1. Propose (a {}): Enter on this step, or", inert(&proposer))));
            lines.push(Line::from(Span::styled(format!("  {propose}"), theme.title())));
        }
    }
    let id = request.as_deref().unwrap_or("ID");
    let when = if request.is_some() { "" } else { " once proposed (the ID shows here)" };
    lines.push(Line::from(format!("2. Approve (a {}): in view 6{when}, or", inert(&approver))));
    lines.push(Line::from(Span::styled(
        format!("  keydeck --allow-write approvals approve {id} --confirm {confirm}"),
        theme.title(),
    )));
}

fn record_line(r: &crate::domain::runbook::IncidentRecord) -> String {
    let what = match &r.record {
        StepRecord::Opened(o) => format!("opened: {}", o.note),
        StepRecord::Intent { step, attempt, ops } => {
            format!("{step} #{attempt} intent: {}", ops.iter().map(|o| o.call().name()).collect::<Vec<_>>().join(", "))
        }
        StepRecord::Outcome { step, attempt, ok, results } => {
            let rids: Vec<&str> = results.iter().filter_map(|c| c.request_id.as_deref()).collect();
            format!("{step} #{attempt} {} {}", if *ok { "done" } else { "FAILED" }, rids.join(" "))
        }
        StepRecord::Resolved { step, attempt, settled_done, .. } => {
            format!("{step} #{attempt} settled from AWS: {}", if *settled_done { "done" } else { "not done" })
        }
        StepRecord::Skipped { step, reason } => format!("{step} skipped: {reason}"),
        StepRecord::Acknowledged { step, note } => format!("{step} acknowledged: {note}"),
        StepRecord::ApprovalRequested { step, request_id, .. } => format!("{step} request {request_id} proposed"),
        StepRecord::ApprovalExecuted { step, request_id, .. } => format!("{step} request {request_id} executed"),
        StepRecord::ApprovalEnded { step, request_id, state, .. } => format!("{step} request {request_id} {state}"),
    };
    format!("{} {:<14} {}", r.at.format("%H:%M:%S"), inert(short_principal(&r.actor)), inert(&what))
}

fn log_pane(frame: &mut Frame, area: Rect, inc: &IncidentState, theme: &Theme) {
    let n = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> =
        inc.records.iter().rev().take(n).rev().map(|r| Line::from(Span::styled(record_line(r), theme.dim()))).collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" Log — {} records, fsynced, hash-chained ", inc.records.len()), theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
