//! The admin token: the one secret that opens the admin API and from which the seals of
//! cache keys and of shared JWKS copies are derived. Its strength is decided here, once, for
//! all three: a token shorter than [`MIN_TOKEN_BYTES`] is used for none of them.
//!
//! The admin API spends a client address's attempts before it looks at a token, which slows
//! guessing online; it does nothing for a seal guessed offline, nor for a short token guessed
//! over many addresses. 32 bytes (e.g. `openssl rand -base64 32`, 44 characters) puts the
//! token out of reach of both.

/// The shortest admin token the gateway uses, in bytes.
pub const MIN_TOKEN_BYTES: usize = 32;

/// What the configured admin token's secret holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminToken {
    /// No secret of that name, or an empty one: nobody is an admin and nothing is sealed.
    Absent,
    /// Shorter than [`MIN_TOKEN_BYTES`]: refused for everything, and the admin API says so
    /// (`admin_token_weak`), so the operator learns why it stays closed.
    Weak,
    /// Strong enough: the token itself.
    Usable(String),
}

impl AdminToken {
    /// Classifies the secret's value (`None`: the secret is not set).
    pub fn read(secret: Option<String>) -> AdminToken {
        match secret {
            None => AdminToken::Absent,
            Some(s) if s.is_empty() => AdminToken::Absent,
            Some(s) if s.len() < MIN_TOKEN_BYTES => AdminToken::Weak,
            Some(s) => AdminToken::Usable(s),
        }
    }

    /// The token when it may be used (to compare against, or to derive a seal from).
    pub fn usable(self) -> Option<String> {
        match self {
            AdminToken::Usable(s) => Some(s),
            AdminToken::Absent | AdminToken::Weak => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_of_at_least_32_bytes_is_used() {
        assert_eq!(AdminToken::read(None), AdminToken::Absent);
        assert_eq!(AdminToken::read(Some(String::new())), AdminToken::Absent);
        for short in ["x", "dev-admin-token", &"a".repeat(31)] {
            assert_eq!(
                AdminToken::read(Some(short.into())),
                AdminToken::Weak,
                "{short}"
            );
            assert_eq!(AdminToken::read(Some(short.into())).usable(), None);
        }
        let strong = "a".repeat(32);
        assert_eq!(
            AdminToken::read(Some(strong.clone())).usable(),
            Some(strong)
        );
        // Bytes, not characters: 11 three-byte characters are 33 bytes.
        assert!(AdminToken::read(Some("€".repeat(11))).usable().is_some());
        assert_eq!(AdminToken::read(Some("€".repeat(10))), AdminToken::Weak);
    }
}
