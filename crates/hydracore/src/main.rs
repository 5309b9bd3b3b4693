#![forbid(unsafe_code)]

// jemalloc rather than glibc's malloc, for the Rust code and (unprefixed)
// the bundled SQLite alike: under load the server allocates and frees in
// many small pieces, often on different threads, where glibc's malloc
// spends far more time.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    hydracore::cli::main()
}
