//! `If-Match` and `If-None-Match` preconditions on a workflow's version
//! (its `ETag`).

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// One of these versions. Tags that are not ours match nothing, and
    /// neither do weak tags (`W/"3"`): `If-Match` compares strongly
    /// (RFC 9110 §13.1.1).
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Reads a header value: `"3"`, `"3", "4"` or `*`.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return IfMatch::Any;
        }
        let versions = header
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
            })
            .collect();
        IfMatch::Versions(versions)
    }

    pub fn matches(&self, version: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

/// What an `If-None-Match` header asks for: a read answers 304 (or, with
/// `Prefer: wait`, waits) while the version is one the client has.
/// Compared weakly (RFC 9110 §13.1.2): `W/"3"` names version 3 too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNoneMatch(IfMatch);

impl IfNoneMatch {
    pub fn parse(header: &str) -> Self {
        let unweakened: Vec<&str> = header
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .collect();
        Self(IfMatch::parse(&unweakened.join(",")))
    }

    /// Whether the client already has `version`.
    pub fn has(&self, version: i64) -> bool {
        self.0.matches(version)
    }
}

/// The `ETag` of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_version_matches_only_itself() {
        assert!(IfMatch::parse("\"3\"").matches(3));
        assert!(!IfMatch::parse("\"3\"").matches(4));
    }

    #[test]
    fn lists_and_star_are_understood() {
        assert!(IfMatch::parse("\"1\", \"2\"").matches(2));
        assert!(IfMatch::parse("*").matches(99));
    }

    #[test]
    fn a_weak_tag_never_matches() {
        assert!(!IfMatch::parse("W/\"7\"").matches(7));
        assert!(!IfMatch::parse("W/\"7\", W/\"8\"").matches(8));
        assert!(IfMatch::parse("W/\"7\", \"8\"").matches(8));
    }

    #[test]
    fn tags_that_are_not_ours_match_nothing() {
        assert!(!IfMatch::parse("3").matches(3));
        assert!(!IfMatch::parse("\"abc\"").matches(0));
        assert!(!IfMatch::parse("").matches(1));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(IfNoneMatch::parse("W/\"7\"").has(7));
        assert!(IfNoneMatch::parse("\"6\", \"7\"").has(7));
        assert!(!IfNoneMatch::parse("\"6\"").has(7));
        assert!(IfNoneMatch::parse("*").has(1));
    }

    #[test]
    fn etags_round_trip() {
        assert!(IfMatch::parse(&etag(12)).matches(12));
    }
}
