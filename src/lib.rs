//! keydeck: a terminal operator console for cryptographic key operations on AWS.
//!
//! Layout (one-way flow): `aws` talks to AWS and returns `domain` values; `domain` is
//! pure; `app` owns state and the update loop; `ui` only draws; `sandbox` runs the
//! emulator for the demo and the tests; `cli` parses the command line.

pub mod app;
pub mod aws;
pub mod cli;
pub mod cmd;
pub mod domain;
pub mod incident;
pub mod report;
pub mod sandbox;
pub mod ui;
