//! The quarantine: messages held instead of delivered, kept durably under the
//! state directory until someone releases or deletes them.

pub mod store;

pub use store::{Store, StoreError};
