//! Two header lines: who/where/mode, then the view tabs and freshness.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::fullest;
use crate::app::{State, View};
use crate::domain::text::inert;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    // The fullest first line that fits: the whole ARN, then the principal's name, then
    // fewer labels, so that 80 columns still tell key-admin from security-lead and show
    // the account.
    let line1 = fullest(area.width, COMPACTEST, |level| identity_line(state, level, theme));
    // Likewise the fullest tabs line that fits: 80 columns keep every tab, the alert
    // count and the freshness, abbreviated.
    let line2 = fullest(area.width, TABS_COMPACTEST, |level| tabs_line(state, level, theme));
    frame.render_widget(Paragraph::new(vec![line1, line2]), area);
}

/// The most compact level of [`tabs_line`].
const TABS_COMPACTEST: u8 = 4;

/// A view's tab name from level 3 of [`tabs_line`].
fn short_title(v: View) -> &'static str {
    match v {
        View::Inventory => "Inv",
        View::Feed => "Feed",
        View::Alerts => "Alerts",
        View::Session => "Sess",
        View::Incident => "Incid",
        View::Approvals => "Appr",
    }
}

/// The view tabs, the open alerts and freshness, more compact as `level` grows: 0 with
/// the endpoint; 1 without it; 2 freshness as `refreshed 12s`; 3 the tabs other than the
/// current one by their short names (`4 Sess`); 4 every tab by its short name.
fn tabs_line(state: &State, level: u8, theme: &Theme) -> Line<'static> {
    let mut tabs: Vec<Span> = Vec::new();
    for (i, v) in View::ALL.iter().enumerate() {
        let current = *v == state.view;
        let name = if level >= 4 || (level >= 3 && !current) { short_title(*v) } else { v.title() };
        let label = format!(" {} {name} ", i + 1);
        tabs.push(if current { Span::styled(label, theme.selected()) } else { Span::raw(label) });
    }
    let ago = |secs| if level >= 2 { short_ago(secs) } else { ago(secs) };
    let fresh = if state.loading && state.inventory.is_none() {
        "loading…".to_owned()
    } else {
        match state.refreshed_secs_ago() {
            Some(_) if state.loading && level >= 2 => "refreshing…".to_owned(),
            Some(secs) if state.loading => format!("refreshing… (last {})", ago(secs)),
            // The last refresh could not list everything: it did not refresh what it kept.
            Some(secs) if state.assessment.items.iter().any(|i| i.listed_at.is_some()) => {
                format!("listing failed {}", ago(secs))
            }
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
    if let (Some(ep), 0) = (&state.session.endpoint, level) {
        tabs.push(Span::styled(format!("  endpoint {}", inert(ep)), theme.dim()));
    }
    Line::from(tabs)
}

/// The most compact level of [`identity_line`].
const COMPACTEST: u8 = 5;

/// Who/where/mode, more compact as `level` grows: 0 the whole ARN; 1 the principal's
/// name (`user/key-admin`); 2 without the `acct` label; 3 without the title; 4 the
/// regions as `FIRST+N`; 5 the waiting indicator as `⚑ N waiting: 6`.
fn identity_line(state: &State, level: u8, theme: &Theme) -> Line<'static> {
    let s = &state.session;
    let badge = if s.write_enabled {
        Span::styled(" WRITE ", theme.write())
    } else {
        Span::styled(" READ-ONLY ", theme.read_only())
    };
    let mut line = Vec::new();
    if level < 3 {
        line.push(Span::styled("keydeck ", theme.title()));
    }
    line.extend([badge, Span::raw(" ")]);
    // Requests waiting for me, early on the line so that 80 columns show it in every view.
    if let Some(w) = super::approvals::waiting_badge(state, level >= 5) {
        line.push(Span::styled(w, theme.warn().add_modifier(ratatui::style::Modifier::REVERSED)));
        line.push(Span::raw(" "));
    }
    let regions = match s.regions.as_slice() {
        [first, _, ..] if level >= 4 => format!("{first}+{}", s.regions.len() - 1),
        all => all.join(","),
    };
    line.extend([
        Span::raw(regions),
        Span::styled(if level >= 2 { "  " } else { "  acct " }, theme.dim()),
        Span::raw(inert(&s.identity.account)),
        Span::raw("  "),
    ]);
    let who = match s.identity.arn.as_str() {
        "" => "identity unknown".to_owned(),
        arn if level == 0 => inert(arn),
        arn => inert(super::widgets::principal_name(arn)),
    };
    line.push(Span::raw(who));
    Line::from(line)
}

/// [`ago`] in short: `12s`, `5m`, `2h`.
fn short_ago(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

pub(super) fn ago(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}
