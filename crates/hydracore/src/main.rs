#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hydracore::cli::main()
}
