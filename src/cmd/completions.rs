//! `keydeck completions SHELL`: clap_complete's script for the shell, from the same clap
//! definitions that parse the command line ([`crate::cli::Cli`]), so it never drifts.

use clap::CommandFactory;

use crate::cli::Cli;

/// Write the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    // clap_complete panics when a write fails (e.g. a closed pipe): generate into memory.
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;
    use clap_complete::Shell;

    use super::*;
    use crate::cmd::tests::subcommand_paths;

    /// Where each shell's script completes the subcommand at `path` (e.g. `["sandbox", "up"]`).
    fn completes(shell: Shell, text: &str, path: &[String]) -> bool {
        let leaf = &path[path.len() - 1];
        // bash's and zsh's per-command state names: keydeck__subcmd__sandbox__subcmd__up.
        let state = format!("keydeck__subcmd__{}", path.join("__subcmd__").replace('-', "__"));
        match shell {
            Shell::Bash => text.contains(&format!("cmd=\"{state}\"")),
            Shell::Zsh => text.contains(&format!("_{state}_commands()")) && text.contains(&format!("'{leaf}:")),
            Shell::Fish => {
                let condition = match &path[..path.len() - 1] {
                    [] => "__fish_keydeck_needs_command".to_owned(),
                    parents => format!("__fish_keydeck_using_subcommand {}", parents.join(" ")),
                };
                text.lines().any(|l| l.contains(&condition) && l.contains(&format!("-a \"{leaf}\"")))
            }
            // elvish and powershell key their completions by `keydeck;sandbox;up`.
            _ => text.contains(&format!("'keydeck;{}'", path.join(";"))),
        }
    }

    #[test]
    fn every_shell_completes_every_subcommand() {
        let paths = subcommand_paths();
        for &shell in Shell::value_variants() {
            let mut out = Vec::new();
            write_completions(shell, &mut out).expect("generate");
            let text = String::from_utf8(out).expect("utf8");
            for path in &paths {
                assert!(completes(shell, &text, path), "{shell} completions lack the subcommand {path:?}");
            }
        }
    }

    #[test]
    fn bash_zsh_and_fish_are_offered() {
        for name in ["bash", "zsh", "fish"] {
            assert!(Shell::from_str(name, false).is_ok(), "{name}");
        }
    }
}
