//! The access-policy model and its matching.
//!
//! A rule (as the platform shows it): name, enabled, scope (every workstation, one workstation or
//! one user), guideline (login session or binary run), enable audit (default yes), enable session
//! recording, application path, whether that path is a symbolic link, permission, and the subject:
//! a user by name or a group, which matches **only as the user's primary group**.
//!
//! Rules are evaluated in order; the first enabled rule that covers the request decides. Every
//! decision says which rule matched and why, and keeps a line per rule that did not.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::UserInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every workstation.
    #[default]
    All,
    /// One workstation, named by `scope_target` (its host name).
    Workstation,
    /// One user, named by `scope_target`.
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guideline {
    /// Record the whole login session (PAM).
    LoginSession,
    /// Audit and/or record each run of a named program.
    BinaryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Recording is allowed (the usual rule).
    #[default]
    AllowRecording,
    /// An exemption: what this rule covers is not recorded (still audited if audit is on).
    DenyRecording,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectType {
    User,
    /// A group: matches users whose *primary* group it is.
    Group,
}

fn yes() -> bool {
    true
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier (the platform's); local rules may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub scope: Scope,
    /// The workstation or user a scoped rule is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_target: Option<String>,
    pub guideline: Guideline,
    #[serde(default = "yes")]
    pub enable_audit: bool,
    #[serde(default)]
    pub enable_recording: bool,
    /// For binary-run rules: the program, as `which CMD` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_path: Option<PathBuf>,
    /// The application path is a symbolic link: cover the link and its final target.
    #[serde(default)]
    pub path_is_symlink: bool,
    #[serde(default)]
    pub permission: Permission,
    pub subject_type: SubjectType,
    /// User name, or group name (the user's primary group).
    pub subject: String,
}

impl Rule {
    /// Checks the fields that depend on each other; returns the field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        if self.subject.trim().is_empty() {
            return Err(("subject", "must name a user or a group".into()));
        }
        match (self.scope, self.scope_target.as_deref()) {
            (Scope::All, Some(_)) => {
                return Err((
                    "scope_target",
                    "only a workstation or user scope takes a target".into(),
                ))
            }
            (Scope::Workstation | Scope::User, None | Some("")) => {
                return Err((
                    "scope_target",
                    "a workstation or user scope needs the host or user name".into(),
                ))
            }
            _ => {}
        }
        match (self.guideline, &self.application_path) {
            (Guideline::BinaryRun, None) => Err((
                "application_path",
                "a binary-run rule needs the program's path (as `which` prints it)".into(),
            )),
            (Guideline::BinaryRun, Some(p)) if !p.is_absolute() => {
                Err(("application_path", format!("must be absolute, not {p:?}")))
            }
            (Guideline::LoginSession, Some(_)) => Err((
                "application_path",
                "only binary-run rules name an application".into(),
            )),
            _ => Ok(()),
        }
    }

    /// A short label for messages: `'name'` or `'name' (id)`.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("'{}' ({id})", self.name),
            None => format!("'{}'", self.name),
        }
    }
}

/// What is being decided.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub user: &'a UserInfo,
    pub host: &'a str,
    /// The PAM service, when the question comes from a login.
    pub service: Option<&'a str>,
    /// The program being run, for binary-run rules; `None` asks about the login session.
    pub binary: Option<&'a Path>,
}

/// The rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matched {
    /// Position of the rule in the rule list (0-based).
    pub index: usize,
    pub id: Option<String>,
    pub name: String,
}

/// The outcome of matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Record the session or the run.
    pub record: bool,
    /// Write an audit event for the run (binary-run rules).
    pub audit: bool,
    pub rule: Option<Matched>,
    /// Why this decision: which rule matched and how.
    pub reason: String,
    /// One line for each rule considered that did not match.
    pub skipped: Vec<String>,
}

