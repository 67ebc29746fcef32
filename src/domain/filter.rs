//! The `/` filter: case-insensitive match of every whitespace-separated term against
//! any of an item's searchable fields.

/// Does every term of `query` occur in at least one of `fields`?
pub fn matches<'a>(query: &str, fields: impl IntoIterator<Item = &'a str>) -> bool {
    let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if terms.is_empty() {
        return true;
    }
    let hay: Vec<String> = fields.into_iter().map(str::to_lowercase).collect();
    terms.iter().all(|t| hay.iter().any(|h| h.contains(t.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_terms_must_match_some_field() {
        let f = ["drop-kyc-key", "eu-north-1", "Enabled"];
        assert!(matches("", f));
        assert!(matches("KYC", f));
        assert!(matches("kyc north", f));
        assert!(!matches("kyc west", f));
        assert!(matches("enabled", f));
    }
}
