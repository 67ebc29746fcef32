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
    Feed,
    Alerts,
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
    Freeze,
    Acknowledge,
    KeyEvents,
    Back,
    Incident,
    StartIncident,
    RunStep,
    SkipStep,
    NextIncident,
    PreviousIncident,
    Approvals,
    ProposeRotation,
    OpenRequest,
    RejectRequest,
    WithdrawRequest,
    ReloadApprovals,
    ScrollDown,
    ScrollUp,
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
            Self::Feed => "feed",
            Self::Alerts => "alerts",
            Self::Session => "session",
            Self::Up => "up",
            Self::Down => "down",
            Self::PageUp => "page-up",
            Self::PageDown => "page-down",
            Self::Top => "top",
            Self::Bottom => "bottom",
            Self::AwsManaged => "aws-managed",
            Self::Detail => "detail",
            Self::Incident => "incident",
            Self::StartIncident => "start-incident",
            Self::RunStep => "run-step",
            Self::SkipStep => "skip-step",
            Self::NextIncident => "next-incident",
            Self::PreviousIncident => "previous-incident",
            Self::Approvals => "approvals",
            Self::ProposeRotation => "propose-rotation",
            Self::OpenRequest => "open-request",
            Self::RejectRequest => "reject-request",
            Self::WithdrawRequest => "withdraw-request",
            Self::ReloadApprovals => "reload-approvals",
            Self::ScrollDown => "scroll-down",
            Self::ScrollUp => "scroll-up",
            Self::Review => "review",
            Self::Mark => "mark",
            Self::SaveReview => "save-review",
            Self::Freeze => "freeze",
            Self::Acknowledge => "acknowledge",
            Self::KeyEvents => "key-events",
            Self::Back => "back",
        }
    }

    /// Commands offered in the `:` palette.
    pub const PALETTE: &'static [Command] = &[
        Self::Inventory,
        Self::Feed,
        Self::Alerts,
        Self::Session,
        Self::Incident,
        Self::Approvals,
        Self::Refresh,
        Self::Detail,
        Self::Review,
        Self::SaveReview,
        Self::Freeze,
        Self::AwsManaged,
        Self::Help,
        Self::Quit,
    ];
}

/// Where a binding applies: every view (empty) or the listed ones.
pub type Scope = &'static [View];

const G: Scope = &[];
const INV: Scope = &[View::Inventory];
const FEED: Scope = &[View::Feed];
const ALERTS: Scope = &[View::Alerts];
const LISTS: Scope = &[View::Inventory, View::Feed, View::Alerts, View::Approvals];
const FILTERABLE: Scope = &[View::Inventory, View::Feed];
const INCIDENT: Scope = &[View::Incident];
const START: Scope = &[View::Inventory, View::Alerts];
const APPROVALS: Scope = &[View::Approvals];
/// Views with a pane that scrolls: the detail panes and the incident's step panel.
const PANES: Scope = &[View::Inventory, View::Feed, View::Incident];

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

impl Binding {
    fn applies(&self, view: View) -> bool {
        self.scope.is_empty() || self.scope.contains(&view)
    }
}

const fn b(keys: &'static str, code: KeyCode, command: Command, scope: Scope, help: &'static str) -> Binding {
    Binding { keys, code, mods: KeyModifiers::NONE, command, scope, help }
}

use Command as C;

