//! `database create|drop|reset`: the configured database itself, through the server's
//! maintenance database (libpq's habit: `postgres`, else `template1`).

use std::io::IsTerminal;

use procrastinate_migrations::db::Session;
use procrastinate_migrations::tracking::quote_ident;

use super::Ctx;
use crate::cli::DatabaseAction;
use crate::connect::Target;
use crate::{exit, Failure};

pub(super) fn run(ctx: &mut Ctx, action: DatabaseAction) -> Result<i32, Failure> {
    let target = ctx.target()?.ok_or_else(|| ctx.no_database())?;
    let name = target.config.get_dbname().unwrap_or("postgres").to_string();
    match action {
        DatabaseAction::Create => create(ctx, &target, &name),
        DatabaseAction::Drop { force } => drop(ctx, &target, &name, force),
        DatabaseAction::Reset { force } => {
            drop(ctx, &target, &name, force)?;
            create(ctx, &target, &name)?;
            super::upgrade::run(ctx, super::upgrade::How::Target("head".into()), &[], false, false, false)
        }
    }
}

/// A connection to the server's maintenance database: `postgres`, else `template1`.
fn maintenance(target: &Target, name: &str) -> Result<procrastinate_migrations::db::Conn, Failure> {
    let mut last = None;
    for db in ["postgres", "template1"].into_iter().filter(|d| *d != name) {
        let mut t = target.clone();
        t.config.dbname(db);
        match t.connect() {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Failure::connect("no maintenance database to connect to")))
}

fn create(ctx: &Ctx, target: &Target, name: &str) -> Result<i32, Failure> {
    let mut admin = maintenance(target, name)?;
    match admin.batch_execute(&format!("CREATE DATABASE {}", quote_ident(name))) {
        Ok(()) => ctx.log(&format!("created database {name} on {}", target.display())),
        Err(e) if e.code().map(|c| c.code()) == Some("42P04") => ctx.log(&format!("database {name} exists already: nothing to do")),
        Err(e) => return Err(Failure::new(exit::FAILED, format!("cannot create database {name}: {}", procrastinate_migrations::db::describe(&e)))),
    }
    Ok(exit::OK)
}

fn drop(ctx: &Ctx, target: &Target, name: &str, force: bool) -> Result<i32, Failure> {
    if !force {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(format!("dropping database {name} needs a yes: answer at a terminal, or pass --force")));
        }
        crate::term::log(&format!("Drop database {name} on {}? Everything in it is lost. Type its name to confirm:", target.display()));
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
        if answer.trim() != name {
            return Err(Failure::usage("not confirmed: nothing was dropped"));
        }
    }
    let mut admin = maintenance(target, name)?;
    let with = if force { " WITH (FORCE)" } else { "" };
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {}{with}", quote_ident(name)))
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot drop database {name}: {} (others connected? --force ends their sessions)", procrastinate_migrations::db::describe(&e))))?;
    ctx.log(&format!("dropped database {name}"));
    Ok(exit::OK)
}
