//! Command-line interface. Every subcommand has `--help`; exit codes are in [`exit`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Process exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A check found problems (e.g. `inventory --check`).
    pub const CHECK_FAILED: u8 = 1;
    /// Bad command-line usage (clap's own code), and input keydeck cannot take: a missing
    /// or mistyped id, alias, note, reason or file; `--allow-write` missing.
    pub const USAGE: u8 = 2;
    /// Bad configuration: malformed policy, unknown profile, unknown region; no sandbox
    /// running, or one already running, in the data dir.
    pub const CONFIG: u8 = 3;
    /// Credentials missing, invalid, expired, or the identity lacks a permission.
    pub const AUTH: u8 = 4;
    /// The AWS endpoint could not be reached.
    pub const UNREACHABLE: u8 = 5;
    /// The sandbox could not start (moto missing, port in use, seeding failed).
    pub const SANDBOX: u8 = 6;
    /// An incident step was carried out and AWS refused it (or its result was not what
    /// the runbook expects): the message says which call, which key, what to do. Also an
    /// approved request whose operation AWS refused.
    pub const STEP_FAILED: u8 = 7;
    /// Not yet: CloudTrail has not delivered the record keydeck needs (who proposed a
    /// request); try again in a few minutes.
    pub const NOT_YET: u8 = 8;
    /// Refused: the input is well-formed, and the policy, the approval matrix or the state
    /// of the request or incident says no (your own request, not your role, expired or
    /// already decided, a waiting period the policy forbids, a step done or blocked, an
    /// incident already open on the key). Nothing was changed.
    pub const REFUSED: u8 = 9;
    /// Anything else (a bug: see the log).
    pub const INTERNAL: u8 = 70;
}

