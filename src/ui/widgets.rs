//! Pieces the views share: the list table with its cursor, the detail split, the filter
//! line, short principal names.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;

/// A list and, when open, its detail pane: side by side from 140 columns, else stacked
/// (`list_pct` of the height for the list).
pub(super) fn split_detail(area: Rect, open: bool, list_pct: u16) -> (Rect, Option<Rect>) {
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

/// A table with its header and the cursor row highlighted, its first row at `offset`
/// (the model keeps the cursor inside the page); with no rows, `empty` (when given) says
/// why inside it. Returns how many rows the table has room for: the page size the
/// update loop pages by.
pub(super) fn list_table(
    frame: &mut Frame,
    area: Rect,
    parts: (ratatui::widgets::Row<'_>, Vec<ratatui::widgets::Row<'_>>, Vec<Constraint>),
    block: ratatui::widgets::Block<'_>,
    (cursor, offset): (usize, usize),
    empty: Option<&str>,
    theme: &Theme,
) -> usize {
    let (header, body, widths) = parts;
    let len = body.len();
    let table = ratatui::widgets::Table::new(body, widths)
        .header(header.style(theme.header_row()))
        .block(block)
        .row_highlight_style(theme.selected());
    let mut ts = ratatui::widgets::TableState::default().with_offset(offset);
    if len > 0 {
        ts.select(Some(cursor.min(len - 1)));
    }
    frame.render_stateful_widget(table, area, &mut ts);
    if let (0, Some(msg)) = (len, empty) {
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Paragraph::new(Span::styled(msg.to_owned(), theme.dim())), inner);
    }
    // Inside the borders, below the header row.
    usize::from(area.height.saturating_sub(3))
}

/// The `/` filter line under a list.
pub(super) fn filter_line(frame: &mut Frame, area: Rect, text: &str, editing: bool, theme: &Theme) {
    let line = Line::from(vec![
        Span::styled("/", theme.key()),
        Span::raw(crate::domain::text::inert(text)),
        Span::raw(if editing { "▏" } else { "" }),
        Span::styled(if editing { "   Enter keep · Esc clear" } else { "   Esc clears" }, theme.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// `arn:aws:iam::1:user/key-admin` → `key-admin`; anything else as it is.
pub(super) fn short_principal(p: &str) -> &str {
    if p.starts_with("arn:") {
        p.rsplit('/').next().unwrap_or(p)
    } else {
        p
    }
}

/// A centred dialog holding `lines` (wrapped; at most 110 columns wide, as tall as they
/// need up to the whole `area`), over whatever is drawn below it.
pub(super) fn dialog(frame: &mut Frame, area: Rect, lines: Vec<Line<'_>>, title: Span<'_>) {
    use ratatui::layout::Flex;
    use ratatui::widgets::{Block, Borders, Clear, Wrap};
    let width = area.width.saturating_sub(4).min(110);
    // Long lines wrap: count the rows they take inside the borders.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    // (word wrapping can take one row more than the width alone says)
    let rows: usize = lines
        .iter()
        .map(|l| {
            let n = l.width().max(1).div_ceil(inner);
            if n > 1 {
                n + 1
            } else {
                n
            }
        })
        .sum();
    let height = (rows as u16 + 2).min(area.height);
    let [popup] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(popup);
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(title);
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), popup);
}
