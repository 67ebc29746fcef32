//! The inventory cache: the last inventory (metadata only — keydeck never holds a secret
//! value) kept in the data dir so the console can draw at once on start.

use std::path::{Path, PathBuf};

use crate::domain::inventory::Inventory;

/// One cache file per endpoint, account and region set.
pub fn path(data_dir: &Path, endpoint: Option<&str>, account: &str, regions: &[String]) -> PathBuf {
    let mut regions = regions.to_vec();
    regions.sort();
    let key = format!("{}|{account}|{}", endpoint.unwrap_or("aws"), regions.join(","));
    // FNV-1a: a stable file name, not a security boundary.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    data_dir.join("cache").join(format!("inventory-{account}-{h:016x}.json"))
}

/// Read a cached inventory; a missing or unreadable cache is simply no cache.
pub fn load(path: &Path) -> Option<Inventory> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(inv) => Some(inv),
        Err(e) => {
            tracing::warn!("ignoring unreadable inventory cache {}: {e}", path.display());
            None
        }
    }
}

/// Write the cache atomically (temp file + rename), readable only by the owner.
pub fn save(path: &Path, inv: &Inventory) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    crate::incident::log::private_dir(dir)?;
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec(inv).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_distinct_paths() {
        let dir = std::env::temp_dir().join(format!("keydeck-cache-test-{}", std::process::id()));
        let p = path(&dir, Some("http://127.0.0.1:1"), "123", &["b".into(), "a".into()]);
        assert_eq!(p, path(&dir, Some("http://127.0.0.1:1"), "123", &["a".into(), "b".into()]));
        assert_ne!(p, path(&dir, None, "123", &["a".into(), "b".into()]));
        assert!(load(&p).is_none());
        let inv = Inventory::default();
        save(&p, &inv).expect("save");
        assert_eq!(load(&p), Some(inv));
        std::fs::write(&p, "{garbage").expect("write");
        assert!(load(&p).is_none(), "a corrupt cache is ignored");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
