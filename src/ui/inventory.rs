//! The inventory table. Columns adapt to the width: the detail column goes first.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::Theme;
use crate::app::{Mode, State};
use crate::domain::inventory::ItemKind;
use crate::domain::text::inert;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let filtering = state.mode == Mode::Filter || !state.filter.is_empty();
    let [table_area, filter_area] = if filtering {
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let rows = state.rows();
    let total = state.inventory.as_ref().map(|i| i.keys().count() + i.secrets().count()).unwrap_or(0);
    let title = match &state.inventory {
        None if state.loading => " Inventory — loading… ".to_owned(),
        None => " Inventory — not loaded ".to_owned(),
        Some(_) if filtering => format!(" Inventory — {} of {} ", rows.len(), total),
        Some(_) => format!(" Inventory — {} keys and secrets ", rows.len()),
    };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    let wide = table_area.width >= 100;
    let header_cells: Vec<&str> =
        if wide { vec!["Kind", "Name", "Region", "State", "Detail"] } else { vec!["Kind", "Name", "Region", "State"] };
    let header = Row::new(header_cells).style(theme.header_row());
    let body: Vec<Row> = rows
        .iter()
        .map(|r| {
            let kind = match r.kind {
                ItemKind::Key => "key",
                ItemKind::Secret => "secret",
            };
            let mut cells = vec![
                Cell::from(kind),
                Cell::from(inert(&r.name)),
                Cell::from(r.region.clone()),
                Cell::from(Span::styled(inert(&r.state), theme.state(&r.state))),
            ];
            if wide {
                cells.push(Cell::from(inert(&r.detail)));
            }
            Row::new(cells)
        })
        .collect();
    let name_width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(4).clamp(12, 44) as u16 + 1;
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(6),
            Constraint::Length(name_width),
            Constraint::Length(14),
            Constraint::Length(16),
            Constraint::Min(10),
        ]
    } else {
        vec![Constraint::Length(6), Constraint::Min(12), Constraint::Length(12), Constraint::Length(15)]
    };
    let empty = rows.is_empty();
    let table = Table::new(body, widths).header(header).block(block).row_highlight_style(theme.selected());
    let mut ts = TableState::default();
    if !empty {
        ts.select(Some(state.cursor.min(rows.len() - 1)));
    }
    frame.render_stateful_widget(table, table_area, &mut ts);
    if empty && state.inventory.is_some() {
        let msg = if filtering {
            "nothing matches the filter (Esc clears it)"
        } else {
            "no keys or secrets in the selected regions"
        };
        let inner =
            Rect { x: table_area.x + 2, y: table_area.y + 2, width: table_area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.dim())), inner);
    }
    if filtering {
        let cursor = if state.mode == Mode::Filter { "▏" } else { "" };
        let line = Line::from(vec![
            Span::styled("/", theme.key()),
            Span::raw(inert(&state.filter)),
            Span::raw(cursor),
            Span::styled(
                if state.mode == Mode::Filter { "   Enter keep · Esc clear" } else { "   Esc clears" },
                theme.dim(),
            ),
        ]);
        frame.render_widget(Paragraph::new(line), filter_area);
    }
}
