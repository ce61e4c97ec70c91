//! How findings are shown: as compiler diagnostics for people, and as SARIF 2.1.0 for code
//! scanning (GitHub shows each result on the line it is about). JSON is `json::Lint`.

use super::{rules, Finding, Level};

/// One finding as rustc shows an error: the rule, the place, the lines with a caret, then why,
/// the safe way, and how to allow it.
pub fn text(f: &Finding) -> String {
    let mut out = format!("{}[{}]: {}\n  --> {}:{}:{}\n", f.level.as_str(), f.rule, f.message, f.file, f.line, f.column);
    let excerpt = f.excerpt.to_string();
    let gutter = excerpt.lines().next().map_or(2, |l| l.len().saturating_sub(1));
    for line in excerpt.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    let pad = " ".repeat(gutter + 2);
    if !f.why.is_empty() {
        out.push_str(&format!("{pad}= why: {}\n", f.why));
    }
    if !f.safe.is_empty() {
        out.push_str(&format!("{pad}= safe: {}\n", f.safe));
    }
    if rules::find(f.rule).is_some() {
        out.push_str(&format!(
            "{pad}= allow: `-- cargo-procrastinate: allow {}` above the statement, or `lint-allow = [\"{}\"]` in the set's settings\n",
            f.rule, f.rule
        ));
    }
    out
}

/// `2 errors, 1 warning in 3 files`.
pub fn summary(findings: &[Finding], files: usize) -> String {
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    let plural = |n: usize, word: &str| if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") };
    format!("{}, {} in {}", plural(count(Level::Error), "error"), plural(count(Level::Warning), "warning"), plural(files, "file"))
}

/// The findings as one SARIF 2.1.0 log.
pub fn sarif(findings: &[Finding]) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = rules::all()
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.why },
                "help": { "text": r.safe },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "ruleId": f.rule,
                "level": f.level.as_str(),
                "message": { "text": if f.why.is_empty() { f.message.clone() } else { format!("{} ({}). Safe: {}", f.message, f.why, f.safe) } },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.file },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
            })
        })
        .collect();
    serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": { "name": "cargo-procrastinate", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }],
    })
}
