//! `diff FROM TO`: two schemas compared, each a database (`db` for the configured one, or a
//! URL), a set at a revision (`head`, `0029`, `app@head`: built in a scratch database on top of
//! the sets before it), or a SQL file (`db/schema.sql`: run in a scratch database, on top of
//! the sets before the set). `--sql` prints the statements from FROM to TO instead, split into
//! pre and post, hazards named.

use procrastinate_migrations::catalog::{self, plan, Catalog};

use super::Ctx;
use crate::scratchpad::Scratchpad;
use crate::{connect, exit, json, Failure};

/// One side of a diff.
enum Source {
    /// The configured database.
    Configured,
    /// A database by URL or libpq string.
    Url(String),
    /// A set at a revision.
    Revision(usize, Option<procrastinate_migrations::Revision>),
    /// A SQL file.
    File(std::path::PathBuf),
}

pub(super) fn run(ctx: &mut Ctx, from: &str, to: &str, sql: bool, server: Option<&str>) -> Result<i32, Failure> {
    // The set whose schema is compared: the one a revision names, else --set's, else the last
    // (which every other set comes before); a bare revision is its.
    let default = ctx.only.unwrap_or(ctx.sets.len() - 1);
    let sources = [parse(ctx, from, default)?, parse(ctx, to, default)?];
    let named = sources.iter().find_map(|s| if let Source::Revision(i, _) = s { Some(*i) } else { None });
    let set = named.unwrap_or(default);
    if let [Source::Revision(a, _), Source::Revision(b, _)] = &sources {
        if a != b {
            return Err(Failure::usage("FROM and TO name two sets: a diff compares one set's schema (`app@0002 app@head`)"));
        }
    }
    let (options, ignore) = ctx.compare_settings(&[set]);
    let server = server.map(connect::parse_env).transpose()?;
    let mut pad = Scratchpad::new(server);
    let mut schema = ctx.scratch_schema(set).to_string();
    let mut catalogs = Vec::with_capacity(2);
    for source in &sources {
        let c = match source {
            Source::Configured => {
                let mut client = ctx.client()?;
                schema = ctx.live_schema(&mut client, set)?;
                read(&mut client, &schema, &ctx.tracking_tables(), options)?
            }
            Source::Url(url) => {
                let target = connect::parse_env(url)?;
                let mut client = target.connect()?;
                schema = ctx.live_schema(&mut client, set)?;
                read(&mut client, &schema, &ctx.tracking_tables(), options)?
            }
            Source::Revision(i, rev) => {
                ctx.log(&format!("building {} in a scratch database...", ctx.label(*i, *rev)));
                let layers = ctx.layers_at(*i, *rev);
                ctx.built(&mut pad, set, &layers, options, &[])?
            }
            Source::File(path) => {
                let text_sql = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
                ctx.log(&format!("running {} in a scratch database...", path.display()));
                let layers = ctx.layers_of_sql(set, &text_sql, path.display().to_string());
                ctx.built(&mut pad, set, &layers, options, &[])?
            }
        };
        catalogs.push(c.ignoring(&ignore));
    }
    let diff = catalogs[0].diff(&catalogs[1]);
    let steps = sql.then(|| plan::plan(&catalogs[0], &catalogs[1]));
    let code = if diff.is_empty() { exit::OK } else { exit::DIVERGED };
    if ctx.json {
        json::emit(
            "diff",
            &json::Diff {
                from: from.to_string(),
                to: to.to_string(),
                schema,
                same: diff.is_empty(),
                differences: diff.differences.iter().map(json::Difference::from).collect(),
                statements: steps.as_ref().map(|p| p.steps.iter().map(json::Statement::from).collect()),
            },
        );
        return Ok(code);
    }
    if let Some(p) = steps {
        if p.is_empty() {
            ctx.log(&format!("{from} and {to} have the same schema: no statement"));
        } else {
            ctx.log(&format!("{}; the statements from {from} to {to}:", diff.count()));
            crate::term::data(&p.script());
        }
        return Ok(code);
    }
    if diff.is_empty() {
        crate::term::data_line(&format!("same: {from} and {to} have the same schema {schema} ({} objects)", catalogs[0].objects.len()));
    } else {
        crate::term::data_line(&format!("{} between {from} and {to} (schema {schema}):", diff.count()));
        crate::term::data_line(&diff.render(from, to).lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
    }
    Ok(code)
}

fn read(client: &mut dyn procrastinate_migrations::db::Session, schema: &str, tables: &[&str], options: catalog::Options) -> Result<Catalog, Failure> {
    catalog::read_with(client, schema, tables, options)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot read the database's catalog: {}", procrastinate_migrations::db::describe(&e))))
}

/// What a FROM or TO names: `db`, a URL (`postgres://`, `postgresql://`, or a libpq string
/// with `=`), a file (ending in `.sql`, or that exists), else a revision (`head`, `base`,
/// `0029`, `app@head`).
fn parse(ctx: &Ctx, text: &str, default: usize) -> Result<Source, Failure> {
    if text == "db" {
        return Ok(Source::Configured);
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") || text.contains('=') {
        return Ok(Source::Url(text.to_string()));
    }
    let path = std::path::Path::new(text);
    if text.ends_with(".sql") || path.is_file() {
        if !path.is_file() {
            return Err(Failure::usage(format!("{text}: no such file")));
        }
        return Ok(Source::File(path.to_path_buf()));
    }
    if !text.contains('@') {
        if let Ok(point) = text.parse::<procrastinate_migrations::range::Point>() {
            return revision(ctx, text, default, point);
        }
    }
    let targets = ctx.targets(text).map_err(|e| Failure::usage(format!("`{text}` is neither `db`, a database URL, a SQL file nor a revision: {}", e.message)))?;
    let [(i, point)] = targets.as_slice() else {
        return Err(Failure::usage(format!("`{text}`: name the set, e.g. `app@{text}` (a diff compares one set's schema)")));
    };
    revision(ctx, text, *i, *point)
}

fn revision(ctx: &Ctx, text: &str, set: usize, point: procrastinate_migrations::range::Point) -> Result<Source, Failure> {
    use procrastinate_migrations::range::Point;
    if matches!(point, Point::Current | Point::Relative(_) | Point::Back(_)) {
        return Err(Failure::usage(format!("`{text}`: a diff builds a revision by its name (`head`, `base`, `0029`), not relative to a database (`db` is the database)")));
    }
    Ok(Source::Revision(set, ctx.resolve(set, point, None)?))
}
