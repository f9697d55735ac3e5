//! Traffic policy building blocks that depend on nothing else in the crate: IP networks and
//! a route's IP rules, and browser origins for CORS. The validator parses into these types;
//! the pipeline's stages decide with them.

pub mod cidr;
pub mod ip_rules;
pub mod origin;

#[cfg(test)]
mod tests;
