//! The paths the follow mode watches: literal paths (which may not exist yet) and glob
//! patterns, expanded again on every poll so files created later are picked up.
//!
//! A path component holding `*`, `?` or `[` is a glob (`globset` syntax within the
//! component: `*` any run of characters, `?` one, `[a-z]`, `[!a-z]` or `[^a-z]` one of a set,
//! `{log,txt}` alternatives, `\x` the character `x`). A wildcard never crosses a `/`, and a
//! name starting with `.` is matched only by a component that starts with `.` too, as in the
//! shell.

use globset::{GlobBuilder, GlobMatcher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A command-line path that is not a usable pattern.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("cannot make {0:?} an absolute path")]
    Absolute(String, #[source] std::io::Error),
    #[error("{pattern:?} is not a valid glob pattern")]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
}

/// One component of a pattern.
#[derive(Debug, Clone)]
enum Part {
    /// A name (or the root, `.`, `..`) taken as it is.
    Literal(PathBuf),
    /// A wildcard name, and whether it matches names starting with `.`.
    Glob { matcher: GlobMatcher, dot: bool },
}

/// One command-line path, made absolute.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The absolute path or pattern, as text (names the state file).
    pub text: String,
    path: PathBuf,
    /// `None` for a literal path.
    parts: Option<Vec<Part>>,
}

impl Pattern {
    /// A path relative to the working directory is made absolute.
    pub fn new(arg: &str) -> Result<Pattern, PatternError> {
        let path =
            std::path::absolute(arg).map_err(|e| PatternError::Absolute(arg.to_string(), e))?;
        let text = path.to_string_lossy().into_owned();
        let glob = path
            .components()
            .any(|c| matches!(c, Component::Normal(n) if has_wildcard(n.as_bytes())));
        let parts = if glob {
            Some(
                path.components()
                    .map(|c| part(c, &text))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        Ok(Pattern { text, path, parts })
    }

    /// The regular files the pattern names right now, sorted (a literal path: itself, when it
    /// is a regular file or a link to one).
    pub fn expand(&self) -> Vec<PathBuf> {
        let Some(parts) = &self.parts else {
            return if self.path.is_file() {
                vec![self.path.clone()]
            } else {
                Vec::new()
            };
        };
        let mut current = vec![PathBuf::new()];
        for part in parts {
            current = match part {
                Part::Literal(name) => current.iter().map(|dir| dir.join(name)).collect(),
                Part::Glob { matcher, dot } => current
                    .iter()
                    .flat_map(|dir| matching_entries(dir, matcher, *dot))
                    .collect(),
            };
            if current.is_empty() {
                break;
            }
        }
        current.retain(|p| p.is_file());
        current.sort();
        current
    }
}

/// A pattern component: a glob when it holds a wildcard.
fn part(component: Component<'_>, pattern: &str) -> Result<Part, PatternError> {
    let name = component.as_os_str();
    if !matches!(component, Component::Normal(_)) || !has_wildcard(name.as_bytes()) {
        return Ok(Part::Literal(PathBuf::from(name)));
    }
    let text = name.to_string_lossy();
    let glob = GlobBuilder::new(&text)
        .literal_separator(true)
        .backslash_escape(true)
        .allow_unclosed_class(true)
        .build()
        .map_err(|source| PatternError::Glob {
            pattern: pattern.to_string(),
            source,
        })?;
    Ok(Part::Glob {
        matcher: glob.compile_matcher(),
        dot: text.starts_with('.'),
    })
}

/// The entries of `dir` whose names match.
fn matching_entries(dir: &Path, matcher: &GlobMatcher, dot: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| (dot || !name.as_bytes().starts_with(b".")) && matcher.is_match(name))
        .map(|name| dir.join(name))
        .collect()
}

fn has_wildcard(name: &[u8]) -> bool {
    name.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the name `n` matches the component pattern `p`, as [`Pattern::expand`] does.
    fn m(p: &str, n: &str) -> bool {
        match part(Component::Normal(p.as_ref()), p).expect("pattern") {
            Part::Glob { matcher, dot } => (dot || !n.starts_with('.')) && matcher.is_match(n),
            Part::Literal(name) => name.as_os_str() == n,
        }
    }

    #[test]
    fn wildcards() {
        assert!(m("*.log", "app.log"));
        assert!(!m("*.log", ".log"));
        assert!(m(".*", ".hidden"));
        assert!(!m("*.log", "app.log.1"));
        assert!(m("app.log*", "app.log"));
        assert!(m("app.log*", "app.log.1"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("app-[0-9].log", "app-7.log"));
        assert!(!m("app-[0-9].log", "app-x.log"));
        assert!(m("app-[!0-9].log", "app-x.log"));
        assert!(m("app-[^0-9].log", "app-x.log"));
        assert!(m("[]x]", "]"));
        assert!(m("[ab", "[ab"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("*", "anything"));
        assert!(m("**", "x"));
        assert!(m("app.{log,txt}*", "app.txt.1"));
        assert!(!m("app.{log,txt}", "app.csv"));
    }

    #[test]
    fn expands_globs_in_any_component() {
        let dir = tempfile::tempdir().unwrap();
        for (sub, name) in [
            ("a", "one.log"),
            ("a", "two.txt"),
            ("b", "three.log"),
            ("b", ".hidden.log"),
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join(name), "x\n").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("c.log")).unwrap();
        let p = Pattern::new(&format!("{}/*/*.log", dir.path().display())).unwrap();
        let got: Vec<PathBuf> = p.expand();
        assert_eq!(
            got,
            vec![dir.path().join("a/one.log"), dir.path().join("b/three.log")]
        );
        let p = Pattern::new(&format!("{}/*.log", dir.path().display())).unwrap();
        assert!(p.expand().is_empty(), "directories are not followed");
        let p = Pattern::new(&format!("{}/*.log", dir.path().join("a").display())).unwrap();
        assert_eq!(p.expand(), vec![dir.path().join("a/one.log")]);
        let p = Pattern::new(&format!("{}/*one.log", dir.path().display())).unwrap();
        assert!(p.expand().is_empty(), "a wildcard does not cross a /");
        let p = Pattern::new(&format!("{}/b/.*.log", dir.path().display())).unwrap();
        assert_eq!(p.expand(), vec![dir.path().join("b/.hidden.log")]);
        let literal = Pattern::new(&format!("{}/a/one.log", dir.path().display())).unwrap();
        assert_eq!(literal.expand(), vec![dir.path().join("a/one.log")]);
        let missing = Pattern::new(&format!("{}/a/later.log", dir.path().display())).unwrap();
        assert!(missing.expand().is_empty());
    }
}
