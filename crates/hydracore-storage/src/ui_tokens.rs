//! The web page's tokens and what they stand for: a one-time sign-in link,
//! a signed-in session, and an approval link that answers one suspension
//! without signing in.
//!
//! A token is handed out once, as base64url of its tenant (16 bytes) and a
//! random secret (32 bytes); the store keeps the secret's SHA-256 under the
//! tenant. The tenant in the token is what lets a request find its row
//! under the tenant's row-level security, as every other request does.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::request::ResumeWorkflow;
use hydracore_domain::transition::Command;
use hydracore_domain::{Principal, Scope, Status, Timestamp, Workflow};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::rows::Columns;
use crate::service::{Acted, UseCaseError, Workflows};
use crate::{Store, StoreError, WithHistory};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiTokenKind {
    /// Opens a session once, for a short time.
    SignIn,
    /// A signed-in browser, until it signs out or the session expires.
    Session,
    /// Answers one suspension once.
    Approval,
}

impl UiTokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Session => "session",
            Self::Approval => "approval",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sign_in" => Some(Self::SignIn),
            "session" => Some(Self::Session),
            "approval" => Some(Self::Approval),
            _ => None,
        }
    }
}

/// A token's row.
#[derive(Debug, Clone, PartialEq)]
pub struct UiToken {
    pub tenant_id: Uuid,
    pub token_hash: Vec<u8>,
    pub kind: UiTokenKind,
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

impl UiToken {
    /// Neither ended nor expired at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }
}

/// The columns [`ui_token_row`] reads, in its order.
pub const UI_TOKEN_COLUMNS: &str =
    "tenant_id, token_hash, kind, detail, created_at, expires_at, ended_at";

pub fn ui_token_row(row: &impl Columns, hash: Vec<u8>) -> Result<UiToken, StoreError> {
    let kind = row.text(2)?;
    Ok(UiToken {
        tenant_id: row.uuid(0)?,
        token_hash: hash,
        kind: UiTokenKind::parse(&kind)
            .ok_or_else(|| crate::rows::corrupt("ui token kind", &kind))?,
        detail: row.json(3)?,
        created_at: row.time(4)?,
        expires_at: row.time(5)?,
        ended_at: row.opt_time(6)?,
    })
}

/// A token as handed out: its tenant and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText {
    tenant_id: Uuid,
    secret: [u8; SECRET_BYTES],
}

const SECRET_BYTES: usize = 32;

impl TokenText {
    fn mint(tenant_id: Uuid) -> Self {
        let mut secret = [0; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self { tenant_id, secret }
    }

    /// `None` for anything that is not a token's text.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
        let (tenant, secret) = bytes.split_at_checked(16)?;
        Some(Self {
            tenant_id: Uuid::from_slice(tenant).ok()?,
            secret: secret.try_into().ok()?,
        })
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.secret).to_vec()
    }
}

impl std::fmt::Display for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = self.tenant_id.as_bytes().to_vec();
        bytes.extend_from_slice(&self.secret);
        f.write_str(&URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// Never printed: a token in a log would sign its reader in.
impl std::fmt::Debug for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenText(tenant {}, secret hidden)", self.tenant_id)
    }
}

/// Who a session (or the sign-in link that opens one) is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// Who history names behind what the session does (`user:<sub>`,
    /// `api_key:<id>`).
    pub principal: String,
    /// The scopes the session holds (a JWT admin's or a key's).
    pub scopes: Vec<String>,
    /// The SHA-256 of the API key the session was opened with: the session
    /// ends when that key is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// The form token every state-changing request of the session carries.
    pub csrf: String,
}

/// The suspension an approval link answers, and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDetail {
    pub link_id: Uuid,
    pub workflow_id: Uuid,
    /// The record's version when the link was made: any change since (the
    /// suspension answered, or ended another way) retires the link.
    pub version: i64,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An approval link as its creator receives it.
#[derive(Debug, Clone)]
pub struct ApprovalLink {
    pub token: TokenText,
    pub detail: ApprovalDetail,
    pub expires_at: Timestamp,
}

/// Why an approval link did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalRefused {
    /// Unknown, used, expired, or its suspension is over.
    #[error("this approval link is no longer valid")]
    Gone,
    #[error(transparent)]
    UseCase(#[from] UseCaseError),
}

/// The page's token use cases.
#[derive(Clone)]
pub struct UiTokens {
    store: Arc<dyn Store>,
}

impl UiTokens {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// A new token of `kind` for `tenant_id`, standing for `detail`, live
    /// for `ttl`.
    pub async fn issue(
        &self,
        tenant_id: Uuid,
        kind: UiTokenKind,
        detail: &impl Serialize,
        ttl: Duration,
    ) -> Result<(TokenText, Timestamp), StoreError> {
        let token = TokenText::mint(tenant_id);
        let now = Timestamp::now();
        let expires_at = now
            .plus_seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
            .ok_or_else(|| {
                StoreError::Config(format!("a token lifetime of {ttl:?} is too long"))
            })?;
        let detail = serde_json::to_value(detail)
            .map_err(|e| StoreError::Corrupt(format!("token detail: {e}")))?;
        self.store
            .insert_ui_token(&UiToken {
                tenant_id,
                token_hash: token.hash(),
                kind,
                detail,
                created_at: now,
                expires_at,
                ended_at: None,
            })
            .await?;
        Ok((token, expires_at))
    }

