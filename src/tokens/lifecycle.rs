//! The signing-key lifecycle as a pure function of time.
//!
//! A key's state is derived from the activation times of all keys, never stored, so every
//! instance sharing the database agrees on it without coordination:
//! - *next*: `activates_at` is in the future. Published in the JWKS, not signing.
//! - *active*: the key with the latest `activates_at` that has passed. It signs.
//! - *retired*: a newer key has become active. Still published, so tokens it signed verify,
//!   until `retire_for` seconds after its successor activated (the longest a token it signed
//!   can live).
//! - *removed*: past that. Deleted from the database and the JWKS.
//!
//! A scheduled rotation ([`rotation_due`]) publishes the successor of the active key one
//! activation delay before the key has signed for its period.

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    pub fn is_published(self) -> bool {
        self != KeyState::Removed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }
}

/// The states of keys given by their activation times, **sorted ascending** (ties broken by
/// the caller's order), at `now`. `retire_for` is how long a retired key stays published.
pub fn key_states(activations: &[i64], now: i64, retire_for: i64) -> Vec<KeyState> {
    let active = activations.iter().rposition(|&at| at <= now);
    activations
        .iter()
        .enumerate()
        .map(|(i, _)| match active {
            Some(a) if i == a => KeyState::Active,
            Some(a) if i < a => {
                // Retired when the next key in order activated (it has, since it is at or
                // before the active one).
                let successor_activated = activations[i + 1];
                if now < successor_activated + retire_for {
                    KeyState::Retired
                } else {
                    KeyState::Removed
                }
            }
            _ => KeyState::Next,
        })
        .collect()
}

/// Whether the key active since `active_since` is due for its scheduled successor at `now`:
/// a key signs for `period` seconds, and its successor must be published `activation_delay`
/// before it takes over, so the rotation starts that much earlier. An instance that was down
/// at that moment rotates at once (the successor then takes over a little late, never early).
pub fn rotation_due(active_since: i64, now: i64, period: i64, activation_delay: i64) -> bool {
    now >= active_since
        .saturating_add(period)
        .saturating_sub(activation_delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyState::*;

    #[test]
    fn rotation_schedule() {
        let (day, delay) = (86_400, 900);
        let cases = [
            ("a fresh key is not due", 0, false),
            (
                "one second before the successor must be published",
                day - delay - 1,
                false,
            ),
            (
                "exactly when the successor must be published",
                day - delay,
                true,
            ),
            ("a period later (an instance was down)", 2 * day, true),
        ];
        for (name, now, due) in cases {
            assert_eq!(rotation_due(0, now, day, delay), due, "{name}");
        }
    }

    #[test]
    fn lifecycle_table() {
        let retire_for = 100;
        let cases: &[(&str, &[i64], i64, &[KeyState])] = &[
            ("no keys", &[], 50, &[]),
            ("single key active", &[0], 50, &[Active]),
            ("single key not yet active", &[60], 50, &[Next]),
            ("rotation pending", &[0, 60], 50, &[Active, Next]),
            (
                "rotation at the instant of activation",
                &[0, 60],
                60,
                &[Retired, Active],
            ),
            (
                "retired key still published",
                &[0, 60],
                159,
                &[Retired, Active],
            ),
            (
                "retired key removed after retire_for",
                &[0, 60],
                160,
                &[Removed, Active],
            ),
            (
                "two rotations",
                &[0, 60, 120],
                130,
                &[Retired, Retired, Active],
            ),
            (
                "oldest removed first",
                &[0, 60, 120],
                165,
                &[Removed, Retired, Active],
            ),
            (
                "same activation: last in order wins",
                &[0, 0],
                10,
                &[Retired, Active],
            ),
        ];
        for (name, activations, now, expected) in cases {
            assert_eq!(
                key_states(activations, *now, retire_for),
                *expected,
                "{name}"
            );
        }
    }
}
