//! The OwnerRez provider (being written).
