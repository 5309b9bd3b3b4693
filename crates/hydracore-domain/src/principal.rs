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
    /// Whoever opened an approval link, acting for the link's creator.
    ApprovalLink {
        link_id: Uuid,
        created_by: Box<Principal>,
    },
}

impl Principal {
    /// Who decided, when this principal resumes a suspension: an API key's
    /// id, or an admin's `sub` when it is a UUID.
    pub fn approver_id(&self) -> Option<Uuid> {
        match self {
            Principal::ApiKey(id) => Some(*id),
            Principal::User(sub) => Uuid::try_parse(sub).ok(),
            Principal::ApprovalLink { created_by, .. } => created_by.approver_id(),
            Principal::Instance(_) | Principal::System => None,
        }
    }

    /// The `actor` a history entry names when the request does not name
    /// one: the seed's names (an admin's `sub` as it is).
    pub fn default_actor(&self) -> String {
        match self {
            Principal::User(sub) => sub.clone(),
            Principal::ApprovalLink { created_by, .. } => {
                format!("{} via approval link", created_by.default_actor())
            }
            other => other.to_string(),
        }
    }
}

/// `instance:<id>`, `api_key:<id>`, `user:<sub>`, `system`, or
/// `approval_link:<id>:` followed by the creator's.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Instance(id) => write!(f, "instance:{id}"),
            Principal::ApiKey(id) => write!(f, "api_key:{id}"),
            Principal::User(sub) => write!(f, "user:{sub}"),
            Principal::System => f.write_str("system"),
            Principal::ApprovalLink {
                link_id,
                created_by,
            } => write!(f, "approval_link:{link_id}:{created_by}"),
        }
    }
}

/// The text [`Principal`]'s `Display` writes was not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a principal: {0:?}")]
pub struct NotAPrincipal(String);

/// Reads back what `Display` wrote.
impl std::str::FromStr for Principal {
    type Err = NotAPrincipal;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refused = || NotAPrincipal(text.to_owned());
        let id = |s: &str| Uuid::try_parse(s).map_err(|_| refused());
        if text == "system" {
            return Ok(Principal::System);
        }
        let (kind, rest) = text.split_once(':').ok_or_else(refused)?;
        match kind {
            "instance" => Ok(Principal::Instance(id(rest)?)),
            "api_key" => Ok(Principal::ApiKey(id(rest)?)),
            "user" => Ok(Principal::User(rest.to_owned())),
            "approval_link" => {
                let (link, creator) = rest.split_once(':').ok_or_else(refused)?;
                Ok(Principal::ApprovalLink {
                    link_id: id(link)?,
                    created_by: Box::new(creator.parse()?),
                })
            }
            _ => Err(refused()),
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
    fn every_principal_reads_back_from_its_text() {
        let id = Uuid::now_v7();
        for p in [
            Principal::Instance(id),
            Principal::ApiKey(id),
            Principal::User("ann:admin".into()),
            Principal::System,
            Principal::ApprovalLink {
                link_id: id,
                created_by: Box::new(Principal::User("ann".into())),
            },
        ] {
            assert_eq!(p.to_string().parse::<Principal>(), Ok(p));
        }
        assert!("nobody".parse::<Principal>().is_err());
    }

    #[test]
    fn an_answer_through_an_approval_link_names_the_links_creator() {
        let by = Principal::ApprovalLink {
            link_id: Uuid::nil(),
            created_by: Box::new(Principal::User("ann".into())),
        };
        assert_eq!(by.default_actor(), "ann via approval link");
    }

    #[test]
    fn an_admin_is_named_in_the_actor_by_sub_alone_as_clients_of_the_seed_expect() {
        assert_eq!(Principal::User("ann".into()).default_actor(), "ann");
        assert_eq!(Principal::System.default_actor(), "system");
    }
}
