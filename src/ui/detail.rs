//! The detail pane: everything known about the selected key or secret, its verdict, the
//! rule behind it, rotation history, tags and who may administer or use it.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

use super::theme::Theme;
use crate::app::state::Selected;
use crate::app::State;
use crate::domain::assessment::{kind_word, AssessedItem};
use crate::domain::inventory::{Fetched, RotationKind};
use crate::domain::text::inert;

/// Long descriptions (KMS allows 8 KB) are clipped so the rest of the pane stays visible.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    let n = s.chars().count();
    if n <= MAX {
        return inert(s);
    }
    let head: String = s.chars().take(MAX).collect();
    format!("{}… (+{} characters)", inert(&head), n - MAX)
}

/// At most ten aliases, then a count.
fn aliases(a: &[String]) -> String {
    match a.len() {
        0 => "-".into(),
        n if n <= 10 => inert(&a.join(", ")),
        n => format!("{} (+{} more)", inert(&a[..10].join(", ")), n - 10),
    }
}

fn date(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into())
}

/// Returns how far the pane can scroll (J/K).
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) -> u16 {
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" Detail ", theme.title()));
    let value_w = block.inner(area).width.saturating_sub(LABEL_W as u16).max(10);
    let mut pane = Pane { lines: Vec::new(), value_w };
    match state.selected() {
        None => pane.push(Line::from(Span::styled("nothing selected", theme.dim()))),
        Some(sel) => content(&mut pane, &sel, state, theme),
    }
    super::widgets::scrolled_pane(frame, area, pane.lines, block, state.pane_scroll, theme)
}

/// The label column: the longest labels (`next rotation`, `last accessed`) and a space.
const LABEL_W: usize = 14;

/// The pane's lines, a label column and a value column `value_w` wide.
struct Pane<'a> {
    lines: Vec<Line<'a>>,
    value_w: u16,
}

impl<'a> Pane<'a> {
    fn push(&mut self, line: Line<'a>) {
        self.lines.push(line);
    }

    /// `k` in the label column, `v` word-wrapped in the value column (its later rows
    /// indented under the first).
    fn kv(&mut self, k: &str, v: String, theme: &Theme) {
        self.styled(k, v, Style::default(), theme);
    }

    fn styled(&mut self, k: &str, v: String, style: Style, theme: &Theme) {
        debug_assert!(k.chars().count() < LABEL_W, "label {k:?} fills the label column");
        for (i, row) in super::widgets::wrap_text(&v, self.value_w, usize::MAX).into_iter().enumerate() {
            let label = if i == 0 { format!("{k:<LABEL_W$}") } else { " ".repeat(LABEL_W) };
            self.lines.push(Line::from(vec![Span::styled(label, theme.dim()), Span::styled(row, style)]));
        }
    }
}

fn verdict(l: &mut Pane<'_>, a: &AssessedItem, theme: &Theme) {
    let j = &a.judgement;
    l.styled("status", j.status.label().to_owned(), theme.status(j.status), theme);
    l.kv("why", inert(&j.reason), theme);
    if !j.action.is_empty() {
        l.kv("action", inert(&j.action), theme);
    }
    l.kv(
        "policy",
        match (&a.owner, a.classification) {
            (Some(o), Some(c)) => format!("owner {}, classification {c:?}", inert(o)),
            _ => "no rule (unmanaged)".into(),
        },
        theme,
    );
}

