//! Operator and test tools behind the binary's secondary subcommands. Each tool's `command` runs
//! it as its subcommand does and prints its report on standard output.

pub mod bench_e2e;
pub mod bench_pow;
pub mod bench_store;
pub mod bench_sync;
pub mod check_store;
pub mod cluster;
pub mod disk;
pub mod kafka_baseline;
pub mod load;
pub mod pow_chart;
pub mod soak;
pub mod soak_chart;
pub mod store_writer;

/// Prints `report` as one line of JSON, the form scripts read (`--json`).
fn print_json(report: &impl serde::Serialize) -> Result<(), serde_json::Error> {
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}

/// Prints `report` for people, then, if `json`, as one line of JSON for scripts.
fn print_report(report: &(impl std::fmt::Display + serde::Serialize), json: bool) -> Result<(), serde_json::Error> {
    println!("{report}");
    if json {
        print_json(report)?;
    }
    Ok(())
}
