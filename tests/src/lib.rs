//! Test support for the integration tests: throwaway databases on a scratch cluster
//! (or an existing server) and the real upstream Procrastinate SQL, fetched at run time.

pub mod db;
pub mod pgbouncer;
pub mod proxy;
pub mod wheels;

pub use db::TestDb;
pub use wheels::Upstream;
