//! Access policy → IAM Identity Center account assignments.
//!
//! - [`policy`]: the version-controlled TOML policy (parse, validate, line/column diagnostics);
//! - [`pattern`]: group-name globs with `{capture}` placeholders;
//! - [`mod@plan`]: policy + groups + accounts → the desired assignments (pure);
//! - [`reconcile`]: the reconciler's phases (read, plan, guard, apply, remember) within IdC's
//!   quotas;
//! - [`sync`]: the `access-sync` handler (queue, schedule and Organizations triggers);
//! - [`ports`]: IAM Identity Center and Organizations as the reconciler sees them.

pub mod grants;
pub mod import;
pub mod ledger;
pub mod pattern;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod reconcile;
pub mod review;
pub mod revoke;
pub mod revoke_policy;
pub mod sync;

pub use plan::{Account, AccountStatus, Assignment, Desired, Group, Inventory, plan};
pub use policy::Policy;
