//! The status line and the overlays (help, palette).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::keymap;
use crate::app::state::{Prompt, PromptFor};
use crate::app::State;
use crate::domain::text::inert;

/// The most rows a status message takes at the bottom; a longer one ends in `…`.
pub const STATUS_MAX_ROWS: usize = 3;

/// The status message word-wrapped to `width` columns, in 1 to [`STATUS_MAX_ROWS`] rows
/// (`None` without a message: the key hints take one row).
fn status_rows(state: &State, width: u16) -> Option<Vec<String>> {
    let st = state.status.as_ref()?;
    // A message from a while ago says so first (a long one ends in `…`): an old refusal is
    // not read as the latest news.
    let age = (state.now - state.status_since).num_seconds();
    let text = if age >= STATUS_STALE_SECS {
        format!("{} · {}", super::header::ago(age), inert(&st.text))
    } else {
        inert(&st.text)
    };
    Some(super::widgets::wrap_text(&text, width, STATUS_MAX_ROWS))
}

/// From this age (seconds) a status message shows how old it is.
pub const STATUS_STALE_SECS: i64 = 60;

/// How many rows the status line needs at `width` columns: one when the message fits,
/// up to [`STATUS_MAX_ROWS`] when it does not (the view gives them up).
pub fn status_height(state: &State, width: u16) -> u16 {
    status_rows(state, width).map_or(1, |r| u16::try_from(r.len()).unwrap_or(1).max(1))
}

pub fn status_line(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let lines: Vec<Line> = match (&state.status, status_rows(state, area.width)) {
        (Some(st), Some(rows)) => {
            let style = if st.error { theme.error() } else { theme.dim() };
            rows.into_iter().map(|r| Line::from(Span::styled(r, style))).collect()
        }
        _ => vec![key_hints(state.view, area.width, theme)],
    };
    frame.render_widget(Paragraph::new(lines), area);
}

/// The keys the footer may name, in its order; each shows only where the keymap binds it.
const HINT_KEYS: [(KeyCode, &str); 11] = [
    (KeyCode::Char('?'), "?"),
    (KeyCode::Char(':'), ":"),
    (KeyCode::Char('/'), "/"),
    (KeyCode::Enter, "Enter"),
    (KeyCode::Char('x'), "x"),
    (KeyCode::Char('i'), "i"),
    (KeyCode::Char('f'), "f"),
    (KeyCode::Char('s'), "s"),
    (KeyCode::Char('w'), "w"),
    (KeyCode::Char('r'), "r"),
    (KeyCode::Char('q'), "q"),
];

/// The footer's word for a command; `None` for those it leaves to the help (`?`).
fn hint_word(c: keymap::Command) -> Option<&'static str> {
    use keymap::Command as C;
    Some(match c {
        C::Help => "help",
        C::Palette => "command",
        C::Filter => "filter",
        C::Detail => "detail",
        C::RunStep => "run step",
        C::OpenRequest => "open",
        C::Acknowledge => "acknowledge",
        C::RejectRequest => "reject",
        C::StartIncident => "incident",
        C::Freeze => "freeze",
        C::SkipStep => "skip",
        C::WithdrawRequest => "withdraw",
        C::Refresh => "refresh",
        C::ReloadApprovals => "reload",
        C::Quit => "quit",
        _ => return None,
    })
}

/// The keys that do something in `view` (the keymap decides), as `? help  / filter …`;
/// when they do not fit `width`, those before `quit` give way from the end.
fn key_hints(view: crate::app::View, width: u16, theme: &Theme) -> Line<'static> {
    let mut hints: Vec<(&str, &str)> = HINT_KEYS
        .iter()
        .filter_map(|(code, label)| {
            let word = hint_word(keymap::lookup(&KeyEvent::new(*code, KeyModifiers::NONE), view)?)?;
            Some((*label, word))
        })
        .collect();
    let width_of = |h: &[(&str, &str)]| h.iter().map(|(k, w)| k.chars().count() + w.len() + 3).sum::<usize>();
    while width_of(&hints) > usize::from(width) + 2 && hints.len() > 3 {
        hints.remove(hints.len() - 2);
    }
    let mut spans = Vec::new();
    for (i, (key, word)) in hints.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::raw(format!(" {word}")));
    }
    Line::from(spans)
}

