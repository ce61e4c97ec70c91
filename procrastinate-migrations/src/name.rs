//! The file-name grammar: `{xx.yy.zz}_{serial}_{pre|post}_{description}.sql`.
//!
//! The `pre`/`post` marker exists since Procrastinate 3.0 and is absent before it, so it is
//! optional; when present it must agree with the serial (01..49 pre, 50..99 post).

use crate::migration::{Phase, Version};

/// What a well-formed name says.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedName<'a> {
    /// The release, from `xx.yy.zz`.
    pub version: Version,
    /// The two-digit serial, 00..99.
    pub serial: u8,
    /// From the `pre`/`post` marker; [`Phase::Unmarked`] without one.
    pub phase: Phase,
    /// What follows the marker (or the serial), without `.sql`.
    pub description: &'a str,
}

/// What a message about a malformed name adds: the grammar, with an example.
pub const EXPECTED: &str = "expected `{xx.yy.zz}_{serial}_{pre|post}_{description}.sql`, \
     e.g. `03.00.00_01_pre_cancel_notification.sql` (the marker is optional before 3.0)";

/// Parses a file name; the error says what is wrong with it (without the file name, which the
/// caller adds).
pub fn parse(name: &str) -> Result<ParsedName<'_>, String> {
    let stem = name.strip_suffix(".sql").ok_or_else(|| format!("does not end in `.sql`; {EXPECTED}"))?;
    let malformed = || format!("malformed name; {EXPECTED}");
    let (version, rest) = stem.split_once('_').ok_or_else(malformed)?;
    let version = parse_version(version).ok_or_else(malformed)?;
    let (serial, rest) = rest.split_once('_').ok_or_else(malformed)?;
    if serial.len() != 2 || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("serial `{serial}` is not two digits; {EXPECTED}"));
    }
    let serial: u8 = serial.parse().map_err(|_| malformed())?;
    let (phase, description) = match rest.split_once('_') {
        Some(("pre", d)) => (Phase::Pre, d),
        Some(("post", d)) => (Phase::Post, d),
        _ => (Phase::Unmarked, rest),
    };
    if description.is_empty() {
        return Err(format!("the description is empty; {EXPECTED}"));
    }
    if description.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("upper case in description `{description}`: use lower case and `_`"));
    }
    if description.contains('-') {
        return Err(format!("`-` in description `{description}`: use `_` between words"));
    }
    if let Some(c) = description.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return Err(format!("character {c:?} in description `{description}`: use only a-z, 0-9 and `_`"));
    }
    match phase {
        Phase::Pre if serial >= 50 => {
            return Err(format!("`pre` migration with serial {serial:02}: pre serials are 01..49"));
        }
        Phase::Post if serial < 50 => {
            return Err(format!("`post` migration with serial {serial:02}: post serials are 50..99"));
        }
        _ => {}
    }
    Ok(ParsedName { version, serial, phase, description })
}

fn parse_version(s: &str) -> Option<Version> {
    let mut parts = s.split('.');
    let mut next = || -> Option<u8> {
        let p = parts.next()?;
        (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok())?
    };
    let version = Version { major: next()?, minor: next()?, patch: next()? };
    parts.next().is_none().then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> ParsedName<'_> {
        parse(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn err(name: &str) -> String {
        parse(name).expect_err(name)
    }

    #[test]
    fn parses_marked_and_unmarked_names() {
        let p = ok("03.00.00_01_pre_cancel_notification.sql");
        assert_eq!(p.version, Version { major: 3, minor: 0, patch: 0 });
        assert_eq!((p.serial, p.phase, p.description), (1, Phase::Pre, "cancel_notification"));
        let p = ok("03.00.00_50_post_cancel_notification.sql");
        assert_eq!((p.serial, p.phase), (50, Phase::Post));
        let p = ok("00.05.00_03_drop_procrastinate_version_table.sql");
        assert_eq!((p.serial, p.phase, p.description), (3, Phase::Unmarked, "drop_procrastinate_version_table"));
    }

    #[test]
    fn rejects_what_the_convention_forbids() {
        assert!(err("3.0.0_01_x.sql").contains("malformed"));
        assert!(err("03.00.00_1_x.sql").contains("serial"));
        assert!(err("03.00.00_01.sql").contains("malformed"));
        assert!(err("03.00.00_01_pre_.sql").contains("empty"));
        assert!(err("03.00.00_01_Add_Things.sql").contains("upper case"));
        assert!(err("03.00.00_01_add-things.sql").contains("`-`"));
        assert!(err("03.00.00_01_add things.sql").contains("character"));
        assert!(err("03.00.00_50_pre_x.sql").contains("pre serials are 01..49"));
        assert!(err("03.00.00_49_post_x.sql").contains("post serials are 50..99"));
        assert!(err("03.00.00_01_x.txt").contains(".sql"));
    }
}
