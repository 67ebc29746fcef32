//! The session view: who keydeck acts as, where, under which policy.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::State;
use crate::domain::text::inert;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let s = &state.session;
    let row = |k: &str, v: String| Line::from(vec![Span::styled(format!("{k:<14}"), theme.dim()), Span::raw(v)]);
    let mut lines = vec![
        row("principal", inert(s.identity.principal_name())),
        row("caller ARN", inert(&s.identity.arn)),
        row("account", inert(&s.identity.account)),
        row("user id", inert(&s.identity.user_id)),
        row("regions", s.regions.join(", ")),
        row("profile", s.profile.as_deref().map(inert).unwrap_or_else(|| "(default chain)".into())),
        row("endpoint", s.endpoint.as_deref().map(inert).unwrap_or_else(|| "AWS".into())),
        row("mode", if s.write_enabled { "WRITE (--allow-write)".into() } else { "READ-ONLY".into() }),
        row("policy", inert(&s.policy_name)),
        row("data dir", inert(&s.data_dir)),
        row("log file", inert(&s.log_file)),
    ];
    let f = &state.feed;
    lines.push(row(
        "feed",
        format!(
            "{} polls, {} LookupEvents calls, {} throttled (retried), {} unreadable records skipped, {} events held",
            f.polls,
            f.calls,
            f.throttled,
            f.skipped,
            f.events.len()
        ),
    ));
    if let Some(p) = &f.problem {
        lines.push(Line::from(Span::styled(format!("  {}", inert(p)), theme.error())));
    }
    if let Some(inv) = &state.inventory {
        let problems: Vec<&String> = inv.problems().collect();
        lines.push(Line::from(""));
        lines.push(row("problems", if problems.is_empty() { "none".into() } else { problems.len().to_string() }));
        for p in problems {
            lines.push(Line::from(Span::styled(format!("  {}", inert(p)), theme.error())));
        }
    }
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" Session ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}