pub fn help(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let bindings = keymap::help_for(state.view);
    // Wide enough for the longest line where the terminal allows, else its whole width;
    // a binding's text wraps under itself (a hanging indent), never cut.
    let width = 96.min(area.width);
    let text_w = width.saturating_sub(2 + 2 + 8).max(10);
    let mut body: Vec<Line> = Vec::new();
    let mut push = |keys: &str, help: &str| {
        for (i, row) in super::widgets::wrap_text(help, text_w, usize::MAX).into_iter().enumerate() {
            let key = if i == 0 { format!("  {keys:<8}") } else { " ".repeat(10) };
            body.push(Line::from(vec![Span::styled(key, theme.key()), Span::raw(row)]));
        }
    };
    // The view keys (1, 2, ...) on one line: the tabs in the header name them.
    let is_view_key =
        |b: &keymap::Binding| b.scope.is_empty() && b.keys.len() == 1 && b.keys.as_bytes()[0].is_ascii_digit();
    // Moving and scrolling take one line each, so every view's help fits 24 rows.
    use keymap::Command as C;
    let moves = [C::Down, C::Up, C::PageDown, C::PageUp, C::Top, C::Bottom];
    let scrolls = [C::ScrollDown, C::ScrollUp];
    let mut moved = false;
    let mut scrolled = false;
    for b in bindings.iter().filter(|b| !is_view_key(b)) {
        if moves.contains(&b.command) {
            if !std::mem::replace(&mut moved, true) {
                push("↓↑ j k", "next, previous · PgDn PgUp page · g G (Home End) first, last");
            }
        } else if scrolls.contains(&b.command) {
            if !std::mem::replace(&mut scrolled, true) {
                push("J K", "scroll the detail pane / step panel down, up");
            }
        } else {
            push(b.keys, b.help);
        }
    }
    let views: Vec<&str> = bindings.iter().filter(|b| is_view_key(b)).map(|b| b.keys).collect();
    if let (Some(first), Some(last)) = (views.first(), views.last()) {
        let names: Vec<String> = crate::app::View::ALL.iter().map(|v| v.title().to_lowercase()).collect();
        push(&format!("{first}-{last}"), &names.join("·"));
    }
    push("Esc", "clear filter / message");
    let mut lines = Vec::new();
    // Rows inside the border: the body, then the closing line.
    let room = usize::from(area.height.saturating_sub(2)).saturating_sub(1);
    if body.len() > room {
        body.truncate(room.saturating_sub(1));
        body.push(Line::from(Span::styled("  … (a taller terminal shows the rest)", theme.dim())));
    }
    lines.extend(body);
    lines.push(Line::from(Span::styled("any key closes this help", theme.dim())));
    let height = (lines.len() as u16 + 2).min(area.height);
    let [popup] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(popup);
    frame.render_widget(Clear, popup);
    let title = format!(" Keys — {} ", state.view.title());
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

/// The `:` line in `status`, and above it, the width of `area`, a box with every command
/// that matches what is typed, word-wrapped so none is cut.
pub fn palette(frame: &mut Frame, area: Rect, status: Rect, text: &str, theme: &Theme) {
    let matches = keymap::complete(text);
    let names: Vec<&str> = matches.iter().map(|c| c.name()).collect();
    let hint = if names.is_empty() { "no such command" } else { "Tab completes, Enter runs, Esc cancels" };
    let line = Line::from(vec![
        Span::styled(":", theme.key()),
        Span::raw(inert(text)),
        Span::raw("▏"),
        Span::styled(format!("   {hint}"), theme.dim()),
    ]);
    frame.render_widget(Clear, status);
    frame.render_widget(Paragraph::new(line), status);
    if names.is_empty() {
        return;
    }
    let rows = super::widgets::wrap_text(&names.join("  "), area.width.saturating_sub(2), usize::MAX);
    let height = (u16::try_from(rows.len()).unwrap_or(u16::MAX).saturating_add(2)).min(status.y - area.y);
    let popup = Rect { x: area.x, y: status.y - height, width: area.width, height };
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" Commands ", theme.title()));
    let lines: Vec<Line> = rows.into_iter().map(Line::from).collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

