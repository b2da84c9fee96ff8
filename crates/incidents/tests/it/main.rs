//! Integration tests of the incident store: one suite run unchanged against SQLite and
//! PostgreSQL (`DIALTONE_TEST_PG_URL`), plus the ways opening a database can fail.

mod chain;
mod connect;
mod outbox;
mod people;
mod reports;
mod search;
mod streamed;
mod suite;
mod support;
