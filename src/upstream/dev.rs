//! The dev provider (being written).
