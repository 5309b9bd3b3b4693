//! Workflow statuses and which of them are final.

crate::wire_enum! {
    /// Where a workflow stands. `active` at create.
    Status {
        Active => "active",
        AwaitingApproval => "awaiting_approval",
        Paused => "paused",
        Suspended => "suspended",
        Completed => "completed",
        Expired => "expired",
        Cancelled => "cancelled",
        Failed => "failed",
    }
}

impl Status {
    /// A terminal workflow is closed: it can no longer be advanced,
    /// suspended, resumed or aborted, and it has a `completed_at`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Expired | Status::Cancelled | Status::Failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_four_statuses_are_terminal() {
        let terminal: Vec<_> = Status::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [
                &Status::Completed,
                &Status::Expired,
                &Status::Cancelled,
                &Status::Failed
            ]
        );
    }

    #[test]
    fn statuses_serialize_as_their_wire_names() {
        assert_eq!(
            serde_json::to_string(&Status::AwaitingApproval)
                .ok()
                .as_deref(),
            Some("\"awaiting_approval\"")
        );
        assert_eq!(Status::ALL.len(), 8);
    }
}
