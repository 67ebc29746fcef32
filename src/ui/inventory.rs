//! The inventory table (sorted by severity, then name) and, when open, the detail pane.
//! Columns adapt to the width: Status, Name, Region and Due always first under 100
//! columns, then a short kind (`key`, `sec`) and State as room allows.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::{Mode, State};
use crate::domain::assessment::{kind_word, AssessedItem};
use crate::domain::inventory::ItemKind;
use crate::domain::text::inert;

/// Returns the rows the inventory table shows.
/// Returns the rows the table shows and how far the detail pane can scroll.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) -> (usize, u16) {
    let filtering = state.mode == Mode::Filter || !state.filter.is_empty();
    let [main, filter_area] = if filtering {
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let (table_area, detail_area) = super::widgets::split_detail(main, state.detail_open, 40);
    let page = table(frame, table_area, state, theme, filtering);
    let pane = detail_area.map_or(0, |d| super::detail::draw(frame, d, state, theme));
    if filtering {
        super::widgets::filter_line(frame, filter_area, &state.filter, state.mode == Mode::Filter, theme);
    }
    (page, pane)
}

/// Which optional columns fit. Status, Name, Region and Due always show (the daily
/// review reads them first); under 100 columns a short kind (`key`, `sec`) follows them,
/// from 100 the Kind column stands before the name; State, Owner and Why join as the
/// width allows.
struct Columns {
    state: bool,
    kind: bool,
    owner: bool,
    reason: bool,
}

impl Columns {
    fn for_width(w: u16) -> Self {
        Self { state: w >= 80, kind: w >= 100, owner: w >= 120, reason: w >= 150 }
    }
}

/// The short kind under 100 columns.
fn kind_mark(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Key => "key",
        ItemKind::Secret => "sec",
    }
}

/// Under 100 columns: the widths, measured from the rows, that fit `inner` columns.
/// Status, Region, Due and the kind mark take what they need; Name takes its longest
/// name when that leaves State 8 columns, else what is left; State the rest.
fn narrow_widths(inner: u16, rows: &[&AssessedItem], review: bool, state_col: bool) -> Vec<Constraint> {
    let longest = |f: &dyn Fn(&AssessedItem) -> usize, min: usize| {
        u16::try_from(rows.iter().map(|r| f(r)).max().unwrap_or(0).max(min)).unwrap_or(u16::MAX)
    };
    let region = longest(&|r| r.region.chars().count(), "Region".len());
    let name = longest(&|r| Span::raw(inert(&r.name)).width(), "Name".len());
    let review_w = if review { 3 } else { 0 };
    let mut out = if review { vec![Constraint::Length(review_w)] } else { vec![] };
    out.push(Constraint::Length(8));
    if state_col {
        // Rev, Status, Name, Region, Due, Kind, State and a space between each two.
        let spacing = u16::from(review) + 5;
        let fixed = review_w + 8 + region + 10 + 4 + 8 + spacing;
        out.push(Constraint::Length(name.min(inner.saturating_sub(fixed)).max(4)));
    } else {
        out.push(Constraint::Fill(1));
    }
    out.extend([Constraint::Length(region), Constraint::Length(10), Constraint::Length(4)]);
    if state_col {
        out.push(Constraint::Fill(1));
    }
    out
}

/// From 100 columns.
fn wide_widths(rows: &[&AssessedItem], review: bool, cols: &Columns) -> Vec<Constraint> {
    let name_width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(4).clamp(12, 40) as u16 + 1;
    let mut widths = if review { vec![Constraint::Length(4)] } else { vec![] };
    widths.extend([
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(name_width),
        Constraint::Length(11),
        Constraint::Length(11),
    ]);
    if cols.state {
        widths.push(Constraint::Length(16));
    }
    if cols.owner {
        widths.push(Constraint::Length(14));
    }
    if cols.reason {
        widths.push(Constraint::Min(20));
    }
    widths
}