/// Decides a request against `rules`, in order.
pub fn decide(rules: &[Rule], req: &Request) -> Decision {
    let wanted = if req.binary.is_some() {
        Guideline::BinaryRun
    } else {
        Guideline::LoginSession
    };
    let mut skipped = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if rule.guideline != wanted {
            continue;
        }
        let label = format!("rule #{index} {}", rule.label());
        if !rule.enabled {
            skipped.push(format!("{label}: disabled"));
            continue;
        }
        let why = scope_matches(rule, req)
            .and_then(|scope| subject_matches(rule, req.user).map(|s| (scope, s)))
            .and_then(|(scope, subject)| match req.binary {
                Some(bin) => binary_matches(rule, bin).map(|b| format!("{scope}, {subject}, {b}")),
                None => Ok(format!("{scope}, {subject}")),
            });
        match why {
            Ok(why) => {
                let record = rule.enable_recording && rule.permission == Permission::AllowRecording;
                let audit = wanted == Guideline::BinaryRun && rule.enable_audit;
                let verdict = match (record, audit) {
                    (true, true) => "record and audit",
                    (true, false) => "record",
                    (false, true) => "audit only",
                    (false, false) => "neither record nor audit",
                };
                return Decision {
                    record,
                    audit,
                    rule: Some(Matched {
                        index,
                        id: rule.id.clone(),
                        name: rule.name.clone(),
                    }),
                    reason: format!("{label} matched ({why}): {verdict}"),
                    skipped,
                };
            }
            Err(why) => skipped.push(format!("{label}: {why}")),
        }
    }
    let what = match req.binary {
        Some(b) => format!(
            "binary-run rule covers {} for user {}",
            b.display(),
            req.user.name
        ),
        None => format!("login-session rule covers user {}", req.user.name),
    };
    Decision {
        record: false,
        audit: false,
        rule: None,
        reason: format!("no enabled {what}: not recorded"),
        skipped,
    }
}

fn scope_matches(rule: &Rule, req: &Request) -> Result<String, String> {
    let target = rule.scope_target.as_deref().unwrap_or("");
    match rule.scope {
        Scope::All => Ok("every workstation".into()),
        Scope::Workstation if target.eq_ignore_ascii_case(req.host) => {
            Ok(format!("workstation {target}"))
        }
        Scope::Workstation => Err(format!(
            "scoped to workstation {target}, this is {}",
            req.host
        )),
        Scope::User if target == req.user.name => Ok(format!("scoped to user {target}")),
        Scope::User => Err(format!("scoped to user {target}, not {}", req.user.name)),
    }
}

fn subject_matches(rule: &Rule, user: &UserInfo) -> Result<String, String> {
    match rule.subject_type {
        SubjectType::User if rule.subject == user.name => Ok(format!("user {}", user.name)),
        SubjectType::User => Err(format!("for user {}, not {}", rule.subject, user.name)),
        SubjectType::Group
            if rule.subject == user.group || rule.subject == user.gid.to_string() =>
        {
            Ok(format!("{}'s primary group is {}", user.name, rule.subject))
        }
        SubjectType::Group => Err(format!(
            "for group {}, which is not {}'s primary group ({}); secondary groups do not count",
            rule.subject, user.name, user.group
        )),
    }
}

fn binary_matches(rule: &Rule, invoked: &Path) -> Result<String, String> {
    let Some(app) = rule.application_path.as_deref() else {
        return Err("names no application".into());
    };
    let covered = covered_paths(app, rule.path_is_symlink);
    let forms = [dir_canonical(invoked), std::fs::canonicalize(invoked).ok()];
    for form in forms.iter().flatten() {
        if covered.contains(form) {
            return Ok(format!(
                "{} is covered as {}",
                invoked.display(),
                form.display()
            ));
        }
    }
    Err(format!(
        "covers {}, not {}",
        covered
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        invoked.display()
    ))
}

/// The paths a binary-run rule covers: the application path (its directories resolved, the last
/// component as written) and, when the rule says it is a symbolic link, the link's final target.
pub fn covered_paths(app: &Path, path_is_symlink: bool) -> Vec<PathBuf> {
    let mut out = vec![dir_canonical(app).unwrap_or_else(|| app.to_path_buf())];
    if path_is_symlink {
        if let Ok(target) = std::fs::canonicalize(app) {
            if !out.contains(&target) {
                out.push(target);
            }
        }
    }
    out
}

