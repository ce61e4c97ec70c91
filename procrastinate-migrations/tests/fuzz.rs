//! Property tests (proptest) for what reads untrusted text: the file-name grammar, the lexer,
//! and the settings reader. They must never panic, and what they accept must be consistent.
//! `tests/corpus/` holds inputs that once mattered; every file there runs through the lexer.
//! The runs are short (a few hundred cases each) so that they stay in the normal test suite.

use procrastinate_migrations::config::Settings;
use procrastinate_migrations::{lexer, name, MigrationSet};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn file_names_never_panic(s in "\\PC{0,40}") {
        let _ = name::parse(&s);
    }

    #[test]
    fn well_formed_names_parse_back(major in 0u8..100, minor in 0u8..100, serial in 1u8..100, desc in "[a-z][a-z0-9_]{0,20}", marker in 0u8..3) {
        let phase = match (marker, serial < 50) {
            (0, _) => "",
            (_, true) => "pre_",
            (_, false) => "post_",
        };
        let file = format!("{major:02}.{minor:02}.00_{serial:02}_{phase}{desc}.sql");
        let parsed = name::parse(&file).map_err(|e| TestCaseError::fail(format!("{file}: {e}")))?;
        prop_assert_eq!(parsed.serial, serial);
        prop_assert_eq!(parsed.description, desc.as_str());
    }

    #[test]
    fn the_lexer_never_panics_and_its_statements_tile_the_text(sql in "(\\PC|[;'\"$/*\\-\\n\\\\E(){}])*") {
        if let Ok(statements) = lexer::statements(&sql) {
            let mut end = 0;
            for st in &statements {
                prop_assert!(st.span.start >= end && st.span.end <= sql.len() && st.span.start < st.span.end);
                prop_assert!(sql.is_char_boundary(st.span.start) && sql.is_char_boundary(st.span.end));
                prop_assert_eq!(st.line, lexer::line_of(&sql, st.span.start));
                end = st.span.end;
            }
        }
    }

    #[test]
    fn settings_never_panic(text in "\\PC{0,120}") {
        if let Ok(s) = toml::from_str::<Settings>(&text) {
            let _ = s.check_layer();
            let _ = procrastinate_migrations::config::set_specs(&s);
        }
    }

    #[test]
    fn a_set_of_arbitrary_files_is_resolved_or_refused_never_a_panic(files in proptest::collection::vec(("\\PC{1,30}", "\\PC{0,60}"), 0..6)) {
        let files = files.into_iter().map(|(n, s)| (n, s.into_bytes())).collect();
        let _ = MigrationSet::from_files("fuzz".into(), files);
    }
}

#[test]
fn the_corpus_is_lexed_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let _ = lexer::statements(&text);
        let _ = MigrationSet::from_files("corpus".into(), vec![("01.00.00_01_corpus.sql".into(), bytes)]);
        n += 1;
    }
    assert!(n >= 8, "the corpus has {n} files");
}
