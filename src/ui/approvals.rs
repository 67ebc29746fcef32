//! The approvals view (waiting for me, mine, open for others, history), the approval
//! dialog (what will happen, the target now, its recent CloudTrail events, the alias
//! typed to approve) and the reject / withdraw / propose prompts. Draws only.

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::{dialog, short_principal};
use crate::app::approvals::{target_events, ApprovalPrompt, Section};
use crate::app::update::approvals::expected_aliases;
use crate::app::State;
use crate::domain::approval::{Content, Listed};
use crate::domain::inventory::Fetched;
use crate::domain::text::inert;

/// `90` → `1m`, `7200` → `2h`, `200000` → `2d`; negative as positive.
fn short(secs: i64) -> String {
    match secs.abs() {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Open: time left (`23h`); final: age since proposed (`5m ago`).
fn when(e: &Listed, now: DateTime<Utc>) -> String {
    if e.state == "proposed" {
        format!("in {}", short((e.request.expires - now).num_seconds()))
    } else {
        format!("{} ago", short((now - e.request.created).num_seconds()))
    }
}

/// The target as the operator knows it: its alias from the inventory, else its key id.
fn target_name(state: &State, arn: &str) -> String {
    let alias = state.inventory.as_ref().and_then(|i| i.keys().find(|k| k.arn == arn)).map(|k| k.display_name());
    alias.unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(arn)).to_owned()
}

fn state_style(label: &str, theme: &Theme) -> Style {
    match label {
        "proposed" => theme.warn(),
        "executed" => theme.ok(),
        "rejected" | "expired" => theme.error(),
        _ => theme.dim(),
    }
}

fn cell(text: &str, width: usize) -> String {
    let t: String = text.chars().take(width).collect();
    format!("{t:<width$} ")
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let a = &state.approvals;
    let wide = area.width >= 110;
    let counts = a.listing.as_ref().map(|l| (l.waiting_for_me.len(), l.mine.len(), l.open.len(), l.history.len()));
    let title = match counts {
        Some((w, m, o, h)) => format!(" Approvals — {w} waiting for me · {m} mine · {o} open · {h} history "),
        None => " Approvals ".to_owned(),
    };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    // One line: the problem, else the last outcome, else how fresh the listing is.
    let top = match (&a.problem, &a.outcome) {
        (Some(p), _) => Span::styled(inert(p), theme.error()),
        (None, Some((ok, l))) => Span::styled(inert(l), if *ok { theme.ok() } else { theme.error() }),
        (None, None) if a.listing.is_none() => Span::styled("listing the request store…", theme.dim()),
        (None, None) => Span::styled(
            format!(
                "listed {} ago · Enter opens · x rejects · w withdraws mine · r lists again",
                short(a.loaded_at.map_or(0, |t| (state.now - t).num_seconds()))
            ),
            theme.dim(),
        ),
    };
    lines.push(Line::from(top));
    let Some(listing) = &a.listing else {
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    let id_w = if wide { 24 } else { 8 };
    let op_w = listing.rows().iter().map(|(_, e)| e.request.operation.name().len()).max().unwrap_or(10).max(9);
    let fixed = id_w + op_w + 10 + 12 + 7 + 9 + 6;
    let target_w = usize::from(inner.width).saturating_sub(fixed).max(8);
    let header = [
        cell("ID", id_w),
        cell("Operation", op_w),
        cell("Target", target_w),
        cell("Region", 10),
        cell("Proposer", 12),
        cell(if wide { "Expires" } else { "Time" }, 7),
        "State".to_owned(),
    ]
    .concat();
    lines.push(Line::from(Span::styled(header, theme.header_row())));
    let mut cursor_line = 0;
    let mut row = 0;
    for s in Section::ALL {
        let entries = listing.section(s);
        if s == Section::Open && entries.is_empty() {
            continue;
        }
        lines.push(Line::from(Span::styled(format!("{} ({})", s.title(), entries.len()), theme.title())));
        if entries.is_empty() {
            lines.push(Line::from(Span::styled("  none", theme.dim())));
        }
        for e in entries {
            // Narrow: the id's random tail (what the store holds is not trusted to be ASCII).
            let tail: String = e.request.id.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
            let id = if wide { e.request.id.as_str() } else { tail.as_str() };
            // Listings attest the proposer of open requests only (one lookup each).
            let proposer = match (&e.proposer, e.state.as_str()) {
                (Some(p), _) => short_principal(p),
                (None, "proposed") => "(CloudTrail…)",
                (None, _) => "(not read)",
            };
            let label = e.state_label();
            let text = [
                cell(id, id_w),
                cell(e.request.operation.name(), op_w),
                cell(&inert(&target_name(state, &e.request.target_arn)), target_w),
                cell(e.region(), 10),
                cell(&inert(proposer), 12),
                cell(&when(e, state.now), 7),
            ]
            .concat();
            let selected = row == a.cursor;
            if selected {
                cursor_line = lines.len();
            }
            let style = if selected { theme.selected() } else { Style::default() };
            lines.push(Line::from(vec![
                Span::styled(text, style),
                Span::styled(label.to_owned(), state_style(label, theme)),
            ]));
            row += 1;
        }
    }
    if !listing.malformed.is_empty() {
        let ids: Vec<&str> = listing.malformed.iter().map(|m| m.id.as_str()).collect();
        let line = format!("{} entries in the store are not keydeck's requests: {}", ids.len(), ids.join(", "));
        lines.push(Line::from(Span::styled(inert(&line), theme.error())));
    }
    // The note of the selected request, under the list.
    if let Some((_, e)) = a.selected() {
        lines.push(Line::from(""));
        let mut detail = format!("{}: {}", e.request.id, inert(&e.request.reason));
        if let Some(n) = &e.note {
            detail.push_str(&format!(" — {}", inert(n)));
        }
        let ended = e.proposer.is_none() && e.state != "proposed";
        lines.push(Line::from(Span::styled(detail, theme.dim())));
        if ended {
            let line = format!("proposer not looked up for ended requests: keydeck approvals show {}", e.request.id);
            lines.push(Line::from(Span::styled(line, theme.dim())));
        }
    }
    let height = usize::from(inner.height).max(1);
    let scroll = cursor_line.saturating_sub(height.saturating_sub(3));
    frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
}

/// The header's indicator: requests waiting for me (`None`: none); `short` for narrow
/// terminals (` ⚑ N waiting: 6 `).
pub fn waiting_badge(state: &State, short: bool) -> Option<String> {
    match (state.approvals.waiting_count(), short) {
        (0, _) => None,
        (n, true) => Some(format!(" ⚑ {n} waiting: 6 ")),
        (1, false) => Some(" ⚑ 1 approval waiting: 6 ".to_owned()),
        (n, false) => Some(format!(" ⚑ {n} approvals waiting: 6 ")),
    }
}

/// The approvals' prompts: the approval and propose dialogs, the reject and withdraw lines.
pub fn prompt(frame: &mut Frame, area: Rect, status: Rect, state: &State, p: &ApprovalPrompt, theme: &Theme) {
    let line = match p {
        ApprovalPrompt::Approve { id, text, refusal } => {
            return approve_dialog(frame, area, state, id, text, refusal.as_deref(), theme);
        }
        ApprovalPrompt::Propose { key_arn, alias, region, text } => {
            return propose_dialog(frame, area, state, (key_arn, alias, region), text, theme);
        }
        ApprovalPrompt::Reject { id, text } => Line::from(vec![
            Span::styled(format!("reject {id}, reason: "), theme.key()),
            Span::raw(inert(text)),
            Span::raw("▏"),
            Span::styled("   (Enter rejects, Esc cancels)", theme.dim()),
        ]),
        ApprovalPrompt::Withdraw { id } => Line::from(vec![
            Span::styled(format!("withdraw request {id}? "), theme.key()),
            Span::styled("y withdraws; any other key cancels", theme.dim()),
        ]),
    };
    frame.render_widget(Clear, status);
    frame.render_widget(Paragraph::new(line), status);
}

fn field<'a>(name: &'a str, value: String, theme: &Theme) -> Line<'a> {
    Line::from(vec![Span::styled(format!("{name:<9}"), theme.dim()), Span::raw(value)])
}

