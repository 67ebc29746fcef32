//! Two header lines: who/where/mode, then the view tabs and freshness.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;
use crate::app::{State, View};
use crate::domain::text::inert;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let s = &state.session;
    let badge = if s.write_enabled {
        Span::styled(" WRITE ", theme.write())
    } else {
        Span::styled(" READ-ONLY ", theme.read_only())
    };
    let arn = if s.identity.arn.is_empty() { "identity unknown".to_owned() } else { inert(&s.identity.arn) };
    let mut line1 = vec![Span::styled("keydeck ", theme.title()), badge, Span::raw(" ")];
    // Requests waiting for me, early on the line so that 80 columns show it in every view.
    if let Some(w) = super::approvals::waiting_badge(state) {
        line1.push(Span::styled(w, theme.warn().add_modifier(ratatui::style::Modifier::REVERSED)));
        line1.push(Span::raw(" "));
    }
    line1.extend([
        Span::raw(s.regions.join(",")),
        Span::styled("  acct ", theme.dim()),
        Span::raw(inert(&s.identity.account)),
        Span::raw("  "),
        Span::raw(arn),
    ]);
    let line1 = Line::from(line1);
    let mut tabs: Vec<Span> = Vec::new();
    for (i, v) in View::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.title());
        tabs.push(if *v == state.view { Span::styled(label, theme.selected()) } else { Span::raw(label) });
    }
    let fresh = if state.loading && state.inventory.is_none() {
        "loading…".to_owned()
    } else {
        match state.refreshed_secs_ago() {
            Some(secs) if state.loading => format!("refreshing… (last {})", ago(secs)),
            Some(secs) => format!("refreshed {}", ago(secs)),
            None => "not loaded".to_owned(),
        }
    };
    let open = state.feed.open_alerts();
    if let Some(worst) = open.first() {
        tabs.push(Span::raw("  "));
        tabs.push(Span::styled(
            format!(" {} ALERT{} ", open.len(), if open.len() == 1 { "" } else { "S" }),
            theme.severity(worst.severity),
        ));
    }
    tabs.push(Span::styled(format!("  {fresh}"), theme.dim()));
    if let Some(ep) = &s.endpoint {
        tabs.push(Span::styled(format!("  endpoint {}", inert(ep)), theme.dim()));
    }
    frame.render_widget(Paragraph::new(vec![line1, Line::from(tabs)]), area);
}

fn ago(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}
