//! The configuration file, `/etc/segura/segura.toml` by default.
//!
//! The file is optional: without it segura runs with the defaults below and no local rules.
//! `SEGURA_CONFIG` names another file (which must then exist); `SEGURA_SPOOL` overrides the spool
//! path. Errors name the file, the line and the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::Rule;

/// Where the configuration lives unless `SEGURA_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/segura/segura.toml";
/// Where the spool lives unless the configuration or `SEGURA_SPOOL` says otherwise.
pub const DEFAULT_SPOOL_PATH: &str = "/var/lib/segura/spool.db";
/// Environment variable naming the configuration file.
pub const ENV_CONFIG: &str = "SEGURA_CONFIG";
/// Environment variable naming the spool database.
pub const ENV_SPOOL: &str = "SEGURA_SPOOL";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {}{message}", key_prefix(key))]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    #[error("{path}: {}{message}", key_prefix(key))]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("key `{key}`: ")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub spool: SpoolConfig,
    pub record: RecordConfig,
    pub upload: UploadConfig,
    /// Local rules, for standalone hosts (`[[rule]]` tables).
    #[serde(rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// The file this configuration was read from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[spool]`: the local store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// The SQLite database file.
    pub path: PathBuf,
    /// Largest size of the database in bytes; recording stops (the session goes on) when reached.
    pub max_bytes: u64,
    /// Group owning the spool (directory 0770, files 0660); none: root only (0700/0600).
    pub group: Option<String>,
    /// User owning the spool files root creates (the PAM module), e.g. `segura`: the setuid
    /// recorder `segura-shell` runs as that user to write the spool users cannot read.
    pub owner: Option<String>,
    /// How long a writer waits for a lock held by another process, in milliseconds.
    pub busy_timeout_ms: u32,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            path: PathBuf::from(DEFAULT_SPOOL_PATH),
            max_bytes: 2 << 30,
            group: None,
            owner: None,
            busy_timeout_ms: 5000,
        }
    }
}

/// `[record]`: what the recorder keeps and shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// A line shown to the user when a recording starts (e.g. "This session is recorded.").
    pub notice: Option<String>,
    /// Record what the user types.
    pub input: bool,
    /// Also record what is typed while the terminal does not echo (passwords). Off by default:
    /// a marker is stored instead.
    pub hidden_input: bool,
    /// Also record the bytes of file transfers (sftp-server, scp -t/-f, rsync --server); by
    /// default they are audited (who, what, how many bytes) but their protocol is not stored.
    pub file_transfers: bool,
    /// zstd level for chunks that compress (1 fastest .. 22 smallest); output that does not
    /// compress is stored at level 1 whatever this says.
    pub compression_level: i32,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            notice: None,
            input: true,
            hidden_input: false,
            file_transfers: false,
            compression_level: 8,
        }
    }
}

/// `[upload]`: delivering recordings to the platform (`segura sync`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Where `segura enroll-host` stores the platform's URL and this host's credential (0600).
    pub credentials: PathBuf,
    /// Keep chunks the platform acknowledged this many hours (local replay), then delete them.
    pub keep_uploaded_hours: u64,
    /// Largest chunk batch per request, in bytes.
    pub batch_bytes: usize,
    /// Per-request timeout in milliseconds (a stalled transfer is abandoned and retried).
    pub timeout_ms: u64,
    /// Seconds between passes of `segura sync --daemon` while nothing nudges it.
    pub interval_secs: u64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            credentials: PathBuf::from("/etc/segura/host.toml"),
            keep_uploaded_hours: 72,
            batch_bytes: 7 << 20,
            timeout_ms: 30_000,
            interval_secs: 300,
        }
    }
}

impl Config {
    /// Loads the configuration: `path` if given, else `$SEGURA_CONFIG`, else the default file
    /// (whose absence means defaults). Applies `$SEGURA_SPOOL`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env_path = std::env::var_os(ENV_CONFIG).filter(|v| !v.is_empty());
        let (file, must_exist) = match (path, env_path) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (PathBuf::from(p), true),
            (None, None) => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut config = match std::fs::read_to_string(&file) {
            Ok(text) => Config::parse(&text, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => Config::default(),
            Err(source) => return Err(ConfigError::Read { path: file, source }),
        };
        if let Some(spool) = std::env::var_os(ENV_SPOOL).filter(|v| !v.is_empty()) {
            config.spool.path = PathBuf::from(spool);
        }
        Ok(config)
    }

    /// Parses configuration text; `path` is used in error messages and kept as the source.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_error = |key: String, err: &toml::de::Error| {
            let (line, column) = err
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                key,
                message: err.message().trim().to_string(),
            }
        };
        let de = toml::Deserializer::parse(text).map_err(|e| parse_error(String::new(), &e))?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            parse_error(key, e.inner())
        })?;
        config.source = Some(path.to_path_buf());
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: spool path absolute, rules complete.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let path = self.source.clone().unwrap_or_default();
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.clone(),
            key,
            message,
        };
        if !self.spool.path.is_absolute() {
            return Err(invalid(
                "spool.path".into(),
                format!("must be an absolute path, not {:?}", self.spool.path),
            ));
        }
        if !(1..=22).contains(&self.record.compression_level) {
            return Err(invalid(
                "record.compression_level".into(),
                "must be between 1 and 22".into(),
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|(field, msg)| invalid(format!("rule[{i}].{field}"), msg))?;
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/segura/segura.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.spool.path, PathBuf::from(DEFAULT_SPOOL_PATH));
        assert!(c.record.input && !c.record.hidden_input);
        assert!(c.rules.is_empty());
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let err = parse("[spool]\npath = \"/x/s.db\"\nmax_bytes = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/etc/segura/segura.toml:3:13: key `spool.max_bytes`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[record]\ninput = true\nnotise = \"hi\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":3:"), "{err}");
        assert!(err.contains("notise"), "{err}");
    }

    #[test]
    fn syntax_error_has_line() {
        let err = parse("[spool\npath = 1\n").unwrap_err().to_string();
        assert!(err.starts_with("/etc/segura/segura.toml:1:"), "{err}");
    }

    #[test]
    fn rule_errors_name_the_rule_field() {
        let text = "[[rule]]\nname = \"r\"\nguideline = \"binary-run\"\nsubject_type = \"user\"\nsubject = \"alice\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("rule[0].application_path"), "{err}");
        let text = "[[rule]]\nname = \"r\"\nguideline = \"login-session\"\nsubject_type = \"team\"\nsubject = \"x\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains(":4:") && err.contains("rule[0].subject_type"),
            "{err}"
        );
    }

    #[test]
    fn relative_spool_path_is_refused() {
        let err = parse("[spool]\npath = \"spool.db\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("spool.path"), "{err}");
    }
}
