//! DN and SAN text as the API and the CLI take it (`subject`, `san`): parse, and check that
//! what parses is shown in a form that parses back to the same value.

use keyinfra_pki::names::{DistinguishedName, SubjectAltName};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(dn) = DistinguishedName::parse(text) {
            let shown = dn.to_string();
            let again = DistinguishedName::parse(&shown);
            assert_eq!(again.as_ref(), Ok(&dn), "{text:?} shown as {shown:?}");
        }
        let _ = SubjectAltName::parse(text);
        let items: Vec<&str> = text.split('\n').collect();
        if let Ok(sans) = SubjectAltName::parse_list(&items) {
            for san in sans {
                let tagged = san.to_tagged();
                assert_eq!(
                    SubjectAltName::parse(&tagged).as_ref(),
                    Ok(&san),
                    "{tagged:?}"
                );
            }
        }
    });
}
