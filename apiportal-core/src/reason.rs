//! The vocabulary of status conditions, typed: which condition types apiportal's objects carry and every reason
//! the bridge gives. The bridge writes them, `doctor` and the plugin read them, the tests assert them; one table,
//! so a reason renamed is renamed everywhere, and a typo is a compile error instead of a condition nobody matches.

use strum::{AsRefStr, Display, EnumString, IntoStaticStr};

/// Condition types on APIProducts and APIKeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, AsRefStr, Display, EnumString, IntoStaticStr)]
pub enum ConditionType {
    /// Product: its route is accepted. Key: the gateway accepts it.
    Ready,
    /// Product: where its keys may be issued (an AuthPolicy that selects them by identity only).
    KeysIssuable,
    PlanPolicyDiscovered,
    AuthPolicyDiscovered,
    #[strum(serialize = "OIDCDiscovered")]
    OidcDiscovered,
    #[strum(serialize = "OpenAPISpecReady")]
    OpenApiSpecReady,
    /// Key: its `expiresAt` is near.
    ExpiringSoon,
    /// Key: the state of a plan change asked for.
    PlanChange,
}

/// Every reason a condition gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, AsRefStr, Display, EnumString, IntoStaticStr)]
pub enum Reason {
    // The product's route.
    #[strum(serialize = "HTTPRouteAccepted")]
    HttpRouteAccepted,
    #[strum(serialize = "HTTPRouteNotAccepted")]
    HttpRouteNotAccepted,
    #[strum(serialize = "HTTPRouteNotFound")]
    HttpRouteNotFound,
    // Policies found or not.
    Found,
    NotFound,
    AuthPolicyNotReady,
    // Where keys may be issued (KeysIssuable).
    ProductScopedSelector,
    AuthPolicyNotFound,
    AuthPolicyNotEnforced,
    #[strum(serialize = "NoAPIKeyAuthentication")]
    NoApiKeyAuthentication,
    AllNamespacesRefused,
    MatchExpressionsRefused,
    SelectorNamesAnotherProduct,
    SelectorNotProductScoped,
    SelectorConflictsWithKeys,
    SelectorHasForeignLabels,
    // OIDC discovery.
    Discovered,
    #[strum(serialize = "NoOIDCAuth")]
    NoOidcAuth,
    DiscoveryFailed,
    // The OpenAPI document.
    SpecFetched,
    NotAnOpenAPIDocument,
    SpecSizeTooLarge,
    RequestCreationFailed,
    FetchFailed,
    DestinationRefused,
    // A key.
    #[strum(serialize = "APIProductNotFound")]
    ApiProductNotFound,
    #[strum(serialize = "APIProductNotPublished")]
    ApiProductNotPublished,
    PlanTierNotFound,
    AwaitingApproval,
    KeysNotIssuable,
    KeyLimitReached,
    LifetimeTooLong,
    KeyIssued,
    Suspended,
    Rejected,
    Revoked,
    Expired,
    ExpiresSoon,
    // A plan change.
    PlanChangeApplied,
    PlanChangeRejected,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn names_are_the_ones_written_on_the_wire() {
        assert_eq!(Reason::HttpRouteNotFound.as_str(), "HTTPRouteNotFound");
        assert_eq!(Reason::NoApiKeyAuthentication.as_str(), "NoAPIKeyAuthentication");
        assert_eq!(ConditionType::OidcDiscovered.as_str(), "OIDCDiscovered");
        assert_eq!(Reason::from_str("SelectorHasForeignLabels"), Ok(Reason::SelectorHasForeignLabels));
        assert!(Reason::from_str("NoSuchReason").is_err());
    }
}
