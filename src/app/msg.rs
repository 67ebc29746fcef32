//! Messages into the update loop and actions out of it.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use crate::domain::inventory::Inventory;

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    /// The clock, once a second; the only way the app learns the time.
    Tick(DateTime<Utc>),
    /// A full inventory fetch finished (problems are inside it, per region).
    InventoryLoaded(Inventory),
}

/// Something the runtime must do (AWS work runs in tasks and answers with a `Msg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RefreshInventory,
}
