//! Key bindings as data: every binding maps a key to a named [`Command`]; the help
//! overlay and the palette are generated from this table, so they cannot drift.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

use super::state::View;

/// Everything a key (or the `:` palette) can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    Quit,
    Help,
    Palette,
    Filter,
    Refresh,
    Inventory,
    Session,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    AwsManaged,
    Detail,
    Review,
    Mark,
    SaveReview,
}

impl Command {
    /// The palette name (`:refresh`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::Help => "help",
            Self::Palette => "palette",
            Self::Filter => "filter",
            Self::Refresh => "refresh",
            Self::Inventory => "inventory",
            Self::Session => "session",
            Self::Up => "up",
            Self::Down => "down",
            Self::PageUp => "page-up",
            Self::PageDown => "page-down",
            Self::Top => "top",
            Self::Bottom => "bottom",
            Self::AwsManaged => "aws-managed",
            Self::Detail => "detail",
            Self::Review => "review",
            Self::Mark => "mark",
            Self::SaveReview => "save-review",
        }
    }

    /// Commands offered in the `:` palette.
    pub const PALETTE: &'static [Command] = &[
        Self::Inventory,
        Self::Session,
        Self::Refresh,
        Self::Detail,
        Self::Review,
        Self::SaveReview,
        Self::AwsManaged,
        Self::Help,
        Self::Quit,
    ];
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    View(View),
}

/// One key binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static str,
    pub code: KeyCode,
    pub mods: KeyModifiers,
    pub command: Command,
    pub scope: Scope,
    pub help: &'static str,
}

const fn b(keys: &'static str, code: KeyCode, command: Command, scope: Scope, help: &'static str) -> Binding {
    Binding { keys, code, mods: KeyModifiers::NONE, command, scope, help }
}

use Command as C;
use Scope::{Global as G, View as V};

/// The default bindings.
pub const BINDINGS: &[Binding] = &[
    b("1", KeyCode::Char('1'), C::Inventory, G, "inventory view"),
    b("2", KeyCode::Char('2'), C::Session, G, "session view (identity, regions, policy)"),
    b(":", KeyCode::Char(':'), C::Palette, G, "command palette"),
    b("?", KeyCode::Char('?'), C::Help, G, "this help"),
    b("r", KeyCode::Char('r'), C::Refresh, G, "refresh now"),
    b("q", KeyCode::Char('q'), C::Quit, G, "quit"),
    b("/", KeyCode::Char('/'), C::Filter, V(View::Inventory), "filter by name, alias, region, state"),
    b("↓ j", KeyCode::Down, C::Down, V(View::Inventory), "next item"),
    b("", KeyCode::Char('j'), C::Down, V(View::Inventory), ""),
    b("↑ k", KeyCode::Up, C::Up, V(View::Inventory), "previous item"),
    b("", KeyCode::Char('k'), C::Up, V(View::Inventory), ""),
    b("PgDn", KeyCode::PageDown, C::PageDown, V(View::Inventory), "page down"),
    b("PgUp", KeyCode::PageUp, C::PageUp, V(View::Inventory), "page up"),
    b("g Home", KeyCode::Char('g'), C::Top, V(View::Inventory), "first item"),
    b("", KeyCode::Home, C::Top, V(View::Inventory), ""),
    b("G End", KeyCode::Char('G'), C::Bottom, V(View::Inventory), "last item"),
    b("", KeyCode::End, C::Bottom, V(View::Inventory), ""),
    b("Enter", KeyCode::Enter, C::Detail, V(View::Inventory), "open/close the detail pane"),
    b("a", KeyCode::Char('a'), C::AwsManaged, V(View::Inventory), "show/hide AWS-managed keys"),
    b("v", KeyCode::Char('v'), C::Review, V(View::Inventory), "review mode on/off (daily review)"),
    b("m", KeyCode::Char('m'), C::Mark, V(View::Inventory), "review mode: mark reviewed with a note"),
    b("s", KeyCode::Char('s'), C::SaveReview, V(View::Inventory), "review mode: save the review to the journal"),
];

/// The command bound to `key` in `view`, if any.
pub fn lookup(key: &KeyEvent, view: View) -> Option<Command> {
    // Shifted characters arrive with SHIFT set on some terminals; the char already says it.
    let mods = key.modifiers - KeyModifiers::SHIFT;
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Command::Quit);
    }
    BINDINGS
        .iter()
        .find(|bnd| {
            bnd.code == key.code && bnd.mods == mods && (bnd.scope == Scope::Global || bnd.scope == Scope::View(view))
        })
        .map(|bnd| bnd.command)
}

/// The bindings to list in the help overlay for `view` (global first).
pub fn help_for(view: View) -> Vec<&'static Binding> {
    let mut out: Vec<&Binding> =
        BINDINGS.iter().filter(|b| !b.help.is_empty() && b.scope == Scope::View(view)).collect();
    out.extend(BINDINGS.iter().filter(|b| !b.help.is_empty() && b.scope == Scope::Global));
    out
}

/// Palette commands whose name starts with `prefix`.
pub fn complete(prefix: &str) -> Vec<Command> {
    let p = prefix.trim().to_lowercase();
    Command::PALETTE.iter().copied().filter(|c| c.name().starts_with(&p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn view_bindings_only_apply_in_their_view() {
        assert_eq!(lookup(&key(KeyCode::Char('/')), View::Inventory), Some(Command::Filter));
        assert_eq!(lookup(&key(KeyCode::Char('/')), View::Session), None);
        assert_eq!(lookup(&key(KeyCode::Char('q')), View::Session), Some(Command::Quit));
        assert_eq!(
            lookup(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), View::Session),
            Some(Command::Quit)
        );
        assert_eq!(
            lookup(&KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT), View::Inventory),
            Some(Command::Bottom)
        );
    }

    #[test]
    fn every_command_in_help_is_bound() {
        for b in help_for(View::Inventory) {
            assert!(!b.keys.is_empty(), "{:?}", b.command);
        }
    }

    #[test]
    fn palette_completion() {
        assert_eq!(complete("re"), vec![Command::Refresh, Command::Review]);
        assert_eq!(complete("ref"), vec![Command::Refresh]);
        assert_eq!(complete(""), Command::PALETTE.to_vec());
        assert!(complete("zz").is_empty());
    }
}