/// `path` with its parent directories resolved (symbolic links, `..`) but its last component kept
/// as written, so `/bin/vi` becomes `/usr/bin/vi` on a merged-/usr system while the link `vi`
/// itself is kept.
pub fn dir_canonical(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::canonicalize(parent).ok().map(|p| p.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, group: &str) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: 1000,
            gid: 1000,
            group: group.into(),
            home: "/home/x".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn rule(name: &str, subject_type: SubjectType, subject: &str) -> Rule {
        Rule {
            id: None,
            name: name.into(),
            enabled: true,
            scope: Scope::All,
            scope_target: None,
            guideline: Guideline::LoginSession,
            enable_audit: true,
            enable_recording: true,
            application_path: None,
            path_is_symlink: false,
            permission: Permission::AllowRecording,
            subject_type,
            subject: subject.into(),
        }
    }

    fn login(rules: &[Rule], u: &UserInfo, host: &str) -> Decision {
        decide(
            rules,
            &Request {
                user: u,
                host,
                service: Some("sshd"),
                binary: None,
            },
        )
    }

    #[test]
    fn table_of_login_decisions() {
        let admins = rule("admins", SubjectType::Group, "admins");
        let bob = rule("bob", SubjectType::User, "bob");
        let mut off = rule("off", SubjectType::User, "carol");
        off.enabled = false;
        let mut ws = rule("ws", SubjectType::User, "dave");
        ws.scope = Scope::Workstation;
        ws.scope_target = Some("laptop-7".into());
        let mut exempt = rule("exempt erin", SubjectType::User, "erin");
        exempt.permission = Permission::DenyRecording;
        let mut erin_group = rule("erin group", SubjectType::Group, "ops");
        erin_group.scope = Scope::User;
        erin_group.scope_target = Some("erin".into());
        let rules = vec![off, exempt, admins, bob, ws, erin_group];

        // (user, primary group, host, recorded?, matched rule)
        let cases = [
            ("alice", "admins", "h1", true, Some("admins")),
            ("alice", "users", "h1", false, None),
            ("bob", "users", "h1", true, Some("bob")),
            ("carol", "users", "h1", false, None),
            ("dave", "users", "laptop-7", true, Some("ws")),
            ("dave", "users", "LAPTOP-7", true, Some("ws")),
            ("dave", "users", "other", false, None),
            ("erin", "ops", "h1", false, Some("exempt erin")),
            ("frank", "ops", "h1", false, None),
        ];
        for (name, group, host, record, matched) in cases {
            let d = login(&rules, &user(name, group), host);
            assert_eq!(d.record, record, "{name}@{host}: {}", d.reason);
            assert_eq!(
                d.rule.as_ref().map(|m| m.name.as_str()),
                matched,
                "{name}: {}",
                d.reason
            );
            assert!(!d.audit, "login sessions are not audit events");
        }
    }

    #[test]
    fn secondary_group_membership_does_not_count_and_says_so() {
        let rules = [rule("wheel", SubjectType::Group, "wheel")];
        let d = login(&rules, &user("alice", "alice"), "h");
        assert!(!d.record);
        assert!(
            d.skipped[0].contains("not alice's primary group"),
            "{:?}",
            d.skipped
        );
        let d = login(&rules, &user("alice", "wheel"), "h");
        assert!(d.record);
        assert!(d.reason.contains("primary group is wheel"), "{}", d.reason);
    }

    #[test]
    fn binary_rules_cover_link_and_target_only_when_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("prog.real");
        let link = dir.path().join("prog");
        let other = dir.path().join("other-link");
        std::fs::write(&target, "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::symlink(&link, &other).unwrap();
        let u = user("alice", "ops");
        let mut r = rule("prog", SubjectType::Group, "ops");
        r.guideline = Guideline::BinaryRun;
        r.application_path = Some(link.clone());
        let check = |r: &Rule, p: &Path| {
            decide(
                std::slice::from_ref(r),
                &Request {
                    user: &u,
                    host: "h",
                    service: None,
                    binary: Some(p),
                },
            )
        };
        // Not flagged: the link name is covered, the target is not.
        assert!(check(&r, &link).record);
        assert!(!check(&r, &target).record);
        r.path_is_symlink = true;
        assert!(check(&r, &link).record);
        let d = check(&r, &target);
        assert!(d.record && d.audit, "{}", d.reason);
        // Any other name that resolves to the target is the same program.
        assert!(check(&r, &other).record);
        // A login-session question never matches a binary rule.
        assert!(!login(std::slice::from_ref(&r), &u, "h").record);
    }

    #[test]
    fn audit_only_rule() {
        let mut r = rule("audit ls", SubjectType::User, "alice");
        r.guideline = Guideline::BinaryRun;
        r.application_path = Some("/bin/sh".into());
        r.enable_recording = false;
        let u = user("alice", "alice");
        let d = decide(
            &[r],
            &Request {
                user: &u,
                host: "h",
                service: None,
                binary: Some(Path::new("/bin/sh")),
            },
        );
        assert!(d.audit && !d.record, "{}", d.reason);
        assert!(d.reason.contains("audit only"));
    }

    #[test]
    fn validation_names_the_field() {
        let mut r = rule("x", SubjectType::User, "a");
        r.scope = Scope::Workstation;
        assert_eq!(r.validate().unwrap_err().0, "scope_target");
        let mut r = rule("x", SubjectType::User, "a");
        r.guideline = Guideline::BinaryRun;
        r.application_path = Some("ping".into());
        assert_eq!(r.validate().unwrap_err().0, "application_path");
    }
}
