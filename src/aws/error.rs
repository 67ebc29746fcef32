//! One error type for every AWS call: which call, which resource, what went wrong,
//! and what the operator can do about it.

use std::fmt;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What kind of failure, as far as the operator is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The caller is authenticated but not allowed to make the call.
    AccessDenied,
    /// No credentials could be found in the chain.
    NoCredentials,
    /// The access key is unknown to the endpoint.
    InvalidCredentials,
    /// The secret key does not match the access key (request signature refused).
    BadSignature,
    /// A session token expired.
    ExpiredCredentials,
    /// The named profile does not exist in the AWS config files.
    UnknownProfile,
    /// The endpoint could not be reached (DNS, refused connection, timeout).
    Unreachable,
    /// The service throttled the call.
    Throttled,
    /// The resource does not exist.
    NotFound,
    /// Anything else the service answered.
    Service,
    /// Anything else on the client side.
    Client,
}

/// A failed AWS call, ready to be shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The API call, as `service:Action` (e.g. `kms:ListKeys`).
    pub call: &'static str,
    /// The region the call went to.
    pub region: String,
    /// The key, alias or secret the call was about, when there is one.
    pub resource: Option<String>,
    pub kind: AwsErrorKind,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// The service's (or the client's) message.
    pub message: String,
}

impl AwsError {
    /// The failure as the domain judges it (the advice follows the failure).
    pub fn read_failure(&self) -> crate::domain::inventory::ReadFailure {
        use crate::domain::inventory::ReadFailure;
        match self.kind {
            AwsErrorKind::AccessDenied => ReadFailure::Denied,
            AwsErrorKind::Throttled => ReadFailure::Throttled,
            _ => ReadFailure::Failed(self.to_string()),
        }
    }

    /// A listing call that failed for its whole region.
    pub fn listing_failure(&self) -> crate::domain::inventory::ListingFailure {
        crate::domain::inventory::ListingFailure {
            region: self.region.clone(),
            call: self.call.to_owned(),
            failure: self.read_failure(),
            carried_from: None,
        }
    }

    /// What the operator can do next.
    pub fn hint(&self) -> String {
        match self.kind {
            AwsErrorKind::AccessDenied => format!(
                "your identity lacks {}; use a profile whose IAM policy allows it (see README: IAM policies)",
                self.call
            ),
            AwsErrorKind::NoCredentials => {
                "no AWS credentials found: set --profile, run `aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into()
            }
            AwsErrorKind::InvalidCredentials => {
                "the access key is not recognised by this endpoint: check the profile, or the --endpoint-url it is meant for".into()
            }
            AwsErrorKind::BadSignature => {
                "the secret access key does not match the access key id: re-export the credentials".into()
            }
            AwsErrorKind::ExpiredCredentials => {
                "the session has expired: refresh it (`aws sso login`, or assume the role again)".into()
            }
            AwsErrorKind::UnknownProfile => {
                "that profile is not in ~/.aws/config or ~/.aws/credentials: check `aws configure list-profiles`".into()
            }
            AwsErrorKind::Unreachable => {
                "the endpoint cannot be reached: check --endpoint-url / AWS_ENDPOINT_URL, the region name and the network".into()
            }
            AwsErrorKind::Throttled => "AWS is throttling this call: keydeck will retry with backoff".into(),
            AwsErrorKind::NotFound => "no such resource in this region: check the name (a key by alias, id or ARN; a secret by name or ARN) and --region, or refresh the inventory if it was just deleted".into(),
            AwsErrorKind::Service | AwsErrorKind::Client => "see the message; the keydeck log has details".into(),
        }
    }

    /// Classify an SDK error from any service.
    pub fn from_sdk<E, R>(call: &'static str, region: &str, resource: Option<&str>, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let (kind, code, message) = match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().map(str::to_owned);
                let message = e.message().unwrap_or("").to_owned();
                (classify_code(code.as_deref()), code, message)
            }
            _ => {
                // Classified on the whole context (its Debug part names the failure kind);
                // told to the operator as the causes' own words, without the Debug dump.
                let text = DisplayErrorContext(&err).to_string();
                (classify_client(&text), None, causes(&err))
            }
        };
        Self {
            call,
            region: region.to_owned(),
            resource: resource.map(str::to_owned),
            kind,
            code,
            message: crate::domain::text::inert(&message),
        }
    }
}