fn buttons<'a>(ready: bool, action: &'a str, hint: &'a str, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(
            if ready { "  Cancel  " } else { "[ Cancel ]" },
            if ready { theme.dim() } else { theme.selected() },
        ),
        Span::raw("   "),
        Span::styled(
            if ready { format!("[ {action} ]") } else { format!("  {action}  ") },
            if ready { theme.write() } else { theme.dim() },
        ),
        Span::styled(format!("   {hint}"), theme.dim()),
    ])
}

fn approve_dialog(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    id: &str,
    typed: &str,
    refusal: Option<&str>,
    theme: &Theme,
) {
    let Some((_, e)) = state.approvals.listing.as_ref().and_then(|l| l.find(id)) else {
        let lines = vec![Line::from(format!("request {id} is no longer listed"))];
        return dialog(frame, area, lines, vec![Line::from("Esc closes")], Span::styled(" Approve ", theme.error()));
    };
    let r = &e.request;
    let arn = r.target_arn.as_str();
    let mut lines: Vec<Line> = Vec::new();
    if e.content == Content::Changed {
        lines.push(Line::from(Span::styled(
            "CHANGED since it was proposed (CloudTrail's record of the proposal differs): approval will be refused; reject it (x)",
            theme.error(),
        )));
    }
    lines.push(Line::from(Span::styled(
        format!(
            "Request {} asks for {}; approving runs the call below under YOUR credentials.",
            r.id,
            r.operation.name()
        ),
        theme.title(),
    )));
    // Who, why, until when and whether it is what was proposed come first: a long call
    // (a create-key's key policy) is cut at the bottom, never these.
    let proposer = e.proposer.as_deref().map_or("(not yet attested by CloudTrail)".to_owned(), inert);
    lines.push(field("Proposer", format!("{proposer} (as CloudTrail attests)"), theme));
    lines.push(field("Reason", inert(&r.reason), theme));
    let left = short((r.expires - state.now).num_seconds());
    lines.push(field(
        "Created",
        format!(
            "{} · expires {} (in {left})",
            r.created.format("%Y-%m-%d %H:%M:%S"),
            r.expires.format("%Y-%m-%d %H:%M:%S")
        ),
        theme,
    ));
    // Never the request's own hash: the comparison with CloudTrail's record of the proposal.
    let content_style = if e.content == Content::Matches { Style::default() } else { theme.error() };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<9}", "Content"), theme.dim()),
        Span::styled(e.content.describe(), content_style),
    ]));
    lines.push(field(
        "Target",
        format!("{}  {}  ({})", inert(&target_name(state, arn)), inert(arn), e.region()),
        theme,
    ));
    let now_line = match state.approvals.targets.get(arn) {
        None | Some(None) => "reading the key (DescribeKey, rotation)…".to_owned(),
        Some(Some(Err(err))) => format!("could not read the key: {}", inert(err)),
        Some(Some(Ok(k))) => {
            let rotation =
                match &k.rotation {
                    Fetched::Ok(rot) => {
                        let last =
                            rot.history.iter().map(|h| h.at).max().map_or("never rotated".to_owned(), |t| {
                                format!("last rotated {}", t.format("%Y-%m-%d"))
                            });
                        let on = if rot.enabled {
                            format!("automatic rotation every {} d", rot.period_days.unwrap_or(365))
                        } else {
                            "automatic rotation off".to_owned()
                        };
                        format!("{on} · {last}")
                    }
                    Fetched::Denied => "rotation status denied".to_owned(),
                    _ => "rotation status unknown".to_owned(),
                };
            let status =
                state.assessment.item(arn).map(|i| format!(" · {}", i.judgement.status.label())).unwrap_or_default();
            format!("{:?} · {rotation}{status}", k.state)
        }
    };
    lines.push(field("Now", now_line, theme));

    // Then the call, one parameter a line, the long ones (a key policy) last, so that the
    // short ones show whole at 80×24; the recent events come after it, and what does not
    // fit is cut with "… N more lines".
    lines.push(Line::from(Span::styled(format!("Call (all of it: `keydeck approvals show {}`):", r.id), theme.dim())));
    for c in r.calls() {
        lines.push(Line::from(format!("  {}", c.action)));
        let mut params: Vec<(String, String)> = c
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), inert(&v.as_str().map_or(v.to_string(), str::to_owned))))
            .collect();
        params.sort_by_key(|(_, v)| v.chars().count() > 60);
        for (k, v) in params {
            lines.push(Line::from(format!("    {k}={v}")));
        }
    }
    // As many recent events as the height allows (after the call: cut first).
    let room = match area.height {
        h if h >= 30 => 4,
        h if h >= 24 => 2,
        _ => 0,
    };
    let events = target_events(&state.feed, arn, room);
    if room > 0 {
        lines.push(Line::from(Span::styled(
            if events.is_empty() {
                "No CloudTrail events on this key in the feed (metadata reads left out)."
            } else {
                "Recent CloudTrail events on this key (metadata reads left out):"
            },
            theme.dim(),
        )));
    }
    for ev in events {
        lines.push(Line::from(format!(
            "  {} {:<22} {:<14} {}",
            ev.event_time.format("%m-%d %H:%M:%S"),
            inert(&ev.event_name),
            inert(short_principal(&ev.principal.arn)),
            ev.outcome()
        )));
    }
    // Pinned at the dialog's bottom: the typed alias, why it is refused, the buttons.
    let mut footer = vec![Line::from("")];
    // The key's alias; its ARN when it has none (a key an incident replaced, a replica).
    let expected = match expected_aliases(state, arn) {
        Some(a) => a.first().cloned().unwrap_or_else(|| arn.to_owned()),
        None => "(the key's alias)".into(),
    };
    footer.push(Line::from(vec![
        Span::raw("Type "),
        Span::styled(inert(&expected), theme.key()),
        Span::raw(" to approve: "),
        Span::raw(inert(typed)),
        Span::raw("▏"),
    ]));
    if !state.session.write_enabled {
        footer.push(Line::from(Span::styled("read-only console: approving needs --allow-write", theme.error())));
    }
    if let Some(r) = refusal {
        footer.push(Line::from(Span::styled(format!("refused: {}", inert(r)), theme.error())));
    }
    let ready = !typed.trim().is_empty()
        && typed.trim().trim_start_matches("alias/") == expected
        && state.session.write_enabled;
    footer.push(buttons(ready, "Approve", "Enter approves only when it matches; Esc cancels", theme));
    dialog(frame, area, lines, footer, Span::styled(" Approve a dual-approval request (004 §6) ", theme.error()));
}

