//! The generic OAuth 2.0 provider (being written).
