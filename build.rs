//! Records the commit keydeck is built from for `keydeck --version`: sets
//! `KEYDECK_BUILD_COMMIT` to e.g. `7ba3125c0ffe 2026-11-29` (short hash and commit date),
//! `7ba3125c0ffe-dirty 2026-11-29` when tracked files differ from that commit, or
//! `unknown commit` when git or the repository is absent (a crates.io tarball). Never fails.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&root);
    // Sources whose edits change the dirty flag (they rebuild keydeck anyway).
    // (A path that does not exist would make cargo rerun this script on every build.)
    for p in ["src", "assets", "Cargo.toml", "Cargo.lock"].into_iter().filter(|p| root.join(p).exists()) {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rustc-env=KEYDECK_BUILD_COMMIT={}", commit(root).unwrap_or_else(|| "unknown commit".into()));
}

/// `HASH[-dirty] DATE` of HEAD, if `root` is the top of a git checkout and git runs.
fn commit(root: &Path) -> Option<String> {
    // Only our own repository: a tarball unpacked inside another checkout must not take its HEAD.
    if !root.join(".git").exists() {
        return None;
    }
    // Rerun after a commit, checkout or reset: HEAD, its reflog (which also sees a commit to a
    // branch whose ref was packed), the branch it points to, packed refs (paths asked of git,
    // so that a worktree's own HEAD and the shared refs are both right).
    let mut watch = vec!["HEAD".to_owned(), "logs/HEAD".to_owned(), "packed-refs".to_owned()];
    watch.extend(git(root, &["symbolic-ref", "-q", "HEAD"]));
    for name in watch {
        if let Some(path) = git(root, &["rev-parse", "--git-path", &name]).map(|p| root.join(p)) {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let hash = git(root, &["rev-parse", "--short=12", "HEAD"])?;
    let date = git(root, &["show", "-s", "--format=%cs", "HEAD"])?;
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty())?;
    Some(format!("{hash}{} {date}", if dirty { "-dirty" } else { "" }))
}

/// Trimmed stdout of a successful `git -C root ARGS` (which takes no optional locks, so
/// `git status` never competes with the developer's own git commands).
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).env("GIT_OPTIONAL_LOCKS", "0").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
