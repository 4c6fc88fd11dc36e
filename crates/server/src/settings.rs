//! The settings file: TOML whose keys are the environment variables' names
//! (`ENGRAM_BIND = "0.0.0.0:8000"`, `DB_CONNECTION_URI = "postgresql://..."`), so one
//! list of names documents both. Tables nest as Honcho's own `config.toml` sections map to
//! its variables: a top-level table is a prefix joined with `_` (`[db]`
//! `connection_uri` is `DB_CONNECTION_URI`), deeper tables join with `__`
//! (`[embedding.model_config.overrides]` `base_url` is
//! `EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL`), and names are case-insensitive, so a
//! Honcho deployment's file carries over with its environment.
//!
//! Precedence: a flag, then the environment, then the file, then the built-in default.
//! clap already orders the first two and the last; the file's values enter as the
//! defaults of the arguments that carry those environment names, so no layer is
//! written twice. Settings read outside clap (the embedding provider's) go through
//! [`Settings::get`], which applies the same order.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Arg, Command};

/// The variable (and flag `--config`) naming the settings file.
pub const CONFIG_ENV: &str = "ENGRAM_CONFIG";
/// Read when present in the working directory and no file is named.
pub const DEFAULT_FILE: &str = "engram.toml";

/// Names read outside clap, besides those the embedding provider lists.
const OTHER_NAMES: &[&str] = &["ENGRAM_LOG", engram_embed::MODEL_DIR_ENV];

/// The settings file's values (empty without a file) over the process environment.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    file: Option<PathBuf>,
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Finds the file (`--config` in `args`, else `ENGRAM_CONFIG`, else `./engram.toml`
    /// when it exists), reads it, and checks every key and value against `cli`. Any
    /// problem is one error naming the file and the key.
    pub fn load(args: &[OsString], cli: &Command) -> anyhow::Result<Settings> {
        let named = config_flag(args).or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        let path = match named {
            Some(path) => path,
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(Settings::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{CONFIG_ENV}: cannot read {}", path.display()))?;
        Settings::parse(&path, &text, cli)
    }

    fn parse(path: &Path, text: &str, cli: &Command) -> anyhow::Result<Settings> {
        let shown = path.display();
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| anyhow!("{shown}: not valid TOML: {}", e.message()))?;
        let mut values = BTreeMap::new();
        flatten("", 0, table, &mut values).map_err(|e| anyhow!("{shown}: {e}"))?;
        let args = env_args(cli);
        for (key, value) in &values {
            match args.get(key.as_str()) {
                Some(arg) => check(arg, value).map_err(|e| anyhow!("{shown}: {key}: {e}"))?,
                None if known_elsewhere(key) => {}
                None => bail!(
                    "{shown}: unknown setting {key} (keys are the environment variable names \
                     that `engram <command> --help` lists)"
                ),
            }
        }
        Ok(Settings {
            file: Some(path.to_path_buf()),
            values,
        })
    }

    /// The file this came from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// `name` from the environment, else from the file.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_with(name, |n| std::env::var(n).ok())
    }

    fn get_with(&self, name: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(name).or_else(|| self.values.get(name).cloned())
    }

    /// `cli` with the file's values as the defaults of the arguments that read the same
    /// environment variables. Secrets keep their values out of `--help`.
    pub fn apply(&self, cli: Command) -> Command {
        if self.values.is_empty() {
            return cli;
        }
        let cli = cli.mut_args(|arg| {
            let value = arg
                .get_env()
                .and_then(|name| name.to_str())
                .and_then(|name| self.values.get(name));
            match value {
                Some(value) => {
                    let secret = arg.is_hide_env_values_set();
                    arg.default_value(value.clone()).hide_default_value(secret)
                }
                None => arg,
            }
        });
        let names: Vec<String> = cli
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        names
            .into_iter()
            .fold(cli, |cli, name| cli.mut_subcommand(name, |s| self.apply(s)))
    }
}

/// The value of `--config PATH` or `--config=PATH`, wherever it appears.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_str()?;
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Every argument with an environment name, by that name.
fn env_args(cli: &Command) -> BTreeMap<String, Arg> {
    let mut found = BTreeMap::new();
    let mut stack = vec![cli.clone()];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                found.insert(name.to_owned(), arg.clone());
            }
        }
        stack.extend(cmd.get_subcommands().cloned());
    }
    found
}

/// Runs `value` through `arg`'s own parser and checks, as clap does for a default: a
/// command holding only that argument, with `value` as its default and no environment.
fn check(arg: &Arg, value: &str) -> Result<(), String> {
    let alone = arg
        .clone()
        .env(None::<&'static str>)
        .default_value(value.to_owned())
        .required(false)
        .global(false);
    Command::new("engram")
        .no_binary_name(true)
        .arg(alone)
        .try_get_matches_from(Vec::<OsString>::new())
        .map(drop)
        .map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        })
}

fn known_elsewhere(key: &str) -> bool {
    OTHER_NAMES.contains(&key) || engram_embed::OpenAiConfig::SETTING_NAMES.contains(&key)
}