/// The default bindings.
pub const BINDINGS: &[Binding] = &[
    b("1", KeyCode::Char('1'), C::Inventory, G, "inventory view"),
    b("2", KeyCode::Char('2'), C::Feed, G, "CloudTrail feed view"),
    b("3", KeyCode::Char('3'), C::Alerts, G, "alerts view"),
    b("4", KeyCode::Char('4'), C::Session, G, "session view (identity, regions, policy)"),
    b("5", KeyCode::Char('5'), C::Incident, G, "incident view (the emergency revocation checklist)"),
    b("6", KeyCode::Char('6'), C::Approvals, G, "approvals view (dual approval requests)"),
    b(":", KeyCode::Char(':'), C::Palette, G, "command palette"),
    b("?", KeyCode::Char('?'), C::Help, G, "this help"),
    b("r", KeyCode::Char('r'), C::ReloadApprovals, APPROVALS, "list the approval requests again now"),
    b("r", KeyCode::Char('r'), C::Refresh, G, "refresh the inventory now"),
    b("q", KeyCode::Char('q'), C::Quit, G, "quit"),
    b("/", KeyCode::Char('/'), C::Filter, INV, "filter by name, alias, region, state, status, owner, tag"),
    b("/", KeyCode::Char('/'), C::Filter, FEED, "filter by key, principal, event name, outcome"),
    b("↓ j", KeyCode::Down, C::Down, LISTS, "next"),
    b("", KeyCode::Char('j'), C::Down, LISTS, ""),
    b("↑ k", KeyCode::Up, C::Up, LISTS, "previous"),
    b("", KeyCode::Char('k'), C::Up, LISTS, ""),
    b("PgDn", KeyCode::PageDown, C::PageDown, LISTS, "page down"),
    b("PgUp", KeyCode::PageUp, C::PageUp, LISTS, "page up"),
    b("g Home", KeyCode::Char('g'), C::Top, LISTS, "first"),
    b("", KeyCode::Home, C::Top, LISTS, ""),
    b("G End", KeyCode::Char('G'), C::Bottom, LISTS, "last"),
    b("", KeyCode::End, C::Bottom, LISTS, ""),
    b("Enter", KeyCode::Enter, C::Detail, FILTERABLE, "open/close the detail pane"),
    b("J", KeyCode::Char('J'), C::ScrollDown, PANES, "scroll the detail pane / step panel down"),
    b("K", KeyCode::Char('K'), C::ScrollUp, PANES, "scroll the detail pane / step panel up"),
    b("a", KeyCode::Char('a'), C::AwsManaged, INV, "show/hide AWS-managed keys"),
    b("e", KeyCode::Char('e'), C::KeyEvents, INV, "the selected key's events in the feed"),
    b("v", KeyCode::Char('v'), C::Review, INV, "review mode on/off (daily review)"),
    b("m", KeyCode::Char('m'), C::Mark, INV, "review mode: mark reviewed with a note"),
    b("s", KeyCode::Char('s'), C::SaveReview, INV, "review mode: save the review to the journal"),
    b("f", KeyCode::Char('f'), C::Freeze, FEED, "freeze/unfreeze the feed (alerts keep firing)"),
    b("b", KeyCode::Char('b'), C::Back, FEED, "back to the key in the inventory"),
    b("x", KeyCode::Char('x'), C::Acknowledge, ALERTS, "acknowledge the selected alert"),
    b("P", KeyCode::Char('P'), C::ProposeRotation, INV, "propose rotation: Overdue/ALERT keys (--allow-write)"),
    b("Enter", KeyCode::Enter, C::OpenRequest, APPROVALS, "open the request (waiting for me: the approval dialog)"),
    b("x", KeyCode::Char('x'), C::RejectRequest, APPROVALS, "reject the selected request, with a reason"),
    b("w", KeyCode::Char('w'), C::WithdrawRequest, APPROVALS, "withdraw my selected request"),
    b("i", KeyCode::Char('i'), C::StartIncident, START, "start an incident on the selected key/secret (--allow-write)"),
    b("↓ j", KeyCode::Down, C::Down, INCIDENT, "next step"),
    b("", KeyCode::Char('j'), C::Down, INCIDENT, ""),
    b("↑ k", KeyCode::Up, C::Up, INCIDENT, "previous step"),
    b("", KeyCode::Char('k'), C::Up, INCIDENT, ""),
    b(
        "Enter",
        KeyCode::Enter,
        C::RunStep,
        INCIDENT,
        "run the selected step (shows its calls: y runs; destructive ones ask for the alias)",
    ),
    b("s", KeyCode::Char('s'), C::SkipStep, INCIDENT, "skip the selected step, with a reason"),
    b("]", KeyCode::Char(']'), C::NextIncident, INCIDENT, "next open incident of this data dir"),
    b("[", KeyCode::Char('['), C::PreviousIncident, INCIDENT, "previous open incident of this data dir"),
];

