//! `keyinfra policy`: the operator's side of issuance policies, through the same use cases
//! as `/api/v1/policies`. A policy file is YAML or JSON with any subset of the policy's
//! fields (README, "Issuance policies").

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use keyinfra_core::Principal;
use keyinfra_core::authority::Authority;
use keyinfra_core::policy::{Policy, PolicyChanges};
use keyinfra_db::Database;

use crate::ca_commands::out;
use crate::cli::PolicyCommand;

/// A policy file larger than this is refused before it is parsed.
const MAX_POLICY_FILE: u64 = 1024 * 1024;

pub async fn run(db: &Database, authority: &Authority, command: PolicyCommand) -> Result<()> {
    let operator = Principal::Operator;
    let policies = &authority.policies;
    match command {
        PolicyCommand::List => {
            out(format!(
                "{:<38} {:<24} {:>6}  DESCRIPTION",
                "ID", "NAME", "QUOTA"
            ));
            for p in policies.list(db, &operator).await? {
                let quota = p.quota.map_or("server".to_owned(), |q| q.to_string());
                out(format!(
                    "{:<38} {:<24} {:>6}  {}",
                    p.id, p.name, quota, p.description
                ));
            }
        }
        PolicyCommand::Show { policy } => {
            print_policy(&policies.find(db, &operator, &policy).await?)?;
        }
        PolicyCommand::Create { file } => {
            let changes = read_changes(&file)?;
            print_policy(&policies.create(db, &operator, changes).await?)?;
        }
        PolicyCommand::Update { policy, file } => {
            let changes = read_changes(&file)?;
            let id = policies.find(db, &operator, &policy).await?.id;
            print_policy(&policies.update(db, &operator, id, changes).await?)?;
        }
        PolicyCommand::Delete { policy } => {
            let found = policies.find(db, &operator, &policy).await?;
            policies.delete(db, &operator, found.id).await?;
            out(format!("deleted policy {} ({})", found.name, found.id));
        }
        PolicyCommand::Assign { username, policy } => {
            let found = policies.find(db, &operator, &policy).await?;
            let user = policies.user_id(db, &operator, &username).await?;
            policies.assign(db, &operator, user, found.id).await?;
            out(format!("{username} now holds policy {}", found.name));
        }
    }
    Ok(())
}

fn print_policy(policy: &Policy) -> Result<()> {
    out(serde_json::to_string_pretty(policy)?);
    Ok(())
}

/// Reads a policy file (`-`: standard input), YAML or JSON.
fn read_changes(path: &Path) -> Result<PolicyChanges> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_POLICY_FILE + 1)
            .read_to_string(&mut text)
            .context("cannot read the policy from standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(MAX_POLICY_FILE + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if text.len() as u64 > MAX_POLICY_FILE {
        bail!("the policy file is larger than {MAX_POLICY_FILE} bytes");
    }
    parse_changes(&text)
}

fn parse_changes(text: &str) -> Result<PolicyChanges> {
    Ok(PolicyChanges::from_text(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_give_the_same_changes() {
        let yaml = "name: site1\nallowed_dns:\n  - \"*.site1.example.net\"\nquota: 5\n";
        let json = r#"{"name": "site1", "allowed_dns": ["*.site1.example.net"], "quota": 5}"#;
        let a = parse_changes(yaml).unwrap();
        let b = parse_changes(json).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name.as_deref(), Some("site1"));
        assert_eq!(a.quota, Some(Some(5)));
        assert_eq!(a.denied_dns, None);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        assert!(parse_changes("name: x\nallowed_dnss: []\n").is_err());
        assert!(parse_changes(r#"{"quota": "ten"}"#).is_err());
    }

    #[test]
    fn null_quota_means_the_server_quota() {
        let changes = parse_changes("quota: null\n").unwrap();
        assert_eq!(changes.quota, Some(None));
    }
}
