//! The strength rule for the OwnerRez webhook password, which guards an endpoint anyone can
//! reach and which revokes users' grants.

use super::ConfigError;

/// The shortest webhook password accepted, in characters.
const MIN_WEBHOOK_PASSWORD_CHARS: usize = 16;
/// The least estimated strength of a webhook password, in bits.
const MIN_WEBHOOK_PASSWORD_BITS: f64 = 80.0;

/// The webhook password guards an unauthenticated endpoint that revokes users' grants, so it
/// must resist guessing: at least 16 characters and about 80 bits by a simple estimate (the
/// length times the bits of the character classes used, and never from a handful of distinct
/// characters). `openssl rand -base64 24` passes easily.
pub fn check_webhook_password(key: &str, password: &str) -> Result<(), ConfigError> {
    let length = password.chars().count();
    let bits = estimated_bits(password);
    if length < MIN_WEBHOOK_PASSWORD_CHARS || bits < MIN_WEBHOOK_PASSWORD_BITS {
        return Err(ConfigError::new(
            key,
            format!(
                "is too weak ({length} characters, about {bits:.0} bits): use at least {MIN_WEBHOOK_PASSWORD_CHARS} random characters and {MIN_WEBHOOK_PASSWORD_BITS:.0} bits, e.g. `openssl rand -base64 24`"
            ),
        ));
    }
    Ok(())
}

/// A rough strength estimate: length × log2 of the alphabet the character classes suggest,
/// and zero for a value of fewer than 8 (or under a quarter) distinct characters, which no
/// random generator produces at these lengths.
fn estimated_bits(password: &str) -> f64 {
    let mut distinct: Vec<char> = password.chars().collect();
    let length = distinct.len();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 8 || distinct.len() * 4 < length {
        return 0.0;
    }
    let has = |class: fn(&char) -> bool, size: u32| {
        if distinct.iter().any(class) { size } else { 0 }
    };
    let alphabet = has(char::is_ascii_lowercase, 26)
        + has(char::is_ascii_uppercase, 26)
        + has(char::is_ascii_digit, 10)
        + has(|c| !c.is_ascii_alphanumeric(), 33);
    length as f64 * f64::from(alphabet).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_passwords_must_resist_guessing() {
        let cases = [
            ("a short password", "hook-secret", false),
            (
                "16 lowercase letters: about 75 bits",
                "passwordpassword",
                false,
            ),
            (
                "one character repeated",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            (
                "a few characters repeated",
                "abcabcabcabcabcabcabcabcabcabc12",
                false,
            ),
            ("openssl rand -base64 12", "q3Vx8Rk2TzP0mN7w", true),
            (
                "openssl rand -base64 24",
                "q3Vx8Rk2TzP0mN7wLs4YbHc9JfGd1Ae6",
                true,
            ),
            (
                "openssl rand -hex 16",
                "9f86d081884c7d659a2feaa0c55ad015",
                true,
            ),
            ("a long passphrase", "correct horse battery staple", true),
        ];
        for (name, password, accepted) in cases {
            let result = check_webhook_password("upstream.ownerrez.webhook_password", password);
            assert_eq!(result.is_ok(), accepted, "{name}: {result:?}");
            if let Err(error) = result {
                assert_eq!(error.key, "upstream.ownerrez.webhook_password", "{name}");
                assert!(
                    !error.message.contains(password),
                    "{name}: the password is not echoed"
                );
            }
        }
    }
}
