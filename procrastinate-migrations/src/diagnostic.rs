//! The lines of a migration file around a problem, with the place marked: what the CLI, the
//! build script and an application print for a failing migration or a malformed file, in one
//! shape (and what the CLI's JSON errors carry).
//!
//! ```text
//!    |
//! 11 | CREATE TABLE t (
//! 12 |     id intt
//!    |        ^ here
//! 13 | );
//! ```

use std::fmt;

/// Lines shown before the marked one, and after it.
const BEFORE: usize = 2;
const AFTER: usize = 1;
/// Longest line shown whole: a generated one-line file should not flood the terminal.
const WIDEST: usize = 160;

/// A few lines of a file with one place marked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Excerpt {
    /// 1-based line the marker is on.
    pub line: usize,
    /// 1-based column (in characters) the marker points at; `None` marks the whole line (the
    /// server gave no position, so the start of the failing statement is shown).
    pub column: Option<usize>,
    /// 1-based number of the first line in `lines`.
    pub first_line: usize,
    /// The lines shown, without their line ends.
    pub lines: Vec<String>,
}

impl Excerpt {
    /// The excerpt around byte `offset` of `source`, marking that character.
    pub fn at_offset(source: &str, offset: usize) -> Excerpt {
        let offset = floor_char_boundary(source, offset.min(source.len()));
        let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line = 1 + source[..offset].matches('\n').count();
        let column = 1 + source[line_start..offset].chars().count();
        Excerpt::around(source, line, Some(column))
    }

    /// The excerpt around 1-based `line` of `source`, marking the whole line.
    pub fn at_line(source: &str, line: usize) -> Excerpt {
        Excerpt::around(source, line, None)
    }

    fn around(source: &str, line: usize, column: Option<usize>) -> Excerpt {
        let line = line.max(1);
        let first_line = line.saturating_sub(BEFORE).max(1);
        let lines = source
            .split('\n')
            .skip(first_line - 1)
            .take(line + AFTER + 1 - first_line)
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect();
        Excerpt {
            line,
            column,
            first_line,
            lines,
        }
    }
}

impl fmt::Display for Excerpt {
    /// Renders the lines with a gutter of line numbers and a `^` under the marked place (or
    /// `^^^` under the whole marked line), as rustc does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.first_line + self.lines.len().saturating_sub(1);
        let width = last.max(self.line).to_string().len();
        write!(f, "{:width$} |", "")?;
        for (i, text) in self.lines.iter().enumerate() {
            let n = self.first_line + i;
            let shown = shown(text);
            write!(f, "\n{}", format!("{n:>width$} | {shown}").trim_end())?;
            if n != self.line {
                continue;
            }
            let (pad, len) = match self.column {
                Some(c) => (shown_width(text.chars().take(c - 1)), 1),
                None => {
                    let indent = text.len() - text.trim_start().len();
                    (
                        shown_width(text[..indent].chars()),
                        shown_width(text.trim().chars()).max(1),
                    )
                }
            };
            // A position past a long line's cut is marked at the cut.
            let pad = pad.min(WIDEST);
            write!(
                f,
                "\n{:width$} | {:pad$}{}",
                "",
                "",
                "^".repeat(len.min(WIDEST + 1 - pad))
            )?;
        }
        Ok(())
    }
}

/// A tab shown as four spaces (so that the marker lines up), and a long line cut.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(WIDEST)
        .map(|c| {
            if c == '\t' {
                "    ".to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    if text.chars().count() > WIDEST {
        out.push_str(" ...");
    }
    out
}

fn shown_width(chars: impl Iterator<Item = char>) -> usize {
    chars.map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_character_at_an_offset() {
        let src = "-- one\n-- two\nCREATE TABLE t (\n    id intt\n);\n-- six\n";
        let e = Excerpt::at_offset(src, src.find("intt").unwrap());
        assert_eq!((e.line, e.column, e.first_line), (4, Some(8), 2));
        assert_eq!(
            e.to_string(),
            "  |\n2 | -- two\n3 | CREATE TABLE t (\n4 |     id intt\n  |        ^\n5 | );"
        );
    }

    #[test]
    fn marks_a_whole_line_and_lines_up_tabs_and_wide_numbers() {
        let src = format!("{}\tSELEC 1;\n", "\n".repeat(9));
        let e = Excerpt::at_line(&src, 10);
        assert_eq!(
            e.to_string(),
            "   |\n 8 |\n 9 |\n10 |     SELEC 1;\n   |     ^^^^^^^^\n11 |"
        );
        let e = Excerpt::at_offset(&src, src.find("1;").unwrap());
        assert!(
            e.to_string()
                .contains("10 |     SELEC 1;\n   |           ^"),
            "{e}"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        let src = "SELECT 'é', nope;";
        assert_eq!(
            Excerpt::at_offset(src, src.find("nope").unwrap()).column,
            Some(13)
        );
        // Inside a multi-byte character: the character itself.
        assert_eq!(
            Excerpt::at_offset(src, src.find('é').unwrap() + 1).column,
            Some(9)
        );
    }
}
