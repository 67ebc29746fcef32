//! `keydeck sandbox up` (run the seeded sandbox until Ctrl-C) and `keydeck sandbox env`
//! (shell exports to act as one of its operators).

use std::path::Path;

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
    println!("act as one in another shell:  {}", env_hint(env.global.data_dir.as_deref()));
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

/// The command that acts as the key-admin in another shell. A data dir chosen with
/// `--data-dir` or `KEYDECK_DATA_DIR` is passed as `--data-dir` (absolute: the other shell
/// may be elsewhere, and may not have the variable), so `sandbox env` finds this sandbox.
pub fn env_hint(data_dir: Option<&Path>) -> String {
    let flag = match data_dir {
        None => String::new(),
        Some(d) => {
            let d = std::path::absolute(d).unwrap_or_else(|_| d.to_owned());
            format!(" --data-dir {}", sandbox::shell_quote(&d.to_string_lossy()))
        }
    };
    format!("eval \"$(keydeck{flag} sandbox env --as key-admin)\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_hint_names_a_chosen_data_dir() {
        assert_eq!(env_hint(None), "eval \"$(keydeck sandbox env --as key-admin)\"");
        assert_eq!(
            env_hint(Some(Path::new("/tmp/x"))),
            "eval \"$(keydeck --data-dir /tmp/x sandbox env --as key-admin)\""
        );
        let spaced = env_hint(Some(Path::new("/tmp/my data")));
        assert!(spaced.contains("--data-dir '/tmp/my data' sandbox env"), "{spaced}");
    }
}
