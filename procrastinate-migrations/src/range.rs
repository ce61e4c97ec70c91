//! Revision targets and ranges, as Alembic spells them.
//!
//! A range `A:B` means "what takes a database that is at A to B": A is exclusive (it is already
//! applied), B inclusive. So `current:head` is what is pending, `0029:head` is 0030..head, and
//! `:0030` (= `base:0030`) is 0001..0030. History, upgrade and the offline script all use it.

use std::fmt;
use std::str::FromStr;

use crate::migration::Revision;

/// One end of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Before the first migration: nothing applied.
    Base,
    /// The set's last migration.
    Head,
    /// What the database records; only meaningful where a database is at hand.
    Current,
    /// This revision.
    Rev(Revision),
    /// `+N`: N revisions after the other end (or after current, for a target).
    Relative(u32),
    /// `-N`, as a range's lower end: N revisions before its upper end (Alembic's
    /// `-3:current`, the last three applied).
    Back(u32),
}

impl FromStr for Point {
    type Err = String;

    fn from_str(s: &str) -> Result<Point, String> {
        match s.trim() {
            "base" | "" => Ok(Point::Base),
            "head" | "heads" => Ok(Point::Head),
            "current" => Ok(Point::Current),
            s if s.starts_with('-') => s[1..]
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .map(Point::Back)
                .ok_or_else(|| format!("`{s}` is not a relative lower end (expected `-N`, N >= 1, as in `-3:current`)")),
            s => match s.strip_prefix('+') {
                Some(n) => n
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(Point::Relative)
                    .ok_or_else(|| format!("`{s}` is not a relative target (expected `+N`, N >= 1)")),
                None => s.parse::<Revision>().map(Point::Rev).map_err(|_| {
                    format!("`{s}` is not a revision (expected `head`, `base`, `current`, `+N` or digits such as `0025`)")
                }),
            },
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Base => f.write_str("base"),
            Point::Head => f.write_str("head"),
            Point::Current => f.write_str("current"),
            Point::Rev(r) => write!(f, "{r}"),
            Point::Relative(n) => write!(f, "+{n}"),
            Point::Back(n) => write!(f, "-{n}"),
        }
    }
}

/// `from:to`: the migrations that take a database at `from` (exclusive) to `to` (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The lower end, already applied: not in the range.
    pub from: Point,
    /// The upper end, in the range.
    pub to: Point,
}

impl Range {
    /// `base:head`: every migration of the set.
    pub const ALL: Range = Range { from: Point::Base, to: Point::Head };

    /// Resolves to revision numbers `(from, to)` where 0 is base; the migrations in range are
    /// `from+1 ..= to`. `current` is the database's revision (0 when none), if known.
    pub fn resolve(&self, head: Revision, current: Option<u32>) -> Result<(u32, u32), String> {
        if let Point::Back(n) = self.from {
            if matches!(self.to, Point::Relative(_) | Point::Back(_)) {
                return Err(format!(
                    "range {self}: one end must be a fixed point (`head`, `current`, a revision)"
                ));
            }
            let to = resolve_point(self.to, head, current, 0)?;
            return Ok((to.saturating_sub(n), to));
        }
        let from = resolve_point(self.from, head, current, 0)?;
        let to = resolve_point(self.to, head, current, from)?;
        if to < from {
            return Err(format!("range {self} goes backwards ({} is before {})", show(to), show(from)));
        }
        Ok((from, to))
    }
}

fn show(n: u32) -> String {
    if n == 0 { "base".into() } else { Revision::new(n).to_string() }
}

/// `relative_to` is what `+N` counts from.
pub fn resolve_point(p: Point, head: Revision, current: Option<u32>, relative_to: u32) -> Result<u32, String> {
    let n = match p {
        Point::Base => 0,
        Point::Head => head.number(),
        Point::Current => current.ok_or("`current` needs a database; the offline script has none (use a revision)")?,
        Point::Rev(r) => r.number(),
        Point::Relative(n) => relative_to.saturating_add(n),
        Point::Back(n) => {
            return Err(format!(
                "`-{n}` counts back from a range's upper end (`-{n}:current`); it is not a target"
            ))
        }
    };
    if n > head.number() {
        return Err(format!("{} is not in the set: head is {head}", if let Point::Relative(k) = p { format!("+{k} (revision {:04})", n) } else { show(n) }));
    }
    Ok(n)
}

impl FromStr for Range {
    type Err = String;

    fn from_str(s: &str) -> Result<Range, String> {
        match s.split_once(':') {
            Some((a, b)) => Ok(Range {
                from: a.parse()?,
                to: if b.trim().is_empty() { Point::Head } else { b.parse()? },
            }),
            // A single point is an upper bound: `head` means everything.
            None => Ok(Range { from: Point::Base, to: s.parse()? }),
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, current: Option<u32>) -> Result<(u32, u32), String> {
        s.parse::<Range>()?.resolve(Revision::new(38), current)
    }

    #[test]
    fn ranges_as_alembic_spells_them() {
        assert_eq!(r("base:head", None), Ok((0, 38)));
        assert_eq!(r("head", None), Ok((0, 38)));
        assert_eq!(r("0029:head", None), Ok((29, 38)));
        assert_eq!(r("0029:", None), Ok((29, 38)));
        assert_eq!(r(":0030", None), Ok((0, 30)));
        assert_eq!(r("current:head", Some(12)), Ok((12, 38)));
        assert_eq!(r("current:+2", Some(12)), Ok((12, 14)));
        // Alembic's `-3:current`: the last three applied (12, 11, 10).
        assert_eq!(r("-3:current", Some(12)), Ok((9, 12)));
        assert_eq!(r("-2:head", None), Ok((36, 38)));
        assert_eq!(r("-40:0002", None), Ok((0, 2)));
        assert!(r("-1:+1", Some(3)).unwrap_err().contains("fixed point"));
        assert!(r("-1", None).unwrap_err().contains("not a target"));
        assert!(r("-x:head", None).unwrap_err().contains("`-N`"));
        assert!(r("current:head", None)
            .unwrap_err()
            .contains("needs a database"));
        assert!(r("0039", None).unwrap_err().contains("head is 0038"));
        assert!(r("0030:0029", None).unwrap_err().contains("backwards"));
        assert!("x:head".parse::<Range>().is_err());
        assert!("+0".parse::<Point>().is_err());
        assert!(r("current:+4294967295", Some(12)).unwrap_err().contains("head is 0038"));
    }
}
