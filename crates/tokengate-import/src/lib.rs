//! Moving an existing install onto tokengate: `tokengate import spaceone`
//! reads what `mongoexport` wrote for SpaceONE identity's collections and
//! writes tokengate's directory file (or the PostgreSQL directory's rows:
//! [`postgres`]) and key folders.
//!
//! Nothing here prints or returns a password hash, key or token: reports
//! name records by id and say why they were skipped.

mod der;
pub mod extjson;
pub mod postgres;
pub mod spaceone;

pub use postgres::{PostgresImportOptions, RowChanges, import_postgres};
pub use spaceone::{ImportError, ImportOptions, Report, import};