fn classify_code(code: Option<&str>) -> AwsErrorKind {
    match code.unwrap_or("") {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => AwsErrorKind::AccessDenied,
        "UnrecognizedClientException" | "InvalidClientTokenId" | "AuthFailure" => AwsErrorKind::InvalidCredentials,
        "InvalidSignatureException" | "SignatureDoesNotMatch" => AwsErrorKind::BadSignature,
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => AwsErrorKind::ExpiredCredentials,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "LimitExceededException" => {
            AwsErrorKind::Throttled
        }
        "NotFoundException" | "ResourceNotFoundException" => AwsErrorKind::NotFound,
        _ => AwsErrorKind::Service,
    }
}

/// Client-side failures carry no code: read the SDK's own description.
/// An error and its sources, each in its own words, joined with ": " (a cause already
/// said by the one before is not repeated).
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let t = e.to_string();
        if !t.is_empty() && !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn classify_client(text: &str) -> AwsErrorKind {
    let t = text.to_ascii_lowercase();
    if t.contains("was not defined") || t.contains("profile") && t.contains("not found") {
        AwsErrorKind::UnknownProfile
    } else if t.contains("expired") {
        AwsErrorKind::ExpiredCredentials
    } else if t.contains("no credentials")
        || t.contains("credentials") && t.contains("not loaded")
        || t.contains("failed to load credentials")
        || t.contains("identity")
    {
        AwsErrorKind::NoCredentials
    } else if t.contains("dispatch failure")
        || t.contains("connect")
        || t.contains("dns")
        || t.contains("timeout")
        || t.contains("timed out")
        || t.contains("io error")
    {
        AwsErrorKind::Unreachable
    } else {
        AwsErrorKind::Client
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.call, self.region)?;
        if let Some(r) = &self.resource {
            write!(f, " for {r}")?;
        }
        let what = match self.kind {
            AwsErrorKind::AccessDenied => "access denied",
            AwsErrorKind::NoCredentials => "no credentials",
            AwsErrorKind::InvalidCredentials => "invalid credentials",
            AwsErrorKind::BadSignature => "request signature refused",
            AwsErrorKind::ExpiredCredentials => "credentials expired",
            AwsErrorKind::UnknownProfile => "unknown profile",
            AwsErrorKind::Unreachable => "endpoint unreachable",
            AwsErrorKind::Throttled => "throttled",
            AwsErrorKind::NotFound => "not found",
            AwsErrorKind::Service => "service error",
            AwsErrorKind::Client => "client error",
        };
        write!(f, " failed: {what}")?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        let msg = first_line(&self.message);
        if !msg.is_empty() {
            write!(f, ": {msg}")?;
        }
        write!(f, " — {}", self.hint())
    }
}

impl std::error::Error for AwsError {}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(240) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(classify_code(Some("AccessDeniedException")), AwsErrorKind::AccessDenied);
        assert_eq!(classify_code(Some("UnrecognizedClientException")), AwsErrorKind::InvalidCredentials);
        assert_eq!(classify_code(Some("InvalidSignatureException")), AwsErrorKind::BadSignature);
        assert_eq!(classify_code(Some("ExpiredTokenException")), AwsErrorKind::ExpiredCredentials);
        assert_eq!(classify_code(Some("ThrottlingException")), AwsErrorKind::Throttled);
        assert_eq!(classify_code(Some("KMSInternalException")), AwsErrorKind::Service);
    }

    #[test]
    fn display_names_call_resource_and_hint() {
        let e = AwsError {
            call: "kms:DescribeKey",
            region: "eu-north-1".into(),
            resource: Some("alias/drop-kyc-key".into()),
            kind: AwsErrorKind::AccessDenied,
            code: Some("AccessDeniedException".into()),
            message: "User: x is not authorized\nsecond line".into(),
        };
        let s = e.to_string();
        assert!(s.starts_with("kms:DescribeKey in eu-north-1 for alias/drop-kyc-key failed: access denied"));
        assert!(s.contains("User: x is not authorized"));
        assert!(!s.contains("second line"));
        assert!(s.contains("lacks kms:DescribeKey"));
    }
}
