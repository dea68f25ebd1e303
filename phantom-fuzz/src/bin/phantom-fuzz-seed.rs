//! `phantom-fuzz-seed [CORPUS_DIR]`: (re)writes the seed corpora of every fuzz target into
//! `CORPUS_DIR/<target>/` (default: the workspace's `fuzz/corpus`). Files the fuzzer added
//! there are left alone; seeds of the same name are overwritten.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let corpus = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"));
    match phantom_fuzz::seeds::write_all(&corpus) {
        Ok(n) => {
            #[allow(clippy::print_stdout)]
            {
                println!("wrote {n} seed files under {}", corpus.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("phantom-fuzz-seed: {}: {e}", corpus.display());
            }
            ExitCode::FAILURE
        }
    }
}
