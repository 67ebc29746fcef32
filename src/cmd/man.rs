//! `keydeck man`: the manual (roff) from the same clap definitions that parse the command
//! line ([`crate::cli::Cli`]), so it never drifts from `--help`. One stream holds keydeck(1)
//! followed by a page for every subcommand, nested ones too (keydeck-sandbox-up(1), ...), so
//! the SUBCOMMANDS references resolve within the one file that `man` shows.

use clap::CommandFactory;

use crate::cli::Cli;

/// Write keydeck(1) and every subcommand's page to `out`.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    fn render(cmd: &clap::Command, source: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        clap_mangen::Man::new(cmd.clone()).source(source).render(out)?;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            render(sub, source, out)?;
        }
        Ok(())
    }
    // Built, subcommands know their full names (`keydeck sandbox up`), as in clap_mangen::generate_to.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    // Every page's footer: `keydeck 0.1.0 (commit date)`, not just the subcommand's name.
    let source = format!("keydeck {}", cmd.get_version().unwrap_or_default());
    render(&cmd, &source, out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::tests::subcommand_paths;

    #[test]
    fn man_page_has_a_page_for_every_subcommand() {
        let mut out = Vec::new();
        write_man(&mut out).expect("render");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains(".TH keydeck 1"), "{}", &text[..200.min(text.len())]);
        for path in subcommand_paths() {
            // Each page's title and synopsis: `.TH keydeck-sandbox-up 1` and `\fBkeydeck sandbox up\fR`.
            let title = format!(".TH keydeck-{} 1", path.join("-"));
            let synopsis = format!("\\fBkeydeck {}\\fR", path.join(" "));
            assert!(text.contains(&title), "the man page lacks {title}");
            assert!(text.contains(&synopsis), "the man page lacks {synopsis}");
        }
    }
}
