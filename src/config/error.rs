//! Configuration errors, and where the offending value came from so that an error can point
//! at it: the environment variable as the operator spelled it, or the file and the line.
//!
//! Figment knows which provider gave a value but not the variable's name (it keeps only the
//! key it made of it) nor the line (its TOML provider keeps no positions). Both are found again
//! here, only when an error needs them: the environment is scanned with the same mapping the
//! provider uses, and the file is parsed once more with positions kept.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use figment::providers::Env;
use figment::{Figment, Metadata, Provider, Source};
use toml_edit::{ImDocument, Item, TableLike};

use super::ENV_PREFIX;

/// The variable that names the configuration file: read by the CLI, never a key.
pub const CONFIG_FILE_VARIABLE: &str = "AUTHBRIDGE_CONFIG";

/// Where the operator set a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An `AUTHBRIDGE_…` variable, named as it is spelled in the environment.
    Environment(String),
    /// A configuration file, with the line of the key when it could be found.
    File { path: PathBuf, line: Option<usize> },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment(name) => write!(f, "environment variable {name}"),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Self::File { path, line: None } => write!(f, "{}", path.display()),
        }
    }
}

/// A configuration problem, naming the key it is about and, when the operator set it, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
    /// The variable or the file (and line) the offending value came from.
    pub origin: Option<Origin>,
}

/// The message of a key that no configuration structure has.
pub(super) const UNKNOWN_KEY: &str = "unknown key";

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            key: key.into(),
            message: message.to_string(),
            origin: None,
        }
    }

    pub(super) fn at(mut self, origin: Option<Origin>) -> Self {
        self.origin = origin;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if self.message == UNKNOWN_KEY {
            // `environment variable AUTHBRIDGE_CMD: unknown key cmd`
            write!(f, "{UNKNOWN_KEY} {}", self.key)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Figment's error as ours: the key spelled as the docs spell it, and where it was set.
pub(super) fn describe_figment_error(error: figment::Error) -> ConfigError {
    let key = if error.path.is_empty() {
        "(configuration)".to_owned()
    } else {
        key_name(&error.path)
    };
    let message = match &error.kind {
        // Figment's path already ends with the unknown field's name.
        figment::error::Kind::UnknownField(..) => UNKNOWN_KEY.to_owned(),
        kind => kind.to_string(),
    };
    let origin = error
        .metadata
        .as_ref()
        .and_then(|metadata| locate(metadata, &error.path));
    ConfigError::new(key, message).at(origin)
}

/// The provider of the environment layer: `AUTHBRIDGE_SECTION__KEY` is `section.key`.
/// The CLI reads [`CONFIG_FILE_VARIABLE`] exactly as spelled, so only that spelling is left out
/// (figment's own `ignore` would also drop `authbridge_config`, which nothing reads).
pub(super) fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| key.as_str() != &CONFIG_FILE_VARIABLE[ENV_PREFIX.len()..])
        .split("__")
}

/// Which keys the operator set, and where (the layers a configuration was loaded from).
pub struct Origins(Figment);

impl Origins {
    pub(super) fn new(figment: Figment) -> Self {
        Self(figment)
    }

    /// Where `key` (dotted, with `[n]` for an array element) was set; `None` for a default.
    pub fn of(&self, key: &str) -> Option<Origin> {
        let path = key_path(key);
        // Figment finds values through tables only, and an array comes whole from one layer.
        let table_path = path.iter().take_while(|segment| !is_index(segment));
        let dotted = table_path.cloned().collect::<Vec<_>>().join(".");
        let metadata = self.0.find_metadata(&dotted)?;
        locate(metadata, &path)
    }
}

/// Where the value at `path`, given by the provider described by `metadata`, was set.
pub(super) fn locate(metadata: &Metadata, path: &[String]) -> Option<Origin> {
    match &metadata.source {
        Some(Source::File(file)) => Some(Origin::File {
            path: file.clone(),
            line: line_in_file(file, path),
        }),
        None if metadata.name == environment().metadata().name => {
            let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
            variable_setting(names, path).map(Origin::Environment)
        }
        _ => None,
    }
}

/// The first of `names` (sorted) whose key is `path`, lies under it or holds it.
pub(super) fn variable_setting(
    names: impl Iterator<Item = String>,
    path: &[String],
) -> Option<String> {
    let mut names: Vec<String> = names
        .filter(|name| {
            key_of_variable(name).is_some_and(|key| {
                let key: Vec<&str> = key.split('.').collect();
                let common = key.len().min(path.len());
                key.iter().zip(path).take(common).all(|(k, p)| k == p)
            })
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The key figment's environment provider makes of a variable: the prefix is matched without
/// regard to case and removed, the rest is lowercased and `__` separates tables.
fn key_of_variable(name: &str) -> Option<String> {
    let prefix = name.get(..ENV_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(ENV_PREFIX) || name == CONFIG_FILE_VARIABLE {
        return None;
    }
    let rest = name[ENV_PREFIX.len()..].trim();
    Some(rest.replace("__", ".").to_ascii_lowercase())
}

/// A key's segments: `resources[0].uri` is `resources`, `0`, `uri`.
pub(super) fn key_path(key: &str) -> Vec<String> {
    key.split(['.', '['])
        .map(|segment| segment.trim_end_matches(']').to_owned())
        .filter(|segment| !segment.is_empty())
        .collect()
}

/// A key's usual spelling: `resources`, `0`, `uri` is `resources[0].uri`.
pub(super) fn key_name(path: &[String]) -> String {
    let mut name = String::new();
    for segment in path {
        if is_index(segment) {
            name.push_str(&format!("[{segment}]"));
        } else {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(segment);
        }
    }
    name
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// The line of the deepest part of `path` written in the TOML file, if it parses.
fn line_in_file(file: &Path, path: &[String]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    line_in_toml(&text, path)
}

pub(super) fn line_in_toml(text: &str, path: &[String]) -> Option<usize> {
    let document = ImDocument::parse(text).ok()?;
    let span = key_span(document.as_table(), path)?;
    Some(text.get(..span.start)?.matches('\n').count() + 1)
}

fn key_span(table: &dyn TableLike, path: &[String]) -> Option<Range<usize>> {
    let (name, rest) = path.split_first()?;
    let (key, item) = table.get_key_value(name)?;
    let deeper = match rest.split_first() {
        Some((index, after)) if is_index(index) => {
            element(item, index.parse().ok()?).and_then(|element| key_span(element, after))
        }
        Some(_) => item.as_table_like().and_then(|inner| key_span(inner, rest)),
        None => None,
    };
    deeper.or_else(|| key.span())
}

fn element(item: &Item, index: usize) -> Option<&dyn TableLike> {
    if let Some(tables) = item.as_array_of_tables() {
        return tables.get(index).map(|table| table as &dyn TableLike);
    }
    let value = item.as_array()?.get(index)?;
    value.as_inline_table().map(|table| table as &dyn TableLike)
}
