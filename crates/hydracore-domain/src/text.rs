//! Short names chosen by agents and admins, validated at the edge.

use serde::Serialize;

use crate::validation::{values, Invalid};

/// The longest action or step name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

macro_rules! bounded_name {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// 1 to [`MAX_NAME_CHARS`] characters, no NUL.
            pub fn parse(s: &str) -> Result<Self, Invalid> {
                let s = values::text_str(s)?;
                values::bounded(s, 1, MAX_NAME_CHARS).map(|s| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

bounded_name! {
    /// The audit action an advance records (`escalated`, `contacted_tier2`).
    ActionName
}

bounded_name! {
    /// The step a workflow is suspended at, waiting for a human.
    StepName
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_name_of_one_to_a_hundred_characters_is_accepted() {
        assert!(StepName::parse("a").is_ok());
        assert!(StepName::parse(&"x".repeat(100)).is_ok());
    }

    #[test]
    fn an_empty_step_name_is_too_short() {
        assert_eq!(
            StepName::parse("").err().map(|e| e.error_type),
            Some("string_too_short")
        );
    }

    #[test]
    fn an_action_name_over_a_hundred_characters_is_too_long() {
        assert_eq!(
            ActionName::parse(&"x".repeat(101))
                .err()
                .map(|e| e.error_type),
            Some("string_too_long")
        );
    }

    #[test]
    fn names_with_nul_are_refused() {
        assert!(ActionName::parse("a\0").is_err());
    }
}
