//! `reverb-shard restart` (being built; see issue 7).

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct RestartArgs {}

pub fn main(_args: RestartArgs) -> ExitCode {
    eprintln!("error: `restart` is not built yet");
    ExitCode::from(1)
}
