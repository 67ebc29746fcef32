//! The console's model and its update loop, pure and synchronous: terminal input, ticks,
//! measured layout and AWS results arrive as [`Msg`]s; [`update`] is the only place that
//! changes [`State`] and returns [`Action`]s, which `runtime` turns into tokio tasks.
//! Nothing here awaits or does IO; `ui` draws `&State`.

pub mod approvals;
pub mod feed;
pub mod keymap;
pub mod msg;
pub mod state;
pub mod update;

pub use msg::{Action, Msg};
pub use state::{Mode, Session, State, View};
pub use update::update;
