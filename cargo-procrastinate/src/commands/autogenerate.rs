//! `new DESCRIPTION --autogenerate`: the migrations from the set's head to its `desired-schema`.
//! Both are built in scratch databases (on top of the sets before it, at their heads), diffed,
//! and planned (`catalog::plan`: pre and post, online, hazards named); the files are written
//! at the release's next serials; then the work is proved: the set with the new files, built
//! from base in another scratch database, must give exactly the desired schema, or what still
//! differs is said (and the files are left for the author to finish).

use procrastinate_migrations::catalog::plan::{self, Phase as PlanPhase, Slot};
use procrastinate_migrations::{MigrationSet, Phase};

use super::new::{release, slug, the_set, Names};
use super::Ctx;
use crate::scratchpad::Scratchpad;
use crate::{connect, exit, json, Failure};

pub(super) fn run(ctx: &mut Ctx, description: &str, version: Option<&str>, force: bool, server: Option<&str>) -> Result<i32, Failure> {
    let i = the_set(ctx)?;
    let set_word = ctx.sets[i].options.set.as_deref().map(|n| format!(" of set `{n}`")).unwrap_or_default();
    let desired = ctx.sets[i].desired_schema.clone().ok_or_else(|| {
        Failure::usage(format!(
            "--autogenerate needs the schema you want: setting `desired-schema`{set_word} is not set (e.g. `desired-schema = \"db/schema.sql\"`)"
        ))
    })?;
    let sql = std::fs::read_to_string(&desired).map_err(|e| Failure::usage(format!("setting `desired-schema`: cannot read {}: {e}", desired.display())))?;
    let version = release(ctx, version)?;
    let description = slug(description).ok_or_else(|| Failure::usage("the description needs a letter or a digit"))?;
    let dir = ctx.sets[i].set.dir.clone();
    let names = Names::read(&dir);
    names.check_description(&description, force)?;
    // The head must build: a file still marked "not written yet" cannot.
    let head = ctx.sets[i].set.migrations.last().map(|m| m.revision);
    if let Some(m) = ctx.sets[i].set.migrations.iter().find(|m| m.not_written()) {
        return Err(Failure::usage(format!("{} is not written yet: write it (or delete it) before generating the next migration", m.file_name)));
    }
    let (options, ignore) = ctx.compare_settings(&[i]);
    let server = server.map(connect::parse_env).transpose()?;
    let mut pad = Scratchpad::new(server);
    ctx.log(&format!("building {} and {} in scratch databases, to compare...", ctx.label(i, head), desired.display()));
    let from = ctx.built(&mut pad, i, &ctx.layers_at(i, head), options, &ignore)?;
    let label = desired.display().to_string();
    let to = ctx.built(&mut pad, i, &ctx.layers_of_sql(i, &sql, label.clone()), options, &ignore)?;
    let planned = plan::plan(&from, &to);
    if planned.is_empty() {
        ctx.log(&format!("nothing to generate: {} already has the schema of {}", ctx.label(i, head), desired.display()));
        if ctx.json {
            json::emit(
                "new",
                &json::Autogenerate { set: ctx.sets[i].options.set.clone(), desired_schema: label, files: Vec::new(), proved: true, remaining: Vec::new() },
            );
        }
        return Ok(exit::OK);
    }
    // Names: the release's next pre and post serials, one per file, in the order they run.
    let files = planned.files();
    let mut next = [names.next_serial(version, Phase::Pre)?, names.next_serial(version, Phase::Post)?];
    let mut written: Vec<(std::path::PathBuf, String, &plan::File)> = Vec::new();
    for f in &files {
        let k = usize::from(f.phase == PlanPhase::Post);
        let (serial, limit, marker) = if k == 0 { (next[0], 49, "pre") } else { (next[1], 99, "post") };
        if serial > limit {
            return Err(Failure::usage(format!("release {} has no {marker} serial left for {} files: use a later release with --version", version.human(), files.len())));
        }
        next[k] += 1;
        let suffix = f.suffix();
        let desc = if suffix.is_empty() { description.clone() } else { format!("{description}_{suffix}") };
        let name = format!("{version}_{serial:02}_{marker}_{desc}.sql");
        names.check_order(&name)?;
        if written.iter().any(|(_, n, _)| *n == name) || dir.join(&name).exists() {
            return Err(Failure::usage(format!("{} exists already", dir.join(&name).display())));
        }
        written.push((dir.join(&name), name, f));
    }
    let header = |f: &plan::File| {
        let what = match (f.phase, f.slot) {
            (PlanPhase::Pre, Slot::Main) => "pre: additive changes; the previous release's code keeps working. Apply before deploying",
            (PlanPhase::Pre, Slot::Concurrent) => "pre, outside any transaction (an index built CONCURRENTLY). Apply before deploying",
            (PlanPhase::Pre, Slot::Validate) => "pre, a second transaction: validations, which block no writes. Apply before deploying",
            (PlanPhase::Post, Slot::Concurrent) => "post, outside any transaction (an index dropped CONCURRENTLY). Apply after deploying",
            (PlanPhase::Post, Slot::Main) => "post: drops and incompatible changes. Apply after deploying, when no old code runs",
            (PlanPhase::Post, Slot::Validate) => "post, a second transaction: validations, which block no writes. Apply after deploying",
        };
        format!(
            "@generated by `cargo procrastinate new --autogenerate` from {}, release {}:\n{what}.\nReview it, then edit freely: it is yours now.",
            desired.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            version.human()
        )
    };
    for (path, _, f) in &written {
        std::fs::write(path, f.render(&header(f))).map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", path.display())))?;
    }
    // The proof: the set as it is now, from base, in a scratch database.
    ctx.log("proving them: applying the set with the new files in a scratch database...");
    let reloaded = MigrationSet::from_dir(&dir).map_err(|e| Failure::usage(format!("the files written do not make a valid set (they are left for you to fix): {e}")))?;
    ctx.sets[i].set = reloaded;
    let new_head = ctx.sets[i].set.migrations.last().map(|m| m.revision);
    let proved = ctx.built(&mut pad, i, &ctx.layers_at(i, new_head), options, &ignore).map(|after| after.diff(&to));
    let manual = planned.steps.iter().filter(|s| s.hazard.as_ref().is_some_and(|h| h.code == "manual")).count();
    let hazards = planned.steps.iter().filter(|s| s.hazard.is_some()).count();
    let (code, remaining, verdict) = match &proved {
        Ok(d) if d.is_empty() => (exit::OK, Vec::new(), format!("proved: {} plus these files builds exactly {}", ctx.label(i, head), desired.display())),
        Ok(d) => (
            exit::DIVERGED,
            d.differences.iter().map(json::Difference::from).collect(),
            format!(
                "not proved: with these files the set still differs from {} ({}; {}); finish them by hand:\n{}",
                desired.display(),
                d.count(),
                if manual > 0 { format!("{manual} steps are marked `hazard (manual)`") } else { "see below".into() },
                d.render("the files", "the desired schema").lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
            ),
        ),
        Err(e) => (e.code.max(exit::FAILED), Vec::new(), format!("not proved: the files do not apply (they are left for you to fix): {}", e.message)),
    };
    if ctx.json {
        json::emit(
            "new",
            &json::Autogenerate {
                set: ctx.sets[i].options.set.clone(),
                desired_schema: label,
                files: written
                    .iter()
                    .map(|(path, name, f)| json::GeneratedFile {
                        path: path.display().to_string(),
                        file_name: name.clone(),
                        phase: if f.phase == PlanPhase::Pre { "pre" } else { "post" },
                        no_transaction: f.no_transaction(),
                        statements: f.steps.iter().map(json::Statement::from).collect(),
                    })
                    .collect(),
                proved: code == exit::OK,
                remaining,
            },
        );
    } else {
        for (path, _, _) in &written {
            crate::term::data_line(&path.display().to_string());
        }
    }
    if hazards > 0 {
        ctx.log(&format!("{hazards} statements carry a hazard comment (`-- hazard (...)`): read those first"));
    }
    ctx.log(&verdict);
    Ok(code)
}
