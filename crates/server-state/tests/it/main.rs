//! Integration tests of server-state: the file backend over scenario directories, the Kamailio
//! backend's SQL over seeded SQLite and PostgreSQL databases, and the Kamailio backend against the
//! real lab (Kamailio + SIPp on loopback).

mod expect;
mod files;
mod kamailio_db;
mod lab;
mod sweep;
