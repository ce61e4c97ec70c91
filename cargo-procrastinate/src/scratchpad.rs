//! Throwaway databases to build reference catalogs in (`verify`, `stamp --detect`, the safe
//! `stamp`): on the embedded PostgreSQL, started on first use and removed at the end, or, with
//! `--server URL`, created on that server and dropped again (never the application's database).

use procrastinate_migrations::catalog::{self, Catalog};
use procrastinate_migrations::db::{self, Session};
use procrastinate_migrations::Migration;

use crate::connect::Target;
use crate::Failure;

/// Where the throwaway databases go, and which were made: dropping it removes them.
pub struct Scratchpad {
    place: Place,
    created: Vec<String>,
}

enum Place {
    /// Started on first use.
    Embedded(Option<pg_scratch::Scratch>),
    /// A server the user named: its maintenance database's target.
    Server(Box<Target>),
}

impl Scratchpad {
    /// On `server` (the `--server URL`), else on an embedded PostgreSQL; nothing starts yet.
    pub fn new(server: Option<Target>) -> Scratchpad {
        Scratchpad { place: server.map_or(Place::Embedded(None), |t| Place::Server(Box::new(t))), created: Vec::new() }
    }

    /// A new empty database, connected.
    pub fn database(&mut self, label: &str) -> Result<Box<dyn Session>, Failure> {
        let name = format!("cargo_procrastinate_{label}_{}_{}", std::process::id(), self.created.len());
        match &mut self.place {
            Place::Embedded(scratch) => {
                if scratch.is_none() {
                    let s = pg_scratch::Scratch::start().map_err(|e| {
                        Failure::connect(format!("cannot start the embedded PostgreSQL for the reference database: {e} (or pass --server URL)"))
                    })?;
                    *scratch = Some(s);
                }
                let s = scratch.as_ref().expect("started above");
                s.create_database(&name).map_err(|e| Failure::connect(format!("cannot create a scratch database: {e}")))?;
                self.created.push(name.clone());
                let client = s.config(&name).connect(postgres::NoTls).map_err(|e| Failure::connect(format!("cannot connect to the scratch database: {}", db::describe(&e))))?;
                Ok(Box::new(client))
            }
            Place::Server(admin) => {
                admin
                    .connect()?
                    .batch_execute(&format!("CREATE DATABASE {}", procrastinate_migrations::tracking::quote_ident(&name)))
                    .map_err(|e| Failure::connect(format!("cannot create a scratch database on {}: {}", admin.display(), db::describe(&e))))?;
                self.created.push(name.clone());
                let mut target = (**admin).clone();
                target.config.dbname(&name);
                Ok(Box::new(target.connect()?))
            }
        }
    }

