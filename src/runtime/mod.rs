//! The console's runtime: the terminal, the message channel, the input and tick tasks,
//! the CloudTrail pollers, the inventory cache, and the tokio tasks that carry out
//! [`crate::app::Action`]s (AWS calls, journal writes) and answer with messages.

pub mod approvals;
pub mod approvals_task;
pub mod cache;
pub mod console;
pub mod incident;
pub mod poller;
