//! Connecting: the per-region SDK configs built from the standard credential chain (or
//! the sandbox's static credentials) and an optional endpoint, and the credential check.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::domain::region::is_valid_region_name;

use super::error::{AwsError, AwsErrorKind};

/// How to reach AWS: everything the standard credential chain needs, plus overrides.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// A named profile from ~/.aws/config (SSO, assume-role and credential_process work).
    pub profile: Option<String>,
    /// Regions to work in. Empty: the profile's or the environment's region.
    pub regions: Vec<String>,
    /// An endpoint override (emulators). `AWS_ENDPOINT_URL` is honoured by the SDK too.
    pub endpoint_url: Option<String>,
    /// Static credentials (the sandbox's operators); `None` uses the standard chain.
    pub static_credentials: Option<StaticCredentials>,
    /// The Region of the dual-approval store (the policy's `[incident] region`), the same
    /// whatever `--region` selects, so every operator of the account meets the same
    /// requests; `None`: the first selected Region.
    pub approvals_region: Option<String>,
}

/// An access key pair, used for the sandbox's seeded operators.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// One SDK configuration per selected region.
#[derive(Clone, Debug)]
pub struct AwsContext {
    regions: Vec<RegionConfig>,
    approvals_region: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RegionConfig {
    pub region: String,
    pub config: SdkConfig,
}

/// Why a context could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("unknown region {0:?}: not an AWS region name (e.g. eu-north-1); pass --region with a valid one")]
    InvalidRegion(String),
    #[error("no region selected: pass --region, set AWS_REGION, or set region in the profile")]
    NoRegion,
    #[error(transparent)]
    Aws(AwsError),
}

impl AwsContext {
    /// Build SDK configurations for every selected region through the standard chain.
    pub async fn connect(opts: &ConnectOptions) -> Result<Self, ContextError> {
        for r in &opts.regions {
            if !is_valid_region_name(r) {
                return Err(ContextError::InvalidRegion(crate::domain::text::inert(r)));
            }
        }
        let base = loader(opts, None).load().await;
        let regions: Vec<String> = if opts.regions.is_empty() {
            match base.region() {
                Some(r) => vec![r.to_string()],
                None => return Err(ContextError::NoRegion),
            }
        } else {
            let mut seen = Vec::new();
            for r in &opts.regions {
                if !seen.contains(r) {
                    seen.push(r.clone());
                }
            }
            seen
        };
        for r in &regions {
            if !is_valid_region_name(r) {
                return Err(ContextError::InvalidRegion(crate::domain::text::inert(r)));
            }
        }
        let mut out = Vec::with_capacity(regions.len());
        for r in regions {
            let config = loader(opts, Some(&r)).load().await;
            out.push(RegionConfig { region: r, config });
        }
        if let Some(r) = opts.approvals_region.as_deref().filter(|r| !is_valid_region_name(r)) {
            return Err(ContextError::InvalidRegion(crate::domain::text::inert(r)));
        }
        Ok(Self { regions: out, approvals_region: opts.approvals_region.clone() })
    }

    pub fn regions(&self) -> &[RegionConfig] {
        &self.regions
    }

    pub fn region_names(&self) -> Vec<String> {
        self.regions.iter().map(|r| r.region.clone()).collect()
    }

    /// us-east-1, where the global services (IAM) record their CloudTrail events: the
    /// home configuration pointed there.
    pub fn global(&self) -> RegionConfig {
        let home = self.home();
        let config = home.config.to_builder().region(Region::new(crate::domain::trail::IAM_REGION)).build();
        RegionConfig { region: crate::domain::trail::IAM_REGION.to_owned(), config }
    }

    /// Where the dual-approval store lives: its configured Region (selected or not), else
    /// the first selected Region.
    pub fn approvals(&self) -> RegionConfig {
        match &self.approvals_region {
            Some(r) => self.regions.iter().find(|rc| &rc.region == r).cloned().unwrap_or_else(|| {
                let config = self.home().config.to_builder().region(Region::new(r.clone())).build();
                RegionConfig { region: r.clone(), config }
            }),
            None => self.home().clone(),
        }
    }

    /// The first selected region: where account-wide calls (STS) go.
    pub fn home(&self) -> &RegionConfig {
        // `connect` never builds an empty context.
        &self.regions[0]
    }
}

fn loader(opts: &ConnectOptions, region: Option<&str>) -> aws_config::ConfigLoader {
    let mut l = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(15))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(p) = &opts.profile {
        l = l.profile_name(p);
        // An explicit profile is the identity asked for: the default chain would take
        // AWS_ACCESS_KEY_ID from the environment first and act as someone else.
        if opts.static_credentials.is_none() {
            l = l.credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(p).build(),
            );
        }
    }
    if let Some(r) = region {
        l = l.region(Region::new(r.to_owned()));
    }
    if let Some(e) = &opts.endpoint_url {
        l = l.endpoint_url(e);
    }
    if let Some(c) = &opts.static_credentials {
        l = l.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            None,
            None,
            "keydeck-static",
        ));
    }
    l
}

/// Resolve credentials through the chain before any call, so that missing, misconfigured
/// or already-expired credentials get a precise message instead of a failed request.
pub async fn check_credentials(ctx: &AwsContext, profile: Option<&str>) -> Result<(), AwsError> {
    use aws_credential_types::provider::{error::CredentialsError, ProvideCredentials};
    let home = ctx.home();
    let fail = |kind, message: String| AwsError {
        call: "credential chain",
        region: home.region.clone(),
        resource: profile.map(|p| format!("profile {p}")),
        kind,
        code: None,
        message: crate::domain::text::inert(&message),
    };
    let Some(provider) = home.config.credentials_provider() else {
        return Err(fail(AwsErrorKind::NoCredentials, String::new()));
    };
    match provider.provide_credentials().await {
        Ok(creds) => match creds.expiry() {
            Some(exp) if exp <= std::time::SystemTime::now() => {
                let at: chrono::DateTime<chrono::Utc> = exp.into();
                Err(fail(
                    AwsErrorKind::ExpiredCredentials,
                    format!("they expired at {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
                ))
            }
            _ => Ok(()),
        },
        Err(e) => {
            let text = aws_sdk_kms::error::DisplayErrorContext(&e).to_string();
            let kind = match &e {
                CredentialsError::CredentialsNotLoaded(_) => {
                    // With no config or credentials file at all, the profile provider is
                    // "not enabled": the named profile is unknown all the same.
                    let unknown = ["was not defined", "not found", "provider was not enabled"];
                    if profile.is_some() && unknown.iter().any(|u| text.contains(u)) {
                        AwsErrorKind::UnknownProfile
                    } else {
                        AwsErrorKind::NoCredentials
                    }
                }
                CredentialsError::ProviderTimedOut(_) => AwsErrorKind::Unreachable,
                CredentialsError::InvalidConfiguration(_) if text.contains("was not defined") => {
                    AwsErrorKind::UnknownProfile
                }
                _ if text.to_ascii_lowercase().contains("expired") => AwsErrorKind::ExpiredCredentials,
                _ => AwsErrorKind::Client,
            };
            let message = match kind {
                AwsErrorKind::NoCredentials | AwsErrorKind::UnknownProfile => String::new(),
                _ => super::error::causes(&e),
            };
            Err(fail(kind, message))
        }
    }
}
