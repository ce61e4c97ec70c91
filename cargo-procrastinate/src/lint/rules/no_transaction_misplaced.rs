//! `no-transaction-misplaced`: a `-- no-transaction` marker that is not the file's first line,
//! or spelled otherwise. The tool reads the marker on the first line only, as sqlx-cli does;
//! anywhere else it is a plain comment, and the file runs in a transaction after all.

use super::{Hit, Kind, Rule};
use crate::lint::{File, Level};

/// The rule.
pub const RULE: Rule = Rule {
    name: "no-transaction-misplaced",
    summary: "a `-- no-transaction` marker the tool does not read",
    why: "only a first line that is exactly `-- no-transaction` makes a file run outside a transaction; this one runs in \
          one, whatever the comment says",
    safe: "make `-- no-transaction` the file's first line (and keep one statement in the file)",
    kind: Kind::Always(Level::Error),
};

/// Its hits in a file.
pub fn check(file: &File<'_>) -> Vec<Hit> {
    let mut offset = 0;
    let mut hits = Vec::new();
    for (i, line) in file.sql.split_inclusive('\n').enumerate() {
        let text = line.trim();
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        let is_marker = squeezed == "--no-transaction" || squeezed == "--notransaction";
        if is_marker && !(i == 0 && text == procrastinate_migrations::NO_TRANSACTION) {
            let message = if i == 0 {
                format!("`{text}` is not spelled `-- no-transaction`: the file runs in a transaction")
            } else {
                format!("`{text}` on line {}: the marker counts on the first line only", i + 1)
            };
            hits.push(Hit { rule: RULE.name, offset: offset + (line.len() - line.trim_start().len()), message });
        }
        offset += line.len();
    }
    hits
}

#[cfg(test)]
mod tests {
    use crate::lint::tests_support::hits;

    #[test]
    fn the_marker_counts_on_the_first_line_only() {
        assert_eq!(hits("-- a comment\n-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);", false, super::check).len(), 1);
        assert_eq!(hits("--no-transaction\nSELECT 1;", false, super::check).len(), 1);
        assert!(hits("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);", true, super::check).is_empty());
    }
}
