use super::*;

/// Stored strings that today's parse refuses; loading must take each as it is.
const ODD_STORED: &[&str] = &["", " ", "\u{0}", "é\u{FFFD}\u{202E}", "a b\nc"];

fn assert_loads_as_stored<T: AsRef<str>>(from_stored: impl Fn(String) -> T) {
    for odd in ODD_STORED {
        assert_eq!(from_stored((*odd).to_owned()).as_ref(), *odd);
    }
}

#[test]
fn client_id_parse_accepts_generated_and_url_ids_and_refuses_the_rest() {
    for good in [
        "cli_abc",
        "https://app.example/client.json",
        "my-admin-client",
    ] {
        assert_eq!(good.parse::<ClientId>().unwrap().as_str(), good, "{good}");
    }
    assert!(matches!("".parse::<ClientId>(), Err(IdError::Empty { .. })));
    assert!(matches!(
        "a b".parse::<ClientId>(),
        Err(IdError::NotVisibleAscii { .. })
    ));
    let long = "a".repeat(MAX_ID_BYTES + 1);
    assert!(matches!(
        long.parse::<ClientId>(),
        Err(IdError::TooLong { .. })
    ));
    assert_loads_as_stored(ClientId::from_stored);
}

#[test]
fn client_id_generate_gives_ids_the_parse_accepts_and_never_urls() {
    let generated = ClientId::generate();
    assert!(generated.as_str().starts_with("client_"), "{generated}");
    assert!(!generated.as_str().contains(':') && !generated.as_str().contains('/'));
    assert_ne!(generated, ClientId::generate());
    assert_eq!(generated.as_str().parse::<ClientId>(), Ok(generated));
    // The longest client id metadata document URL (the column's width) is accepted.
    let longest = format!("https://app.example/{}", "a".repeat(MAX_ID_BYTES - 20));
    assert_eq!(longest.len(), MAX_ID_BYTES);
    assert!(longest.parse::<ClientId>().is_ok());
}

#[test]
fn user_id_parse_accepts_generated_ids_and_refuses_blank_ones() {
    let generated = UserId::generate();
    assert!(generated.as_str().starts_with("usr_"));
    assert_eq!(generated.as_str().parse::<UserId>(), Ok(generated));
    assert!("usr_\tx".parse::<UserId>().is_err());
    assert!(UserId::try_from(String::new()).is_err());
    assert_loads_as_stored(UserId::from_stored);
}

#[test]
fn grant_id_parse_accepts_generated_ids_and_refuses_blank_ones() {
    let generated = GrantId::generate();
    assert!(generated.as_str().starts_with("grt_"));
    assert_ne!(generated, GrantId::generate());
    assert_eq!(generated.as_str().parse::<GrantId>(), Ok(generated));
    assert!("grt_é".parse::<GrantId>().is_err());
    assert_loads_as_stored(GrantId::from_stored);
}

#[test]
fn family_id_parse_accepts_generated_ids_and_refuses_blank_ones() {
    let generated = FamilyId::generate();
    assert!(generated.as_str().starts_with("fam_"));
    assert_eq!(generated.as_str().parse::<FamilyId>(), Ok(generated));
    assert!("".parse::<FamilyId>().is_err());
    assert_loads_as_stored(FamilyId::from_stored);
}

#[test]
fn token_hash_is_sha256_hex_and_parse_refuses_anything_else() {
    // FIPS 180-2 test vector: SHA-256("abc").
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(TokenHash::of("abc").as_str(), abc);
    assert_eq!(abc.parse::<TokenHash>(), Ok(TokenHash::of("abc")));
    for bad in [
        "",
        "abc",
        &abc.to_uppercase(),
        &format!("{abc}0"),
        &abc.replace('a', "g"),
    ] {
        assert!(bad.parse::<TokenHash>().is_err(), "{bad:?}");
    }
    assert_loads_as_stored(TokenHash::from_stored);
}

#[test]
fn serde_writes_the_plain_string_and_reads_through_the_check() {
    let id: GrantId = "grt_1".parse().unwrap();
    assert_eq!(serde_json::to_string(&id).unwrap(), r#""grt_1""#);
    assert_eq!(serde_json::from_str::<GrantId>(r#""grt_1""#).unwrap(), id);
    assert!(serde_json::from_str::<GrantId>(r#""""#).is_err());
    assert_eq!(id.to_string(), "grt_1");
}
