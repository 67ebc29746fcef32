//! Drawing only: every function takes `&State` and a frame; nothing here awaits, does IO
//! or changes state. One small function per screen region.

mod alerts;
mod approvals;
mod detail;
mod feed;
mod header;
mod incident;
mod inventory;
mod overlay;
mod session;
mod theme;
mod widgets;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::app::{Mode, State, View};
pub use theme::Theme;

/// Below this the console shows a message instead of a broken layout.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// What the drawing measured, for the runtime to send back to the update loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drawn {
    /// The view's list and the rows it had room for (`Msg::ListRows`), so that paging
    /// moves by what is really on screen; `None` when no list was drawn.
    pub list: Option<(View, usize)>,
    /// How many rows the open detail pane or step panel can scroll (`Msg::PaneRows`;
    /// 0 when it all fits or none is open).
    pub pane_max: u16,
}

/// Draw the whole console; returns what it measured ([`Drawn`]).
pub fn draw(frame: &mut Frame, state: &State) -> Drawn {
    let theme = Theme::new(state.color);
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, &theme);
        return Drawn::default();
    }
    // A long status message wraps onto up to three rows, taken from the view.
    let status_h = overlay::status_height(state, area.width);
    let [head, body, status] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1), Constraint::Length(status_h)]).areas(area);
    header::draw(frame, head, state, &theme);
    let (rows, pane_max) = match state.view {
        View::Inventory => {
            let (rows, pane) = inventory::draw(frame, body, state, &theme);
            (Some(rows), pane)
        }
        View::Feed => {
            let (rows, pane) = feed::draw(frame, body, state, &theme);
            (Some(rows), pane)
        }
        View::Alerts => (Some(alerts::draw(frame, body, state, &theme)), 0),
        View::Session => {
            session::draw(frame, body, state, &theme);
            (None, 0)
        }
        View::Incident => (None, incident::draw(frame, body, state, &theme)),
        View::Approvals => {
            approvals::draw(frame, body, state, &theme);
            (None, 0)
        }
    };
    overlay::status_line(frame, status, state, &theme);
    match &state.mode {
        Mode::Help => overlay::help(frame, area, state, &theme),
        Mode::Palette(text) => overlay::palette(frame, area, status, text, &theme),
        Mode::Note(text) => overlay::note(frame, status, text, &theme),
        Mode::Prompt(p) => overlay::prompt(frame, area, status, p, &theme),
        Mode::Approval(p) => approvals::prompt(frame, area, status, state, p, &theme),
        Mode::Normal | Mode::Filter => {}
    }
    Drawn { list: rows.map(|r| (state.view, r)), pane_max }
}

fn too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let text = vec![
        Line::from(Span::styled("keydeck", theme.title())),
        Line::from(format!("terminal too small: {}×{}", area.width, area.height)),
        Line::from(format!("needs at least {MIN_WIDTH}×{MIN_HEIGHT}; q quits")),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

#[cfg(test)]
mod tests;
