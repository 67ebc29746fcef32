//! `keydeck sandbox up` (run the seeded sandbox until Ctrl-C) and `keydeck sandbox env`
//! (shell exports to act as one of its operators).

use super::env::{Env, Failure};
use crate::cli::{exit, SandboxOpts, Traffic};
use crate::sandbox::{self, Sandbox, StartOptions};

/// Start a sandbox in `<data-dir>/sandbox` with these options.
pub async fn start(env: &Env, opts: &SandboxOpts) -> Result<Sandbox, Failure> {
    let start = StartOptions {
        port: opts.port,
        trail_delay_secs: opts.trail_delay,
        traffic: opts.traffic == Traffic::Demo,
        bulk_keys: opts.bulk_keys,
        bulk_secrets: opts.bulk_secrets,
    };
    Ok(Sandbox::start(&env.data_dir.join("sandbox"), &start).await?)
}

pub async fn up(env: &Env, opts: &SandboxOpts) -> Result<u8, Failure> {
    let sb = start(env, opts).await?;
    let names: Vec<&str> = sb.info.operators.keys().map(String::as_str).collect();
    println!("keydeck sandbox running at {} (moto {})", sb.info.endpoint, sb.info.moto_version);
    println!("account {}, regions {}", sb.info.account_id, sb.info.regions.join(", "));
    println!("operators: {}", names.join(", "));
    println!("act as one in another shell:  eval \"$(keydeck sandbox env --as key-admin)\"");
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    sb.stop().await;
    println!("sandbox stopped");
    Ok(exit::OK)
}

pub async fn env(env: &Env, operator: &str) -> Result<u8, Failure> {
    let info = sandbox::find_running(&env.data_dir.join("sandbox")).await?;
    print!("{}", info.env_exports(operator)?);
    Ok(exit::OK)
}
