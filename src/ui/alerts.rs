//! The alerts view: every alert raised this session, unacknowledged first.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Wrap};
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::short_principal;
use crate::app::State;
use crate::domain::text::inert;

/// Returns the rows the alerts table shows.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) -> usize {
    let f = &state.feed;
    let rows = f.alert_rows();
    let [list, detail] = Layout::vertical([Constraint::Min(5), Constraint::Length(7)]).areas(area);
    let open = f.open_alerts().len();
    let title = format!(" Alerts — {} open, {} acknowledged ", open, rows.len() - open);
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    // Under 110 columns the time of day alone (the date is in the pane below): at 80
    // columns the widths add up to 78 with the spacing, so nothing is squeezed.
    let wide = list.width >= 110;
    let when = if wide { "%m-%d %H:%M:%S" } else { "%H:%M:%S" };
    let body: Vec<Row> = rows
        .iter()
        .map(|a| {
            let acked = f.acked.get(&a.id);
            let sev = format!("{:?}", a.severity).to_uppercase();
            Row::new(vec![
                Cell::from(Span::styled(sev, theme.severity(a.severity))),
                Cell::from(a.at.format(when).to_string()),
                Cell::from(inert(&a.title)),
                Cell::from(inert(a.key.as_deref().or(a.secret.as_deref()).unwrap_or("-"))),
                Cell::from(inert(short_principal(&a.principal))),
                Cell::from(if acked.is_some() { "acked" } else { "OPEN" }),
            ])
            .style(if acked.is_some() { theme.dim() } else { ratatui::style::Style::default() })
        })
        .collect();
    let widths = if wide {
        [
            Constraint::Length(9),
            Constraint::Length(15),
            Constraint::Min(24),
            Constraint::Length(24),
            Constraint::Length(22),
            Constraint::Length(6),
        ]
    } else {
        [
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Min(21),
            Constraint::Length(18),
            Constraint::Length(13),
            Constraint::Length(5),
        ]
    };
    let header = Row::new(vec!["Severity", "When", "Rule", "Key / secret", "Principal", "State"]);
    let page = super::widgets::list_table(
        frame,
        list,
        (header, body, widths.to_vec()),
        block,
        (f.alert_cursor, f.alert_offset),
        Some("no alerts"),
        theme,
    );
    let lines = match rows.get(f.alert_cursor) {
        None => vec![Line::from(Span::styled("no alerts", theme.dim()))],
        Some(a) => {
            let mut l = vec![
                Line::from(inert(&a.detail)),
                Line::from(Span::styled(format!("events: {}", inert(&a.event_ids.join(", "))), theme.dim())),
                Line::from(Span::styled(
                    format!("region: {} · at {}", inert(&a.region), a.at.format("%Y-%m-%d %H:%M:%S UTC")),
                    theme.dim(),
                )),
            ];
            if let Some(who) = f.acked.get(&a.id) {
                l.push(Line::from(Span::styled(format!("acknowledged by {}", inert(who)), theme.ok())));
            } else {
                l.push(Line::from(Span::styled(
                    "x acknowledges (recorded in the local journal with your identity)",
                    theme.key(),
                )));
            }
            l
        }
    };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" Alert ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), detail);
    page
}
