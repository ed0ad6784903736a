//! Access policy → IAM Identity Center account assignments.
//!
//! - [`policy`]: the version-controlled TOML policy (parse, validate, line/column diagnostics);
//! - [`pattern`]: group-name globs with `{capture}` placeholders;
//! - [`plan`]: policy + groups + accounts → the desired assignments (pure);
//! - [`reconcile`]: read actual assignments, diff, apply within IdC's quotas, safely.

pub mod pattern;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod reconcile;
pub mod sync;

pub use plan::{Account, AccountStatus, Assignment, Desired, Group, Inventory, plan};
pub use policy::Policy;
