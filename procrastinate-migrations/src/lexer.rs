//! Splits a migration file into top-level statements, the way psql does.
//!
//! Why a lexer at all: files must run whole, and a naive split on `;` breaks dollar-quoted
//! function bodies (`$$ ... END; $$`). Knowing where each statement starts lets an error name
//! the file *and line* even when the server reports no position, and lets us refuse what would
//! break the one-transaction-per-file rule (`BEGIN`/`COMMIT`) or what only psql understands
//! (backslash meta-commands) before anything runs.
//!
//! Covered: '...' strings (with `''`), E'...' strings (backslash escapes), "quoted" identifiers,
//! $tag$...$tag$ bodies, `--` and nested `/* */` comments, parentheses, and SQL-standard bodies
//! (`CREATE FUNCTION ... BEGIN ATOMIC ...; END`), whose inner `;` do not end the statement.

use std::ops::Range;

/// One top-level statement: `text` is the source from its first token through its `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Byte range of the statement in the file, first token to terminating `;` (inclusive).
    pub span: Range<usize>,
    /// 1-based line of the statement's first token.
    pub line: usize,
    /// Upper-cased first word (`CREATE`, `BEGIN`, ...), empty when it starts with a symbol.
    pub keyword: String,
    /// The statement's first tokens (at most [`HEAD_TOKENS`]), as the server's lexer sees them,
    /// comments left out: words upper-cased, quoted identifiers as written (`"Orders"`), a
    /// string literal as `'`, any other symbol as itself (`(`, `.`, `=`). Enough to classify a
    /// statement (`SET/*LOCAL*/ x` is a session `SET`) and name what it creates.
    pub head: Vec<String>,
}

/// How many tokens of each statement [`Statement::head`] keeps.
pub const HEAD_TOKENS: usize = 12;

impl Statement {
    /// The `n`th token of [`head`](Self::head), or `""`.
    pub fn token(&self, n: usize) -> &str {
        self.head.get(n).map_or("", String::as_str)
    }
}

/// An identifier token of [`Statement::head`] as the server folds it: a quoted one unquoted, as
/// written; a plain word in lower case.
pub fn ident(token: &str) -> String {
    match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => token.to_ascii_lowercase(),
    }
}

/// Why a file cannot be run as one transaction by this tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line: the refused statement's or meta-command's, or where an unterminated string
    /// or comment starts.
    pub line: usize,
    /// What is wrong, and for a refused statement what to do instead (without file name or line).
    pub message: String,
}

/// Splits `sql` into statements and checks it holds none of what the tool refuses.
pub fn statements(sql: &str) -> Result<Vec<Statement>, LexError> {
    let statements = Scanner::new(sql).run()?;
    for st in &statements {
        check_transaction_control(sql, st)?;
    }
    Ok(statements)
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count()
}

fn check_transaction_control(sql: &str, st: &Statement) -> Result<(), LexError> {
    let words: Vec<&str> = st.head.iter().take(2).map(String::as_str).collect();
    let second = st.token(1);
    let refused = match st.keyword.as_str() {
        "BEGIN" | "COMMIT" | "END" | "ABORT" => true,
        "START" | "PREPARE" => second == "TRANSACTION",
        // `ROLLBACK TO SAVEPOINT` stays inside the transaction; a plain ROLLBACK does not.
        "ROLLBACK" => second != "TO",
        _ => false,
    };
    // A DO block that commits or rolls back fails inside the migration's transaction
    // ("invalid transaction termination"): refuse it now, with its line.
    if st.keyword == "DO" {
        let body = &sql[st.span.clone()];
        let words = body.split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
        if let Some(w) = words.map(str::to_ascii_uppercase).find(|w| w == "COMMIT" || w == "ROLLBACK") {
            return Err(LexError {
                line: st.line,
                message: format!(
                    "`{w}` inside a DO block: each file runs in its own transaction, which a DO block cannot end; remove it"
                ),
            });
        }
    }
    // A session-level SET outlives the migration's transaction: behind PgBouncer it would reach
    // the pool's next client. SET LOCAL (and SET CONSTRAINTS / TRANSACTION) end with it.
    if st.keyword == "SET" && !matches!(second, "LOCAL" | "CONSTRAINTS" | "TRANSACTION") {
        return Err(LexError {
            line: st.line,
            message: format!(
                "top-level `{}`: a session-level setting outlives this migration and, behind a connection pool, \
                 reaches other clients; use `SET LOCAL` (it lasts until the migration's transaction ends)",
                words.join(" ")
            ),
        });
    }
    if let Some(why) = session_setting(&sql[st.span.clone()]) {
        return Err(LexError { line: st.line, message: why });
    }
    if refused {
        return Err(LexError {
            line: st.line,
            message: format!(
                "top-level `{}`: each file already runs in its own transaction together with its \
                 tracking row; remove the transaction control",
                words.join(" ")
            ),
        });
    }
    Ok(())
}

