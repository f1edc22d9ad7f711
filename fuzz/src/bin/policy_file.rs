//! A policy file as `keyinfra policy create|update --file` reads it (YAML or JSON), then
//! validated and compiled as the API does before storing it.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(changes) = keyinfra_core::policy::PolicyChanges::from_text(text)
        {
            let _ = keyinfra_server::fuzzing::policy_checks(changes);
        }
    });
}
