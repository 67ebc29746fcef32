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
    // Inside the borders, below the header row.
    let page = usize::from(area.height.saturating_sub(3));
    more_marks(frame, area, (len, ts.offset(), page), theme);
    if let (0, Some(msg)) = (len, empty) {
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Paragraph::new(Span::styled(msg.to_owned(), theme.dim())), inner);
    }
    page
}

/// In the bottom border of the list drawn in `area`, at its right, how many of its `len`
/// rows lie above and below the `page` rows shown from `offset`: `↑ 3 more · ↓ 9 more`.
/// Nothing when every row shows.
pub(super) fn more_marks(frame: &mut Frame, area: Rect, (len, offset, page): (usize, usize, usize), theme: &Theme) {
    let above = offset.min(len);
    let below = len.saturating_sub(offset.saturating_add(page));
    let marks: Vec<String> = [("↑", above), ("↓", below)]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(arrow, n)| format!("{arrow} {n} more"))
        .collect();
    if marks.is_empty() || area.height < 2 {
        return;
    }
    let text = format!(" {} ", marks.join(" · "));
    let width = u16::try_from(Span::raw(text.as_str()).width()).unwrap_or(u16::MAX);
    if width.saturating_add(4) > area.width {
        return;
    }
    let at = Rect { x: area.right() - 2 - width, y: area.bottom() - 1, width, height: 1 };
    frame.render_widget(Paragraph::new(Span::styled(text, theme.key())), at);
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

/// The fullest of the lines `line(0)` … `line(most)` (more compact as the level grows)
/// that fits `width` columns; the most compact when none does.
pub(super) fn fullest<'a>(width: u16, most: u8, line: impl Fn(u8) -> Line<'a>) -> Line<'a> {
    (0..most).map(&line).find(|l| l.width() <= usize::from(width)).unwrap_or_else(|| line(most))
}

/// `arn:aws:iam::1:user/key-admin` → `key-admin`; anything else as it is.
pub(super) fn short_principal(p: &str) -> &str {
    if p.starts_with("arn:") {
        p.rsplit('/').next().unwrap_or(p)
    } else {
        p
    }
}

/// The rows `line` takes when word-wrapped to `width` columns (at least 1), as
/// [`wrap_text`] wraps it.
pub(super) fn wrapped_rows(line: &Line<'_>, width: u16) -> u16 {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    u16::try_from(wrap_text(&text, width, usize::MAX).len()).unwrap_or(u16::MAX)
}

/// `text` word-wrapped to `width` columns, in at most `max_rows` rows; when it needs more,
/// the last row ends in `…`. Words longer than a row are cut across rows. Widths are
/// terminal columns (`unicode-width`, as ratatui counts them).
pub(super) fn wrap_text(text: &str, width: u16, max_rows: usize) -> Vec<String> {
    let width = usize::from(width).max(1);
    let w = |s: &str| Span::raw(s).width();
    let mut rows: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, word) in text.split(' ').enumerate() {
        // Spaces count (indentation, aligned columns), except where a row was broken.
        let sep = usize::from(i > 0 && (!cur.is_empty() || rows.is_empty()));
        if w(&cur) + sep + w(word) <= width {
            if sep == 1 {
                cur.push(' ');
            }
            cur.push_str(word);
            continue;
        }
        if !cur.is_empty() {
            rows.push(std::mem::take(&mut cur));
        }
        for ch in word.chars() {
            if w(&cur) + w(ch.encode_utf8(&mut [0; 4])) > width {
                rows.push(std::mem::take(&mut cur));
            }
            cur.push(ch);
        }
    }
    if !cur.is_empty() || rows.is_empty() {
        rows.push(cur);
    }
    if rows.len() > max_rows.max(1) {
        rows.truncate(max_rows.max(1));
        if let Some(last) = rows.last_mut() {
            while !last.is_empty() && w(last) + 1 > width {
                last.pop();
            }
            last.push('…');
        }
    }
    rows
}

/// A principal's name within its account, from its ARN (IAM ARN format,
/// `arn:PARTITION:SERVICE::ACCOUNT:RESOURCE`): `arn:aws:iam::1:user/key-admin` →
/// `user/key-admin`, `arn:aws:sts::1:assumed-role/ROLE/SESSION` →
/// `assumed-role/ROLE/SESSION`; anything else as it is.
pub(super) fn principal_name(arn: &str) -> &str {
    match arn.splitn(6, ':').nth(5) {
        Some(resource) if arn.starts_with("arn:") && !resource.is_empty() => resource,
        _ => arn,
    }
}

/// A pane of wrapped `lines` in `block`, scrolled down by `scroll` rows (clamped to the
/// end). When the lines do not fit, the bottom border says where the view is and that
/// J/K scroll it. Returns how far the pane can scroll (rows beyond its height; 0 when all
/// fits), which the update loop caps the scroll at.
pub(super) fn scrolled_pane(
    frame: &mut Frame,
    area: Rect,
    lines: Vec<Line<'_>>,
    block: ratatui::widgets::Block<'_>,
    scroll: u16,
    theme: &Theme,
) -> u16 {
    use ratatui::widgets::Wrap;
    let inner = block.inner(area);
    let rows = lines.iter().map(|l| wrapped_rows(l, inner.width)).fold(0u16, u16::saturating_add);
    let max = rows.saturating_sub(inner.height);
    let top = scroll.min(max);
    let block = if max > 0 {
        let last = (top + inner.height).min(rows);
        block.title_bottom(Span::styled(format!(" rows {}–{last} of {rows} · J/K scroll ", top + 1), theme.key()))
    } else {
        block
    };
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }).scroll((top, 0)), area);
    max
}

/// A centred dialog (at most 110 columns wide, as tall as it needs up to the whole
/// `area`), over whatever is drawn below it: `body` wrapped at the top, `footer` (the
/// typed input, a refusal, the buttons) pinned at its bottom and always drawn. When the
/// body does not fit above the footer it is cut and its last row reads `… N more lines`.
pub(super) fn dialog(frame: &mut Frame, area: Rect, body: Vec<Line<'_>>, footer: Vec<Line<'_>>, title: Span<'_>) {
    use ratatui::layout::Flex;
    use ratatui::widgets::{Block, Borders, Clear, Wrap};
    let width = area.width.saturating_sub(4).min(110);
    let inner_w = width.saturating_sub(2);
    let rows = |lines: &[Line<'_>]| lines.iter().map(|l| wrapped_rows(l, inner_w)).fold(0u16, u16::saturating_add);
    let (body_rows, footer_rows) = (rows(&body), rows(&footer));
    let height = body_rows.saturating_add(footer_rows).saturating_add(2).min(area.height);
    let [popup] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(popup);
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let footer_h = footer_rows.min(inner.height);
    let [top, bottom] = Layout::vertical([Constraint::Min(0), Constraint::Length(footer_h)]).areas(inner);
    if body_rows > top.height && top.height > 0 {
        let [cut, more] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(top);
        frame.render_widget(Paragraph::new(body).wrap(Wrap { trim: false }), cut);
        let hidden = body_rows - cut.height;
        frame
            .render_widget(Paragraph::new(format!("… {hidden} more line{}", if hidden == 1 { "" } else { "s" })), more);
    } else {
        frame.render_widget(Paragraph::new(body).wrap(Wrap { trim: false }), top);
    }
    frame.render_widget(Paragraph::new(footer).wrap(Wrap { trim: false }), bottom);
}
