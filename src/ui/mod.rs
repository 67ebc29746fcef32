//! Drawing only: every function takes `&State` and a frame; nothing here awaits, does IO
//! or changes state. One small function per screen region.

mod alerts;
mod detail;
mod feed;
mod header;
mod inventory;
mod overlay;
mod session;
mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::app::{Mode, State, View};
pub use theme::Theme;

/// Below this the console shows a message instead of a broken layout.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Draw the whole console.
pub fn draw(frame: &mut Frame, state: &State) {
    let theme = Theme::new(state.color);
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, &theme);
        return;
    }
    let [head, body, status] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    header::draw(frame, head, state, &theme);
    match state.view {
        View::Inventory => inventory::draw(frame, body, state, &theme),
        View::Feed => feed::draw(frame, body, state, &theme),
        View::Alerts => alerts::draw(frame, body, state, &theme),
        View::Session => session::draw(frame, body, state, &theme),
    }
    overlay::status_line(frame, status, state, &theme);
    match &state.mode {
        Mode::Help => overlay::help(frame, area, state, &theme),
        Mode::Palette(text) => overlay::palette(frame, status, text, &theme),
        Mode::Note(text) => overlay::note(frame, status, text, &theme),
        Mode::Normal | Mode::Filter => {}
    }
}

fn too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = vec![
        Line::from(Span::styled("keydeck", theme.title())),
        Line::from(format!("terminal too small: {}×{}", area.width, area.height)),
        Line::from(format!("needs at least {MIN_WIDTH}×{MIN_HEIGHT}; q quits")),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

/// A list and, when open, its detail pane: side by side from 140 columns, else stacked
/// (`list_pct` of the height for the list).
fn split_detail(area: Rect, open: bool, list_pct: u16) -> (Rect, Option<Rect>) {
    if !open {
        return (area, None);
    }
    let [list, detail] = if area.width >= 140 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(list_pct), Constraint::Percentage(100 - list_pct)]).areas(area)
    };
    (list, Some(detail))
}

/// A table with its header and the cursor row highlighted; with no rows, `empty` (when
/// given) says why inside it.
fn list_table(
    frame: &mut Frame,
    area: Rect,
    parts: (ratatui::widgets::Row<'_>, Vec<ratatui::widgets::Row<'_>>, Vec<Constraint>),
    block: ratatui::widgets::Block<'_>,
    cursor: usize,
    empty: Option<&str>,
    theme: &Theme,
) {
    let (header, body, widths) = parts;
    let len = body.len();
    let table = ratatui::widgets::Table::new(body, widths)
        .header(header.style(theme.header_row()))
        .block(block)
        .row_highlight_style(theme.selected());
    let mut ts = ratatui::widgets::TableState::default();
    if len > 0 {
        ts.select(Some(cursor.min(len - 1)));
    }
    frame.render_stateful_widget(table, area, &mut ts);
    if let (0, Some(msg)) = (len, empty) {
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Paragraph::new(Span::styled(msg.to_owned(), theme.dim())), inner);
    }
}

/// The `/` filter line under a list.
fn filter_line(frame: &mut Frame, area: Rect, text: &str, editing: bool, theme: &Theme) {
    let line = Line::from(vec![
        Span::styled("/", theme.key()),
        Span::raw(crate::domain::text::inert(text)),
        Span::raw(if editing { "▏" } else { "" }),
        Span::styled(if editing { "   Enter keep · Esc clear" } else { "   Esc clears" }, theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// `arn:aws:iam::1:user/key-admin` → `key-admin`; anything else as it is.
fn short_principal(p: &str) -> &str {
    if p.starts_with("arn:") {
        p.rsplit('/').next().unwrap_or(p)
    } else {
        p
    }
}

/// The number of table rows the inventory body can show at this terminal size (the
/// runtime feeds it back into state for paging).
pub fn inventory_page_rows(height: u16) -> usize {
    // header 2 + status 1 + table border 2 + table header 1
    usize::from(height.saturating_sub(6)).max(1)
}

#[cfg(test)]
mod tests;