#[derive(Debug, Parser)]
#[command(
    name = "keydeck",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KEYDECK_BUILD_COMMIT"), ")"),
    about = "Terminal operator console for cryptographic key operations on AWS",
    long_about = "keydeck shows a live inventory of KMS keys and Secrets Manager secrets judged \
against a key-management policy, and a live CloudTrail feed with the policy's detection rules.\n\n\
Without a subcommand it opens the console. It is read-only unless --allow-write is given.",
    after_help = "Exit codes: 0 ok, 1 check failed, 2 usage, 3 configuration, 4 credentials/permission, \
5 endpoint unreachable, 6 sandbox failed, 7 incident step or approved operation failed, 8 not attested by CloudTrail yet, \
9 refused (policy, approval matrix or state), \
70 internal error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// AWS profile from ~/.aws/config (SSO, assume-role and credential_process work). As
    /// with the AWS CLI, `--profile` wins over credentials in the environment; AWS_PROFILE
    /// (read by the SDK's chain) does not.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Region to work in; repeat or comma-separate for several (default: KEYDECK_REGIONS,
    /// else the profile's).
    #[arg(long = "region", global = true, value_delimiter = ',', env = "KEYDECK_REGIONS")]
    pub regions: Vec<String>,
    /// Endpoint override, e.g. an emulator (also read from AWS_ENDPOINT_URL).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_parser = parse_endpoint)]
    pub endpoint_url: Option<String>,
    /// Policy file (TOML); default: the embedded policy built from the seed policies.
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,
    /// Allow actions that change AWS (default: read-only).
    #[arg(long, global = true)]
    pub allow_write: bool,
    /// Seconds between CloudTrail polls (each region, paced under 2 calls/s); default 10, 3 in the demo.
    #[arg(long, global = true)]
    pub poll: Option<f64>,
    /// Where keydeck keeps its cache, logs, incident log and the sandbox's files.
    #[arg(long, global = true, env = "KEYDECK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the inventory judged against the policy (for cron and CI).
    Inventory(InventoryArgs),
    /// The daily review: every item that is not OK, the rule it breaks, the action to take.
    Review(ReviewArgs),
    /// CloudTrail events for keys and secrets (KMS, Secrets Manager), newest last.
    Feed(FeedArgs),
    /// Run the policy's detection rules over CloudTrail events and list the alerts.
    Alerts(AlertsArgs),
    /// Start a seeded sandbox and open the console against it as the key-admin.
    Demo(DemoArgs),
    /// Run the local AWS sandbox (moto with IAM enforcement, seeded with the demo estate).
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: keydeck completions bash > ~/.local/share/bash-completion/completions/keydeck
    /// zsh:  keydeck completions zsh > ~/.zfunc/_keydeck  (with fpath+=(~/.zfunc) before compinit)
    /// fish: keydeck completions fish > ~/.config/fish/completions/keydeck.fish
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    ///
    /// Read it with `keydeck man | man -l -`, or install it:
    /// keydeck man > ~/.local/share/man/man1/keydeck.1
    Man,
    /// Emergency revocation: a guided incident runbook (004 §4.7, §10) whose every step
    /// calls AWS and is recorded, intent before and outcome after, in a local
    /// tamper-evident log (`<data-dir>/incidents/ID.jsonl`). Changing AWS needs --allow-write.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Dual-approval key operations (004 §6): one principal proposes, a different one
    /// approves, and the operation runs under the approver's credentials. Requests live in
    /// AWS (Secrets Manager, `keydeck/approvals/<id>`, metadata only); who proposed and who
    /// approved is what CloudTrail attests. Changing a request needs --allow-write.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Propose a key operation (prints the request id).
    Propose {
        /// rotate-key, schedule-deletion, create-key or cancel-deletion.
        operation: String,
        /// The key: alias (with or without alias/), key id or ARN (create-key: the key it replaces).
        #[arg(long)]
        key: String,
        /// schedule-deletion's waiting period (the policy's min_window_days..=max_window_days).
        #[arg(long)]
        window_days: Option<u32>,
        /// Why, in your words.
        #[arg(long)]
        reason: String,
    },
    /// The requests: waiting for me, mine, other open ones, history, and malformed entries.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// One request: what it does, its state, who proposed and who acted (as CloudTrail attests).
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Approve a request and carry it out under your own credentials.
    Approve {
        id: String,
        /// The target key's alias, typed to confirm (with or without alias/).
        #[arg(long)]
        confirm: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Reject a request (not your own), with the reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw your own open request.
    Withdraw { id: String },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open an incident on a KMS key or a secret (prints the incident id).
    Start(IncidentStartArgs),
    /// The incidents in the data dir, oldest first.
    List {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Every step of an incident, in order: id, title, state; the clocks; the next step's calls.
    Status {
        id: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// Run one step (an outcome left unknown by a crash is first settled by reading AWS).
    Run(IncidentRunArgs),
    /// Skip a step, with the reason (required steps only when a step they need was skipped).
    Skip {
        id: String,
        #[arg(long)]
        step: String,
        #[arg(long)]
        reason: String,
    },
    /// Check an incident log's hash chain (ID or a log file); --online also checks every
    /// anchor signature with kms:Verify.
    Verify {
        /// An incident id or the path of an incident log.
        target: String,
        #[arg(long)]
        online: bool,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
    /// The post-mortem timeline: who, what, when, request ids, time per step, time to containment.
    Export {
        id: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Markdown)]
        format: ExportFormat,
    },
}

#[derive(Debug, Args)]
pub struct IncidentStartArgs {
    /// The compromised KMS key: alias (with or without alias/), key id or ARN.
    #[arg(long, required_unless_present = "secret", conflicts_with = "secret")]
    pub key: Option<String>,
    /// The compromised secret: name or ARN (the JWT_SECRET runbook).
    #[arg(long)]
    pub secret: Option<String>,
    /// What happened, in your words.
    #[arg(long)]
    pub reason: String,
    /// When the compromise was detected (RFC 3339; default now): starts the 1-hour and 72-hour clocks.
    #[arg(long)]
    pub detected: Option<chrono::DateTime<chrono::Utc>>,
    /// The alert that triggered it (its id from `keydeck alerts`).
    #[arg(long)]
    pub alert: Option<String>,
}

#[derive(Debug, Args)]
pub struct IncidentRunArgs {
    pub id: String,
    #[arg(long)]
    pub step: String,
    /// Confirms a destructive step: the key alias (with or without alias/) or the secret name.
    #[arg(long)]
    pub confirm: Option<String>,
    /// A ciphertext file to re-encrypt (one base64 CiphertextBlob per line); repeatable.
    #[arg(long)]
    pub file: Vec<PathBuf>,
    /// A note (who was told, what was reviewed, ...).
    #[arg(long)]
    pub note: Option<String>,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// Exit 1 when anything is Overdue, Alert, or in the policy but missing.
    #[arg(long)]
    pub check: bool,
    /// Include AWS-managed keys (aws/*).
    #[arg(long)]
    pub aws_managed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[arg(long, value_enum, default_value_t = ReviewFormat::Markdown)]
    pub format: ReviewFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    Markdown,
    Json,
}

/// An endpoint URL: `http://` or `https://`, a host, optionally a port and a path (the SDK
/// would otherwise fail on the first call with its request dumped).
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(format!("{s:?} is not an endpoint URL: give http://HOST[:PORT] or https://HOST[:PORT]"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        // [IPv6]:PORT
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => ("", None),
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c))
        && !authority.contains('@');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
        && (authority.starts_with('[') || !host.contains(':'));
    if host_ok && port_ok {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not an endpoint URL: give http://HOST[:PORT] or https://HOST[:PORT]"))
    }
}

