//! The resources apiportal defines (APIProduct, APIKey) and read-only views of the ones it discovers.

// kube's derive takes one `printcolumn(...)` per column; clippy reads the repeats as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
pub mod apikey;
#[allow(clippy::duplicated_attributes)]
pub mod apikeyrequest;
#[allow(clippy::duplicated_attributes)]
pub mod apiproduct;
pub mod authpolicy;
pub mod conditions;
pub mod httproute;
pub mod plan;
pub mod planpolicy;