    /// The live token of `kind` that `token` is, if any.
    pub async fn find(
        &self,
        token: &TokenText,
        kind: UiTokenKind,
    ) -> Result<Option<UiToken>, StoreError> {
        let scope = Scope::tenant(token.tenant_id);
        let found = self.store.get_ui_token(scope, &token.hash()).await?;
        Ok(found.filter(|t| t.kind == kind && t.is_live(Timestamp::now())))
    }

    /// Uses a single-use token of `kind`: `Some` for the one call that
    /// ends it while live, `None` for every other.
    pub async fn spend(
        &self,
        token: &TokenText,
        kind: UiTokenKind,
    ) -> Result<Option<UiToken>, StoreError> {
        let Some(found) = self.find(token, kind).await? else {
            return Ok(None);
        };
        let scope = Scope::tenant(token.tenant_id);
        let ended = self
            .store
            .end_ui_token(scope, &token.hash(), Timestamp::now())
            .await?;
        Ok(ended.then_some(found))
    }

    /// Ends a session (sign out); a session already ended stays so.
    pub async fn end(&self, token: &TokenText) -> Result<(), StoreError> {
        let scope = Scope::tenant(token.tenant_id);
        self.store
            .end_ui_token(scope, &token.hash(), Timestamp::now())
            .await?;
        Ok(())
    }

    /// A link that answers workflow `id`'s current suspension once, made
    /// by `by` in `scope`, live for `ttl`.
    pub async fn create_approval_link(
        &self,
        workflows: &Workflows,
        scope: Scope,
        id: Uuid,
        by: &Principal,
        ttl: Duration,
        note: Option<String>,
    ) -> Result<ApprovalLink, UseCaseError> {
        let workflow = workflows.get(scope, id, WithHistory::No).await?;
        if workflow.status != Status::Suspended {
            return Err(UseCaseError::Refused(
                hydracore_domain::transition::TransitionError::NotSuspended(workflow.status),
            ));
        }
        let detail = ApprovalDetail {
            link_id: Uuid::now_v7(),
            workflow_id: id,
            version: workflow.version,
            created_by: by.to_string(),
            note,
        };
        let (token, expires_at) = self
            .issue(scope.tenant_id, UiTokenKind::Approval, &detail, ttl)
            .await?;
        Ok(ApprovalLink {
            token,
            detail,
            expires_at,
        })
    }

    /// The suspension `token` answers, while it still can.
    pub async fn approval(
        &self,
        workflows: &Workflows,
        token: &TokenText,
    ) -> Result<(ApprovalDetail, Workflow), ApprovalRefused> {
        let found = self
            .find(token, UiTokenKind::Approval)
            .await
            .map_err(UseCaseError::from)?
            .ok_or(ApprovalRefused::Gone)?;
        let detail: ApprovalDetail = serde_json::from_value(found.detail)
            .map_err(|e| UseCaseError::from(StoreError::Corrupt(format!("approval link: {e}"))))?;
        let scope = Scope::tenant(token.tenant_id);
        let workflow = match workflows
            .get(scope, detail.workflow_id, WithHistory::No)
            .await
        {
            Ok(w) => w,
            Err(UseCaseError::NotFound) => return Err(ApprovalRefused::Gone),
            Err(e) => return Err(e.into()),
        };
        if workflow.version != detail.version || workflow.status != Status::Suspended {
            return Err(ApprovalRefused::Gone);
        }
        Ok((detail, workflow))
    }

    /// Resumes the suspension `token` answers (`detail`, as
    /// [`Self::approval`] found it) with `resume`. The resume runs with
    /// `If-Match` on the link's version, so of two answers at once only one
    /// applies, and none once the suspension moved on; the link is then
    /// ended. An answer the suspension's schema refuses leaves the link
    /// usable.
    pub async fn answer_approval(
        &self,
        workflows: &Workflows,
        token: &TokenText,
        detail: &ApprovalDetail,
        resume: ResumeWorkflow,
    ) -> Result<Acted, ApprovalRefused> {
        let creator = detail.created_by.parse::<Principal>().map_err(|_| {
            UseCaseError::from(StoreError::Corrupt(format!(
                "approval link creator {:?}",
                detail.created_by
            )))
        })?;
        let by = Principal::ApprovalLink {
            link_id: detail.link_id,
            created_by: Box::new(creator),
        };
        let acted = workflows
            .act(
                Scope::tenant(token.tenant_id),
                detail.workflow_id,
                Command::Resume(resume),
                &by,
                Some(IfMatch::Versions(vec![detail.version])),
                None,
            )
            .await;
        match acted {
            Ok(acted) => {
                // The version moved on: the link is dead whether or not
                // this lands.
                let _ = self.end(token).await;
                Ok(acted)
            }
            Err(UseCaseError::Refused(
                hydracore_domain::transition::TransitionError::VersionMismatch { .. }
                | hydracore_domain::transition::TransitionError::NotSuspended(_),
            )) => Err(ApprovalRefused::Gone),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes up to `limit` tokens that expired before `before`.
    pub async fn purge(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.store.purge_ui_tokens(before, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_its_tenant_and_secret_and_nothing_else_does() {
        let token = TokenText::mint(Uuid::now_v7());
        let parsed = TokenText::parse(&token.to_string());
        assert_eq!(parsed.as_ref(), Some(&token));
        assert_eq!(parsed.map(|t| t.hash()), Some(token.hash()));
        assert!(TokenText::parse("").is_none());
        assert!(TokenText::parse("not a token").is_none());
        assert!(TokenText::parse(&token.to_string()[..40]).is_none());
    }

    #[test]
    fn a_token_is_never_printed_in_debug_output() {
        let token = TokenText::mint(Uuid::nil());
        assert!(!format!("{token:?}").contains(&token.to_string()));
    }
}
