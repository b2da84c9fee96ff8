//! The web app's integration tests: every route through `router(state).oneshot(..)` on a fresh
//! SQLite store, the role x route matrix, bad input, two instances on one PostgreSQL, the
//! OpenAPI document, and one real listening server.

mod bad_input;
mod concurrency;
mod flow;
mod hardening;
mod hygiene;
mod live;
mod matrix;
mod openapi;
mod reports;
mod support;
mod views;
mod webhooks;
mod workspace;
