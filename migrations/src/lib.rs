//! Schema migrations for authbridge. Each migration runs unchanged on SQLite and PostgreSQL:
//! only portable column types (text, big integers for Unix-second timestamps, booleans).

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_foundation;
mod m20261127_000002_clients;
mod m20261127_000003_login;
mod m20261127_000004_tokens;
mod m20261130_000005_trust_tokens;
mod m20261130_000006_trust_registration;
mod m20261130_000007_consents;
mod m20261130_000008_audit_trail;
mod m20261130_000009_rotation_and_lifetimes;
mod m20261130_000010_web_sessions;
mod m20261130_000011_console;
mod m20261130_000013_purge_indexes;
mod m20261130_000014_software_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_foundation::Migration),
            Box::new(m20261127_000002_clients::Migration),
            Box::new(m20261127_000003_login::Migration),
            Box::new(m20261127_000004_tokens::Migration),
            Box::new(m20261130_000005_trust_tokens::Migration),
            Box::new(m20261130_000006_trust_registration::Migration),
            Box::new(m20261130_000007_consents::Migration),
            Box::new(m20261130_000008_audit_trail::Migration),
            Box::new(m20261130_000009_rotation_and_lifetimes::Migration),
            Box::new(m20261130_000010_web_sessions::Migration),
            Box::new(m20261130_000011_console::Migration),
            Box::new(m20261130_000013_purge_indexes::Migration),
            Box::new(m20261130_000014_software_index::Migration),
        ]
    }
}
