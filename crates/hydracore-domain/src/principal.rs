//! Who is authenticated behind a change: recorded on every history entry
//! beside the `actor` the request may name, so history tells who really
//! acted whatever an agent writes there.

use std::fmt;

use uuid::Uuid;

/// The authenticated party behind a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The agent runtime, by its instance's proxy key.
    Instance(Uuid),
    /// A tenant API key.
    ApiKey(Uuid),
    /// A tenant admin by JWT, named by its `sub`.
    User(String),
    /// The service itself (the sweeper).
    System,
}

impl Principal {
    /// Who decided, when this principal resumes a suspension: an API key's
    /// id, or an admin's `sub` when it is a UUID.
    pub fn approver_id(&self) -> Option<Uuid> {
        match self {
            Principal::ApiKey(id) => Some(*id),
            Principal::User(sub) => Uuid::try_parse(sub).ok(),
            Principal::Instance(_) | Principal::System => None,
        }
    }

    /// The `actor` a history entry names when the request does not name
    /// one: the seed's names (an admin's `sub` as it is).
    pub fn default_actor(&self) -> String {
        match self {
            Principal::User(sub) => sub.clone(),
            other => other.to_string(),
        }
    }
}

/// `instance:<id>`, `api_key:<id>`, `user:<sub>` or `system`.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Instance(id) => write!(f, "instance:{id}"),
            Principal::ApiKey(id) => write!(f, "api_key:{id}"),
            Principal::User(sub) => write!(f, "user:{sub}"),
            Principal::System => f.write_str("system"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_principal_reads_as_its_kind_and_id() {
        let id = Uuid::nil();
        assert_eq!(
            Principal::Instance(id).to_string(),
            format!("instance:{id}")
        );
        assert_eq!(Principal::ApiKey(id).to_string(), format!("api_key:{id}"));
        assert_eq!(Principal::User("ann".into()).to_string(), "user:ann");
        assert_eq!(Principal::System.to_string(), "system");
    }

    #[test]
    fn an_admin_is_named_in_the_actor_by_sub_alone_as_clients_of_the_seed_expect() {
        assert_eq!(Principal::User("ann".into()).default_actor(), "ann");
        assert_eq!(Principal::System.default_actor(), "system");
    }
}