/// A token of [`tokens`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    /// A keyword or identifier, upper-cased.
    Word(String),
    /// A string literal's content (`'...'`, `E'...'`, `$tag$...$tag$`), as written.
    Str(&'a str),
    /// A quoted identifier, a number, or a symbol.
    Other(&'a str),
}

/// The tokens of `text`, comments and whitespace left out: enough to see a call's arguments.
/// Unterminated strings or comments end the list (the statement scanner has refused them).
fn tokens(text: &str) -> Vec<Tok<'_>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |n| i + n);
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'\'' || (matches!(c, b'E' | b'e') && b.get(i + 1) == Some(&b'\'')) {
            let escapes = c != b'\'';
            let start = if escapes { i + 2 } else { i + 1 };
            let mut j = start;
            while j < b.len() {
                if (escapes && b[j] == b'\\') || (b[j] == b'\'' && b.get(j + 1) == Some(&b'\'')) {
                    j += 2;
                } else if b[j] == b'\'' {
                    break;
                } else {
                    j += 1;
                }
            }
            out.push(Tok::Str(&text[start..j.min(b.len())]));
            i = j + 1;
        } else if c == b'$' && b.get(i + 1).is_some_and(|&x| x == b'$' || is_ident_start(x)) {
            let tag_end = b[i + 1..].iter().position(|&x| x == b'$').map(|n| i + 1 + n);
            let Some(tag_end) = tag_end.filter(|&e| b[i + 1..e].iter().all(|&x| is_ident_char(x) && x != b'$')) else {
                out.push(Tok::Other(&text[i..i + 1]));
                i += 1;
                continue;
            };
            let tag = &text[i..=tag_end];
            let body_start = tag_end + 1;
            match text[body_start..].find(tag) {
                Some(n) => {
                    out.push(Tok::Str(&text[body_start..body_start + n]));
                    i = body_start + n + tag.len();
                }
                None => return out,
            }
        } else if c == b'"' {
            let end = b[i + 1..].iter().position(|&x| x == b'"').map_or(b.len(), |n| i + 1 + n);
            out.push(Tok::Other(&text[i..(end + 1).min(b.len())]));
            i = end + 1;
        } else if is_ident_start(c) {
            let end = b[i..].iter().position(|&x| !is_ident_char(x)).map_or(b.len(), |n| i + n);
            out.push(Tok::Word(text[i..end].to_ascii_uppercase()));
            i = end;
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push(Tok::Other(&text[i..i + len]));
            i += len;
        }
    }
    out
}

/// Why a statement sets something for the whole session (which outlives the migration and,
/// behind a pool, reaches the next client), if it does: a `set_config(..., false)` (or with
/// anything but a literal `true` as its third argument), or, inside a `DO` block, a `SET`
/// that is not `SET LOCAL`. Read from tokens, so comments and strings cannot hide or fake one.
fn session_setting(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("set_config") && !lower.trim_start().starts_with("do") {
        return None;
    }
    scan_session_setting(&tokens(text), 0)
}

