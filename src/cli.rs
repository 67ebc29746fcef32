//! Command-line interface. Every subcommand has `--help`; exit codes are in [`exit`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Process exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A check found problems (e.g. `inventory --check`).
    pub const CHECK_FAILED: u8 = 1;
    /// Bad command-line usage (clap's own code).
    pub const USAGE: u8 = 2;
    /// Bad configuration: malformed policy, unknown profile, unknown region.
    pub const CONFIG: u8 = 3;
    /// Credentials missing, invalid, expired, or the identity lacks a permission.
    pub const AUTH: u8 = 4;
    /// The AWS endpoint could not be reached.
    pub const UNREACHABLE: u8 = 5;
    /// The sandbox could not start (moto missing, port in use, seeding failed).
    pub const SANDBOX: u8 = 6;
    /// Anything else (a bug: see the log).
    pub const INTERNAL: u8 = 70;
}

#[derive(Debug, Parser)]
#[command(
    name = "keydeck",
    version,
    about = "Terminal operator console for cryptographic key operations on AWS",
    long_about = "keydeck shows a live inventory of KMS keys and Secrets Manager secrets judged \
against a key-management policy, a live CloudTrail feed, and guides emergency revocation and \
dual-approval operations.\n\nWithout a subcommand it opens the console. It is read-only unless \
--allow-write is given.",
    after_help = "Exit codes: 0 ok, 1 check failed, 2 usage, 3 configuration, 4 credentials/permission, \
5 endpoint unreachable, 6 sandbox failed, 70 internal error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// AWS profile from ~/.aws/config (SSO, assume-role and credential_process work).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Region to work in; repeat or comma-separate for several (default: the profile's).
    #[arg(long = "region", global = true, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Endpoint override, e.g. an emulator (also read from AWS_ENDPOINT_URL).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Policy file (TOML); default: the embedded policy built from the seed policies.
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,
    /// Allow actions that change AWS (default: read-only).
    #[arg(long, global = true)]
    pub allow_write: bool,
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
    /// Start a seeded sandbox and open the console against it as the key-admin.
    Demo(DemoArgs),
    /// Run the local AWS sandbox (moto with IAM enforcement, seeded with the demo estate).
    #[command(subcommand)]
    Sandbox(SandboxCommand),
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
