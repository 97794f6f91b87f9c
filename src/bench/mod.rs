//! `reverb-shard bench`: the load-test tool (being built; see issue 5).

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {}

pub fn main(_args: BenchArgs) -> ExitCode {
    eprintln!("error: `bench` is not built yet");
    ExitCode::from(1)
}
