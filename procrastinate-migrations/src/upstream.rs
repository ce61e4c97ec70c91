//! What is known about Procrastinate's own released files, as data: the files upstream edited
//! in place after releasing them. A database migrated with the earlier text is not drift: it
//! is recognised by its recorded checksum, reported with a note, and recorded anew by
//! `upgrade` (which runs the revised file again where the earlier text left the schema
//! different). `tests/it/upstream.rs` checks every checksum here against the real wheels.

/// One in-place edit.
#[derive(Debug, PartialEq, Eq)]
pub struct Edit {
    /// The edited file, as upstream names it.
    pub file_name: &'static str,
    /// SHA-256 of the earlier texts.
    pub earlier: &'static [&'static str],
    /// The releases that shipped an earlier text.
    pub earlier_releases: &'static str,
    /// The release that shipped the revised text.
    pub revised_in: &'static str,
    /// Why upstream revised it, in a sentence.
    pub why: &'static str,
    /// What the earlier text did wrong when the set lives outside `public`, which running the
    /// revised (idempotent) file again repairs; `None` when both texts give the same schema.
    pub outside_public: Option<OutsidePublic>,
}

/// The damage an earlier text did outside `public`.
#[derive(Debug, PartialEq, Eq)]
pub struct OutsidePublic {
    /// What is wrong, in a sentence.
    pub what: &'static str,
    /// The object the earlier text left in `public`, to drop by hand once checked.
    pub stray: &'static str,
}

/// Every in-place edit known, checked against the real wheels by `tests/it/upstream.rs`.
pub const EDITS: &[Edit] = &[
    Edit {
        file_name: "03.00.00_01_pre_cancel_notification.sql",
        earlier: &["35daf17aa8c980626656b2e4e177950dff2f01c070af756c45019df29b6a32e7"],
        earlier_releases: "3.0.0",
        revised_in: "3.0.2",
        why: "its `json_object('key': value)` is syntax that only PostgreSQL 16 and later understand",
        // `json_object('k': v)` (PostgreSQL 16 syntax) became `json_build_object`: the same
        // functions, on the servers where the earlier text could run at all.
        outside_public: None,
    },
    Edit {
        file_name: "03.04.00_50_post_add_retry_failed_job_procedure.sql",
        earlier: &["ac4021eb9d029e08edc9ef7672ae7ea4ef82002858a400cc6b44abd3e79248b2"],
        earlier_releases: "3.4.0 to 3.5.1",
        revised_in: "3.5.2",
        why: "it created its trigger function in `public`, whatever the schema",
        outside_public: Some(OutsidePublic {
            what: "the earlier text created procrastinate_trigger_function_status_events_update_v1() in `public`, \
                   so the trigger procrastinate_trigger_status_events_update_v1 in this schema still runs the function \
                   of 3.0, and a stray copy is left in `public`",
            stray: "FUNCTION public.procrastinate_trigger_function_status_events_update_v1()",
        }),
    },
];

/// The edit whose earlier text has checksum `recorded`, for `file_name`.
pub fn edit_of(file_name: &str, recorded: &str) -> Option<&'static Edit> {
    EDITS.iter().find(|e| e.file_name == file_name && e.earlier.contains(&recorded))
}

/// The table of published releases (see `upstream_releases.txt`), parsed once.
struct Table {
    releases: Vec<(crate::Version, usize)>,
    files: Vec<&'static str>,
}

fn table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table { releases: Vec::new(), files: Vec::new() };
        for line in include_str!("upstream_releases.txt").lines().filter(|l| !l.starts_with('#')) {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("release"), Some(v), Some(n)) => {
                    t.releases.push((v.parse().expect("a release in the table"), n.parse().expect("a count in the table")))
                }
                (Some("file"), Some(f), None) => t.files.push(f),
                _ => {}
            }
        }
        t
    })
}

/// Procrastinate's published releases from 1.0.0 on, in order, each with how many migration
/// files it ships (the first N of [`files`]): facts from `pip index versions procrastinate` and
/// the wheels, checked against them by `tests/it/upstream.rs`.
pub fn published() -> &'static [(crate::Version, usize)] {
    &table().releases
}

/// The migration files of the newest release in [`published`], in order.
pub fn files() -> &'static [&'static str] {
    &table().files
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_is_ordered_and_each_release_ships_a_prefix() {
        let (releases, files) = (super::published(), super::files());
        assert!(releases.len() >= 50, "{}", releases.len());
        assert!(releases.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(releases.last().unwrap().1, files.len());
        assert!(files.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
    }
}
