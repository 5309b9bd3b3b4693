//! `sqlx::migrate!` embeds the migration files at compile time; without this
//! a changed or added migration would not reach the binary until some Rust
//! file of the crate changed too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
