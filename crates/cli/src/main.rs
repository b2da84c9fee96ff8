//! The `dialtone` command line.
fn main() {}
