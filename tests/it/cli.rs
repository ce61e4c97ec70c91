//! The command line as a contract: every command's `--help` (snapshots, with examples), the
//! JSON of every command, and diagnostics that point into the file.

use crate::support::*;

/// Every command's help is pinned (review a change with `cargo insta review`, or by reading the
/// diff of tests/it/snapshots) and shows examples.
#[test]
fn every_command_help_has_examples_and_a_snapshot() {
    let here = std::env::temp_dir();
    let top = cli_in(&here, &["--help"], &[]).ok().stdout;
    assert!(top.contains("Examples:"), "{top}");
    insta::assert_snapshot!("help", top);
    let names: Vec<String> = cargo_procrastinate::cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(names.len() >= 15, "{names:?}");
    for name in names.iter().filter(|n| *n != "help") {
        let help = cli_in(&here, &[name, "--help"], &[]).ok().stdout;
        let shows = "Examples:\n  cargo procrastinate ";
        assert!(
            help.contains(shows),
            "`{name} --help` has no examples:\n{help}"
        );
        insta::assert_snapshot!(format!("help_{name}"), help);
    }
}

/// A syntax error on line 12: the file, line and column, the lines around it with a marker,
/// and the same fields in JSON.
#[test]
fn a_syntax_error_is_shown_with_its_line_and_a_marker() {
    let set = copy_set(&example_set());
    let mut sql: String = (1..=9).map(|n| format!("-- comment line {n}\n")).collect();
    sql.push_str("CREATE TABLE shipments (\n    id bigint,\n    address textt NOT NULL\n);\n");
    write(set.path(), "03.00.00_01_pre_shipments.sql", &sql);
    let db = TestDb::new("syntax_marker");
    let run = cli(&db, set.path(), &["upgrade"]).code(1);
    let expected = "migration 0004 failed at 03.00.00_01_pre_shipments.sql:12:13: type \"textt\" does not exist (SQLSTATE 42704)\n     |\n  10 | CREATE TABLE shipments (\n  11 |     id bigint,\n  12 |     address textt NOT NULL\n     |             ^\n  13 | );\n";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    let json = cli(&db, set.path(), &["--message-format", "json", "upgrade"])
        .code(1)
        .json();
    assert_eq!(json["reason"], "error");
    assert_eq!(json["exit_code"], 1);
    let m = &json["migration"];
    assert_eq!(
        (
            m["file_name"].as_str(),
            m["line"].as_u64(),
            m["column"].as_u64()
        ),
        (Some("03.00.00_01_pre_shipments.sql"), Some(12), Some(13))
    );
    assert_eq!(
        (
            m["sqlstate"].as_str(),
            m["revision"].as_str(),
            m["current"].as_str()
        ),
        (Some("42704"), Some("0004"), Some("0003"))
    );
    assert_eq!(m["message"], "type \"textt\" does not exist");
    assert_eq!(m["excerpt"]["first_line"], 10);
    assert_eq!(m["excerpt"]["lines"][2], "    address textt NOT NULL");
    // The server's detail, hint and context (here from inside a DO block) are shown and carried.
    write(
        set.path(),
        "03.00.00_01_pre_shipments.sql",
        "DO $$\nBEGIN\n  RAISE EXCEPTION 'no shipments yet' USING DETAIL = 'the table is missing', HINT = 'create it first';\nEND\n$$;\n",
    );
    let run = cli(&db, set.path(), &["upgrade"]).code(1);
    assert!(run.stderr.contains("  = detail: the table is missing\n  = hint: create it first\n  = context: PL/pgSQL function inline_code_block line 3 at RAISE"), "{}", run.stderr);
    let m = cli(&db, set.path(), &["--message-format", "json", "upgrade"])
        .code(1)
        .json()["migration"]
        .clone();
    assert_eq!(
        (
            m["detail"].as_str(),
            m["hint"].as_str(),
            m["sqlstate"].as_str()
        ),
        (
            Some("the table is missing"),
            Some("create it first"),
            Some("P0001")
        )
    );
    assert!(
        m["context"].as_str().unwrap().contains("line 3 at RAISE"),
        "{m}"
    );
}