fn propose_dialog(frame: &mut Frame, area: Rect, state: &State, target: (&str, &str, &str), text: &str, theme: &Theme) {
    let (arn, alias, region) = target;
    let status = state.assessment.item(arn).map(|i| i.judgement.reason.clone()).unwrap_or_default();
    let approver = state.policy.approvals.rule(crate::domain::policy::ApprovalOp::RotateKey).approver_role().to_owned();
    let lines = vec![
        Line::from(Span::styled(format!("Propose rotate-key on {}", inert(alias)), theme.title())),
        Line::from(""),
        field("Call", format!("kms:RotateKeyOnDemand KeyId={}", inert(arn)), theme),
        field("Region", region.to_owned(), theme),
        field("Why now", inert(&status), theme),
        field(
            "Approver",
            format!("a {approver} other than you approves it; it then runs under their credentials"),
            theme,
        ),
    ];
    let footer = vec![
        Line::from(""),
        Line::from(vec![Span::styled("Reason: ", theme.key()), Span::raw(inert(text)), Span::raw("▏")]),
        Line::from(""),
        buttons(!text.trim().is_empty(), "Propose", "Enter proposes; Esc or Enter on nothing cancels", theme),
    ];
    dialog(frame, area, lines, footer, Span::styled(" Propose a rotation (dual approval) ", theme.title()));
}