fn scan_session_setting(toks: &[Tok<'_>], depth: usize) -> Option<String> {
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Word(w) if w == "SET_CONFIG" && toks.get(i + 1) == Some(&Tok::Other("(")) => {
                // The third argument, at the call's own depth.
                let (mut level, mut commas, mut third) = (0usize, 0usize, Vec::new());
                for t in &toks[i + 1..] {
                    match t {
                        Tok::Other("(") => level += 1,
                        Tok::Other(")") => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        Tok::Other(",") if level == 1 => {
                            commas += 1;
                            continue;
                        }
                        _ => {}
                    }
                    if commas == 2 && level >= 1 {
                        third.push(t.clone());
                    }
                }
                let local = match third.as_slice() {
                    [Tok::Word(w)] => w == "TRUE",
                    [Tok::Str(s)] => matches!(s.to_ascii_lowercase().as_str(), "true" | "t" | "on" | "yes" | "y" | "1"),
                    _ => false,
                };
                if !local {
                    return Some(
                        "`set_config(..., false)` (or with anything but `true` as its third argument) sets the setting for the \
                         whole session: it outlives this migration and, behind a connection pool, reaches other clients; use \
                         `set_config(name, value, true)` (it lasts until the migration's transaction ends)"
                            .into(),
                    );
                }
            }
            // A DO block's body runs now: look inside it, once.
            Tok::Str(body) if depth == 0 && matches!(toks.first(), Some(Tok::Word(w)) if w == "DO") => {
                let inner = tokens(body);
                if let Some(why) = scan_session_setting(&inner, 1) {
                    return Some(why);
                }
                for (k, t) in inner.iter().enumerate() {
                    // A statement of the body starts here (not `UPDATE t SET x = 1`).
                    let starts = k == 0
                        || match &inner[k - 1] {
                            Tok::Other(";") => true,
                            Tok::Word(p) => matches!(p.as_str(), "BEGIN" | "THEN" | "ELSE" | "LOOP"),
                            _ => false,
                        };
                    if starts && *t == Tok::Word("SET".into()) {
                        let next = inner.get(k + 1);
                        if !matches!(next, Some(Tok::Word(n)) if matches!(n.as_str(), "LOCAL" | "CONSTRAINTS" | "TRANSACTION")) {
                            return Some(
                                "a `SET` inside a DO block sets the setting for the whole session: it outlives this migration and, \
                                 behind a connection pool, reaches other clients; use `SET LOCAL`"
                                    .into(),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

struct Scanner<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    out: Vec<Statement>,
    // State of the statement being read.
    start: Option<(usize, usize)>,
    keyword: String,
    paren_depth: usize,
    /// psql's `begin_depth`: BEGIN (ATOMIC) / CASE nesting inside CREATE FUNCTION/PROCEDURE.
    begin_depth: usize,
    /// The statement's first tokens (see [`Statement::head`]): enough to recognize
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, the only statements whose bodies may hold `;`.
    head: Vec<String>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str) -> Scanner<'a> {
        Scanner {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            line: 1,
            out: Vec::new(),
            start: None,
            keyword: String::new(),
            paren_depth: 0,
            begin_depth: 0,
            head: Vec::new(),
        }
    }

    fn err<T>(&self, line: usize, message: String) -> Result<T, LexError> {
        Err(LexError { line, message })
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// Advances over `n` bytes, counting newlines.
    fn bump(&mut self, n: usize) {
        let end = (self.pos + n).min(self.bytes.len());
        self.line += self.bytes[self.pos..end].iter().filter(|&&b| b == b'\n').count();
        self.pos = end;
    }

    fn mark_token(&mut self) {
        if self.start.is_none() {
            self.start = Some((self.pos, self.line));
        }
    }

    fn finish_statement(&mut self, end: usize) {
        if let Some((start, line)) = self.start.take() {
            self.out.push(Statement { span: start..end, line, keyword: std::mem::take(&mut self.keyword), head: std::mem::take(&mut self.head) });
        }
        self.keyword.clear();
        self.paren_depth = 0;
        self.begin_depth = 0;
        self.head.clear();
    }

    /// As psql decides it: only a routine's SQL-standard body nests BEGIN ... END.
    fn is_routine(&self) -> bool {
        let w: Vec<&str> = self.head.iter().take(4).map(String::as_str).collect();
        matches!(w.as_slice(), ["CREATE", "FUNCTION" | "PROCEDURE", ..] | ["CREATE", "OR", "REPLACE", "FUNCTION" | "PROCEDURE", ..])
    }

    /// Keeps a token of the statement being read, up to [`HEAD_TOKENS`].
    fn push_head(&mut self, from: usize) {
        if self.head.len() < HEAD_TOKENS {
            let text = &self.src[from..self.pos];
            let token = if text.starts_with('\'') || text.starts_with('$') || text.starts_with(['E', 'e']) && text.len() > 1 && text.as_bytes()[1] == b'\'' {
                "'".to_string()
            } else if text.starts_with('"') {
                text.to_string()
            } else {
                text.to_ascii_uppercase()
            };
            self.head.push(token);
        }
    }

    fn run(mut self) -> Result<Vec<Statement>, LexError> {
        while let Some(b) = self.peek(0) {
            match b {
                b'-' if self.peek(1) == Some(b'-') => {
                    let len = self.bytes[self.pos..].iter().position(|&c| c == b'\n').unwrap_or(self.bytes.len() - self.pos);
                    self.bump(len);
                }
                b'/' if self.peek(1) == Some(b'*') => self.block_comment()?,
                b'\'' => {
                    self.mark_token();
                    let from = self.pos;
                    self.quoted(b'\'', false)?;
                    self.push_head(from);
                }
                b'"' => {
                    self.mark_token();
                    let from = self.pos;
                    self.quoted(b'"', false)?;
                    self.push_head(from);
                }
                b'$' if self.dollar_tag().is_some() => {
                    self.mark_token();
                    let from = self.pos;
                    self.dollar_quoted()?;
                    self.push_head(from);
                }
                b'\\' => {
                    let word: String = self.src[self.pos..].chars().take_while(|c| !c.is_whitespace()).take(20).collect();
                    return self.err(
                        self.line,
                        format!("psql meta-command `{word}`: files must be plain SQL that the server runs, not psql scripts"),
                    );
                }
                b'(' => {
                    self.mark_token();
                    self.paren_depth += 1;
                    self.bump(1);
                    self.push_head(self.pos - 1);
                }
                b')' => {
                    self.mark_token();
                    self.paren_depth = self.paren_depth.saturating_sub(1);
                    self.bump(1);
                    self.push_head(self.pos - 1);
                }
                b';' => {
                    self.bump(1);
                    if self.paren_depth == 0 && self.begin_depth == 0 {
                        self.finish_statement(self.pos);
                    }
                }
                b if is_ident_start(b) => self.word()?,
                b if b.is_ascii_whitespace() => self.bump(1),
                _ => {
                    self.mark_token();
                    // Skip a whole UTF-8 character so `pos` stays on a char boundary.
                    let from = self.pos;
                    let len = self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
                    self.bump(len);
                    self.push_head(from);
                }
            }
        }
        // psql runs a last statement that lacks its `;` at end of input.
        self.finish_statement(self.bytes.len());
        Ok(self.out)
    }

    fn word(&mut self) -> Result<(), LexError> {
        self.mark_token();
        let start = self.pos;
        let len = self.bytes[start..].iter().position(|&b| !is_ident_char(b)).unwrap_or(self.bytes.len() - start);
        // E'...' (and e'...') strings take backslash escapes.
        if len == 1 && matches!(self.bytes[start], b'E' | b'e') && self.peek(1) == Some(b'\'') {
            self.bump(1);
            self.quoted(b'\'', true)?;
            self.push_head(start);
            return Ok(());
        }
        let word = self.src[start..start + len].to_ascii_uppercase();
        self.bump(len);
        if self.keyword.is_empty() && self.out_statement_just_started(start) {
            self.keyword = word.clone();
        }
        self.push_head(start);
        // Only in CREATE FUNCTION/PROCEDURE can BEGIN ... END enclose `;` (SQL-standard
        // bodies); `begin` elsewhere is a column name or, at the top, transaction control.
        if self.is_routine() {
            match word.as_str() {
                "BEGIN" => self.begin_depth += 1,
                "CASE" if self.begin_depth > 0 => self.begin_depth += 1,
                "END" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// True when the word at `start` is the statement's first token.
    fn out_statement_just_started(&self, start: usize) -> bool {
        self.start.map(|(s, _)| s) == Some(start)
    }

    fn block_comment(&mut self) -> Result<(), LexError> {
        let line = self.line;
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            match (self.bytes[self.pos], self.peek(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.bump(2);
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.bump(2);
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => self.bump(1),
            }
        }
        self.err(line, "unterminated /* comment".into())
    }

    /// Reads a quoted string or identifier; the doubled quote character is an escape.
    fn quoted(&mut self, quote: u8, backslash_escapes: bool) -> Result<(), LexError> {
        let line = self.line;
        self.bump(1);
        while let Some(b) = self.peek(0) {
            if backslash_escapes && b == b'\\' {
                self.bump(2);
            } else if b == quote {
                if self.peek(1) == Some(quote) {
                    self.bump(2);
                } else {
                    self.bump(1);
                    return Ok(());
                }
            } else {
                self.bump(1);
            }
        }
        let what = if quote == b'"' { "quoted identifier" } else { "string literal" };
        self.err(line, format!("unterminated {what}"))
    }

    /// At a `$`: the `$tag$` opening a dollar-quoted string, if it is one. `$1` is a parameter
    /// and `a$b` an identifier (handled by `word`), not a quote.
    fn dollar_tag(&self) -> Option<usize> {
        let rest = &self.bytes[self.pos + 1..];
        let len = rest.iter().position(|&b| !(is_ident_char(b) && b != b'$'))?;
        if rest[len] != b'$' || rest.first().is_some_and(u8::is_ascii_digit) {
            return None;
        }
        Some(len + 2)
    }

    fn dollar_quoted(&mut self) -> Result<(), LexError> {
        let line = self.line;
        let tag_len = self.dollar_tag().expect("called at a dollar tag");
        let tag = &self.src[self.pos..self.pos + tag_len];
        match self.src[self.pos + tag_len..].find(tag) {
            Some(end) => {
                self.bump(tag_len + end + tag_len);
                Ok(())
            }
            None => self.err(line, format!("unterminated dollar-quoted string {tag}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<(usize, String)> {
        statements(sql).unwrap().into_iter().map(|s| (s.line, sql[s.span].to_string())).collect()
    }

    #[test]
    fn dollar_quoted_bodies_keep_their_semicolons() {
        let sql = "CREATE FUNCTION f() RETURNS void AS $$\nBEGIN\n  PERFORM 1;\nEND;\n$$ LANGUAGE plpgsql;\n\n-- c;\nSELECT 'a;b', \"x;y\", $tag$;$tag$;\n";
        let got = split(sql);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 1);
        assert!(got[0].1.ends_with("LANGUAGE plpgsql;"));
        assert_eq!(got[1], (8, "SELECT 'a;b', \"x;y\", $tag$;$tag$;".to_string()));
    }

    #[test]
    fn strings_comments_and_parameters() {
        let sql = "SELECT E'it\\'s;', 'it''s;' /* a /* nested; */ comment */, $1, a$b;\nSELECT 2";
        let got = split(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1], (2, "SELECT 2".to_string()));
    }

    #[test]
    fn sql_standard_bodies_and_parentheses() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END;\nCREATE RULE r AS ON INSERT TO t DO INSTEAD (SELECT 1; SELECT 2);\nSELECT 3;";
        let got = split(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[2].1, "SELECT 3;");
    }

    #[test]
    fn begin_as_a_name_does_not_nest() {
        let got = split("CREATE TABLE t (begin int, \"end\" int);\nSELECT begin FROM t;\nCREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC SELECT 1; END;\nSELECT 2;");
        assert_eq!(got.len(), 4, "{got:?}");
    }

    #[test]
    fn refuses_transaction_control_and_meta_commands() {
        let e = statements("SELECT 1;\nBEGIN;\nSELECT 2;\nCOMMIT;").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`BEGIN`"), "{}", e.message);
        assert_eq!(statements("SELECT 1;\n\ncommit;").unwrap_err().line, 3);
        assert!(statements("START TRANSACTION;").is_err());
        assert!(statements("PREPARE TRANSACTION 'x';").is_err());
        assert!(statements("PREPARE q AS SELECT 1;").is_ok());
        assert!(statements("SAVEPOINT a; ROLLBACK TO SAVEPOINT a; RELEASE a;").is_ok());
        let e = statements("SELECT 1;\n\\set ON_ERROR_STOP 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("meta-command `\\set`"), "{}", e.message);
        // Inside a body a BEGIN or a backslash is just text.
        assert!(statements("DO $$ BEGIN RAISE NOTICE '\\'; END $$;").is_ok());
    }

    #[test]
    fn unterminated_things_name_their_line() {
        assert_eq!(statements("SELECT 1;\nSELECT $$ oops").unwrap_err().line, 2);
        assert_eq!(statements("\n\nSELECT 'x").unwrap_err().line, 3);
        assert!(statements("/* open").unwrap_err().message.contains("comment"));
    }

    #[test]
    fn session_settings_are_found_by_tokens_not_text() {
        let refused = |sql: &str| statements(sql).unwrap_err().message;
        assert!(refused("SET/*LOCAL*/ statement_timeout = 0;").contains("session-level"));
        assert!(refused("SET -- LOCAL\n statement_timeout = 0;").contains("session-level"));
        assert!(refused("SELECT set_config('statement_timeout', '0', false);").contains("set_config"));
        assert!(refused("SELECT set_config('a.b', (SELECT 'x'), /* true */ false);").contains("set_config"));
        assert!(refused("DO $$ BEGIN PERFORM set_config('a.b', 'x', false); END $$;").contains("set_config"));
        assert!(refused("DO $$ BEGIN SET search_path = x; END $$;").contains("DO block"));
        assert!(statements("SELECT set_config('a.b', 'x', true);").is_ok());
        assert!(statements("SELECT set_config('a.b', 'x', 'on');").is_ok());
        assert!(statements("SET LOCAL statement_timeout = 0; SET /* */ LOCAL lock_timeout = 1;").is_ok());
        assert!(statements("SELECT 'set_config(''a'', ''b'', false)';").is_ok());
        assert!(statements("DO $$ BEGIN UPDATE t SET x = 1; SET LOCAL a.b = 1; END $$;").is_ok());
        assert!(statements("-- SELECT set_config('a', 'b', false);\nSELECT 1;").is_ok());
    }

    #[test]
    fn comments_only_is_no_statement() {
        assert!(statements("-- nothing\n/* here */\n").unwrap().is_empty());
    }
}
