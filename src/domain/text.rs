//! Text that came from outside (AWS, CloudTrail, tags, files) is made inert before it is
//! shown: control characters and terminal escape sequences become visible placeholders.

/// Replace every control character (C0, DEL, C1) with a visible `\u{..}`-style escape so
/// nothing from AWS can move the cursor, change colours or set the window title.
pub fn inert(s: &str) -> String {
    if !s.chars().any(is_dangerous) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            match c {
                '\x1b' => out.push_str("\\e"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Seconds as `H:MM:SS` (negative with a leading `-`), for elapsed times and deadlines.
pub fn hms(secs: i64) -> String {
    let (sign, s) = if secs < 0 { ("-", -secs) } else { ("", secs) };
    format!("{sign}{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(inert("drop-kyc-key ✓ ø"), "drop-kyc-key ✓ ø");
    }

    #[test]
    fn escapes_become_visible() {
        assert_eq!(inert("a\x1b[2Jb"), "a\\e[2Jb");
        assert_eq!(inert("x\ny\tz\u{7}"), "x\\ny\\tz\\u{7}");
        assert_eq!(inert("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(inert("\u{202e}evil"), "\\u{202e}evil");
    }
}
