//! Everything the console knows. `ui` draws it; only `update` changes it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::identity::CallerIdentity;
use crate::domain::inventory::{Inventory, InventoryRow};

/// The console's views (number keys and the `:` palette switch between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Inventory,
    Session,
}

impl View {
    pub const ALL: [View; 2] = [View::Inventory, View::Session];

    pub fn title(self) -> &'static str {
        match self {
            View::Inventory => "Inventory",
            View::Session => "Session",
        }
    }
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Editing the `/` filter; the text lives in `State::filter`.
    Filter,
    /// Typing a `:` command.
    Palette(String),
    Help,
}

/// Who and where the console acts; fixed for the life of the console.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub identity: CallerIdentity,
    pub regions: Vec<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
    pub write_enabled: bool,
    pub policy_name: String,
    pub data_dir: String,
    pub log_file: String,
}

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Clone)]
pub struct State {
    pub session: Session,
    pub view: View,
    pub mode: Mode,
    pub inventory: Option<Inventory>,
    pub loading: bool,
    pub filter: String,
    pub show_aws_managed: bool,
    /// Index into the current rows; kept on the same item across refreshes via `selected_id`.
    pub cursor: usize,
    pub selected_id: Option<String>,
    pub status: Option<Status>,
    pub now: DateTime<Utc>,
    pub last_request: Option<DateTime<Utc>>,
    pub refresh_every: Duration,
    pub size: (u16, u16),
    pub color: bool,
    pub quit: bool,
    /// Rows of the body the inventory table had when last drawn (for paging).
    pub page_rows: usize,
}

impl State {
    pub fn new(session: Session, now: DateTime<Utc>, color: bool) -> Self {
        Self {
            session,
            view: View::Inventory,
            mode: Mode::Normal,
            inventory: None,
            loading: false,
            filter: String::new(),
            show_aws_managed: false,
            cursor: 0,
            selected_id: None,
            status: None,
            now,
            last_request: None,
            refresh_every: Duration::from_secs(60),
            size: (80, 24),
            color,
            quit: false,
            page_rows: 10,
        }
    }

    /// The inventory rows the view shows, filtered.
    pub fn rows(&self) -> Vec<InventoryRow> {
        self.inventory.as_ref().map(|i| i.rows(&self.filter, self.show_aws_managed)).unwrap_or_default()
    }

    /// Seconds since the inventory was fetched.
    pub fn refreshed_secs_ago(&self) -> Option<i64> {
        let at = self.inventory.as_ref()?.fetched_at?;
        Some((self.now - at).num_seconds().max(0))
    }
}
