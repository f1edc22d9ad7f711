//! How values read on a page: dates, fingerprints, names, remaining time.

use std::collections::HashMap;

use keyinfra_db::audit::AuditRecord;
use keyinfra_db::certificates::CertificateRecord;
use keyinfra_pki::names::SubjectAltName;
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
    /// Which navigation entry is current: "dashboard", "certificates", "enrollment", "cas",
    /// "users", "policies", "audit" or "account".
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

/// Time left until `at`, to the minute, for what lives minutes to days (a challenge):
/// "in 59 minutes", "in 5 hours", "in 3 days"; "past" once it is.
pub fn remaining(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = at - now;
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("in 1 {unit}")
        } else {
            format!("in {n} {unit}s")
        }
    };
    if left <= time::Duration::ZERO {
        "past".to_owned()
    } else if left < time::Duration::hours(2) {
        // Rounded up: one second left is "in 1 minute", never "in 0 minutes".
        plural((left.whole_seconds() + 59) / 60, "minute")
    } else if left < time::Duration::days(2) {
        plural(left.whole_hours(), "hour")
    } else {
        plural(left.whole_days(), "day")
    }
}

/// The CN of an RFC 4514 name, else the whole name.
pub fn common_name(dn: &str) -> String {
    dn.split(',')
        .find_map(|rdn| rdn.trim().strip_prefix("CN="))
        .unwrap_or(dn)
        .to_owned()
}

/// How a page names a row by its id when it has nothing better: the last 12 hex digits.
/// Ids are UUIDv7 (migration 0013): the first 12 hex digits are the millisecond the row
/// was made, so rows made together (two certificates issued at once, a batch of events)
/// share them, and the first 8 digits used to show the same label for both. The last 12
/// are 48 of the random bits: two ids on one page share them with a chance of about one in
/// 10^10, and older, version 4 ids are random there too. The full id stays in the link.
pub fn short_id(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("…{}", &hex[hex.len() - 12..])
}

/// How a page names the object of an audit event: a user by name, a certificate by its
/// subject's CN with its short id (renewals share the subject), when the page knows them;
/// anything else by its kind and short id.
pub fn target_label(kind: &str, id: Uuid, name: Option<&str>) -> String {
    match (kind, name) {
        ("user", Some(username)) => username.to_owned(),
        ("certificate", Some(subject)) => format!("{} ({})", common_name(subject), short_id(id)),
        (kind, _) => format!("{kind} {}", short_id(id)),
    }
}

/// The subjects that a page's audit events name for their certificates (an issue's
/// details carry the subject), so that the page can show a certificate by its name in
/// every row about it, not only in the issue's.
pub fn certificate_subjects(events: &[AuditRecord]) -> HashMap<Uuid, String> {
    events
        .iter()
        .filter(|e| e.target_type.as_deref() == Some("certificate"))
        .filter_map(|e| {
            let subject = e.details.get("subject")?.as_str()?;
            Some((e.target_id?, subject.to_owned()))
        })
        .collect()
}

/// An audit event's target as a page names it, from the usernames and subjects the page
/// looked up; empty when the event has none.
pub fn event_target(
    event: &AuditRecord,
    usernames: &HashMap<Uuid, String>,
    subjects: &HashMap<Uuid, String>,
) -> String {
    match (event.target_type.as_deref(), event.target_id) {
        (Some(kind), Some(id)) => {
            let known = match kind {
                "user" => usernames.get(&id),
                "certificate" => subjects.get(&id),
                _ => None,
            };
            target_label(kind, id, known.map(String::as_str))
        }
        (Some(kind), None) => kind.to_owned(),
        (None, _) => String::new(),
    }
}

/// A subject attribute's RFC 4514 short name as a form labels it: "Organization (O)".
pub fn attribute_label(short: &str) -> String {
    let long = match short {
        "CN" => "Common name",
        "O" => "Organization",
        "OU" => "Organizational unit",
        "C" => "Country",
        "ST" => "State or province",
        "L" => "Locality",
        "DC" => "Domain component",
        "serialNumber" => "Serial number",
        _ => return short.to_owned(),
    };
    format!("{long} ({short})")
}

/// `AB:CD:...` as certificate viewers show it.
pub fn fingerprint(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A stored SAN (`DNS:a.example`, `IP:192.0.2.1`) as a person reads it: the name as the
/// names module writes it, without its type; a value it cannot read is shown as stored.
pub fn san_text(san: &str) -> String {
    SubjectAltName::parse(san).map_or_else(|_| san.to_owned(), |name| name.to_string())
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
    /// How it was requested, as people say it ([`channel_text`]).
    pub channel: &'static str,
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
                .map(|s| san_text(s))
                .collect::<Vec<_>>()
                .join(", "),
            serial: c.serial_number.clone(),
            status_class: status.to_lowercase(),
            status,
            not_after: date(c.not_after),
            remaining: relative(c.not_after, now),
            profile: c.profile.clone(),
            channel: channel_text(&c.channel),
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

/// A certificate's `channel` as a page shows it.
pub fn channel_text(channel: &str) -> &'static str {
    match channel {
        "api" => "API or UI",
        "cli" => "CLI",
        "server" => "server TLS",
        "scep" => "SCEP",
        "est" => "EST",
        "acme" => "ACME",
        _ => "other",
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
        assert_eq!(san_text("DNS:a.example"), "a.example");
        assert_eq!(san_text("IP:2001:db8::1"), "2001:db8::1");
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(relative(now + time::Duration::days(12), now), "in 12 days");
        assert_eq!(relative(now - time::Duration::days(3), now), "3 days ago");
        assert_eq!(sentence("the PIN is too short"), "The PIN is too short.");
        // Two v7 ids of the same millisecond: the same first 8 digits, different labels.
        let a: Uuid = "01900000-0000-7000-8000-0000000000a1".parse().unwrap();
        let b: Uuid = "01900000-0000-7000-8000-0000000000b2".parse().unwrap();
        assert_eq!(short_id(a), "…0000000000a1");
        assert_ne!(
            target_label("certificate", a, None),
            target_label("certificate", b, None)
        );
        assert_eq!(
            target_label("certificate", a, Some("CN=edge-1,O=Example")),
            "edge-1 (…0000000000a1)"
        );
        assert_eq!(target_label("user", a, Some("alice")), "alice");
        assert_eq!(target_label("user", a, None), "user …0000000000a1");
        assert_eq!(sentence("Done!"), "Done!");
        let minutes = |m: i64| now + time::Duration::minutes(m);
        assert_eq!(remaining(minutes(60), now), "in 60 minutes");
        assert_eq!(
            remaining(now + time::Duration::seconds(1), now),
            "in 1 minute"
        );
        assert_eq!(remaining(minutes(5 * 60 + 7), now), "in 5 hours");
        assert_eq!(remaining(minutes(7 * 24 * 60), now), "in 7 days");
        assert_eq!(remaining(now, now), "past");
        assert_eq!(sentence(""), "");
    }
}
