//! A plan tier's rate limits, exactly as Kuadrant's PlanPolicy writes them, shared by the PlanPolicy view, the
//! APIProduct's discovered plans and the APIKey's status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomLimit>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomLimit {
    pub limit: i64,
    /// A duration such as `1h30m` or `10s`.
    pub window: String,
}

impl PlanLimits {
    /// Human summary such as `100/day, 1000/month, 5/10s`; `unlimited` when nothing is set.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (value, unit) in
            [(self.daily, "day"), (self.weekly, "week"), (self.monthly, "month"), (self.yearly, "year")]
        {
            if let Some(v) = value {
                parts.push(format!("{v}/{unit}"));
            }
        }
        parts.extend(self.custom.iter().map(|c| format!("{}/{}", c.limit, c.window)));
        if parts.is_empty() { "unlimited".to_owned() } else { parts.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_window_in_order() {
        let limits = PlanLimits {
            daily: Some(100),
            monthly: Some(1000),
            custom: vec![CustomLimit { limit: 5, window: "10s".into() }],
            ..Default::default()
        };
        assert_eq!(limits.summary(), "100/day, 1000/month, 5/10s");
        assert_eq!(PlanLimits::default().summary(), "unlimited");
    }
}
