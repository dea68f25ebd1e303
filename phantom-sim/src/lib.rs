//! `phantom-sim`: test support — a fault-injecting, crash-simulating `FileSystem` and the
//! deterministic simulation harness. (Being written.)