pub fn note(frame: &mut Frame, status: Rect, text: &str, theme: &Theme) {
    let line = Line::from(vec![
        Span::styled("reviewed, note: ", theme.key()),
        Span::raw(inert(text)),
        Span::raw("▏"),
        Span::styled("   (Enter marks reviewed, Esc cancels)", theme.dim()),
    ]);
    frame.render_widget(Clear, status);
    frame.render_widget(Paragraph::new(line), status);
}

/// An incident prompt: a line at the bottom for a reason, note or file; a dialog for
/// the typed confirmation of a destructive step (what will happen, Cancel by default).
pub fn prompt(frame: &mut Frame, area: Rect, status: Rect, p: &Prompt, theme: &Theme) {
    let (label, hint) = match &p.purpose {
        PromptFor::StartReason { label, .. } => {
            (format!("incident on {}, reason: ", inert(label)), "(Enter opens the incident, Esc cancels)")
        }
        PromptFor::Note { step } => (format!("{step}, note: "), "(Enter continues, Esc cancels)"),
        PromptFor::File { step, .. } => {
            (format!("{step}, ciphertext file(s): "), "(one base64 blob per line; comma-separate files; Esc cancels)")
        }
        PromptFor::SkipReason { step } => (format!("skip {step}, reason: "), "(Enter skips, Esc cancels)"),
        PromptFor::Confirm { step, expected, calls, .. } => {
            confirm(frame, area, step, expected.as_deref(), calls, &p.text, theme);
            return;
        }
    };
    let line = Line::from(vec![
        Span::styled(label, theme.key()),
        Span::raw(inert(&p.text)),
        Span::raw("▏"),
        Span::styled(format!("   {hint}"), theme.dim()),
    ]);
    frame.render_widget(Clear, status);
    frame.render_widget(Paragraph::new(line), status);
}

/// The confirmation of a step that changes AWS: its calls, then the typed alias of a
/// destructive step (`expected`), or `y` for another one. Cancel is the default.
fn confirm(
    frame: &mut Frame,
    area: Rect,
    step: &str,
    expected: Option<&str>,
    calls: &[String],
    typed: &str,
    theme: &Theme,
) {
    let mut lines: Vec<Line> =
        vec![Line::from(Span::styled(format!("{step} changes AWS. It will call:"), theme.title())), Line::from("")];
    for c in calls {
        lines.push(Line::from(format!("  {}", inert(c))));
    }
    let matches = expected.is_some_and(|e| typed.trim().trim_start_matches("alias/") == e);
    // Pinned at the dialog's bottom, however many calls there are.
    let mut footer = vec![Line::from("")];
    footer.push(match expected {
        Some(expected) => Line::from(vec![
            Span::raw("Type "),
            Span::styled(inert(expected), theme.key()),
            Span::raw(" to confirm: "),
            Span::raw(inert(typed)),
            Span::raw("▏"),
        ]),
        None => Line::from(vec![Span::raw("Press "), Span::styled("y", theme.key()), Span::raw(" to run it.")]),
    });
    footer.push(Line::from(""));
    footer.push(Line::from(vec![
        Span::styled(
            if matches { "  Cancel  " } else { "[ Cancel ]" },
            if matches { theme.dim() } else { theme.selected() },
        ),
        Span::raw("   "),
        Span::styled(if matches { "[ Run ]" } else { "  Run  " }, if matches { theme.write() } else { theme.dim() }),
        Span::styled(
            if expected.is_some() {
                "   Enter runs only when the name matches; Esc cancels"
            } else {
                "   y runs; n, Esc or Enter cancels"
            },
            theme.dim(),
        ),
    ]));
    let title = if expected.is_some() { " Confirm a destructive step " } else { " Confirm a step that changes AWS " };
    super::widgets::dialog(frame, area, lines, footer, Span::styled(title, theme.error()));
}
