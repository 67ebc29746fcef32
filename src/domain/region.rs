//! AWS Region names.

/// Does `name` have the shape of an AWS Region name (`eu-north-1`, `us-gov-west-1`,
/// `ap-southeast-5`)? Shape only: a new Region needs no keydeck release.
pub fn is_valid_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() < 3 || parts.len() > 5 {
        return false;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let last = rest[rest.len() - 1];
    first.len() == 2
        && first.chars().all(|c| c.is_ascii_lowercase())
        && rest[..rest.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 2
        && last.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in ["eu-north-1", "eu-west-1", "us-east-1", "us-gov-west-1", "ap-southeast-3", "il-central-1"] {
            assert!(is_valid_region_name(ok), "{ok}");
        }
        for bad in ["", "eu", "eu-north", "EU-NORTH-1", "eu-north-one", "eu--1", "mars-north-1", "eu-north-1\x1b[2J"] {
            assert!(!is_valid_region_name(bad), "{bad:?}");
        }
    }
}
