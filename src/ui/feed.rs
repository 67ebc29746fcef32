//! The feed view: pinned unacknowledged alerts on top, then the live-tailing event table
//! (newest first, coloured by the severity of any alert the event raised), and the
//! pretty-printed CloudTrail record of the selected event.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row};
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::short_principal;
use crate::app::feed::FeedState;
use crate::app::{Mode, State};
use crate::domain::text::inert;
use crate::domain::trail::TrailEvent;

/// At most this many alerts are pinned above the feed.
const PINNED: usize = 4;

/// Returns the rows the feed table shows and how far the record pane can scroll.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) -> (usize, u16) {
    let f = &state.feed;
    let open = f.open_alerts();
    let strip_h = if open.is_empty() { 0 } else { open.len().min(PINNED) as u16 + 2 + u16::from(open.len() > PINNED) };
    let filtering = state.mode == Mode::Filter && state.view == crate::app::View::Feed || !f.filter.is_empty();
    let [strip, main, filter_area] =
        Layout::vertical([Constraint::Length(strip_h), Constraint::Min(3), Constraint::Length(u16::from(filtering))])
            .areas(area);
    if strip_h > 0 {
        alert_strip(frame, strip, &open, theme);
    }
    let (table_area, detail_area) = super::widgets::split_detail(main, f.detail_open, 45);
    let rows = f.rows();
    let page = table(frame, table_area, f, &rows, theme);
    let pane = detail_area.map_or(0, |d| detail(frame, d, rows.get(f.cursor).copied(), state.pane_scroll, theme));
    if filtering {
        super::widgets::filter_line(frame, filter_area, &f.filter, state.mode == Mode::Filter, theme);
    }
    (page, pane)
}

fn alert_strip(frame: &mut Frame, area: Rect, open: &[&crate::domain::detect::Alert], theme: &Theme) {
    let mut lines: Vec<Line> = open
        .iter()
        .take(PINNED)
        .map(|a| {
            Line::from(vec![
                Span::styled(format!("{:<9}", format!("{:?}", a.severity).to_uppercase()), theme.severity(a.severity)),
                Span::raw(format!("{} ", a.at.format("%H:%M:%S"))),
                Span::styled(inert(&a.title), theme.severity(a.severity)),
                Span::styled(
                    format!(
                        "  {} · {}",
                        inert(a.key.as_deref().or(a.secret.as_deref()).unwrap_or("-")),
                        inert(short_principal(&a.principal))
                    ),
                    theme.dim(),
                ),
            ])
        })
        .collect();
    if open.len() > PINNED {
        lines.push(Line::from(Span::styled(format!("(+{} more: press 3)", open.len() - PINNED), theme.dim())));
    }
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" {} unacknowledged alert(s) — 3 to review, x to acknowledge ", open.len()),
        theme.error(),
    ));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn table(frame: &mut Frame, area: Rect, f: &FeedState, rows: &[&TrailEvent], theme: &Theme) -> usize {
    let live = if f.frozen.is_some() { "FROZEN (f)" } else { "live" };
    let title = format!(
        " Feed — {} events, {live}{}{} ",
        rows.len(),
        if f.skipped > 0 { format!(", {} unreadable skipped", f.skipped) } else { String::new() },
        f.last_poll
            .map(|t| format!(", polled {}", t.format("%H:%M:%S")))
            .unwrap_or_else(|| ", waiting for the first poll".into())
    );
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    let wide = area.width >= 110;
    let mut header = vec!["Time", "Event", "Principal", "Key / secret", "Outcome"];
    if wide {
        header.extend(["Region", "Source IP"]);
    }
    let cells: Vec<(Vec<String>, ratatui::style::Style)> = rows
        .iter()
        .map(|e| {
            let style = match f.severity_of(&e.event_id) {
                Some(s) => theme.severity(s),
                None if e.error_code.is_some() => theme.warn(),
                None => ratatui::style::Style::default(),
            };
            let mut cells = vec![
                e.event_time.format("%H:%M:%S").to_string(),
                inert(&crate::domain::approval_event::event_label(e)),
                inert(&e.principal.short_name()),
                inert(&subject_cell(&f.subject(e))),
                inert(e.outcome()),
            ];
            if wide {
                cells.push(e.region.clone());
                cells.push(inert(&e.source_ip));
            }
            (cells, style)
        })
        .collect();
    let widths = if wide {
        vec![
            Constraint::Length(9),
            Constraint::Length(22),
            Constraint::Length(20),
            Constraint::Min(16),
            Constraint::Length(22),
            Constraint::Length(11),
            Constraint::Length(15),
        ]
    } else {
        narrow_widths(area.width.saturating_sub(2), &cells)
    };
    let body: Vec<Row> = cells.into_iter().map(|(c, style)| Row::new(c).style(style)).collect();
    let empty = if f.filter.is_empty() { "no events yet" } else { "no event matches the filter (Esc clears it)" };
    super::widgets::list_table(
        frame,
        area,
        (Row::new(header), body, widths),
        block,
        (f.cursor, f.offset),
        Some(empty),
        theme,
    )
}