    /// The catalog of `migrations` applied from base to each revision, on top of `deps` (the
    /// sets it depends on, built first to their revisions): `per[0]` is base (empty), `per[k]`
    /// after revision k, each without the objects of `base` (the dependencies' own, as they
    /// are: not the set's to compare). Built in one scratch database, one migration at a time;
    /// cached on disk (see `cache_file`): the same files, schema and server version give the
    /// same catalogs, and building them applies every migration.
    pub fn catalogs(&mut self, deps: &[Dep<'_>], migrations: &[Migration], opts: &db::Options) -> Result<Built, Failure> {
        let mut client = self.database("catalogs")?;
        let schema = opts.schema.as_deref().unwrap_or("public");
        let version = client
            .simple_query("SHOW server_version_num")
            .ok()
            .and_then(|m| m.into_iter().find_map(|m| if let postgres::SimpleQueryMessage::Row(r) = m { r.get(0).map(str::to_string) } else { None }));
        let cache = version.and_then(|v| cache_file(deps, migrations, schema, &opts.table.name, &v));
        if let Some(hit) = cache.as_ref().and_then(|f| std::fs::read(f).ok()).and_then(|b| serde_json::from_slice::<Built>(&b).ok()) {
            if hit.per.len() == migrations.len() + 1 {
                return Ok(hit);
            }
        }
        let base = build_deps(&mut *client, deps, schema, &opts.table.name)?;
        let mut per = vec![Catalog::default()];
        for m in migrations {
            db::upgrade(&mut *client, migrations, Some(m.revision), opts, &mut |_| {}).map_err(|e| scratch_failure(e.into(), "the set"))?;
            per.push(read(&mut *client, schema, &opts.table.name)?.without(&base));
        }
        let built = Built { base, per };
        if let Some(file) = cache {
            // A cache that cannot be written is only slower next time.
            let _ = file.parent().map(std::fs::create_dir_all);
            let _ = serde_json::to_vec(&built).map(|b| std::fs::write(&file, b));
        }
        Ok(built)
    }

    /// The catalog that `sql` (a `schema.sql`) builds, in `schema` when given, on top of `deps`,
    /// without their objects.
    pub fn catalog_of_sql(&mut self, deps: &[Dep<'_>], sql: &str, schema: Option<&str>, tracking_table: &str) -> Result<Catalog, Failure> {
        let mut client = self.database("reference")?;
        let base = build_deps(&mut *client, deps, schema.unwrap_or("public"), tracking_table)?;
        let failed = |e: postgres::Error| Failure::new(crate::exit::FAILED, format!("the reference schema failed to apply: {}", db::describe(&e)));
        if let Some(s) = schema {
            let s = procrastinate_migrations::tracking::quote_ident(s);
            // `public` exists already; the migrations' side creates a missing schema the same way.
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}")).map_err(failed)?;
        }
        client.batch_execute(sql).map_err(failed)?;
        Ok(read(&mut *client, schema.unwrap_or("public"), tracking_table)?.without(&base))
    }
}

/// Applies one layer in a scratch database.
fn apply(client: &mut dyn Session, layer: &Layer<'_>) -> Result<(), Failure> {
    match layer {
        Layer::Set(d) => {
            if let Some(upto) = d.upto {
                db::upgrade(client, d.migrations, Some(upto), d.opts, &mut |_| {}).map_err(|e| scratch_failure(e.into(), &d.label))?;
            }
        }
        Layer::Sql { sql, schema, label } => {
            let failed = |e: postgres::Error| Failure::new(crate::exit::FAILED, format!("{label} failed to apply in a scratch database: {}", db::describe(&e)));
            let s = procrastinate_migrations::tracking::quote_ident(schema.unwrap_or("public"));
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}")).map_err(failed)?;
            client.batch_execute(sql).map_err(failed)?;
            client.batch_execute("RESET search_path").map_err(failed)?;
        }
    }
    Ok(())
}

impl Scratchpad {
    /// A new scratch database with `layers` applied, connected.
    pub fn built(&mut self, label: &str, layers: &[Layer<'_>]) -> Result<Box<dyn Session>, Failure> {
        let mut client = self.database(label)?;
        for layer in layers {
            apply(&mut *client, layer)?;
        }
        Ok(client)
    }
}

/// One layer of a scratch build ([`Scratchpad::layers`]).
pub enum Layer<'a> {
    /// A set, up to a revision (`upto: None`: nothing of it).
    Set(Dep<'a>),
    /// SQL (a desired schema, a `schema.sql`), run with `search_path` set to `schema`.
    Sql {
        /// The text, run as one batch.
        sql: &'a str,
        /// The schema it goes in (created when missing); `None`: `public`.
        schema: Option<&'a str>,
        /// The file it came from, for errors.
        label: String,
    },
}

/// How to open another connection to a scratch database, on any thread.
#[derive(Clone)]
pub enum Connector {
    /// The embedded server's.
    Embedded(Box<postgres::Config>),
    /// `--server`'s, with the database's name.
    Server(Box<Target>),
}

impl Connector {
    /// A new connection.
    pub fn connect(&self) -> Result<Box<dyn Session>, Failure> {
        match self {
            Connector::Embedded(config) => Ok(Box::new(
                config.connect(postgres::NoTls).map_err(|e| Failure::connect(format!("cannot connect to the scratch database: {}", db::describe(&e))))?,
            )),
            Connector::Server(target) => Ok(Box::new(target.connect()?)),
        }
    }
}

impl Scratchpad {
    /// How to connect again to the database [`database`](Self::database) made last.
    pub fn connector(&self) -> Option<Connector> {
        let name = self.created.last()?;
        match &self.place {
            Place::Embedded(Some(s)) => Some(Connector::Embedded(Box::new(s.config(name)))),
            Place::Embedded(None) => None,
            Place::Server(admin) => {
                let mut target = (**admin).clone();
                target.config.dbname(name);
                Some(Connector::Server(Box::new(target)))
            }
        }
    }

