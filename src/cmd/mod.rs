//! Subcommands that need nothing from AWS, the data dir or the policy.

pub mod completions;
pub mod man;

/// Run `write` on stdout. A reader that stops early (`keydeck man | head`) is not an error.
pub fn to_stdout(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> std::io::Result<()> {
    match write(&mut std::io::stdout().lock()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::CommandFactory;

    /// Every subcommand as its path of names (`["sandbox", "up"]`), nested ones too, so
    /// that a new subcommand is checked by the completion and man page tests unasked.
    pub fn subcommand_paths() -> Vec<Vec<String>> {
        fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
            for sub in cmd.get_subcommands() {
                let mut path = prefix.to_vec();
                path.push(sub.get_name().to_owned());
                walk(sub, &path, out);
                out.push(path);
            }
        }
        let mut out = Vec::new();
        walk(&crate::cli::Cli::command(), &[], &mut out);
        out
    }

    #[test]
    fn the_walk_sees_nested_subcommands() {
        let paths = subcommand_paths();
        for p in [&["inventory"][..], &["sandbox", "up"], &["sandbox", "env"], &["completions"], &["man"]] {
            assert!(paths.iter().any(|q| q == p), "{p:?} not in {paths:?}");
        }
    }
}
