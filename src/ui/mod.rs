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

/// Draw the whole console. Returns the view's list and the rows it had room for, which
/// the runtime sends back to the update loop (`Msg::ListRows`) so that paging moves by
/// what is really on screen; `None` when no list was drawn.
pub fn draw(frame: &mut Frame, state: &State) -> Option<(View, usize)> {
    let theme = Theme::new(state.color);
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, &theme);
        return None;
    }
    // A long status message wraps onto up to three rows, taken from the view.
    let status_h = overlay::status_height(state, area.width);
    let [head, body, status] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1), Constraint::Length(status_h)]).areas(area);
    header::draw(frame, head, state, &theme);
    let rows = match state.view {
        View::Inventory => Some(inventory::draw(frame, body, state, &theme)),
        View::Feed => Some(feed::draw(frame, body, state, &theme)),
        View::Alerts => Some(alerts::draw(frame, body, state, &theme)),
        View::Session => {
            session::draw(frame, body, state, &theme);
            None
        }
        View::Incident => {
            incident::draw(frame, body, state, &theme);
            None
        }
        View::Approvals => {
            approvals::draw(frame, body, state, &theme);
            None
        }
    };
    overlay::status_line(frame, status, state, &theme);
    match &state.mode {
        Mode::Help => overlay::help(frame, area, state, &theme),
        Mode::Palette(text) => overlay::palette(frame, status, text, &theme),
        Mode::Note(text) => overlay::note(frame, status, text, &theme),
        Mode::Prompt(p) => overlay::prompt(frame, area, status, p, &theme),
        Mode::Approval(p) => approvals::prompt(frame, area, status, state, p, &theme),
        Mode::Normal | Mode::Filter => {}
    }
    rows.map(|r| (state.view, r))
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