    /// Builds `layers` in one new scratch database, in order, and reads the catalog of each of
    /// `schemas` after each layer (`[layer][schema]`), leaving out every tracking table of
    /// `tables`. Whole catalogs: what the layers before made counts too.
    pub fn layers(&mut self, layers: &[Layer<'_>], schemas: &[&str], tables: &[&str], options: catalog::Options) -> Result<Vec<Vec<Catalog>>, Failure> {
        let mut client = self.database("layers")?;
        let mut out = Vec::with_capacity(layers.len());
        for layer in layers {
            apply(&mut *client, layer)?;
            let mut per_schema = Vec::with_capacity(schemas.len());
            for schema in schemas {
                let c = catalog::read_with(&mut *client, schema, tables, options)
                    .map_err(|e| Failure::new(crate::exit::FAILED, format!("cannot read the catalog: {}", db::describe(&e))))?;
                per_schema.push(c);
            }
            out.push(per_schema);
        }
        Ok(out)
    }
}

/// A set that a scratch build applies first: an earlier set of `sets`, which the set being
/// built depends on (its tables reference theirs), up to `upto`.
pub struct Dep<'a> {
    /// The dependency's migrations.
    pub migrations: &'a [Migration],
    /// Its settings (schema, tracking table).
    pub opts: &'a db::Options,
    /// How far to build it: what the user's database records (or its head for `verify`).
    pub upto: Option<procrastinate_migrations::Revision>,
    /// `app@0002`: how errors name it.
    pub label: String,
}

/// What a scratch build gives: the dependencies' objects, and the set's own after each revision.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Built {
    /// The catalog (of the set's schema) after the dependencies, before the set.
    pub base: Catalog,
    /// `[0]` empty, `[k]` the set's own objects after revision k.
    pub per: Vec<Catalog>,
}

fn read(client: &mut dyn Session, schema: &str, table: &str) -> Result<Catalog, Failure> {
    catalog::read(client, schema, table).map_err(|e| Failure::new(crate::exit::FAILED, format!("cannot read the catalog: {}", db::describe(&e))))
}

/// Builds `deps` in the scratch database, in order, and reads what they leave in `schema`.
fn build_deps(client: &mut dyn Session, deps: &[Dep<'_>], schema: &str, table: &str) -> Result<Catalog, Failure> {
    for d in deps {
        if let Some(upto) = d.upto {
            db::upgrade(client, d.migrations, Some(upto), d.opts, &mut |_| {}).map_err(|e| scratch_failure(e.into(), &format!("its dependency, up to {}", d.label)))?;
        }
    }
    if deps.iter().all(|d| d.upto.is_none()) {
        return Ok(Catalog::default());
    }
    read(client, schema, table)
}

/// A failure in a scratch database is said as such: the database it names is not the user's.
fn scratch_failure(mut f: Failure, what: &str) -> Failure {
    f.message = format!(
        "in the scratch build of {what} (a throwaway database, not yours): {}",
        f.message.replace("the database is at", "the scratch database is at")
    );
    f
}

/// `$XDG_CACHE_HOME/cargo-procrastinate/catalogs/<key>.json` (or under `~/.cache`), the key a
/// hash of everything the catalogs depend on: this tool's version, the server's, the schema,
/// the tracking table, and every file's name and checksum.
fn cache_file(deps: &[Dep<'_>], migrations: &[Migration], schema: &str, table: &str, server_version: &str) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    let mut key = format!("{}\0{}\0{server_version}\0{schema}\0{table}", env!("CARGO_PKG_VERSION"), catalog::FORMAT);
    for d in deps {
        key.push_str(&format!("\0dep {:?} {}", d.upto, d.opts.schema.as_deref().unwrap_or("")));
        for m in d.migrations.iter().take(d.upto.map_or(0, |r| r.number() as usize)) {
            key.push_str(&format!("\0{}\0{}", m.file_name, m.checksum));
        }
    }
    key.push_str("\0set");
    for m in migrations {
        key.push_str(&format!("\0{}\0{}", m.file_name, m.checksum));
    }
    let key = procrastinate_migrations::Checksum::of(key.as_bytes());
    Some(base.join("cargo-procrastinate/catalogs").join(format!("{key}.json")))
}

impl Drop for Scratchpad {
    fn drop(&mut self) {
        // The embedded cluster goes with its directory; on a server, each database we made.
        if let Place::Server(admin) = &self.place {
            if let Ok(mut client) = admin.connect() {
                for name in &self.created {
                    let _ = client.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        procrastinate_migrations::tracking::quote_ident(name)
                    ));
                }
            }
        }
    }
}