/// Two malformed files are both reported in one run, on stderr and in JSON, each with its place.
#[test]
fn every_malformed_file_is_reported_at_once() {
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_01_pre_a.sql", "SELECT 1;\n\\gset\n");
    write(set.path(), "03.00.00_02_pre_b.sql", "SELECT 1;\nCOMMIT;\n");
    let run = cli_in(
        &std::env::temp_dir(),
        &[
            "--migrations",
            set.path().to_str().unwrap(),
            "--message-format",
            "json",
            "heads",
        ],
        &[],
    )
    .code(2);
    assert!(
        run.stderr
            .contains("03.00.00_01_pre_a.sql:2: psql meta-command `\\gset`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("03.00.00_02_pre_b.sql:2: top-level `COMMIT`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("      |\n    1 | SELECT 1;\n    2 | COMMIT;\n      | ^^^^^^^"),
        "{}",
        run.stderr
    );
    let problems = run.json()["problems"].as_array().unwrap().clone();
    let places: Vec<(String, u64)> = problems
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_string(),
                p["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            ("03.00.00_01_pre_a.sql".to_string(), 2),
            ("03.00.00_02_pre_b.sql".to_string(), 2)
        ]
    );
}

/// `upgrade --message-format json`: one object per migration as it is applied, then the result;
/// every command's JSON parses, with `reason` and `format_version` on each line.
#[test]
fn every_command_speaks_json() {
    let set = copy_set(&example_set());
    let db = TestDb::new("json_contract");
    let json = |args: &[&str]| {
        let mut all = vec!["--message-format", "json"];
        all.extend_from_slice(args);
        cli(&db, set.path(), &all)
    };
    let heads = json(&["heads"]).ok().json();
    assert_eq!(
        (heads["reason"].as_str(), heads["head"].as_str()),
        (Some("heads"), Some("0003"))
    );
    let upgrade = json(&["upgrade"]).ok().json_lines();
    let events: Vec<&serde_json::Value> = upgrade
        .iter()
        .filter(|l| l["reason"] == "migration")
        .collect();
    let applied: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "applied")
        .map(|e| e["revision"].as_str().unwrap())
        .collect();
    assert_eq!(applied, ["0001", "0002", "0003"]);
    assert!(
        events
            .iter()
            .all(|e| e["file_name"].is_string() && e["duration_ms"].is_u64()),
        "{events:?}"
    );
    let last = upgrade.last().unwrap();
    assert_eq!(
        (last["reason"].as_str(), last["to"].as_str()),
        (Some("upgrade"), Some("0003"))
    );
    assert_eq!(last["applied"].as_array().unwrap().len(), 3);
    for (args, reason, field) in [
        (&["current"][..], "current", "current"),
        (&["check"], "check", "ok"),
        (&["history"], "history", "migrations"),
        (&["pending"], "history", "migrations"),
        (&["plan"], "plan", "steps"),
        (&["show", "0002"], "show", "sql"),
        (&["stamp", "head", "--dry-run"], "stamp", "recorded"),
    ] {
        let out = json(args).ok().json();
        assert_eq!(out["reason"], reason, "{args:?}: {out}");
        assert!(!out[field].is_null(), "{args:?} has no `{field}`: {out}");
        assert_eq!(
            out["sets"].as_array().map(Vec::len).unwrap_or(1),
            1,
            "{args:?}: {out}"
        );
    }
    // What has nothing JSON to say refuses clearly, in JSON too.
    let sql = json(&["sql", "--offline"]).code(2);
    assert!(
        sql.stderr.contains("`sql` prints a psql script"),
        "{}",
        sql.stderr
    );
    assert_eq!(sql.json()["reason"], "error");
    // An error before any set is read is an `error` object as well.
    let bad = json(&["upgrade", "nowhere"]).code(2).json();
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("`nowhere` is not a revision"),
        "{bad}"
    );
}

/// Alembic's relative ranges: `-N:current` (the last N applied) and `current:+N`.
#[test]
fn relative_ranges_as_alembic_has_them() {
    let set = copy_set(&example_set());
    let db = TestDb::new("relative_ranges");
    cli(&db, set.path(), &["upgrade", "0002"]).ok();
    let revs = |range: &str| -> Vec<String> {
        let out = cli(
            &db,
            set.path(),
            &["--message-format", "json", "history", "-r", range],
        )
        .ok()
        .json();
        out["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["revision"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(revs("-1:current"), ["0002"]);
    assert_eq!(revs("-5:current"), ["0001", "0002"]);
    assert_eq!(revs("current:+1"), ["0003"]);
    let target = cli(&db, set.path(), &["upgrade", "-1"]).code(2);
    assert!(target.stderr.contains("not a target"), "{}", target.stderr);
}
