//! Kubernetes label selectors, evaluated the way the API server and Authorino evaluate them: `matchLabels` and
//! `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`) all hold; an empty selector selects everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

/// Whether `selector` selects an object carrying `labels`.
pub fn matches(selector: &LabelSelector, labels: &Labels) -> bool {
    let labels_hold =
        selector.match_labels.iter().flatten().all(|(key, value)| labels.get(key).is_some_and(|v| v == value));
    let expressions_hold = selector.match_expressions.iter().flatten().all(|requirement| {
        let value = labels.get(&requirement.key);
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator the API server would not have admitted: select nothing rather than everything.
            _ => false,
        }
    });
    labels_hold && expressions_hold
}

/// `{a: 1, b: 2}` as `a=1,b=2`, the way kubectl prints a selector.
pub fn display(labels: &Labels) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn match_labels_must_all_be_present_with_their_values() {
        let selector =
            LabelSelector { match_labels: Some(labels(&[("app", "toys"), ("tier", "gold")])), ..Default::default() };
        assert!(matches(&selector, &labels(&[("app", "toys"), ("tier", "gold"), ("extra", "x")])));
        assert!(!matches(&selector, &labels(&[("app", "toys")])));
        assert!(!matches(&selector, &labels(&[("app", "toys"), ("tier", "bronze")])));
    }

    #[test]
    fn an_empty_selector_selects_everything() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        assert!(matches(&LabelSelector::default(), &labels(&[("a", "b")])));
    }

    #[test]
    fn expressions_follow_the_api_servers_semantics() {
        let with =
            |e: LabelSelectorRequirement| LabelSelector { match_expressions: Some(vec![e]), ..Default::default() };
        let object = labels(&[("app", "toys")]);
        assert!(matches(&with(expression("app", "In", &["toys", "games"])), &object));
        assert!(!matches(&with(expression("app", "In", &["games"])), &object));
        assert!(!matches(&with(expression("app", "NotIn", &["toys"])), &object));
        assert!(matches(&with(expression("team", "NotIn", &["x"])), &object), "NotIn holds when the label is absent");
        assert!(matches(&with(expression("app", "Exists", &[])), &object));
        assert!(!matches(&with(expression("app", "DoesNotExist", &[])), &object));
        assert!(!matches(&with(expression("app", "Sometimes", &[])), &object), "an unknown operator selects nothing");
    }
}
