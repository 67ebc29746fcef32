//! How AWS names a key or a secret, and how to read those names back. A KMS key is
//! referenced by key id, key ARN, alias name (`alias/NAME`) or alias ARN (KMS API
//! reference, "KeyId" parameter); a secret by name or ARN, whose last part is the name
//! plus a `-` and six random characters (Secrets Manager user guide, "Secret ARN").
//! Every place that reads a reference (detections, the feed, the change-driven re-reads,
//! the command line) goes through these functions.

/// The lookup forms of a key reference: the reference itself, and the key id or alias
/// name inside an ARN or after `alias/`.
pub fn key_forms(r: &str) -> [Option<&str>; 2] {
    if let Some(name) = r.strip_prefix("alias/") {
        return [Some(name), None];
    }
    if r.starts_with("arn:") {
        if let Some(pos) = r.find(":alias/") {
            return [Some(r), r.get(pos + 7..)];
        }
        if let Some(pos) = r.find(":key/") {
            return [Some(r), r.get(pos + 5..)];
        }
    }
    [Some(r), None]
}

/// The key id in a key ARN (`arn:aws:kms:R:A:key/ID`) or a bare key id (32+ characters,
/// no `:` or `alias/`); `None` for aliases.
pub fn key_id_of(r: &str) -> Option<&str> {
    if let Some(id) = r.strip_prefix("arn:").and(r.rsplit_once(":key/")).map(|(_, id)| id) {
        return Some(id);
    }
    let bare = !r.contains(':') && !r.starts_with("alias/") && r.len() >= 32;
    bare.then_some(r)
}

/// The alias name (without `alias/`) in `alias/NAME` or an alias ARN.
pub fn alias_name_of(r: &str) -> Option<&str> {
    r.rsplit_once(":alias/").map(|(_, a)| a).or_else(|| r.strip_prefix("alias/"))
}

/// The lookup forms of a secret reference: the reference, and for an ARN the name after
/// `secret:` with and without Secrets Manager's `-XXXXXX` suffix.
pub fn secret_forms(r: &str) -> [Option<&str>; 3] {
    match r.find(":secret:").and_then(|p| r.get(p + 8..)) {
        Some(name) if r.starts_with("arn:") => [Some(r), Some(name), strip_secret_suffix(name)],
        _ => [Some(r), None, None],
    }
}

fn strip_secret_suffix(name: &str) -> Option<&str> {
    let (base, suffix) = name.rsplit_once('-')?;
    (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) && !base.is_empty()).then_some(base)
}

/// A secret's name from its ARN (`...:secret:NAME-AbCdEf`), or the reference as given.
pub fn secret_name(r: &str) -> &str {
    let [_, name, stripped] = secret_forms(r);
    stripped.or(name).unwrap_or(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_from_arns() {
        assert_eq!(secret_name("arn:aws:secretsmanager:eu-north-1:1:secret:JWT_SECRET-AbC123"), "JWT_SECRET");
        assert_eq!(secret_name("JWT_SECRET"), "JWT_SECRET");
        assert_eq!(secret_name("arn:aws:secretsmanager:eu-north-1:1:secret:my-app-db"), "my-app-db");
    }

    #[test]
    fn key_ids_and_aliases_from_references() {
        assert_eq!(
            key_id_of("arn:aws:kms:eu-north-1:1:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
            Some("1234abcd-12ab-34cd-56ef-1234567890ab")
        );
        assert_eq!(key_id_of("1234abcd-12ab-34cd-56ef-1234567890ab"), Some("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert_eq!(key_id_of("alias/x"), None);
        assert_eq!(alias_name_of("alias/x"), Some("x"));
        assert_eq!(alias_name_of("arn:aws:kms:eu-north-1:1:alias/x"), Some("x"));
        assert_eq!(alias_name_of("arn:aws:kms:eu-north-1:1:key/abc"), None);
        assert_eq!(
            key_forms("arn:aws:kms:eu-north-1:1:alias/x"),
            [Some("arn:aws:kms:eu-north-1:1:alias/x"), Some("x")]
        );
    }
}
