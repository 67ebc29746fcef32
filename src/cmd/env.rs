//! What every subcommand shares: the [`Env`] it runs in, the [`Failure`] it reports
//! (one line, one exit code), connecting with a preflight, the data dir and the policy.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::aws::{self, AwsContext, AwsErrorKind, ConnectOptions, ContextError};
use crate::cli::{exit, GlobalOpts};
use crate::domain::identity::CallerIdentity;
use crate::domain::policy::{Policy, DEFAULT_POLICY_NAME};
use crate::sandbox::SandboxError;

/// A failure to report: one line, one exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Self {
        let code = match e {
            SandboxError::NotRunning { .. }
            | SandboxError::UnknownOperator { .. }
            | SandboxError::AlreadyRunning { .. } => exit::CONFIG,
            _ => exit::SANDBOX,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<ContextError> for Failure {
    fn from(e: ContextError) -> Self {
        match e {
            ContextError::Aws(a) => a.into(),
            other => Failure::new(exit::CONFIG, other.to_string()),
        }
    }
}

impl From<aws::AwsError> for Failure {
    fn from(e: aws::AwsError) -> Self {
        let code = match e.kind {
            AwsErrorKind::UnknownProfile | AwsErrorKind::NotFound => exit::CONFIG,
            AwsErrorKind::Unreachable => exit::UNREACHABLE,
            AwsErrorKind::AccessDenied
            | AwsErrorKind::NoCredentials
            | AwsErrorKind::InvalidCredentials
            | AwsErrorKind::BadSignature
            | AwsErrorKind::ExpiredCredentials => exit::AUTH,
            _ => exit::INTERNAL,
        };
        Failure::new(code, e.to_string())
    }
}

/// What every subcommand gets: the global options, the data dir, the policy.
pub struct Env {
    pub global: GlobalOpts,
    pub data_dir: PathBuf,
    pub policy: Policy,
    /// The policy's name for reports: its path, or the embedded default's name.
    pub policy_name: String,
    /// When the process started (the console logs its time to the first frame).
    pub started: Instant,
}

impl Env {
    /// The standard credential chain with the global options.
    pub fn chain_options(&self) -> ConnectOptions {
        ConnectOptions {
            profile: self.global.profile.clone(),
            regions: self.global.regions.clone(),
            endpoint_url: self.global.endpoint_url.clone(),
            static_credentials: None,
            approvals_region: self.policy.incident.region.clone(),
        }
    }

    /// The CloudTrail poll interval: `--poll`, else the command's default; 1 s to 1 h.
    pub fn poll_interval(&self, default_secs: f64) -> std::time::Duration {
        let secs = self.global.poll.unwrap_or(default_secs);
        std::time::Duration::from_secs_f64(if secs.is_finite() { secs.clamp(1.0, 3600.0) } else { default_secs })
    }
}

/// Pretty JSON for stdout.
pub fn json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| Failure::new(exit::INTERNAL, format!("serialising JSON: {e}")))
}

/// Build the per-region SDK configs, resolve credentials and ask STS who we are.
pub async fn connect_checked(opts: &ConnectOptions) -> Result<(AwsContext, CallerIdentity), Failure> {
    let ctx = AwsContext::connect(opts).await?;
    aws::check_credentials(&ctx, opts.profile.as_deref()).await?;
    let identity = preflight(&ctx).await?;
    Ok((ctx, identity))
}

/// Check credentials and reachability before taking over the terminal, so that bad input
/// gets one clear line instead of an empty console.
async fn preflight(ctx: &AwsContext) -> Result<CallerIdentity, Failure> {
    match tokio::time::timeout(std::time::Duration::from_secs(45), aws::sts::caller_identity(ctx)).await {
        Ok(Ok(id)) => Ok(id),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Failure::new(
            exit::UNREACHABLE,
            format!(
                "sts:GetCallerIdentity in {} timed out after 45 s — check the endpoint and network",
                ctx.home().region
            ),
        )),
    }
}

/// `--data-dir`, else the platform's data dir for keydeck; created 0700.
pub fn data_dir(g: &GlobalOpts) -> Result<PathBuf, Failure> {
    let dir = match &g.data_dir {
        Some(d) => d.clone(),
        None => directories::ProjectDirs::from("", "", "keydeck")
            .map(|p| p.data_dir().to_path_buf())
            .ok_or_else(|| Failure::new(exit::CONFIG, "no home directory: pass --data-dir"))?,
    };
    crate::sandbox::create_private_dir(&dir).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    Ok(dir)
}

/// `--policy FILE`, else the embedded default policy; with the name reports show.
pub fn load_policy(path: Option<&Path>) -> Result<(Policy, String), Failure> {
    match path {
        None => Policy::default_policy()
            .map(|p| (p, DEFAULT_POLICY_NAME.to_owned()))
            .map_err(|e| Failure::new(exit::INTERNAL, e.to_string())),
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::new(exit::CONFIG, format!("cannot read policy file {name}: {e}")))?;
            Policy::parse(&name, &text).map(|pol| (pol, name)).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))
        }
    }
}

/// Refuse a write without `--allow-write` (exit 2): "pass --allow-write to WHAT (it
/// changes CHANGES)".
pub fn write_allowed(env: &Env, what: &str, changes: &str) -> Result<(), Failure> {
    if env.global.allow_write {
        Ok(())
    } else {
        Err(Failure::new(
            exit::USAGE,
            format!("keydeck is read-only: pass --allow-write to {what} (it changes {changes})"),
        ))
    }
}
