//! Logging set-up (human-readable text for development, JSON lines by configuration, always on
//! standard error: standard output is the commands' answer), and [`untrusted`], which makes a
//! value that came from outside safe to put in a log field.

use std::ffi::OsStr;
use std::fmt::{self, Display, Write};
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`.
pub fn init(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let no_color = std::env::var_os("NO_COLOR");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_colour(
            std::io::stderr().is_terminal(),
            no_color.as_deref(),
        ));
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The most characters of one untrusted value a log line carries.
pub const MAX_UNTRUSTED_CHARS: usize = 200;

/// A value from a request, a query string, a header, a webhook or an upstream's answer, for a
/// log field: `tracing::info!(upstream_error = %untrusted(error), …)`.
///
/// The text log writes `%` fields as they are, so a raw newline in an attacker's value would
/// start a line of the attacker's choosing. Here control characters, the Unicode line and
/// paragraph separators and the bidirectional overrides are written as escapes (`\n`,
/// `\u{2028}`), a backslash is doubled so that an escape cannot be faked, and the value is cut
/// after [`MAX_UNTRUSTED_CHARS`] characters. Formatting allocates nothing.
pub fn untrusted<T: Display>(value: T) -> Untrusted<T> {
    Untrusted(value)
}

/// See [`untrusted`].
pub struct Untrusted<T>(T);

impl<T: Display> Display for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut escaper = Escaper {
            out: f,
            remaining: MAX_UNTRUSTED_CHARS,
            cut: false,
        };
        // The escaper never fails on its own account; an error is the formatter's.
        write!(escaper, "{}", self.0)?;
        if escaper.cut {
            f.write_str("…(cut)")?;
        }
        Ok(())
    }
}

impl<T: Display> fmt::Debug for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

struct Escaper<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    remaining: usize,
    cut: bool,
}

impl Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.remaining == 0 {
                self.cut = true;
                return Ok(());
            }
            self.remaining -= 1;
            match c {
                '\\' => self.out.write_str("\\\\")?,
                '\n' => self.out.write_str("\\n")?,
                '\r' => self.out.write_str("\\r")?,
                '\t' => self.out.write_str("\\t")?,
                c if needs_escape(c) => write!(self.out, "\\u{{{:x}}}", c as u32)?,
                c => self.out.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Characters that could end a log line, hide text or reorder it on a terminal.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// ANSI colour only for a person at a terminal: never into a pipe or a file, and never when
/// `NO_COLOR` is set to a non-empty value (https://no-color.org).
fn use_colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_values_cannot_break_or_flood_a_log_line() {
        let long = "x".repeat(MAX_UNTRUSTED_CHARS + 1);
        let exact = "y".repeat(MAX_UNTRUSTED_CHARS);
        let cases: [(&str, &str, String); 10] = [
            (
                "plain text is unchanged",
                "access_denied",
                "access_denied".into(),
            ),
            ("a newline is escaped", "a\nb", r"a\nb".into()),
            ("a carriage return is escaped", "a\r\nb", r"a\r\nb".into()),
            ("a tab is escaped", "a\tb", r"a\tb".into()),
            (
                "an ANSI escape is escaped",
                "\u{1b}[31mred",
                r"\u{1b}[31mred".into(),
            ),
            (
                "the line separator is escaped",
                "a\u{2028}b",
                r"a\u{2028}b".into(),
            ),
            (
                "a bidi override is escaped",
                "a\u{202e}b",
                r"a\u{202e}b".into(),
            ),
            (
                "a backslash cannot fake an escape",
                r"a\nb",
                r"a\\nb".into(),
            ),
            (
                "a long value is cut",
                &long,
                format!("{}…(cut)", "x".repeat(MAX_UNTRUSTED_CHARS)),
            ),
            ("a value at the limit is whole", &exact, exact.clone()),
        ];
        for (name, input, expected) in cases {
            assert_eq!(untrusted(input).to_string(), expected, "{name}");
        }
        assert_eq!(
            untrusted("é ü 日本").to_string(),
            "é ü 日本",
            "printable Unicode stays"
        );
    }

    #[test]
    fn untrusted_formats_any_display_value() {
        let error = std::io::Error::other("bad\nthing");
        assert_eq!(untrusted(&error).to_string(), r"bad\nthing");
        assert_eq!(format!("{:?}", untrusted("a\nb")), r"a\nb");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases: [(&str, bool, Option<&str>, bool); 5] = [
            ("a terminal", true, None, true),
            ("a pipe or a file", false, None, false),
            ("NO_COLOR=1 on a terminal", true, Some("1"), false),
            ("NO_COLOR=1 into a pipe", false, Some("1"), false),
            ("an empty NO_COLOR is unset", true, Some(""), true),
        ];
        for (name, terminal, no_color, expected) in cases {
            assert_eq!(
                use_colour(terminal, no_color.map(OsStr::new)),
                expected,
                "{name}"
            );
        }
    }
}