fn content(l: &mut Pane<'_>, sel: &Selected<'_>, state: &State, theme: &Theme) {
    match sel {
        Selected::Key(a, k) => {
            l.push(Line::from(Span::styled(format!("key {}", inert(&a.name)), theme.title())));
            verdict(l, a, theme);
            for d in state.assessment.drift_for(&a.id) {
                l.push(Line::from(Span::styled(format!("drift: {}", inert(&d.describe())), theme.warn())));
            }
            l.kv("ARN", inert(&k.arn), theme);
            l.kv("aliases", aliases(&k.aliases), theme);
            l.kv("state", inert(k.state.label()), theme);
            if let Some(dd) = k.deletion_date {
                l.kv("deletes on", dd.format("%Y-%m-%d %H:%M UTC").to_string(), theme);
            }
            l.kv("spec / usage", format!("{} / {}", inert(&k.spec), inert(&k.usage)), theme);
            l.kv("origin", inert(&k.origin), theme);
            if let Some(m) = &k.imported {
                let material = match (m.valid_to, m.expiration_model.as_deref()) {
                    (Some(t), _) => format!("expires {}", t.format("%Y-%m-%d %H:%M UTC")),
                    (None, Some(model)) => inert(model),
                    (None, None) => "none imported".into(),
                };
                l.kv("key material", material, theme);
            }
            if let Some(mr) = &k.multi_region {
                let text = match (&a.replica_of, a.replicas.is_empty()) {
                    (Some(p), _) => format!("{mr}, replica of {p}"),
                    (None, false) => format!("{mr}, replicas in {}", a.replicas.join(", ")),
                    (None, true) => mr.clone(),
                };
                l.kv("multi-Region", inert(&text), theme);
            }
            l.kv("created", date(k.created), theme);
            l.kv("description", clip(&k.description), theme);
            match &k.rotation {
                Fetched::Ok(r) => {
                    let auto = if r.enabled {
                        format!(
                            "on{}{}",
                            r.period_days.map(|p| format!(", every {p} d")).unwrap_or_default(),
                            r.next.map(|n| format!(", next {}", n.format("%Y-%m-%d"))).unwrap_or_default()
                        )
                    } else {
                        "off".into()
                    };
                    l.kv("rotation", auto, theme);
                    if r.history.is_empty() {
                        l.kv("rotated", "never".into(), theme);
                    }
                    for ev in r.history.iter().rev().take(5) {
                        let how = match ev.kind {
                            RotationKind::Automatic => "automatic",
                            RotationKind::OnDemand => "on demand",
                        };
                        l.kv("rotated", format!("{} ({how})", ev.at.format("%Y-%m-%d")), theme);
                    }
                }
                other => l.kv("rotation", other.missing_label().to_owned(), theme),
            }
            match &k.tags {
                Fetched::Ok(t) if t.is_empty() => l.kv("tags", "none".into(), theme),
                Fetched::Ok(t) => {
                    for (tk, tv) in t {
                        l.kv("tag", format!("{} = {}", inert(tk), inert(tv)), theme);
                    }
                }
                other => l.kv("tags", other.missing_label().to_owned(), theme),
            }
            match state.key_policies.get(&k.arn) {
                Some(Fetched::Ok(p)) => {
                    let admins =
                        if p.administrators.is_empty() { "-".into() } else { inert(&p.administrators.join(", ")) };
                    let users = if p.users.is_empty() { "-".into() } else { inert(&p.users.join(", ")) };
                    l.kv("administer", admins, theme);
                    l.kv("use", users, theme);
                    for n in &p.notes {
                        l.kv("policy note", inert(n), theme);
                    }
                }
                Some(Fetched::NotFetched) => l.kv("key policy", "reading…".into(), theme),
                Some(Fetched::Failed(e)) => l.kv("key policy", inert(e), theme),
                Some(other) => l.kv("key policy", other.missing_label().to_owned(), theme),
                None => l.kv("key policy", "-".into(), theme),
            }
        }
        Selected::Secret(a, s) => {
            l.push(Line::from(Span::styled(format!("{} {}", kind_word(a.kind), inert(&a.name)), theme.title())));
            verdict(l, a, theme);
            for d in state.assessment.drift_for(&a.id) {
                l.push(Line::from(Span::styled(format!("drift: {}", inert(&d.describe())), theme.warn())));
            }
            l.kv("ARN", inert(&s.arn), theme);
            l.kv("description", clip(&s.description), theme);
            l.kv(
                "rotation",
                if s.rotation_enabled {
                    format!("on{}", s.rotation_days.map(|d| format!(", every {d} d")).unwrap_or_default())
                } else {
                    "off".into()
                },
                theme,
            );
            l.kv("last rotated", date(s.last_rotated), theme);
            l.kv("next rotation", date(s.next_rotation), theme);
            l.kv(
                "last accessed",
                s.last_accessed.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into()),
                theme,
            );
            l.kv("created", date(s.created), theme);
            l.kv("KMS key", s.kms_key.as_deref().map(inert).unwrap_or_else(|| "aws/secretsmanager".into()), theme);
            for (tk, tv) in &s.tags {
                l.kv("tag", format!("{} = {}", inert(tk), inert(tv)), theme);
            }
            l.kv("value", "never shown".into(), theme);
        }
    }
}
