//! `phantom-bench`: PhantomDB against its peers, side by side. (Being written.)
fn main() {}
