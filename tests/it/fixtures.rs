//! The hand-written sets in sql/fixtures: every malformed case fails the CLI and the build with
//! its expected message; the valid set (full of lexer traps) runs online and offline alike.

use std::path::PathBuf;

use procrastinate_migrations::config::DEFAULT_VERSION_TABLE as TABLE;

use crate::support::*;

fn fixtures() -> PathBuf {
    example_set().parent().unwrap().join("fixtures")
}

#[test]
fn every_malformed_fixture_is_refused_with_its_message() {
    let mut cases = 0;
    for entry in std::fs::read_dir(fixtures().join("malformed")).unwrap() {
        let dir = entry.unwrap().path();
        let expected = std::fs::read_to_string(dir.join("EXPECTED")).unwrap();
        assert!(expected.lines().any(|l| !l.trim().is_empty()), "{}: EXPECTED is empty", dir.display());
        let run = cli_in(&std::env::temp_dir(), &["--migrations", dir.to_str().unwrap(), "heads"], &[]).code(2);
        let built = procrastinate_build::Builder::new()
            .migrations(&dir)
            .out_dir(std::env::temp_dir())
            .file_name(format!("fixture-{}.rs", std::process::id()))
            .emit_rerun_if_changed(false)
            .compile()
            .expect_err("a malformed set must not compile")
            .to_string();
        for line in expected.lines().filter(|l| !l.is_empty()) {
            assert!(run.stderr.contains(line), "{}: CLI said\n{}\nexpected {line:?}", dir.display(), run.stderr);
            assert!(built.contains(line), "{}: build said\n{built}\nexpected {line:?}", dir.display());
        }
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} malformed fixtures found");
}

#[test]
fn the_valid_fixture_runs_online_and_offline_to_the_same_state() {
    let set = fixtures().join("valid");
    let online = TestDb::new("fixture_online");
    cli(&online, &set, &["upgrade"]).ok();
    let rows: Vec<(i32, String, String)> = online
        .client()
        .query("SELECT begin, \"end\", state::text FROM traps ORDER BY begin", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, [(1, "it's; fine".to_string(), "new".to_string()), (2, "it's; fine".to_string(), "newer".to_string())]);
    let count: i64 = online.client().query_one("SELECT traps_count()", &[]).unwrap().get(0);
    assert_eq!(count, 2);

    let script = cli_in(&std::env::temp_dir(), &["--migrations", set.to_str().unwrap(), "sql", "--offline"], &[]).ok().stdout;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();
    let offline = TestDb::new("fixture_offline");
    psql_file(&offline, file.path(), None).ok();
    assert_same_catalog(&catalog(&offline, "public"), &catalog(&online, "public"));
    assert_eq!(tracking_rows(&offline, TABLE), tracking_rows(&online, TABLE));
}
