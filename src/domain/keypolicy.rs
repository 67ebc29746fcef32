//! Summarise a KMS key policy document: who may administer the key, who may use it.

use serde_json::Value;

use super::inventory::KeyPolicySummary;

const ADMIN_PREFIXES: &[&str] = &[
    "kms:Create",
    "kms:Describe",
    "kms:Enable",
    "kms:List",
    "kms:Put",
    "kms:Update",
    "kms:Revoke",
    "kms:Disable",
    "kms:Get",
    "kms:Delete",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
    "kms:ImportKeyMaterial",
];
const USE_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt",
    "kms:GenerateDataKey",
    "kms:Sign",
    "kms:Verify",
    "kms:GenerateMac",
    "kms:VerifyMac",
    "kms:DeriveSharedSecret",
];

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => vec![],
    }
}

fn principals(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(m) => m.values().flat_map(list).collect(),
        _ => vec![],
    }
}

fn grants(actions: &[String], candidates: &[&str]) -> bool {
    actions.iter().any(|a| {
        a == "*"
            || a == "kms:*"
            || candidates
                .iter()
                .any(|c| a.starts_with(c) || (a.ends_with('*') && c.starts_with(a.trim_end_matches('*'))))
    })
}

/// Parse a key policy JSON document. Malformed documents give a summary with a note.
pub fn summarise(doc: &str) -> KeyPolicySummary {
    let mut s = KeyPolicySummary::default();
    let v: Value = match serde_json::from_str(doc) {
        Ok(v) => v,
        Err(e) => {
            s.notes.push(format!("key policy is not valid JSON: {e}"));
            return s;
        }
    };
    let statements = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![v["Statement"].clone()],
        _ => vec![],
    };
    for st in statements {
        if st["Effect"] != "Allow" {
            if st["Effect"] == "Deny" {
                s.notes.push(format!("Deny statement {}", st["Sid"].as_str().unwrap_or("(no Sid)")));
            }
            continue;
        }
        if st.get("NotAction").is_some() || st.get("NotPrincipal").is_some() {
            s.notes.push(format!("statement {} uses NotAction/NotPrincipal", st["Sid"].as_str().unwrap_or("(no Sid)")));
            continue;
        }
        let who = principals(&st["Principal"]);
        let actions = list(&st["Action"]);
        let conditional = st.get("Condition").is_some();
        let tag = |p: &String| if conditional { format!("{p} (conditional)") } else { p.clone() };
        if grants(&actions, ADMIN_PREFIXES) {
            s.administrators.extend(who.iter().map(tag));
        }
        if grants(&actions, USE_ACTIONS) {
            s.users.extend(who.iter().map(tag));
        }
    }
    s.administrators.sort();
    s.administrators.dedup();
    s.users.sort();
    s.users.dedup();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_gives_the_account_root_everything() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let s = summarise(doc);
        assert_eq!(s.administrators, vec!["arn:aws:iam::123456789012:root"]);
        assert_eq!(s.users, vec!["arn:aws:iam::123456789012:root"]);
    }

    #[test]
    fn separates_admins_from_users_and_notes_the_rest() {
        let doc = r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:role/drop-key-admin"]},"Action":["kms:Create*","kms:Describe*","kms:Put*"]},
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/app"},"Action":["kms:Encrypt","kms:GenerateDataKey*"],"Condition":{"StringEquals":{"kms:ViaService":"s3.eu-north-1.amazonaws.com"}}},
            {"Effect":"Deny","Sid":"NoDecryptForAdmins","Principal":"*","Action":"kms:Decrypt"},
            {"Effect":"Allow","Principal":"*","NotAction":"kms:Decrypt"}
        ]}"#;
        let s = summarise(doc);
        assert_eq!(s.administrators, vec!["arn:aws:iam::1:role/drop-key-admin"]);
        assert_eq!(s.users, vec!["arn:aws:iam::1:role/app (conditional)"]);
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
    }

    #[test]
    fn malformed_json_is_a_note_not_a_panic() {
        let s = summarise("{not json");
        assert!(s.administrators.is_empty());
        assert!(s.notes[0].contains("not valid JSON"));
    }
}