/// The command bound to `key` in `view`, if any.
pub fn lookup(key: &KeyEvent, view: View) -> Option<Command> {
    // Shifted characters arrive with SHIFT set on some terminals; the char already says it.
    let mods = key.modifiers - KeyModifiers::SHIFT;
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Command::Quit);
    }
    BINDINGS.iter().find(|bnd| bnd.code == key.code && bnd.mods == mods && bnd.applies(view)).map(|bnd| bnd.command)
}

/// The bindings to list in the help overlay for `view` (global first).
pub fn help_for(view: View) -> Vec<&'static Binding> {
    let mut out: Vec<&Binding> =
        BINDINGS.iter().filter(|b| !b.help.is_empty() && !b.scope.is_empty() && b.applies(view)).collect();
    let shadowed = |g: &Binding| out.iter().any(|s| s.code == g.code && s.mods == g.mods);
    let global: Vec<&Binding> =
        BINDINGS.iter().filter(|b| !b.help.is_empty() && b.scope.is_empty() && !shadowed(b)).collect();
    out.extend(global);
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
    fn shift_j_and_k_scroll_the_panes() {
        for view in [View::Inventory, View::Feed, View::Incident] {
            assert_eq!(lookup(&key(KeyCode::Char('J')), view), Some(Command::ScrollDown), "{view:?}");
            assert_eq!(lookup(&key(KeyCode::Char('K')), view), Some(Command::ScrollUp), "{view:?}");
        }
        assert_eq!(lookup(&key(KeyCode::Char('J')), View::Alerts), None);
        assert!(help_for(View::Incident).iter().any(|b| b.keys == "J" && b.command == Command::ScrollDown));
    }

    #[test]
    fn approvals_keys() {
        assert_eq!(lookup(&key(KeyCode::Char('6')), View::Feed), Some(Command::Approvals));
        assert_eq!(lookup(&key(KeyCode::Char('P')), View::Inventory), Some(Command::ProposeRotation));
        assert_eq!(lookup(&key(KeyCode::Char('P')), View::Feed), None);
        assert_eq!(lookup(&key(KeyCode::Char('r')), View::Approvals), Some(Command::ReloadApprovals));
        assert_eq!(lookup(&key(KeyCode::Char('r')), View::Inventory), Some(Command::Refresh));
        assert_eq!(lookup(&key(KeyCode::Enter), View::Approvals), Some(Command::OpenRequest));
        assert_eq!(lookup(&key(KeyCode::Char('x')), View::Approvals), Some(Command::RejectRequest));
        assert_eq!(lookup(&key(KeyCode::Char('w')), View::Approvals), Some(Command::WithdrawRequest));
        assert_eq!(lookup(&key(KeyCode::Char('j')), View::Approvals), Some(Command::Down));
        // The help lists `r` once in the approvals view: its own meaning there.
        let r: Vec<Command> =
            help_for(View::Approvals).iter().filter(|b| b.code == KeyCode::Char('r')).map(|b| b.command).collect();
        assert_eq!(r, vec![Command::ReloadApprovals]);
        assert!(help_for(View::Inventory).iter().any(|b| b.command == Command::ProposeRotation));
    }

    #[test]
    fn palette_completion() {
        assert_eq!(complete("re"), vec![Command::Refresh, Command::Review]);
        assert_eq!(complete("fe"), vec![Command::Feed]);
        assert_eq!(complete("ref"), vec![Command::Refresh]);
        assert_eq!(complete(""), Command::PALETTE.to_vec());
        assert!(complete("zz").is_empty());
    }
}
