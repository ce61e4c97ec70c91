//! What the schema-comparing commands (`check --schema`, `diff`, `new --autogenerate`) share:
//! which schema a set's objects are in, which tables are the tool's own, the `compare-*`
//! settings, and the scratch builds of "a set at a revision" and "a SQL file".

use procrastinate_migrations::catalog::{self, Catalog};
use procrastinate_migrations::db::Session;
use procrastinate_migrations::Revision;

use super::Ctx;
use crate::scratchpad::{Dep, Layer, Scratchpad};
use crate::{exit, Failure};

impl Ctx {
    /// Every set's tracking table (left out of every catalog: the tool's own).
    pub(super) fn tracking_tables(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.sets.iter().map(|l| l.options.table.name.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// The schema a set's objects are built in, in a scratch database: its `schema`, else
    /// `public` (a scratch database's `search_path` puts them there).
    pub(super) fn scratch_schema(&self, set: usize) -> &str {
        self.sets[set].options.schema.as_deref().unwrap_or("public")
    }

    /// The schema a set's objects are in, in the connected database: its `schema`, else the
    /// one its unqualified names land in there (`current_schema()`), as read.
    pub(super) fn live_schema(&self, client: &mut dyn Session, set: usize) -> Result<String, Failure> {
        if let Some(s) = &self.sets[set].options.schema {
            return Ok(s.clone());
        }
        let rows = client
            .simple_query("SELECT current_schema()")
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot read the current schema: {}", procrastinate_migrations::db::describe(&e))))?;
        rows.into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .ok_or_else(|| Failure::new(exit::FAILED, "the database's search_path names no schema that exists: set `schema`"))
    }

    /// How the catalogs of these sets are read and what they leave out: the `compare-ignore`
    /// patterns of each, and `compare-privileges` when any asks.
    pub(super) fn compare_settings(&self, sets: &[usize]) -> (catalog::Options, Vec<String>) {
        let privileges = sets.iter().any(|&i| self.sets[i].compare.privileges);
        let mut ignore: Vec<String> = sets.iter().flat_map(|&i| self.sets[i].compare.ignore.iter().cloned()).collect();
        ignore.sort();
        ignore.dedup();
        (catalog::Options { privileges }, ignore)
    }

    /// The scratch layers of set `set` at `upto`, on top of the sets before it at their heads.
    pub(super) fn layers_at(&self, set: usize, upto: Option<Revision>) -> Vec<Layer<'_>> {
        let mut layers: Vec<Layer<'_>> = self.deps(set, &|j| Some(self.sets[j].head())).into_iter().map(Layer::Set).collect();
        layers.push(Layer::Set(Dep {
            migrations: &self.sets[set].set.migrations,
            opts: &self.sets[set].options,
            upto,
            label: self.sets[set].options.label(upto),
        }));
        layers
    }

    /// The scratch layers of `sql` (a desired schema, a `schema.sql`) in set `set`'s schema, on
    /// top of the sets before it at their heads.
    pub(super) fn layers_of_sql<'a>(&'a self, set: usize, sql: &'a str, label: String) -> Vec<Layer<'a>> {
        let mut layers: Vec<Layer<'a>> = self.deps(set, &|j| Some(self.sets[j].head())).into_iter().map(Layer::Set).collect();
        layers.push(Layer::Sql { sql, schema: self.sets[set].options.schema.as_deref(), label });
        layers
    }

    /// The whole catalog of set `set`'s schema after `layers`, built in a scratch database,
    /// without what `ignore` names.
    pub(super) fn built(&self, pad: &mut Scratchpad, set: usize, layers: &[Layer<'_>], options: catalog::Options, ignore: &[String]) -> Result<Catalog, Failure> {
        let schema = self.scratch_schema(set).to_string();
        let tables = self.tracking_tables();
        let mut all = pad.layers(layers, &[&schema], &tables, options)?;
        Ok(all.pop().and_then(|mut per| per.pop()).unwrap_or_default().ignoring(ignore))
    }
}
