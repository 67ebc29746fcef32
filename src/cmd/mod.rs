//! The subcommands, one file each: its body and its output. `main` parses the command
//! line, sets up logging and calls [`run`]. Every failure becomes one [`Failure`]: one
//! line on stderr and a documented exit code ([`crate::cli::exit`]).

pub mod alerts;
pub mod console;
pub mod demo;
pub mod env;
pub mod feed;
pub mod inventory;
pub mod review;
pub mod sandbox;

pub use env::{data_dir, load_policy, Env, Failure};

use crate::cli::{Command, SandboxCommand};

/// Run one subcommand (none: the console).
pub async fn run(command: Option<Command>, env: Env) -> Result<u8, Failure> {
    match command {
        None => console::run(&env, env.chain_options(), 10.0).await,
        Some(Command::Inventory(args)) => inventory::run(&env, &args).await,
        Some(Command::Review(args)) => review::run(&env, &args).await,
        Some(Command::Feed(args)) => feed::run(&env, &args).await,
        Some(Command::Alerts(args)) => alerts::run(&env, &args).await,
        Some(Command::Demo(args)) => demo::run(&env, &args).await,
        Some(Command::Sandbox(SandboxCommand::Up(opts))) => sandbox::up(&env, &opts).await,
        Some(Command::Sandbox(SandboxCommand::Env { operator })) => sandbox::env(&env, &operator).await,
    }
}