/// Tables become prefixes (see the module comment); scalars become the strings the
/// environment would hold. Arrays are written as JSON (the form `CORS_ORIGINS` takes).
fn flatten(
    prefix: &str,
    depth: usize,
    table: toml::Table,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for (key, value) in table {
        let key = key.to_uppercase();
        let key = match depth {
            0 => key,
            1 => format!("{prefix}_{key}"),
            _ => format!("{prefix}__{key}"),
        };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten(&key, depth + 1, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                if items.iter().any(|i| !i.is_str()) {
                    bail!("{key}: only arrays of strings are settings");
                }
                serde_json::to_string(&items).context("array setting")?
            }
            toml::Value::Datetime(d) => d.to_string(),
        };
        if out.insert(key.clone(), text).is_some() {
            bail!("{key} is set twice");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(text: &str) -> anyhow::Result<Settings> {
        Settings::parse(
            Path::new("engram.toml"),
            text,
            &crate::config::Cli::command(),
        )
    }

    #[test]
    fn keys_are_environment_names_and_tables_nest_as_honchos_sections() {
        let s = parse(
            r#"
            ENGRAM_BIND = "0.0.0.0:9000"
            engram_purge_batch = 50
            CORS_ORIGINS = ["https://a.example"]
            [auth]
            use_auth = true
            [db]
            CONNECTION_URI = "postgresql://u@h/d"
            [embedding.model_config.overrides]
            base_url = "http://127.0.0.1:1/v1"
            "#,
        )
        .unwrap();
        let none = |_: &str| None;
        assert_eq!(
            s.get_with("ENGRAM_BIND", none).as_deref(),
            Some("0.0.0.0:9000")
        );
        assert_eq!(
            s.get_with("ENGRAM_PURGE_BATCH", none).as_deref(),
            Some("50")
        );
        assert_eq!(s.get_with("AUTH_USE_AUTH", none).as_deref(), Some("true"));
        assert_eq!(
            s.get_with("DB_CONNECTION_URI", none).as_deref(),
            Some("postgresql://u@h/d")
        );
        assert_eq!(
            s.get_with("CORS_ORIGINS", none).as_deref(),
            Some(r#"["https://a.example"]"#)
        );
        assert_eq!(
            s.get_with("EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL", none)
                .as_deref(),
            Some("http://127.0.0.1:1/v1")
        );
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let s = parse(r#"ENGRAM_LOG = "debug""#).unwrap();
        let env = |n: &str| (n == "ENGRAM_LOG").then(|| "warn".to_owned());
        assert_eq!(s.get_with("ENGRAM_LOG", env).as_deref(), Some("warn"));
        assert_eq!(s.get_with("ENGRAM_LOG", |_| None).as_deref(), Some("debug"));
    }

    #[test]
    fn bad_keys_and_values_name_the_file_and_the_key() {
        let unknown = parse("ENGRAM_BINDD = \"x\"").unwrap_err().to_string();
        assert!(
            unknown.starts_with("engram.toml: unknown setting ENGRAM_BINDD"),
            "{unknown}"
        );
        let bad = parse("ENGRAM_PURGE_BATCH = 0").unwrap_err().to_string();
        assert!(
            bad.starts_with("engram.toml: ENGRAM_PURGE_BATCH: "),
            "{bad}"
        );
        let addr = parse("ENGRAM_BIND = \"nowhere\"").unwrap_err().to_string();
        assert!(addr.starts_with("engram.toml: ENGRAM_BIND: "), "{addr}");
        let syntax = parse("ENGRAM_BIND = ").unwrap_err().to_string();
        assert!(
            syntax.starts_with("engram.toml: not valid TOML"),
            "{syntax}"
        );
        let array = parse("CORS_ORIGINS = [1]").unwrap_err().to_string();
        assert!(array.contains("CORS_ORIGINS"), "{array}");
        let twice = parse("DB_CONNECTION_URI = \"a\"\n[db]\nconnection_uri = \"b\"")
            .unwrap_err()
            .to_string();
        assert!(twice.contains("DB_CONNECTION_URI is set twice"), "{twice}");
    }

    #[test]
    fn file_values_become_defaults_that_flags_and_the_environment_override() {
        let s = parse(
            r#"
            ENGRAM_BIND = "127.0.0.1:9999"
            AUTH_JWT_SECRET = "a-secret-that-is-long-enough-for-hs256!"
            "#,
        )
        .unwrap();
        let cli = s.apply(crate::config::Cli::command());
        let matches = cli
            .clone()
            .try_get_matches_from(["engram", "serve"])
            .unwrap();
        let (_, serve) = matches.subcommand().unwrap();
        assert_eq!(
            serve
                .get_one::<std::net::SocketAddr>("bind")
                .unwrap()
                .to_string(),
            "127.0.0.1:9999"
        );
        let flagged = cli
            .clone()
            .try_get_matches_from(["engram", "serve", "--bind", "127.0.0.1:1"])
            .unwrap();
        let (_, serve) = flagged.subcommand().unwrap();
        assert_eq!(
            serve
                .get_one::<std::net::SocketAddr>("bind")
                .unwrap()
                .to_string(),
            "127.0.0.1:1"
        );
        let mut serve_cmd = cli.find_subcommand("serve").unwrap().clone();
        let help = serve_cmd.render_long_help().to_string();
        assert!(help.contains("127.0.0.1:9999"), "{help}");
        assert!(!help.contains("a-secret-that-is-long-enough"), "{help}");
    }

    #[test]
    fn the_config_flag_is_found_anywhere() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_flag(&args(&["engram", "serve", "--config", "x.toml"])),
            Some(PathBuf::from("x.toml"))
        );
        assert_eq!(
            config_flag(&args(&["engram", "--config=y.toml", "verify"])),
            Some(PathBuf::from("y.toml"))
        );
        assert_eq!(config_flag(&args(&["engram", "serve"])), None);
    }
}
