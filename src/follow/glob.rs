//! The paths the follow mode watches: literal paths (which may not exist yet) and glob
//! patterns (`*`, `?`, `[a-z]`, `[!0-9]` within a path component), expanded again on every
//! poll so files created later are picked up.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, PathBuf};

/// One command-line path, made absolute.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The absolute path or pattern, as text (names the state file).
    pub text: String,
    path: PathBuf,
    glob: bool,
}

impl Pattern {
    /// A path relative to the working directory is made absolute.
    pub fn new(arg: &str) -> anyhow::Result<Pattern> {
        use anyhow::Context;
        let path = std::path::absolute(arg)
            .with_context(|| format!("cannot make {arg:?} an absolute path"))?;
        let glob = path
            .components()
            .any(|c| matches!(c, Component::Normal(n) if has_wildcard(n.as_bytes())));
        Ok(Pattern {
            text: path.to_string_lossy().into_owned(),
            path,
            glob,
        })
    }

    /// The regular files the pattern names right now, sorted (a literal path: itself, when it
    /// is a regular file or a link to one).
    pub fn expand(&self) -> Vec<PathBuf> {
        if !self.glob {
            return if self.path.is_file() {
                vec![self.path.clone()]
            } else {
                Vec::new()
            };
        }
        let mut current = vec![PathBuf::new()];
        for component in self.path.components() {
            let mut next = Vec::new();
            match component {
                Component::Normal(name) if has_wildcard(name.as_bytes()) => {
                    for dir in &current {
                        let Ok(entries) = std::fs::read_dir(dir) else {
                            continue;
                        };
                        for entry in entries.flatten() {
                            let file_name = entry.file_name();
                            if wildcard(name.as_bytes(), file_name.as_bytes()) {
                                next.push(dir.join(file_name));
                            }
                        }
                    }
                }
                other => {
                    for dir in &current {
                        next.push(dir.join(other.as_os_str()));
                    }
                }
            }
            current = next;
            if current.is_empty() {
                break;
            }
        }
        current.retain(|p| p.is_file());
        current.sort();
        current
    }
}

fn has_wildcard(name: &[u8]) -> bool {
    name.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Whether `name` matches the shell wildcard `pattern`: `*` any run of characters, `?` one,
/// `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one of a set, `\x` the character `x`. A
/// leading `.` must be matched explicitly, as in the shell.
pub fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    let (mut p, mut n) = (0usize, 0usize);
    // Where the last `*` was, and how much of the name it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pattern[p..], name[n]) {
                        if matched {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                star = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches `c` against the bracket expression at the start of `pattern`; returns whether it
/// matched and the expression's length, or `None` when the `[` is not closed.
fn class(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let b = *pattern.get(i)?;
        if b == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            let end = pattern[i + 2];
            if b <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if b == c {
                matched = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        wildcard(p.as_bytes(), n.as_bytes())
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
        let literal = Pattern::new(&format!("{}/a/one.log", dir.path().display())).unwrap();
        assert_eq!(literal.expand(), vec![dir.path().join("a/one.log")]);
        let missing = Pattern::new(&format!("{}/a/later.log", dir.path().display())).unwrap();
        assert!(missing.expand().is_empty());
    }
}