/// Under 110 columns: Time, then Event, Principal and Outcome as wide as their longest
/// cell (at most 22, 14 and 12), Key / secret the rest. When that leaves the longest
/// key or secret short, Principal gives up to 4 columns and Event up to 6: the resource
/// is what tells events apart. Room left over widens Principal up to 20.
fn narrow_widths(inner: u16, cells: &[(Vec<String>, ratatui::style::Style)]) -> Vec<Constraint> {
    let longest = |i: usize, header: &str| {
        let w = cells.iter().map(|(c, _)| c.get(i).map_or(0, |s| Span::raw(s.as_str()).width())).max().unwrap_or(0);
        u16::try_from(w.max(header.len())).unwrap_or(u16::MAX)
    };
    let (mut event, principal_full) = (longest(1, "Event").min(22), longest(2, "Principal").min(20));
    let (subject, outcome) = (longest(3, "Key / secret"), longest(4, "Outcome").min(12));
    let mut principal = principal_full.min(14);
    // Four spaces between five columns.
    let room = |event: u16, principal: u16| inner.saturating_sub(8 + event + principal + outcome + 4);
    let short = subject.saturating_sub(room(event, principal));
    let from_principal = short.min(principal.saturating_sub(10));
    principal -= from_principal;
    event -= (short - from_principal).min(event.saturating_sub(16));
    principal += room(event, principal).saturating_sub(subject).min(principal_full - principal);
    vec![
        Constraint::Length(8),
        Constraint::Length(event),
        Constraint::Length(principal),
        Constraint::Fill(1),
        Constraint::Length(outcome),
    ]
}

/// How many characters of an approval request's id the feed table shows: its tail, where
/// ids differ (`20261123-085500-a1b2c3d4`: the random part).
const APPROVAL_TAIL: usize = 8;

/// A subject as the feed table shows it: an approval request (`approval:ID`) by the tail
/// of its id, `approval …a1b2c3d4`, since ids share their leading date; others as they are.
fn subject_cell(subject: &str) -> String {
    match subject.strip_prefix("approval:") {
        Some(id) if id.chars().count() > APPROVAL_TAIL => {
            let tail: String = id.chars().skip(id.chars().count() - APPROVAL_TAIL).collect();
            format!("approval …{tail}")
        }
        Some(id) => format!("approval {id}"),
        None => subject.to_owned(),
    }
}

fn detail(frame: &mut Frame, area: Rect, ev: Option<&TrailEvent>, scroll: u16, theme: &Theme) -> u16 {
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" CloudTrail record ", theme.title()));
    let text = match ev {
        None => "nothing selected".to_owned(),
        Some(e) => match serde_json::from_str::<serde_json::Value>(&e.raw) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| e.raw.clone()),
            Err(_) => e.raw.clone(),
        },
    };
    // Inert line by line: escapes inside JSON strings are already escaped by serde, but
    // a raw record that failed to pretty-print is shown as received.
    let lines: Vec<Line> = text.lines().map(|l| Line::from(inert(l))).collect();
    super::widgets::scrolled_pane(frame, area, lines, block, scroll, theme)
}
