//! Rule files: plain text in `rules/` that a school edits. The shipped copies are
//! embedded in the binary and used when no rules directory is configured (or a
//! file is missing from it).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: rule `{rule}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        rule: String,
        message: String,
    },
    #[error("{file}: unknown rule file (known: {known})")]
    Unknown { file: String, known: String },
}

/// The shipped rule files: (file name, contents).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("policy.toml", include_str!("../rules/policy.toml")),
    (
        "banned_attachments.txt",
        include_str!("../rules/banned_attachments.txt"),
    ),
    (
        "disposable_domains.txt",
        include_str!("../rules/disposable_domains.txt"),
    ),
    (
        "anonymous_names.txt",
        include_str!("../rules/anonymous_names.txt"),
    ),
    ("profanity.txt", include_str!("../rules/profanity.txt")),
    (
        "profanity_allow.txt",
        include_str!("../rules/profanity_allow.txt"),
    ),
    (
        "chain_letter.txt",
        include_str!("../rules/chain_letter.txt"),
    ),
    (
        "personal_data.toml",
        include_str!("../rules/personal_data.toml"),
    ),
];

/// Where rule files come from.
#[derive(Debug, Clone)]
pub struct RuleSource {
    dir: Option<PathBuf>,
}

/// One loaded rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// Path for error messages (`rules/policy.toml` or `<embedded>/policy.toml`).
    pub origin: String,
    pub text: Cow<'static, str>,
}

impl RuleSource {
    pub fn new(dir: Option<&Path>) -> RuleSource {
        RuleSource {
            dir: dir.map(Path::to_path_buf),
        }
    }

    pub fn embedded() -> RuleSource {
        RuleSource { dir: None }
    }

    /// Load one rule file by name.
    pub fn load(&self, name: &str) -> Result<RuleFile, RulesError> {
        let embedded = EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text);
        if let Some(dir) = &self.dir {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return Ok(RuleFile {
                        origin: path.display().to_string(),
                        text: Cow::Owned(text),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && embedded.is_some() => {}
                Err(source) => {
                    return Err(RulesError::Read {
                        file: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        match embedded {
            Some(text) => Ok(RuleFile {
                origin: format!("<embedded>/{name}"),
                text: Cow::Borrowed(text),
            }),
            None => Err(RulesError::Unknown {
                file: name.to_string(),
                known: EMBEDDED
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

impl RuleFile {
    /// Non-empty, non-comment lines with their 1-based line numbers.
    /// `#` starts a comment anywhere on a line.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text.lines().enumerate().filter_map(|(i, l)| {
            let l = l.split('#').next().unwrap_or("").trim();
            (!l.is_empty()).then_some((i + 1, l))
        })
    }

    pub fn invalid(&self, line: usize, rule: &str, message: impl Into<String>) -> RulesError {
        RulesError::Invalid {
            file: self.origin.clone(),
            line,
            rule: rule.to_string(),
            message: message.into(),
        }
    }
}