/// A look-back such as `30m`, `2h`, `7d`.
pub fn parse_since(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("{s:?}: add a unit (m, h or d)"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("{s:?}: not a number of minutes, hours or days"))?;
    let d = match unit {
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(format!("{s:?}: use m, h or d (e.g. 30m, 2h, 7d)")),
    };
    if n <= 0 || d > chrono::Duration::days(90) {
        return Err(format!("{s:?}: CloudTrail event history covers 1 minute to 90 days"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct FeedArgs {
    /// How far back to read (CloudTrail keeps 90 days).
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub since: chrono::Duration,
    /// Keep polling and print new events as they are delivered (Ctrl-C stops).
    #[arg(long)]
    pub follow: bool,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// How far back to evaluate.
    #[arg(long, default_value = "24h", value_parser = parse_since)]
    pub since: chrono::Duration,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
    /// Exit 1 when an alert at or above this severity fired (critical, high, medium, low).
    #[arg(long, default_value = "high")]
    pub fail_on: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Operator to act as (a seeded IAM user).
    #[arg(long = "as", default_value = "key-admin")]
    pub operator: String,
    #[command(flatten)]
    pub sandbox: SandboxOpts,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxOpts {
    /// Loopback port for the sandbox endpoint (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seconds before a recorded call becomes visible to CloudTrail LookupEvents.
    #[arg(long, default_value_t = 3.0)]
    pub trail_delay: f64,
    /// Background traffic from the seeded service principals.
    #[arg(long, value_enum, default_value_t = Traffic::Demo)]
    pub traffic: Traffic,
    /// Extra generated KMS keys, spread over the estate's regions (for benchmarks).
    #[arg(long, default_value_t = 0)]
    pub bulk_keys: u32,
    /// Extra generated secrets (for benchmarks).
    #[arg(long, default_value_t = 0)]
    pub bulk_secrets: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Traffic {
    Demo,
    None,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the sandbox and keep it running until Ctrl-C.
    Up(SandboxOpts),
    /// Print shell exports to act as a seeded operator against the running sandbox.
    Env {
        /// The operator (IAM user), e.g. key-admin, security-lead, outsider.
        #[arg(long = "as")]
        operator: String,
    },
}