fn table(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, filtering: bool) -> usize {
    let rows = state.rows();
    let total = state.assessment.items.iter().filter(|i| state.show_aws_managed || !i.aws_managed).count();
    let carried = state.assessment.items.iter().filter_map(|i| i.listed_at).min();
    let stale = match carried {
        _ if state.stale => " (cached — refreshing)".to_owned(),
        Some(t) => format!(" (~ as listed {} UTC: listing failed)", t.format("%H:%M")),
        None => String::new(),
    };
    let review = if state.review_mode {
        let last = match &state.last_review {
            Some(r) => format!(
                "; last review {} by {}",
                r.at.format("%Y-%m-%d"),
                inert(
                    crate::domain::identity::CallerIdentity { arn: r.reviewer.clone(), ..Default::default() }
                        .principal_name()
                )
            ),
            None => "; no earlier review".into(),
        };
        format!(" — REVIEW: {} marked, {} changed{last}", state.review_marks.len(), state.review_changes.len())
    } else {
        String::new()
    };
    let title = match &state.inventory {
        None if state.loading => " Inventory — loading… ".to_owned(),
        None => " Inventory — not loaded ".to_owned(),
        Some(_) if filtering => format!(" Inventory — {} of {total}{stale}{review} ", rows.len()),
        Some(_) => format!(" Inventory — {} keys and secrets{stale}{review} ", rows.len()),
    };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    let cols = Columns::for_width(area.width);
    let mut header = if state.review_mode { vec!["Rev", "Status"] } else { vec!["Status"] };
    if cols.kind {
        header.push("Kind");
    }
    header.extend(["Name", "Region", "Due"]);
    if !cols.kind {
        header.push("Kind");
    }
    if cols.state {
        header.push("State");
    }
    if cols.owner {
        header.push("Owner");
    }
    if cols.reason {
        header.push("Why");
    }
    let widths = if cols.kind {
        wide_widths(&rows, state.review_mode, &cols)
    } else {
        narrow_widths(area.width.saturating_sub(2), &rows, state.review_mode, cols.state)
    };
    let body: Vec<Row> = rows
        .iter()
        .map(|r| {
            let rev = state.review_mode.then(|| {
                if state.review_marks.contains_key(&r.id) {
                    "✓"
                } else {
                    match state.change_for(&r.id) {
                        Some(crate::domain::review::Change::New { .. }) => "new",
                        Some(_) => "Δ",
                        None => "",
                    }
                }
            });
            row(r, rev, &cols, theme)
        })
        .collect();
    let empty = match &state.inventory {
        Some(_) if filtering => Some("nothing matches the filter (Esc clears it)"),
        Some(_) => Some("no keys or secrets in the selected regions"),
        None => None,
    };
    let header = Row::new(header);
    super::widgets::list_table(frame, area, (header, body, widths), block, (state.cursor, state.offset), empty, theme)
}

fn row<'a>(r: &'a AssessedItem, rev: Option<&'static str>, cols: &Columns, theme: &Theme) -> Row<'a> {
    let status = r.judgement.status;
    let mut cells = Vec::new();
    if let Some(mark) = rev {
        cells.push(Cell::from(Span::styled(mark, theme.key())));
    }
    cells.push(Cell::from(Span::styled(status.label(), theme.status(status))));
    if cols.kind {
        cells.push(Cell::from(kind_word(r.kind)));
    }
    // Carried over from an earlier listing: `~` before the name (the title says when).
    let name = if r.listed_at.is_some() { format!("~{}", r.name) } else { r.name.clone() };
    cells.push(Cell::from(inert(&name)));
    cells.push(Cell::from(r.region.clone()));
    let due = r.judgement.due.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into());
    cells.push(Cell::from(due));
    if !cols.kind {
        cells.push(Cell::from(kind_mark(r.kind)));
    }
    if cols.state {
        cells.push(Cell::from(Span::styled(inert(&r.state), theme.state(&r.state))));
    }
    if cols.owner {
        cells.push(Cell::from(r.owner.as_deref().map(inert).unwrap_or_else(|| "-".into())));
    }
    if cols.reason {
        cells.push(Cell::from(inert(&r.judgement.reason)));
    }
    Row::new(cells)
}
