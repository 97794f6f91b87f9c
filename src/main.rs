//! The `reverb-shard` binary: a thin command line over the library.

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    reverb_shard::cli::main()
}
