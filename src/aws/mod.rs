//! The only place that touches the AWS SDK. Each service module turns SDK output into
//! `domain` types and SDK errors into [`AwsError`]. Nothing above this module imports
//! `aws_sdk_*`.

pub mod approvals;
pub mod cloudtrail;
pub mod context;
pub mod error;
pub mod inventory;
pub mod kms;
pub mod ops;
pub mod secrets;
pub mod sts;

pub use context::{check_credentials, AwsContext, ConnectOptions, ContextError, RegionConfig, StaticCredentials};
pub use error::{AwsError, AwsErrorKind};
pub use inventory::fetch_inventory;
