//! The subcommands, one file each: its body and its output. `main` parses the command
//! line, sets up logging and calls [`run`]. Every failure becomes one [`Failure`]: one
//! line on stderr and a documented exit code ([`crate::cli::exit`]).

pub mod alerts;
pub mod approvals;
pub mod completions;
pub mod console;
pub mod demo;
pub mod env;
pub mod feed;
pub mod incident;
pub mod inventory;
pub mod man;
pub mod review;
pub mod sandbox;

pub use env::{data_dir, load_policy, Env, Failure};

use crate::cli::{exit, Command, SandboxCommand};

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
        Some(Command::Incident(cmd)) => incident::run(&env, &cmd).await,
        Some(Command::Approvals(cmd)) => approvals::run(&env, &cmd).await,
        Some(Command::Completions { .. } | Command::Man) => local(command.as_ref()).unwrap_or(Ok(exit::OK)),
    }
}

/// The subcommands that need nothing from AWS, the data dir or the policy (completions,
/// the man page): run before any of that is set up. `None` for the others.
pub fn local(command: Option<&Command>) -> Option<Result<u8, Failure>> {
    let result = match command? {
        Command::Completions { shell } => to_stdout(|out| completions::write_completions(*shell, out))
            .map_err(|e| Failure::new(exit::INTERNAL, format!("writing completions: {e}"))),
        Command::Man => {
            to_stdout(man::write_man).map_err(|e| Failure::new(exit::INTERNAL, format!("writing the man page: {e}")))
        }
        _ => return None,
    };
    Some(result.map(|()| exit::OK))
}

/// Run `write` on stdout. A reader that stops early (`keydeck man | head`) is not an error.
pub fn to_stdout(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> std::io::Result<()> {
    match write(&mut std::io::stdout().lock()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::CommandFactory;

    /// Every subcommand as its path of names (`["sandbox", "up"]`), nested ones too, so
    /// that a new subcommand is checked by the completion and man page tests unasked.
    pub fn subcommand_paths() -> Vec<Vec<String>> {
        fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
            for sub in cmd.get_subcommands() {
                let mut path = prefix.to_vec();
                path.push(sub.get_name().to_owned());
                walk(sub, &path, out);
                out.push(path);
            }
        }
        let mut out = Vec::new();
        walk(&crate::cli::Cli::command(), &[], &mut out);
        out
    }

    #[test]
    fn the_walk_sees_nested_subcommands() {
        let paths = subcommand_paths();
        for p in [&["inventory"][..], &["sandbox", "up"], &["sandbox", "env"], &["completions"], &["man"]] {
            assert!(paths.iter().any(|q| q == p), "{p:?} not in {paths:?}");
        }
    }
}
