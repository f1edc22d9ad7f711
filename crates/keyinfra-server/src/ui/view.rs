//! How values read on a page: dates, fingerprints, names, remaining time.

use keyinfra_db::certificates::CertificateRecord;
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// What every page's top bar needs.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// False on an error page shown without a (valid) session: no navigation, no forms.
    pub signed_in: bool,
    pub username: String,
    pub is_admin: bool,
    pub csrf: String,
    /// Which navigation entry is current: "dashboard", "certificates", "cas", "users",
    /// "audit" or "account".
    pub current: &'static str,
}

impl Chrome {
    /// The top bar of a page shown to nobody in particular (an error before the session
    /// is known): the brand only.
    pub fn anonymous() -> Self {
        Self {
            signed_in: false,
            username: String::new(),
            is_admin: false,
            csrf: String::new(),
            current: "",
        }
    }
}

pub fn date(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

pub fn date_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_default()
}

/// "in 12 days", "today", "3 days ago".
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let days = (at - now).whole_days();
    match days {
        0 if at >= now => "within a day".to_owned(),
        0 => "less than a day ago".to_owned(),
        1 => "in 1 day".to_owned(),
        d if d > 1 => format!("in {d} days"),
        -1 => "1 day ago".to_owned(),
        d => format!("{} days ago", -d),
    }
}

/// The CN of an RFC 4514 name, else the whole name.
pub fn common_name(dn: &str) -> String {
    dn.split(',')
        .find_map(|rdn| rdn.trim().strip_prefix("CN="))
        .unwrap_or(dn)
        .to_owned()
}

/// `AB:CD:...` as certificate viewers show it.
pub fn fingerprint(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A SAN without its `DNS:`/`IP:` tag.
pub fn untagged(san: &str) -> String {
    san.split_once(':')
        .map_or(san, |(_, value)| value)
        .to_owned()
}

/// One certificate as a row of a table.
#[derive(Debug, Clone)]
pub struct CertRow {
    pub id: Uuid,
    pub name: String,
    pub subject: String,
    pub sans: String,
    pub serial: String,
    pub status: String,
    pub status_class: String,
    pub not_after: String,
    pub remaining: String,
    pub profile: String,
    pub version: i32,
    pub owner_id: Option<Uuid>,
    /// The owner's username, when the page looked it up (admins' lists).
    pub owner: String,
}

impl CertRow {
    pub fn new(c: &CertificateRecord, now: OffsetDateTime) -> Self {
        let status = c.status.as_str().to_owned();
        Self {
            id: c.id,
            name: common_name(&c.subject_dn),
            subject: c.subject_dn.clone(),
            sans: c
                .subject_alt_names
                .iter()
                .map(|s| untagged(s))
                .collect::<Vec<_>>()
                .join(", "),
            serial: c.serial_number.clone(),
            status_class: status.to_lowercase(),
            status,
            not_after: date(c.not_after),
            remaining: relative(c.not_after, now),
            profile: c.profile.clone(),
            version: c.version,
            owner_id: c.owner_id,
            owner: String::new(),
        }
    }

    /// Fills in the owner's name from a page's lookup.
    pub fn named(mut self, names: &std::collections::HashMap<Uuid, String>) -> Self {
        self.owner = owner_name(self.owner_id, names);
        self
    }
}

/// How a page names an owner: the username; "nobody" when the certificate has none (its
/// user was deleted, or the operator issued it); "unknown user" when not visible.
pub fn owner_name(id: Option<Uuid>, names: &std::collections::HashMap<Uuid, String>) -> String {
    match id {
        None => "nobody".to_owned(),
        Some(id) => names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "unknown user".to_owned()),
    }
}

/// A use case's message ("the PIN must ...", written for API clients) as a sentence on a
/// page: capital first letter, final full stop.
pub fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fingerprints_read_as_viewers_show_them() {
        assert_eq!(common_name("CN=edge-1,O=Example,C=NL"), "edge-1");
        assert_eq!(common_name("O=Example"), "O=Example");
        assert_eq!(fingerprint(&[0xab, 0x01]), "AB:01");
        assert_eq!(untagged("DNS:a.example"), "a.example");
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(relative(now + time::Duration::days(12), now), "in 12 days");
        assert_eq!(relative(now - time::Duration::days(3), now), "3 days ago");
        assert_eq!(sentence("the PIN is too short"), "The PIN is too short.");
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
