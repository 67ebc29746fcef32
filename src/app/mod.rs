//! Application state and the update loop. Terminal input, ticks and AWS results arrive
//! as [`Msg`]s; [`update`] is the only place that changes [`State`] and returns
//! [`Action`]s that the runtime turns into tokio tasks. Drawing reads `&State` only.

pub mod cache;
pub mod feed;
pub mod keymap;
pub mod msg;
pub mod poller;
pub mod run;
pub mod state;
pub mod update;

pub use msg::{Action, Msg};
pub use state::{Mode, Session, State, View};
pub use update::update;
