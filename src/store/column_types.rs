//! The protocol's value types as sea-orm column types: a redirect URI, a resource URI, a PKCE
//! code challenge and a scope set are stored as text and loaded back as their own types, so a
//! row never hands back a bare `String` for them.
//!
//! Loading goes through each type's `from_stored`, never through its parser: what was accepted
//! once is read as it is, today's rules are not re-run, and no stored text can make a read
//! fail or panic. The types live in `oauth`, which must not know the store, so their column
//! impls live here (the traits are sea-orm's, the types ours: either side may hold them).

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, QueryResult, TryGetError, TryGetable, Value};

use crate::oauth::pkce::CodeChallenge;
use crate::oauth::redirect_uri::RedirectUri;
use crate::oauth::resource::ResourceUri;
use crate::oauth::scope::ScopeSet;

/// A text column holding `$ty`: `$load` makes one from the stored `String` without checks,
/// `$text` gives the text stored for one.
macro_rules! text_column {
    ($ty:ty, load: $load:expr, text: $text:expr) => {
        impl From<$ty> for Value {
            fn from(value: $ty) -> Value {
                Value::from($text(&value))
            }
        }

        impl From<&$ty> for Value {
            fn from(value: &$ty) -> Value {
                Value::from($text(value))
            }
        }

        impl TryGetable for $ty {
            fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> Result<Self, TryGetError> {
                <String as TryGetable>::try_get_by(res, index).map($load)
            }
        }

        impl ValueType for $ty {
            fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
                <String as ValueType>::try_from(value).map($load)
            }

            fn type_name() -> String {
                stringify!($ty).to_owned()
            }

            fn array_type() -> ArrayType {
                <String as ValueType>::array_type()
            }

            fn column_type() -> ColumnType {
                <String as ValueType>::column_type()
            }
        }

        impl Nullable for $ty {
            fn null() -> Value {
                <String as Nullable>::null()
            }
        }
    };
}

text_column!(
    RedirectUri,
    load: RedirectUri::from_stored,
    text: |uri: &RedirectUri| uri.as_str().to_owned()
);

text_column!(
    ResourceUri,
    load: ResourceUri::from_stored,
    text: |resource: &ResourceUri| resource.as_str().to_owned()
);

text_column!(
    CodeChallenge,
    load: CodeChallenge::from_stored,
    text: |challenge: &CodeChallenge| challenge.as_str().to_owned()
);

// Stored as the tokens joined by one space (its `Display`). Every scope we store was written
// from a `ScopeSet`, so it is already in that form and reads back byte for byte; a stored
// string with repeated or empty tokens would read back without them, order kept.
text_column!(
    ScopeSet,
    load: |stored: String| ScopeSet::from_stored(&stored),
    text: |scope: &ScopeSet| scope.to_string()
);

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_text(value: Value) -> String {
        match value {
            Value::String(Some(text)) => *text,
            other => panic!("not stored as text: {other:?}"),
        }
    }

    #[test]
    fn stored_values_load_as_they_are_without_checks() {
        // None of these passes today's parsers; each loads unchanged.
        let texts = ["", "not a uri", "http://example.com/#frag", "x y\u{0}"];
        for text in texts {
            let value = || Value::from(text.to_owned());
            let uri = <RedirectUri as ValueType>::try_from(value()).unwrap();
            assert_eq!(stored_text(Value::from(uri)), text);
            let resource = <ResourceUri as ValueType>::try_from(value()).unwrap();
            assert_eq!(stored_text(Value::from(resource)), text);
            let challenge = <CodeChallenge as ValueType>::try_from(value()).unwrap();
            assert_eq!(stored_text(Value::from(challenge)), text);
        }
    }

    #[test]
    fn stored_scopes_round_trip() {
        let cases = [
            ("empty", "", ""),
            ("one token", "mcp", "mcp"),
            (
                "order kept, not sorted",
                "mcp:write mcp:read",
                "mcp:write mcp:read",
            ),
            ("a token today's syntax refuses", "a\\b \"c\"", "a\\b \"c\""),
            ("repeated tokens read once", "a b a", "a b"),
            ("empty tokens dropped", " a  b ", "a b"),
        ];
        for (name, stored, loaded) in cases {
            let scope = <ScopeSet as ValueType>::try_from(Value::from(stored.to_owned())).unwrap();
            assert_eq!(stored_text(Value::from(&scope)), loaded, "{name}");
        }
    }

    #[test]
    fn a_null_or_another_type_is_an_error_not_a_panic() {
        assert!(<ScopeSet as ValueType>::try_from(<ScopeSet as Nullable>::null()).is_err());
        assert!(<RedirectUri as ValueType>::try_from(Value::from(1_i64)).is_err());
    }
}
