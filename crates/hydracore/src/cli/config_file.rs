//! The optional TOML settings file (`--config FILE` or `HYDRACORE_CONFIG`).
//!
//! Its keys are the settings' names without the `HYDRACORE_` prefix, in
//! lower case (`listen`, `database_url`, `jwt_secret`, ...). Precedence:
//! flag, then environment variable, then file, then default. The file is
//! applied by filling in the `HYDRACORE_*` variables that are not set, so
//! that clap stays the one place that parses and validates every setting
//! and names it in its errors.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::CommandFactory;

use super::Cli;

/// The config file named on the command line or in the environment.
fn path(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("HYDRACORE_CONFIG").map(PathBuf::from)
}

/// Every `HYDRACORE_*` variable some command reads.
fn known_variables() -> BTreeSet<String> {
    fn walk(command: &clap::Command, into: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                into.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, into);
        }
    }
    let mut known = BTreeSet::new();
    walk(&Cli::command(), &mut known);
    known.remove("HYDRACORE_CONFIG");
    known
}

/// Reads the config file, if any, into unset `HYDRACORE_*` variables.
///
/// Must run before the async runtime starts: it changes the process
/// environment, which is only sound while the process has one thread.
pub fn apply(args: &[OsString]) -> anyhow::Result<()> {
    let Some(path) = path(args) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid TOML in {}", path.display()))?;
    let known = known_variables();
    for (key, value) in table {
        let variable = format!("HYDRACORE_{}", key.to_ascii_uppercase());
        if !known.contains(&variable) {
            let names: Vec<String> = known
                .iter()
                .map(|v| v.trim_start_matches("HYDRACORE_").to_ascii_lowercase())
                .collect();
            bail!(
                "unknown setting `{key}` in {}; known settings: {}",
                path.display(),
                names.join(", ")
            );
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "setting `{key}` in {} must be a string or a number, not {}",
                path.display(),
                other.type_str()
            ),
        };
        if std::env::var_os(&variable).is_none() {
            std::env::set_var(&variable, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_flag_is_found_in_both_spellings() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            path(&args(&["hc", "--config", "a.toml", "serve"])),
            Some("a.toml".into())
        );
        assert_eq!(
            path(&args(&["hc", "serve", "--config=b.toml"])),
            Some("b.toml".into())
        );
    }

    #[test]
    fn every_documented_variable_is_a_known_setting() {
        let known = known_variables();
        for v in [
            "HYDRACORE_LISTEN",
            "HYDRACORE_DATABASE_URL",
            "HYDRACORE_JWT_SECRET",
            "HYDRACORE_SHUTDOWN_TIMEOUT",
        ] {
            assert!(known.contains(v), "{v}");
        }
    }
}
