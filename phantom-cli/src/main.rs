//! `phantom`: the command-line front end of PhantomDB.
fn main() {}
