//! `.dockerignore` for build contexts: glob patterns (`*`, `?`, `**`), `!` exceptions, the
//! last matching rule wins, and an excluded directory excludes what is under it.

use globset::{Glob, GlobMatcher};

pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(p) => (false, p.trim()),
                None => (true, line),
            };
            let pattern = pattern
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            let glob = Glob::new(pattern).map_err(|e| format!(".dockerignore: {e}"))?;
            rules.push((glob.compile_matcher(), exclude));
        }
        Ok(Self { rules })
    }

    /// Whether `path` (relative, with `/`) stays out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        // A rule on a parent directory applies to everything under it.
        let parents: Vec<&str> = path
            .match_indices('/')
            .map(|(i, _)| &path[..i])
            .chain(std::iter::once(path))
            .collect();
        for (glob, exclude) in &self.rules {
            if parents.iter().any(|p| glob.is_match(p)) {
                excluded = *exclude;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_exceptions_and_directories() {
        let ig = DockerIgnore::parse(
            "# comment\n.git\n*.log\n**/__pycache__\nbuild/\n!build/keep.txt\nsecret?.env\n",
        )
        .unwrap();
        assert!(ig.excludes(".git/config"));
        assert!(ig.excludes("debug.log"));
        assert!(ig.excludes("app/__pycache__/x.pyc"));
        assert!(ig.excludes("build/out.bin"));
        assert!(!ig.excludes("build/keep.txt"));
        assert!(ig.excludes("secret1.env"));
        assert!(!ig.excludes("app/main.py"));
        assert!(!ig.excludes("Dockerfile.prod"));
    }
}
