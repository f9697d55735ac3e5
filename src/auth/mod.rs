//! Authentication: JWT and API-key schemes.

pub mod jwk;
