//! The kinds of workflow the platform runs.

/// Declares a closed string enum with its wire names, parsing and listing.
/// Shared by [`WorkflowType`] and [`crate::Status`], whose error messages
/// must list every accepted value the way pydantic does.
#[macro_export]
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        // The wire names are the variants in snake case (a test checks);
        // `rename_all` rather than per-variant renames because derive
        // macros cannot read literals passed through `macro_rules`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The accepted values as pydantic lists them in an `enum` error:
            /// `'a', 'b' or 'c'`.
            pub fn expected() -> String {
                $crate::validation::expected_list(Self::ALL.iter().map(|v| v.as_str()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// What a workflow is about; fixed by the agent at create.
    WorkflowType {
        Lead => "lead",
        RentArrears => "rent_arrears",
        Maintenance => "maintenance",
        ComplianceRenewal => "compliance_renewal",
        Viewing => "viewing",
        Roster => "roster",
        Approval => "approval",
        InvoiceChase => "invoice_chase",
        Onboarding => "onboarding",
        Custom => "custom",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_wire_name() {
        assert_eq!(WorkflowType::ALL.len(), 10);
        for t in WorkflowType::ALL {
            assert_eq!(WorkflowType::parse(t.as_str()), Some(*t));
        }
    }

    #[test]
    fn serde_and_the_wire_names_agree() {
        for t in WorkflowType::ALL {
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::json!(t.as_str()))
            );
        }
    }

    #[test]
    fn unknown_and_differently_cased_names_are_refused() {
        assert_eq!(WorkflowType::parse("Lead"), None);
        assert_eq!(WorkflowType::parse(""), None);
        assert_eq!(WorkflowType::parse("rent-arrears"), None);
    }

    #[test]
    fn expected_list_reads_like_pydantic() {
        let expected = WorkflowType::expected();
        assert!(expected.starts_with("'lead', 'rent_arrears'"));
        assert!(expected.ends_with("'onboarding' or 'custom'"));
    }
}
