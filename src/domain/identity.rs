//! Who the console is acting as.

use serde::{Deserialize, Serialize};

/// The STS caller identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CallerIdentity {
    pub arn: String,
    pub account: String,
    pub user_id: String,
}

impl CallerIdentity {
    /// The principal's short name: the user name, or the role session for assumed roles.
    pub fn principal_name(&self) -> &str {
        // arn:aws:iam::123:user/key-admin, arn:aws:sts::123:assumed-role/Role/session
        let resource = self.arn.rsplit(':').next().unwrap_or("");
        resource.rsplit('/').next().unwrap_or(resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_names() {
        let id = |arn: &str| CallerIdentity { arn: arn.into(), ..Default::default() };
        assert_eq!(id("arn:aws:iam::123456789012:user/key-admin").principal_name(), "key-admin");
        assert_eq!(id("arn:aws:sts::123456789012:assumed-role/Admin/alice").principal_name(), "alice");
        assert_eq!(id("arn:aws:iam::123456789012:root").principal_name(), "root");
        assert_eq!(id("").principal_name(), "");
    }
}
