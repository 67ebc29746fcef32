//! keydeck's entry point: parse the command line, set up logging, and dispatch to the
//! subcommand (`keydeck::cmd`); every failure becomes one clear line on stderr and a
//! documented exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use keydeck::cli::{exit, Cli};
use keydeck::cmd::{self, Env, Failure};

fn main() -> ExitCode {
    let started = Instant::now();
    // Like every Unix filter: a reader that stops early (`keydeck feed | head`) ends
    // keydeck quietly instead of a write error.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A panic prints color-eyre's report (where, and what to send) after the console's
    // own hook has restored the terminal (ratatui chains to this one).
    let _ = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .panic_section("keydeck stopped on a bug: please report it with this message and <data-dir>/keydeck.log")
        .install();
    if let Some(result) = cmd::local(cli.command.as_ref()) {
        return finish(result);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keydeck: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let result = runtime.block_on(async {
        let global = cli.global;
        let data_dir = cmd::data_dir(&global)?;
        let _log_guard = init_logging(&data_dir);
        let (policy, policy_name) = cmd::load_policy(global.policy.as_deref())?;
        tracing::info!(policy = %policy.name, keys = policy.keys.len(), "policy loaded");
        cmd::run(cli.command, Env { global, data_dir, policy, policy_name, started }).await
    });
    // Background tasks (sandbox pipes, AWS calls) must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    finish(result)
}

/// The exit code, and a failure's one line on stderr.
fn finish(result: Result<u8, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("keydeck: {message}");
            ExitCode::from(code)
        }
    }
}

/// Log to `<data-dir>/keydeck.log` (`KEYDECK_LOG` sets the filter); never to the terminal.
fn init_logging(dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600); // inside the 0700 data dir, too
    let file = opts.open(dir.join("keydeck.log")).ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("keydeck=info,warn"));
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().ok()?;
    Some(guard)
}
