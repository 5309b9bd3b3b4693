//! What commands print: for people, or exactly one JSON object.

use std::process::ExitCode;

use serde_json::{json, Value};

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints `value` with `--json`, else the text `human` makes.
    pub fn emit(&self, value: Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", human().trim_end());
        }
    }

    /// Reports a failed command and gives its exit code.
    pub fn fail(&self, error: &anyhow::Error) -> ExitCode {
        if self.json {
            println!("{}", json!({ "error": format!("{error:#}") }));
        } else {
            eprintln!("error: {error:#}");
        }
        ExitCode::FAILURE
    }
}
