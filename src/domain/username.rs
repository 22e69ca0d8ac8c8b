//! Usernames: 3–64 characters of `[A-Za-z0-9_.-]`.

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let len = raw.chars().count();
        if !(3..=64).contains(&len) {
            return Err(ParseError::new("username must be 3 to 64 characters long"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(ParseError::new(
                "username may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for ok in ["bob", "a.b-c_d", &"x".repeat(64), "ABC123"] {
            assert_eq!(Username::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "ab",
            "",
            &"x".repeat(65),
            "bob smith",
            "bob\n",
            "émile",
            "a/b",
            "<script>",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_alphabet(s in "\\PC{0,80}") {
            if let Ok(u) = Username::parse(&s) {
                prop_assert!(u.as_str().len() >= 3 && u.as_str().len() <= 64);
                prop_assert!(u.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
            }
        }
    }
}
