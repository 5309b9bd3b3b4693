#![forbid(unsafe_code)]

// jemalloc rather than glibc's malloc, for the Rust code and (unprefixed)
// the bundled SQLite alike: under load the server allocates and frees in
// many small pieces, often on different threads, and glibc's malloc and
// free took 8 % (PostgreSQL get) to 19 % (SQLite agent mix) of the
// machine's samples, server and load generator together
// (docs/benchmarks.md, round 3).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    hydracore::cli::main()
}
